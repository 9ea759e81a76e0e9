"""The change feed on both stores: one record per write, the same records on both, and replaying
the feed gives the store back.

The Neo4j store is the session's (cleared before each test; ``clear`` records a reset and the
feed goes on), so every test reads the feed after the head it starts from.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cmdb_graph.errors import FeedGapError, InvalidRecordError
from cmdb_graph.feed import (
    Actor,
    ActorKind,
    ChangeRecord,
    NodeOp,
    RelOp,
    Replay,
    decode_record,
    encode_record,
)
from cmdb_graph.model import NODE_SPECS, ConfigurationItem, Registry, SupportGroup
from cmdb_graph.store import iter_nodes
from cmdb_graph.store.base import GraphStore, WriteBatch
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.store.rows import node_from_row, rel_from_row
from tests.contract.estate import CLASSES, EDGES, ci, estate_batch, rel

API = Actor(ActorKind.API, "itsm", role="writer")

#: Makes a store of the test's kind on the test's data (keyword arguments of the store).
StoreMaker = Callable[..., GraphStore]


@pytest.fixture(params=["memory", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def kind(request: pytest.FixtureRequest) -> str:
    """The kind of store under test."""
    return str(request.param)


@pytest.fixture
def feed_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> GraphStore:
    """An empty store that writes change records."""
    if kind == "neo4j":
        found: GraphStore = request.getfixturevalue("neo4j_store")
        return found
    return MemoryStore(registry=Registry(), database_path=tmp_path / "estate.db")


@pytest.fixture
def make_store(kind: str, feed_store: GraphStore) -> Iterator[StoreMaker]:
    """Another store of the same kind (Neo4j: on the same database), with options."""
    made: list[GraphStore] = []

    def make(**options: Any) -> GraphStore:
        if kind == "neo4j":
            from cmdb_graph.store.neo4j import Neo4jStore

            store: GraphStore = Neo4jStore(
                os.environ["NEO4J_URI"], os.environ.get("NEO4J_USER", "neo4j"),
                os.environ.get("NEO4J_PASSWORD", ""), registry=Registry(), **options)
        else:
            store = MemoryStore(registry=Registry(), **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def _all(store: GraphStore, after: int = 0) -> list[ChangeRecord]:
    out: list[ChangeRecord] = []
    while True:
        page = store.feed_since(after, limit=3)
        if not page:
            return out
        out.extend(page)
        after = page[-1].seq


def _what(record: ChangeRecord) -> tuple[Any, ...]:
    """A record without its sequence number and time."""
    return (record.actor, record.nodes, record.relationships, record.reset)


def test_each_write_is_one_ordered_record_naming_its_actor(feed_store: GraphStore) -> None:
    # Arrange
    start = feed_store.feed_head()
    batch = estate_batch()
    batch.actor = Actor(ActorKind.IMPORT, "vcenter", run_id="run-1", source="vcenter")

    # Act
    feed_store.apply(batch)
    feed_store.apply(WriteBatch(nodes=[ci("web", name="web renamed")], actor=API))
    feed_store.apply(WriteBatch(nodes=[ci("web", name="web renamed")], actor=API))  # no-op
    feed_store.delete_relationships([("DEPENDS_ON", "app", "db")], actor=API)
    records = _all(feed_store, start)

    # Assert
    assert [r.seq for r in records] == [start + 1, start + 2, start + 3]
    assert feed_store.feed_head() == start + 3
    assert records[0].actor.run_id == "run-1"
    assert {c.op for c in records[0].nodes} == {NodeOp.CREATED}
    renamed = records[1].nodes
    assert len(renamed) == 1 and renamed[0].op is NodeOp.UPDATED
    assert renamed[0].old == {"name": "web name"} and renamed[0].new == {"name": "web renamed"}
    assert records[1].actor == API
    (removed,) = records[2].relationships
    assert removed.op is RelOp.REMOVED and removed.key == ("DEPENDS_ON", "app", "db")
    assert removed.old == {"optional": True, "properties": {"weight": 1}}
    assert feed_store.feed_since(start + 3) == []


def test_a_write_that_changes_nothing_records_nothing(feed_store: GraphStore) -> None:
    # Arrange
    feed_store.apply(estate_batch())
    head = feed_store.feed_head()

    # Act: the same batch again, and deletions of what does not exist
    feed_store.apply(estate_batch())
    deleted = feed_store.delete_relationships([("DEPENDS_ON", "db", "app")])

    # Assert
    assert deleted == 0
    assert feed_store.feed_head() == head
    assert feed_store.feed_since(head) == []


def test_a_failed_write_leaves_no_record(feed_store: GraphStore) -> None:
    # Arrange
    feed_store.apply(estate_batch())
    head = feed_store.feed_head()

    # Act: a batch whose relationship names a CI that does not exist (checked inside the
    # write transaction on Neo4j, after the sequence number was taken)
    with pytest.raises(InvalidRecordError):
        feed_store.apply(WriteBatch(nodes=[ci("new", "Server")],
                                    relationships=[rel("RUNS_ON", "new", "ghost")]))
    feed_store.apply(WriteBatch(nodes=[ci("after", "Server")]))

    # Assert: no record, no lost number, no trace of the failed batch
    (record,) = _all(feed_store, head)
    assert record.seq == head + 1
    assert [(c.key, c.op) for c in record.nodes] == [("after", NodeOp.CREATED)]
    assert feed_store.get_cis(["new"]) == {}


def test_replaying_the_feed_from_empty_gives_the_store(feed_store: GraphStore) -> None:
    # Arrange: creations, updates, a retirement, a merge, removals and a clear in between
    start = feed_store.feed_head()
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
    replay = Replay().apply(_all(feed_store, start))

    # Assert: every node and relationship of the store, and nothing else
    _assert_replay_is_store(replay, feed_store)
    assert isinstance(feed_store.get_ci("vm2"), ConfigurationItem)
    ops = {(c.key, c.op) for r in _all(feed_store, start) for c in r.nodes}
    assert {("vm2", NodeOp.RETIRED), ("hv2", NodeOp.MERGED)} <= ops


def _assert_replay_is_store(replay: Replay, store: GraphStore) -> None:
    for label in NODE_SPECS:
        stored: dict[str, Any]
        if label == "CI":
            stored = dict(store.get_cis([k for (lb, k) in replay.nodes if lb == "CI"]))
        else:
            stored = {n.key: n for n in iter_nodes(store, label)}
        replayed = {k: node_from_row(lb, k, row) for (lb, k), row in replay.nodes.items()
                    if lb == label}
        assert replayed == stored, label
    assert store.counts()["CI"] == sum(1 for lb, _ in replay.nodes if lb == "CI")
    stored_rels = {(r.rel_type, r.source, r.target): r for r in store.relationships()}
    replayed_rels = {k: rel_from_row(*k, row, source_label=sl, target_label=tl)
                     for k, (sl, tl, row) in replay.rels.items()}
    assert replayed_rels == stored_rels


def _random_writes(store: GraphStore, rnd: random.Random, n: int) -> None:
    """``n`` random writes of the kinds the API and imports make."""
    ids = list(CLASSES)
    for _ in range(n):
        what = rnd.randrange(7)
        a, b = rnd.sample(ids, 2)
        if what == 0:
            store.apply(WriteBatch(nodes=[ci(a, name=f"{a} {rnd.randrange(3)}")], actor=API))
        elif what == 1:
            status = rnd.choice(["operational", "retired", "repair"])
            env = rnd.choice([None, "prod", "test"])
            store.apply(WriteBatch(nodes=[ci(a, operational_status=status, environment=env,
                                             support_group=rnd.choice([None, "grp-x"]))]))
        elif what == 2:
            rtype, s, t = rnd.choice(EDGES)
            store.apply(WriteBatch(relationships=[
                rel(rtype, s, t, optional=rnd.random() < 0.5,
                    properties={"w": rnd.randrange(2)})]))
        elif what == 3:
            store.delete_relationships([rnd.choice(EDGES)[0:3] for _ in range(2)], actor=API)
        elif what == 4:
            store.apply(WriteBatch(nodes=[SupportGroup(group_id="grp-x",
                                                       name=f"X {rnd.randrange(2)}")]))
        elif what == 5:
            store.apply(WriteBatch(nodes=[ci(f"new-{rnd.randrange(4)}", "Server"),
                                          ci(b, duplicate_of=a if rnd.random() < 0.3 else None)],
                                   relationships=[rel("RUNS_ON", b, a)]))
        else:
            store.apply(estate_batch())


@pytest.mark.parametrize("seed", [1, 2])
def test_both_stores_record_the_same_changes_and_replay_to_the_store(
    feed_store: GraphStore, seed: int
) -> None:
    # Arrange: the same random writes on the store under test and on a fresh embedded store
    reference = MemoryStore(registry=Registry())
    start = feed_store.feed_head()
    feed_store.apply(estate_batch())
    reference.apply(estate_batch())

    # Act
    _random_writes(feed_store, random.Random(seed), 25)
    _random_writes(reference, random.Random(seed), 25)
    records = _all(feed_store, start)

    # Assert: the same records, in order, with consecutive numbers; the replay is the store
    assert [_what(r) for r in records] == [_what(r) for r in _all(reference)]
    assert [r.seq for r in records] == list(range(start + 1, feed_store.feed_head() + 1))
    _assert_replay_is_store(Replay().apply(records), feed_store)
    assert [decode_record(encode_record(r)) for r in records] == records


def test_an_import_run_records_its_run_and_data_source(feed_store: GraphStore) -> None:
    # Arrange
    from cmdb_graph.ingest import run_import
    from cmdb_graph.model import CIRecord, Identifiers, Origin

    start = feed_store.feed_head()
    records = [CIRecord(ci_class="Server", name="web01", origin=Origin(file="t.csv", line=2),
                        identifiers=Identifiers(serial_number="SN1"))]

    # Act
    result = run_import(feed_store, records, source="vcenter", importer="test")
    again = run_import(feed_store, records, source="vcenter", importer="test",
                       actor=API)

    # Assert
    first, second = _all(feed_store, start)
    assert first.actor.kind is ActorKind.IMPORT and first.actor.name == "vcenter"
    assert first.actor.run_id == result.run.run_id and first.actor.source == "vcenter"
    assert {(c.label, c.op) for c in first.nodes} >= {("CI", NodeOp.CREATED),
                                                      ("ImportRun", NodeOp.CREATED)}
    assert second.actor.kind is ActorKind.API and second.actor.name == "itsm"
    assert second.actor.run_id == again.run.run_id


# -- retention -------------------------------------------------------------------------------
def test_pruned_records_give_a_follower_a_feed_gap(feed_store: GraphStore) -> None:
    # Arrange: three records, a cutoff, two more
    start = feed_store.feed_head()
    for name in ("a", "b", "c"):
        feed_store.apply(WriteBatch(nodes=[ci(name, "Server")]))
    time.sleep(0.01)
    cutoff = datetime.now(UTC)
    time.sleep(0.01)
    for name in ("d", "e"):
        feed_store.apply(WriteBatch(nodes=[ci(name, "Server")]))

    # Act
    pruned = feed_store.prune_feed(before=cutoff)

    # Assert: whoever needs a pruned record rebuilds; the rest of the feed is whole
    assert pruned >= 3
    with pytest.raises(FeedGapError):
        feed_store.feed_since(start)
    with pytest.raises(FeedGapError):
        feed_store.feed_since(start + 2)
    assert [r.nodes[0].key for r in feed_store.feed_since(start + 3)] == ["d", "e"]
    assert feed_store.feed_head() == start + 5
    assert feed_store.prune_feed() == 0  # none over 90 days


def test_writes_prune_what_retention_no_longer_keeps(
    kind: str, feed_store: GraphStore, make_store: StoreMaker
) -> None:
    # Arrange: a record, then a store that keeps records for about a millisecond (the
    # embedded store prunes on any write that finds an expired record; a Neo4j store on its
    # first write, then hourly: here, a second process's first write)
    store = make_store(feed_retention_days=1e-8) if kind == "memory" else feed_store
    start = store.feed_head()
    store.apply(WriteBatch(nodes=[ci("a", "Server")]))
    time.sleep(0.05)
    writer = store if kind == "memory" else make_store(feed_retention_days=1e-8)

    # Act
    writer.apply(WriteBatch(nodes=[ci("b", "Server")]))

    # Assert
    with pytest.raises(FeedGapError):
        store.feed_since(start)
    assert store.feed_head() == start + 2
    assert store.get_ci("a").name == "a name"


def test_a_follower_ahead_of_the_head_gets_a_feed_gap(feed_store: GraphStore) -> None:
    head = feed_store.feed_head()

    with pytest.raises(FeedGapError):
        feed_store.feed_since(head + 1)
