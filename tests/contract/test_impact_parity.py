"""Issue 5 must-show: impact results are the same on the embedded store and on Neo4j.

Every question goes through :class:`cmdb_graph.service.engine.Engine`, the composition layer the
GraphQL API and the CLI use, twice: with its cached whole graph (the default, on both stores)
and with ``graph_cache`` off, answering from the subgraphs it extracts per question (upstream
closure plus fringe, downstream closure). Both must equal the impact functions run directly
on the whole-graph reference (``dependency_graph()`` of a memory store holding the same
estate), and so each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import impact
from cmdb_graph.model import Asset, Change, Entitlement, Node, Registry
from cmdb_graph.service.engine import Engine, list_all
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore, WriteBatch
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import DEFAULT_NOW, generate_estate
from tests.contract.estate import ci, estate_batch, rel

NOW = DEFAULT_NOW
OPTIONS = impact.QualityOptions(unseen_days=30, stale_days=30)


@dataclass(frozen=True)
class Questions:
    """What to ask of one estate."""

    changes: tuple[tuple[str, ...], ...]  # CI sets whose change impact is compared
    routes: tuple[str, ...]
    affected: tuple[str, ...]  # probable cause of these together
    service: str  # service map and single points of failure


def synthetic_batch() -> WriteBatch:
    return generate_estate(1000).to_batch()


@cache
def synthetic_questions() -> Questions:
    estate = generate_estate(1000)
    by_class: dict[str, list[str]] = {}
    for c in estate.cis:
        by_class.setdefault(c.ci_class, []).append(c.ci_id)
    names = {c.ci_id: c.name for c in estate.cis}
    core = next(i for i in by_class["NetworkDevice"] if names[i].startswith("sw-core-fra1"))
    member = next(r.source for r in estate.relationships if r.rel_type == "MEMBER_OF")
    service = sorted(by_class["BusinessService"])[0]
    apps = sorted(by_class["Application"])
    return Questions(
        changes=(
            (sorted(by_class["VirtualMachine"])[0],),
            (sorted(by_class["Hypervisor"])[0],),
            (core,),
            (member,),
        ),
        routes=(service, apps[0], apps[1], sorted(by_class["VirtualMachine"])[3]),
        affected=(apps[0], apps[1], apps[2]),
        service=service,
    )


HAND_QUESTIONS = Questions(
    changes=(("vm1",), ("hv1",), ("cl",), ("hv1", "hv2"), ("cache",)),
    routes=("svc", "web", "vm2"),
    affected=("app", "web", "db"),
    service="svc",
)

ESTATES: dict[str, tuple[Callable[[], WriteBatch], Callable[[], Questions]]] = {
    "synthetic-1000": (synthetic_batch, synthetic_questions),
    "hand-drawn": (estate_batch, lambda: HAND_QUESTIONS),
}


def _records(store: GraphStore) -> tuple[list[Change], list[Any], list[Any], list[Asset],
                                         list[Entitlement]]:
    engine = Engine(store)
    assets = [n for n in list_all(store, "Asset") if isinstance(n, Asset)]
    ents = [n for n in list_all(store, "Entitlement") if isinstance(n, Entitlement)]
    return engine.changes(), engine.windows(), engine.incidents(), assets, ents


def through_engine(
    store: GraphStore, q: Questions, settings: Settings | None = None
) -> dict[str, Any]:
    """Every answer, computed by the API's engine on ``store``."""
    engine = Engine(store, settings)
    out: dict[str, Any] = {}
    for ids in q.changes:
        out[f"impact {ids}"] = engine.change_impact(list(ids))
    for change in engine.changes():
        out[f"conflicts {change.change_id}"] = engine.change_conflicts(change)[1]
    for ci_id in q.routes:
        out[f"route {ci_id}"] = engine.route_incident(ci_id)
    out["cause"] = engine.probable_cause(list(q.affected), now=NOW)
    for name in impact.REPORTS:
        out[f"report {name}"] = engine.report(name, now=NOW, options=OPTIONS)
    out["map"] = engine.service_map(q.service)
    out["spof"] = engine.single_points_of_failure(q.service)
    return out


