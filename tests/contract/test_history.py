"""History and time travel read from the change feed, on both stores.

The property test: after every write of a random sequence (the writes of
``test_feed_engine``), the answers of a fresh engine on the store are noted with the time of
the store's newest change record; afterwards, the engine asked ``asOf`` each noted time answers
exactly as noted, on every CI (change impact, neighbourhood, service map, single points of
failure, a quality report, the CI itself). Several writes may commit within one clock tick: a
time stands for every write committed at or before it, so the answer expected at a time is
the one noted after the LAST write whose record is at or before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import HistoryUnavailableError, InvalidRecordError
from cmdb_graph.feed import ActorKind
from cmdb_graph.service import diff, history
from cmdb_graph.service.engine import Engine
from cmdb_graph.store.base import GraphStore
from tests.contract.estate import ci, estate_batch, rel
from tests.contract.test_feed_engine import IDS, NOW, _apply, _write, feed_store

__all__ = ["feed_store"]


#: CIs whose neighbourhood is compared (each one is a store query without ``asOf``).
NEAR = ("vm1", "cl", "app", "n1")


def _answers(engine: Engine) -> dict[str, Any]:
    """The graph questions that take ``asOf``, on every CI."""
    graph = engine.whole_graph()
    ids = sorted(graph.ci_ids())
    out: dict[str, Any] = {"cis": ids}
    for c in ids:
        out[f"impact {c}"] = engine.change_impact([c])
        out[f"impact services {c}"] = engine.change_impact([c], services_only=True, depth=2)
        if c in NEAR:
            out[f"near {c}"] = engine.neighbourhood(c, depth=2)
        if graph.is_service(c):
            out[f"map {c}"] = engine.service_map(c)
            out[f"spof {c}"] = engine.single_points_of_failure(c)
    if ids:
        out["impact all"] = engine.change_impact(ids)
    for name in ("infrastructure_unreachable_from_services", "relationships_to_retired"):
        out[f"report {name}"] = engine.report(name, now=NOW)
    return out


@dataclass(frozen=True)
class _Point:
    at: datetime
    answers: dict[str, Any]
    cis: dict[str, Any]


def _note(store: GraphStore) -> _Point:
    head = store.feed_head()
    newest = store.feed_since(head - 1, limit=1)[0]
    found = store.get_cis(IDS)
    cis = {c: found.get(c) for c in IDS}
    return _Point(newest.at, _answers(Engine(store)), cis)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(writes=st.lists(_write, min_size=1, max_size=8))
def test_as_of_answers_as_the_store_did_then(
    feed_store: GraphStore, writes: list[dict[str, Any]]
) -> None:
    # Arrange: the estate, then the writes, noting the answers after each
    store = feed_store
    store.clear()
    store.apply(estate_batch())
    points = [_note(store)]
    for w in writes:
        _apply(store, w)
        points.append(_note(store))
    engine = Engine(store)
    engine.whole_graph()

    for point in points:
        # Act
        with engine.as_of(point.at):
            got = _answers(engine)
        cis = {c: engine.past_ci(c, point.at) for c in IDS}

        # Assert: as noted after the last write committed at or before that time
        expected = [p for p in points if p.at <= point.at][-1]
        assert got == expected.answers
        assert cis == expected.cis
    # the current answers are untouched by the past
    assert _answers(engine) == points[-1].answers


def test_a_second_question_at_the_same_time_reuses_the_graph(feed_store: GraphStore) -> None:
    # Arrange: the estate, then vm1's relationship to its cluster removed
    store = feed_store
    store.apply(estate_batch())
    before = store.feed_since(store.feed_head() - 1)[0].at
    store.delete_relationships([("HOSTED_ON", "vm1", "cl")])
    store.upsert_nodes([ci("n1", "Application")])
    engine = Engine(store)

    # Act
    with engine.as_of(before):
        then = engine.change_impact(["cl"])
        again = engine.change_impact(["vm1"])
    now = engine.change_impact(["cl"])

    # Assert: vm1 (and web on it) depended on the cluster then, not now; one graph built
    assert {"vm1", "web"} <= {c.ci_id for c in then.impacted}
    assert "vm1" not in {c.ci_id for c in now.impacted}
    assert "web" in {c.ci_id for c in again.impacted}
    assert engine.past_stats == {"graphs": 1, "records": 2}


def test_before_the_retained_feed_is_a_clear_error(feed_store: GraphStore) -> None:
    # Arrange: the estate, a write, and the feed pruned up to that write (kept)
    store = feed_store
    store.apply(estate_batch())
    first = store.feed_since(store.feed_head() - 1)[0].at
    store.upsert_nodes([ci("vm1", name="renamed")])
    newest = store.feed_since(store.feed_head() - 1)[0]
    store.prune_feed(before=newest.at)
    engine = Engine(store)

    # Act / Assert: before the oldest retained record: an error naming the retention
    with pytest.raises(HistoryUnavailableError, match="CMDB_FEED_RETENTION_DAYS"):
        with engine.as_of(first):
            pass
    with pytest.raises(HistoryUnavailableError):
        engine.past_ci("vm1", first)
    # at the oldest retained record: answered
    with engine.as_of(newest.at):
        assert engine.whole_graph().name("vm1") == "renamed"


def test_before_the_first_write_is_a_clear_error(feed_store: GraphStore) -> None:
    # Arrange: the estate (the store's first record, after a reset record where the test
    # store was cleared)
    store = feed_store
    engine = Engine(store)
    store.apply(estate_batch())
    start = history.oldest_retained(store)  # Neo4j's test store prunes the feed when cleared
    first = store.feed_since(start, limit=1)[0].at
    estate = store.feed_since(store.feed_head() - 1)[0].at

    # Act / Assert: a time before the first record kept names when the history begins
    expected = "before the estate's history begins" if start == 0 else "RETENTION"
    with pytest.raises(HistoryUnavailableError, match=expected) as info:
        with engine.as_of(first - timedelta(seconds=1)):
            pass
    assert first.isoformat() in str(info.value)
    with pytest.raises(HistoryUnavailableError, match=expected):
        engine.past_ci("vm1", first - timedelta(seconds=1))
    with engine.as_of(estate):
        assert engine.whole_graph().name("vm1")


def test_across_a_clear_is_a_clear_error(feed_store: GraphStore) -> None:
    # Arrange: the estate, then the store cleared and filled again
    store = feed_store
    store.apply(estate_batch())
    then = store.feed_since(store.feed_head() - 1)[0].at
    engine = Engine(store)
    with engine.as_of(then):
        engine.whole_graph()
    store.clear()
    store.apply(estate_batch())

    # Act / Assert: also when the graph of that time was built before the clear
    with pytest.raises(HistoryUnavailableError, match="cleared"):
        with engine.as_of(then):
            pass


def test_history_of_a_ci_pages_through_its_changes(feed_store: GraphStore) -> None:
    # Arrange: the estate, three renames of vm1, a new relationship to it, another CI's write
    store = feed_store
    store.apply(estate_batch())
    for n in range(3):
        store.upsert_nodes([ci("vm1", name=f"vm1 v{n}", environment="prod")])
    store.upsert_nodes([ci("n1", "Application")])
    store.upsert_relationships([rel("RUNS_ON", "n1", "vm1")])
    store.upsert_nodes([ci("vm2", name="other")])

    # Act: pages of two
    pages = []
    after = None
    while True:
        page = history.ci_history(store, "vm1", first=2, after=after)
        pages.append(page)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    entries = [e for p in pages for e in p.items]

    # Assert: created, three renames, its three relationships, oldest first
    assert [len(p.items) for p in pages] == [2, 2, 2, 1]
    assert {p.total for p in pages} == {7}
    assert entries[0].op == "created"
    renames = [e for e in entries if e.op == "updated"]
    assert [(c.old, c.new) for e in renames for c in e.changes if c.name == "name"] == [
        ("vm1 name", "vm1 v0"), ("vm1 v0", "vm1 v1"), ("vm1 v1", "vm1 v2")]
    rels = [(e.op, e.rel_type, e.source, e.target) for e in entries if e.rel_type]
    assert ("added", "RUNS_ON", "n1", "vm1") in rels
    assert ("added", "HOSTED_ON", "vm1", "cl") in rels
    assert all(e.actor.kind is ActorKind.SYSTEM for e in entries)
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    with pytest.raises(InvalidRecordError):
        history.ci_history(store, "vm1", first=2, after="bm90IGEgY3Vyc29y")


def test_diff_folds_the_changes_between_two_times(feed_store: GraphStore) -> None:
    # Arrange: the estate; then a new CI, a retirement, a rename and back, a removed edge
    store = feed_store
    store.apply(estate_batch())
    since = store.feed_head()
    store.upsert_nodes([ci("n1", "Application", name="new app")])
    store.upsert_nodes([ci("vm2", operational_status="retired")])
    store.upsert_nodes([ci("web", name="tmp")])
    store.upsert_nodes([ci("web", name="web name")])
    store.delete_relationships([("RUNS_ON", "db", "vm2")])

    # Act
    found = diff.estate_diff(store, since, store.feed_head())

    # Assert
    assert {(c.ci_id, c.name, c.status) for c in found.cis} == {
        ("n1", "new app", "created"), ("vm2", "vm2 name", "retired")}
    assert [(r.rel_type, r.source, r.target, r.status) for r in found.relationships] == [
        ("RUNS_ON", "db", "vm2", "removed")]
    assert found.records == 5
    assert diff.estate_diff(store, since, store.feed_head(), source="snow").records == 0
