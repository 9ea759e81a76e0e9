"""Unit tests of reconciliation by data-source priority, emptiness, staleness and policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb_graph.ingest.reconcile import ReconciliationPolicy, SourceRanker, reconcile_values
from cmdb_graph.model import AttributeSource, DataSource, Lineage, Registry

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SOURCES = {
    "high": DataSource(name="high", priority=80, stale_after_days=10),
    "low": DataSource(name="low", priority=20, stale_after_days=None),
    "peer": DataSource(name="peer", priority=80),
}


def held(**by_attr: str) -> Lineage:
    return Lineage(attributes={a: AttributeSource(source=s, asserted_at=T0)
                               for a, s in by_attr.items()})


def rec(current: dict[str, Any], lineage: Lineage, incoming: dict[str, Any], source: str,
        *, when: datetime = T0, policy: ReconciliationPolicy | None = None,
        scope: str = "Server") -> dict[str, Any]:
    ranker = SourceRanker(SOURCES, policy or ReconciliationPolicy(), Registry())
    taken, _ = reconcile_values(current, lineage, incoming, source=source, asserted_at=when,
                                scope=scope, ranker=ranker, now=when)
    return taken


def test_higher_priority_wins_and_lower_does_not() -> None:
    assert rec({"os": "a"}, held(os="low"), {"os": "b"}, "high") == {"os": "b"}
    assert rec({"os": "a"}, held(os="high"), {"os": "b"}, "low") == {}


def test_a_value_beats_an_empty_one_and_empty_never_clears() -> None:
    assert rec({"os": None}, held(os="high"), {"os": "b"}, "low") == {"os": "b"}
    assert rec({"os": "a"}, held(os="low"), {"os": None, "env": ""}, "high") == {}
    assert rec({"ips": []}, Lineage(), {"ips": ["10.0.0.1"]}, "low") == {"ips": ["10.0.0.1"]}


def test_the_holder_may_always_update_its_value() -> None:
    assert rec({"os": "a"}, held(os="low"), {"os": "b"}, "low") == {"os": "b"}


def test_equal_rank_keeps_the_held_value() -> None:
    assert rec({"os": "a"}, held(os="high"), {"os": "b"}, "peer") == {}


def test_stale_assertions_may_be_taken_over_by_a_lower_source() -> None:
    later = T0 + timedelta(days=11)
    assert rec({"os": "a"}, held(os="high"), {"os": "b"}, "low", when=later) == {"os": "b"}
    assert rec({"os": "a"}, held(os="high"), {"os": "b"}, "low",
               when=T0 + timedelta(days=9)) == {}


def test_value_without_lineage_ranks_below_every_source() -> None:
    assert rec({"os": "manual"}, Lineage(), {"os": "b"}, "low") == {"os": "b"}


def test_policy_orders_sources_per_class_and_attribute_and_covers_subclasses() -> None:
    policy = ReconciliationPolicy({"Hardware": {"os": ["low", "high"]}})
    assert rec({"os": "a"}, held(os="high"), {"os": "b"}, "low", policy=policy) == {"os": "b"}
    assert rec({"os": "a"}, held(os="low"), {"os": "b"}, "high", policy=policy) == {}
    # another attribute, or a class outside Hardware, falls back to priority
    assert rec({"env": "a"}, held(env="high"), {"env": "b"}, "low", policy=policy) == {}
    assert rec({"os": "a"}, held(os="high"), {"os": "b"}, "low", policy=policy,
               scope="VirtualMachine") == {}


def test_lineage_records_source_and_time_of_each_taken_value() -> None:
    ranker = SourceRanker(SOURCES, ReconciliationPolicy(), Registry())
    when = T0 + timedelta(hours=1)
    _, lineage = reconcile_values({}, Lineage(), {"os": "b", "env": None}, source="low",
                                  asserted_at=when, scope="Server", ranker=ranker, now=when)
    assert lineage.attributes == {"os": AttributeSource(source="low", asserted_at=when)}


def test_policy_from_file(tmp_path: Any) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("Server:\n  os_version: [sccm, glpi]\n", encoding="utf-8")
    policy = ReconciliationPolicy.from_file(path)
    assert policy.order_for(["Server"], "os_version") == ("sccm", "glpi")