def on_reference(store: MemoryStore, q: Questions) -> dict[str, Any]:
    """Every answer, computed by the impact functions on the whole graph of ``store``."""
    graph = impact.ImpactGraph(store.dependency_graph(), store.registry)
    limits = impact.ImpactLimits(max_depth=12, max_results=100_000)
    changes, windows, incidents, assets, ents = _records(store)
    out: dict[str, Any] = {}
    for ids in q.changes:
        out[f"impact {ids}"] = impact.change_impact(graph, list(ids), limits=limits)
    for change in changes:
        out[f"conflicts {change.change_id}"] = impact.change_conflicts(
            graph, change, changes=changes, windows=windows
        )
    for ci_id in q.routes:
        out[f"route {ci_id}"] = impact.route_incident(graph, ci_id, limits=limits)
    out["cause"] = impact.probable_cause(graph, list(q.affected), now=NOW, changes=changes,
                                         incidents=incidents, limits=limits)
    data = impact.QualityInput(graph=graph, now=NOW, assets=assets, entitlements=ents,
                               options=OPTIONS)
    for name in impact.REPORTS:
        out[f"report {name}"] = impact.run_report(name, data)
    out["map"] = impact.service_map(graph, q.service, limits=limits)
    out["spof"] = impact.single_points_of_failure(graph, q.service, limits=limits)
    return out


@cache
def reference(estate: str) -> dict[str, Any]:
    make, questions = ESTATES[estate]
    store = MemoryStore(registry=Registry())
    store.apply(make())
    return on_reference(store, questions())


@cache
def memory_answers(estate: str) -> dict[str, Any]:
    make, questions = ESTATES[estate]
    store = MemoryStore(registry=Registry())
    store.apply(make())
    return through_engine(store, questions())


def _differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    return sorted(k for k in want.keys() | got.keys() if got.get(k) != want.get(k))


@pytest.mark.parametrize("graph_cache", [True, False], ids=["cached", "per-question"])
@pytest.mark.parametrize("estate", list(ESTATES))
def test_engine_answers_equal_the_whole_graph_reference(
    store: GraphStore, estate: str, graph_cache: bool
) -> None:
    # Arrange
    make, questions = ESTATES[estate]
    store.apply(make())
    want = reference(estate)

    # Act
    got = through_engine(store, questions(), Settings(graph_cache=graph_cache))

    # Assert: the same answers as the reference, and as the other store
    assert _differences(got, want) == []
    assert _differences(got, memory_answers(estate)) == []


def test_the_questions_have_substance() -> None:
    # Arrange / Act
    want = reference("synthetic-1000")

    # Assert: every kind of answer is non-trivial, so equality above means something
    impacts = [v for k, v in want.items() if k.startswith("impact")]
    assert all(r.impacted for r in impacts)
    assert max(len(r.impacted) for r in impacts) > 500  # the core switch: most of the estate
    assert any(r.redundancy for r in impacts)  # a cluster member lost headroom
    assert any(v for k, v in want.items() if k.startswith("conflicts"))
    assert sum(1 for k in want if k.startswith("conflicts")) >= 3
    assert all(want[k].support_group for k in want if k.startswith("route"))
    assert want["cause"].candidates
    assert sum(1 for k, v in want.items() if k.startswith("report") and v.count) >= 5
    assert want["map"].nodes and want["spof"]


# -- random graphs ------------------------------------------------------------------------

TYPES = ("DEPENDS_ON", "RUNS_ON", "HOSTED_ON", "MEMBER_OF", "CONTAINS", "CONNECTS_TO")
KINDS = ("BusinessService", "Application", "VirtualMachine", "Cluster", "Server")


@st.composite
def random_estates(draw: st.DrawFn) -> tuple[WriteBatch, list[str]]:
    n = draw(st.integers(min_value=2, max_value=14))
    ids = [f"g{i:02d}" for i in range(n)]
    cis = []
    for i in ids:
        kind = draw(st.sampled_from(KINDS))
        extra: dict[str, object] = {}
        if kind == "Cluster":
            extra["redundancy"] = draw(st.sampled_from(["all", "1", "2", "50%"]))
        cis.append(ci(i, kind, **extra))
    edges = draw(st.lists(st.tuples(st.sampled_from(TYPES), st.sampled_from(ids),
                                    st.sampled_from(ids), st.booleans()),
                          max_size=3 * n, unique_by=lambda e: e[:3]))
    rels = [rel(t, s, d, optional=o) for t, s, d, o in edges]
    changed = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
    return WriteBatch(nodes=list[Node](cis), relationships=rels), changed


@pytest.mark.neo4j
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=random_estates())
def test_change_impact_agrees_on_random_graphs(
    neo4j_store: GraphStore, case: tuple[WriteBatch, list[str]]
) -> None:
    # Arrange
    batch, changed = case
    neo4j_store.clear()
    neo4j_store.apply(batch)
    memory = MemoryStore(registry=Registry())
    memory.apply(batch)

    # Act
    got = Engine(neo4j_store).change_impact(changed)
    extracted = Engine(neo4j_store, Settings(graph_cache=False)).change_impact(changed)
    want = Engine(memory).change_impact(changed)
    direct = impact.change_impact(impact.ImpactGraph(memory.dependency_graph(), memory.registry),
                                  changed)

    # Assert
    assert got == extracted == want == direct

