"""The change feed on a store: one record per write, and replaying it gives the store back.

Parametrised over the stores that write change records (the Neo4j store joins when it does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cmdb_graph.feed import Actor, ActorKind, NodeOp, RelOp, Replay
from cmdb_graph.model import NODE_SPECS, ConfigurationItem, Registry
from cmdb_graph.store import iter_nodes
from cmdb_graph.store.base import GraphStore, WriteBatch
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.store.rows import node_from_row, rel_from_row
from tests.contract.estate import ci, estate_batch, rel

API = Actor(ActorKind.API, "itsm", role="writer")


@pytest.fixture(params=["memory"])
def feed_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """An empty store that writes change records."""
    yield MemoryStore(registry=Registry(), database_path=tmp_path / "estate.db")


def _all(store: GraphStore, after: int = 0) -> list:  # type: ignore[type-arg]
    out = []
    while True:
        page = store.feed_since(after, limit=3)
        if not page:
            return out
        out.extend(page)
        after = page[-1].seq


def test_each_write_is_one_ordered_record_naming_its_actor(feed_store: GraphStore) -> None:
    # Arrange
    batch = estate_batch()
    batch.actor = Actor(ActorKind.IMPORT, "vcenter", run_id="run-1", source="vcenter")

    # Act
    feed_store.apply(batch)
    feed_store.apply(WriteBatch(nodes=[ci("web", name="web renamed")], actor=API))
    feed_store.apply(WriteBatch(nodes=[ci("web", name="web renamed")], actor=API))  # no-op
    feed_store.delete_relationships([("DEPENDS_ON", "app", "db")], actor=API)
    records = _all(feed_store)

    # Assert
    assert [r.seq for r in records] == [1, 2, 3]
    assert feed_store.feed_head() == 3
    assert records[0].actor.run_id == "run-1"
    assert {c.op for c in records[0].nodes} == {NodeOp.CREATED}
    renamed = records[1].nodes
    assert len(renamed) == 1 and renamed[0].op is NodeOp.UPDATED
    assert renamed[0].old == {"name": "web name"} and renamed[0].new == {"name": "web renamed"}
    assert records[1].actor == API
    (removed,) = records[2].relationships
    assert removed.op is RelOp.REMOVED and removed.key == ("DEPENDS_ON", "app", "db")
    assert removed.old == {"optional": True, "properties": {"weight": 1}}
    assert feed_store.feed_since(3) == []


def test_replaying_the_feed_from_empty_gives_the_store(feed_store: GraphStore) -> None:
    # Arrange: creations, updates, a retirement, a merge, removals and a clear in between
    feed_store.apply(WriteBatch(nodes=[ci("old", "Server")]))
    feed_store.clear()
    feed_store.apply(estate_batch())
    feed_store.apply(WriteBatch(
        nodes=[ci("vm1", environment="test"), ci("vm2", operational_status="retired"),
               ci("hv2", duplicate_of="hv1")],
        relationships=[rel("DEPENDS_ON", "svc", "db", optional=True)],
    ))
    feed_store.delete_relationships([("MEMBER_OF", "hv2", "cl"), ("DEPENDS_ON", "web", "cache")])

    # Act
    replay = Replay().apply(_all(feed_store))

    # Assert: every node and relationship of the store, and nothing else
    for label in NODE_SPECS:
        stored = {n.key: n for n in iter_nodes(feed_store, label)} if label != "CI" else {
            c.ci_id: c for c in (feed_store.get_cis(
                [k for (lb, k) in replay.nodes if lb == "CI"]).values())}
        replayed = {k: node_from_row(lb, k, row) for (lb, k), row in replay.nodes.items()
                    if lb == label}
        assert replayed == stored, label
    assert feed_store.counts()["CI"] == sum(1 for lb, _ in replay.nodes if lb == "CI")
    stored_rels = {(r.rel_type, r.source, r.target): r for r in feed_store.relationships()}
    stored_rels.update({(r.rel_type, r.source, r.target): r for r in feed_store.relationships(
        "web", label="CI", rel_types=["HAS_INSTALLED"])})
    replayed_rels = {k: rel_from_row(*k, row, source_label=sl, target_label=tl)
                     for k, (sl, tl, row) in replay.rels.items()}
    assert replayed_rels == stored_rels
    assert isinstance(feed_store.get_ci("vm2"), ConfigurationItem)


def test_an_import_run_records_its_run_and_data_source(feed_store: GraphStore) -> None:
    # Arrange
    from cmdb_graph.ingest import run_import
    from cmdb_graph.model import CIRecord, Identifiers, Origin

    records = [CIRecord(ci_class="Server", name="web01", origin=Origin(file="t.csv", line=2),
                        identifiers=Identifiers(serial_number="SN1"))]

    # Act
    result = run_import(feed_store, records, source="vcenter", importer="test")
    again = run_import(feed_store, records, source="vcenter", importer="test",
                       actor=API)

    # Assert
    first, second = _all(feed_store)
    assert first.actor.kind is ActorKind.IMPORT and first.actor.name == "vcenter"
    assert first.actor.run_id == result.run.run_id and first.actor.source == "vcenter"
    assert {(c.label, c.op) for c in first.nodes} >= {("CI", NodeOp.CREATED),
                                                      ("ImportRun", NodeOp.CREATED)}
    assert second.actor.kind is ActorKind.API and second.actor.name == "itsm"
    assert second.actor.run_id == again.run.run_id
