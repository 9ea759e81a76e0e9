"""Node deletion in write batches, and undoing an interrupted import run, on both stores.

An interrupted run is made by hand here (the embedded store writes a real run in one
transaction, so it cannot be interrupted half-way): an ``ImportRun`` stored ``running`` with
the feed head before it, then writes whose actor names the run, as a run Neo4j writes in
several transactions leaves them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cmdb_graph.errors import ImportAbortedError
from cmdb_graph.feed import Actor, ActorKind, NodeOp, RelOp, Replay
from cmdb_graph.ingest.run import settle_interrupted
from cmdb_graph.ingest.undo import undo_run
from cmdb_graph.model import NODE_SPECS, DataSource, ImportRun, RunStatus, SupportGroup
from cmdb_graph.store import iter_nodes
from cmdb_graph.store.base import GraphStore, WriteBatch
from tests.contract.estate import ci, estate_batch, rel
from tests.contract.test_feed import _all, _assert_replay_is_store

API = Actor(ActorKind.API, "itsm", role="writer")
RUN = "run-20261205T000000-interrupted"
WHO = Actor(ActorKind.IMPORT, "disc", run_id=RUN, source="disc")


def state(store: GraphStore) -> dict[str, Any]:
    """Every node but the import runs, and every relationship, as the store reads them."""
    out: dict[str, Any] = {
        label: {getattr(n, NODE_SPECS[label].key): n for n in iter_nodes(store, label)}
        for label in NODE_SPECS if label != "ImportRun"
    }
    out["rels"] = {r.key: r for r in store.relationships()}
    return out


def started_run(store: GraphStore) -> ImportRun:
    """A run stored ``running``, with the DataSource it creates (its first write)."""
    run = ImportRun(run_id=RUN, source="disc", importer="test", status=RunStatus.RUNNING,
                    started_at=datetime(2026, 12, 5, tzinfo=UTC), feed_from=store.feed_head())
    store.apply(WriteBatch(nodes=[DataSource(name="disc"), run], actor=WHO))
    return run


def partial_writes(store: GraphStore) -> None:
    """What the run wrote before it was killed: a CI created, one updated twice (a field
    added), relationships added, changed and removed."""
    store.apply(WriteBatch(nodes=[ci("new1", "Application", environment="test"),
                                  ci("web", name="web by disc", environment="prod")],
                           actor=WHO))
    store.apply(WriteBatch(
        nodes=[ci("web", name="web by disc, again", environment="prod")],
        relationships=[rel("DEPENDS_ON", "new1", "db"),
                       rel("DEPENDS_ON", "app", "db", properties={"weight": 2})],
        deletes=[("RUNS_ON", "web", "vm1")], actor=WHO))


def test_deleting_nodes_removes_their_relationships_and_records_it(store: GraphStore) -> None:
    # Arrange
    store.apply(estate_batch())
    start = store.feed_head()

    # Act
    store.apply(WriteBatch(node_deletes=[("CI", "web"), ("SoftwareProduct", "nginx"),
                                         ("CI", "absent")], actor=API))

    # Assert: gone with their relationships; one record names every removal
    assert store.get_cis(["web"]) == {}
    assert store.get_nodes("SoftwareProduct", ["nginx"]) == {}
    assert [r.key for r in store.relationships() if "web" in (r.source, r.target)] == []
    (record,) = _all(store, start)
    assert record.actor == API
    assert sorted((c.op, c.label, c.key) for c in record.nodes) == [
        (NodeOp.DELETED, "CI", "web"), (NodeOp.DELETED, "SoftwareProduct", "nginx")]
    assert all(c.old for c in record.nodes)
    assert sorted(r.key for r in record.relationships if r.op is RelOp.REMOVED) == [
        ("DEPENDS_ON", "app", "web"), ("DEPENDS_ON", "cache", "web"),
        ("DEPENDS_ON", "web", "cache"), ("HAS_INSTALLED", "web", "nginx"),
        ("RUNS_ON", "web", "vm1")]
    _assert_replay_is_store(Replay().apply(_all(store)), store)


def test_a_deleted_node_that_others_still_name_leaves_their_fields(store: GraphStore) -> None:
    # Arrange: a CI names the group
    store.apply(WriteBatch(nodes=[SupportGroup(group_id="grp-x", name="X"),
                                  ci("db", support_group="grp-x")]))

    # Act
    store.apply(WriteBatch(node_deletes=[("SupportGroup", "grp-x")]))

    # Assert: the group is gone, the CI still names it; written again, it is back
    assert store.get_nodes("SupportGroup", ["grp-x"]) == {}
    assert store.get_ci("db").support_group == "grp-x"
    store.apply(WriteBatch(nodes=[SupportGroup(group_id="grp-x", name="X again")]))
    assert store.get_nodes("SupportGroup", ["grp-x"])["grp-x"].name == "X again"  # type: ignore[attr-defined]
    _assert_replay_is_store(Replay().apply(_all(store)), store)


def test_undoing_an_interrupted_run_gives_the_store_back_and_is_recorded(
    store: GraphStore,
) -> None:
    # Arrange: an estate, then a run interrupted after some writes
    store.apply(estate_batch())
    before = state(store)
    run = started_run(store)
    partial_writes(store)
    assert state(store) != before

    # Act
    result = undo_run(store, RUN)

    # Assert: the store as before the run, the run failed and undone, with the counts
    assert state(store) == before
    assert (result.nodes_deleted, result.nodes_restored) == (2, 1)  # new1 and the source; web
    assert (result.relationships_removed, result.relationships_restored) == (1, 2)
    assert result.kept == 0 and result.records == 3
    stored = store.get_node("ImportRun", RUN)
    assert isinstance(stored, ImportRun)
    assert stored.status is RunStatus.FAILED and stored.undone_at is not None
    assert stored.error is not None and "interrupted" in stored.error
    assert "2 nodes deleted, 1 restored, 1 relationships removed, 2 restored" in stored.error
    # the undo is one change record of its own, and the feed replays to the store
    undo = _all(store, store.feed_head() - 1)[0]
    assert undo.actor.name == f"undo of {RUN}" and undo.actor.run_id is None
    _assert_replay_is_store(Replay().apply(_all(store)), store)

    # Act: undo again
    head = store.feed_head()
    again = undo_run(store, run)

    # Assert: nothing more
    assert again.already
    assert store.feed_head() == head
    assert state(store) == before


def test_an_undo_leaves_what_another_writer_changed_since(store: GraphStore) -> None:
    # Arrange: the run renames web, then the API renames it again and renames cache
    store.apply(estate_batch())
    started_run(store)
    partial_writes(store)
    store.apply(WriteBatch(nodes=[ci("web", name="web by the API", environment="prod"),
                                  ci("cache", name="cache by the API")], actor=API))

    # Act
    result = undo_run(store, RUN)

    # Assert: web keeps the API's name; its other field and cache are as they were
    web = store.get_ci("web")
    assert web.name == "web by the API" and web.environment is None
    assert store.get_ci("cache").name == "cache by the API"
    assert store.get_cis(["new1"]) == {}
    assert result.kept == 1


def test_the_next_run_undoes_runs_left_running(store: GraphStore) -> None:
    # Arrange
    store.apply(estate_batch())
    before = state(store)
    started_run(store)
    partial_writes(store)

    # Act: what every run does first, under the import lock
    with store.import_lock():
        settled = settle_interrupted(store)

    # Assert
    assert [r.run_id for r in settled] == [RUN]
    assert settled[0].status is RunStatus.FAILED
    assert "interrupted" in (settled[0].error or "") and "undone" in (settled[0].error or "")
    assert state(store) == before


def test_a_succeeded_run_is_not_undone(store: GraphStore) -> None:
    # Arrange
    run = ImportRun(run_id="run-ok", source="disc", importer="test",
                    status=RunStatus.SUCCEEDED, started_at=datetime(2026, 12, 5, tzinfo=UTC))
    store.apply(WriteBatch(nodes=[run]))

    # Act / Assert
    with pytest.raises(ImportAbortedError, match="only an interrupted or failed run"):
        undo_run(store, "run-ok")
