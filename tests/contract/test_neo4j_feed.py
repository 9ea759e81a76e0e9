"""What only the Neo4j feed does: several processes writing at once, batched applies, rollbacks,
the counter of older versions, and the cache key (see ``test_feed.py`` for both stores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from neo4j import Driver, GraphDatabase, ManagedTransaction

from cmdb_graph.errors import FeedGapError
from cmdb_graph.feed import ChangeRecord, NodeOp, Replay
from cmdb_graph.model import Registry
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.store.neo4j import Neo4jStore
from cmdb_graph.store.neo4j.feed import TxFeed
from tests.contract.estate import ci, estate_batch

pytestmark = pytest.mark.neo4j

#: One writer process: waits for a line on stdin, then makes ``n`` writes, each creating its
#: own CI and renaming the CI ``shared`` after it.
WRITER = """
import os, sys
from cmdb_graph.feed import Actor, ActorKind
from cmdb_graph.model import ConfigurationItem, Registry
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.neo4j import Neo4jStore

name, n = sys.argv[1], int(sys.argv[2])
store = Neo4jStore(os.environ["NEO4J_URI"], os.environ.get("NEO4J_USER", "neo4j"),
                   os.environ.get("NEO4J_PASSWORD", ""), registry=Registry())
actor = Actor(ActorKind.API, name)
print("ready", flush=True)
sys.stdin.readline()
for k in range(n):
    store.apply(WriteBatch(nodes=[
        ConfigurationItem(ci_id=f"{name}-{k}", name=f"{name}-{k}", ci_class="Server"),
        ConfigurationItem(ci_id="shared", name=f"{name}-{k}", ci_class="Server"),
    ], actor=actor))
store.close()
"""


def _store(**kwargs: Any) -> Neo4jStore:
    return Neo4jStore(os.environ["NEO4J_URI"], os.environ.get("NEO4J_USER", "neo4j"),
                      os.environ.get("NEO4J_PASSWORD", ""), registry=Registry(), **kwargs)


@pytest.fixture
def raw(neo4j_store: Neo4jStore) -> Iterator[Driver]:
    """A plain driver on the emptied test database."""
    driver = GraphDatabase.driver(
        os.environ["NEO4J_URI"],
        auth=(os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", "")),
    )
    yield driver
    driver.close()


def _all(store: Neo4jStore, after: int) -> list[ChangeRecord]:
    out: list[ChangeRecord] = []
    while page := store.feed_since(after, limit=50):
        out.extend(page)
        after = page[-1].seq
    return out


def test_two_processes_writing_at_once_get_unique_ordered_exact_records(
    neo4j_store: Neo4jStore,
) -> None:
    # Arrange: the shared CI, and two writer processes waiting to start together
    n = 30
    neo4j_store.upsert_nodes([ci("shared", "Server", name="init")])
    start = neo4j_store.feed_head()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, name, str(n)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for name in ("p1", "p2")]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    # Act
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    records = _all(neo4j_store, start)

    # Assert: one record per write, numbers consecutive in commit order
    assert [r.seq for r in records] == list(range(start + 1, start + 2 * n + 1))
    assert neo4j_store.feed_head() == start + 2 * n
    previous = "init"
    done: Counter[str] = Counter()
    for record in records:
        name = record.actor.name
        k = done[name]
        done[name] += 1
        created, shared = record.nodes
        # each record is its own write: its CI, its process, in the process's order...
        assert (created.op, created.key, created.new["name"]) == (  # type: ignore[index]
            NodeOp.CREATED, f"{name}-{k}", f"{name}-{k}")
        # ...and its old value is exactly what the write before it (any process) left
        assert (shared.op, shared.key) == (NodeOp.UPDATED, "shared")
        assert shared.old == {"name": previous} and shared.new == {"name": f"{name}-{k}"}
        previous = f"{name}-{k}"
    assert done == {"p1": n, "p2": n}
    assert neo4j_store.get_ci("shared").name == previous


def test_a_batched_apply_records_each_transaction(neo4j_store: Neo4jStore) -> None:
    # Arrange: a store whose apply runs in several transactions (over tx_limit)
    small = _store(batch_size=4, tx_limit=5)
    reference = MemoryStore(registry=Registry())
    start = neo4j_store.feed_head()
    try:
        # Act
        small.apply(estate_batch())
        reference.apply(estate_batch())
        records = _all(neo4j_store, start)
    finally:
        small.close()

    # Assert: several records, numbers consecutive (the reference fields' transactions
    # change no field: no record), together the embedded store's one record
    assert len(records) > 3
    assert [r.seq for r in records] == list(range(start + 1, start + len(records) + 1))
    assert all(len(r) <= 4 for r in records)
    (whole,) = reference.feed_since(0)
    assert sorted(c.key for r in records for c in r.nodes) == sorted(c.key for c in whole.nodes)
    assert {c.key: c for r in records for c in r.relationships} == {
        c.key: c for c in whole.relationships}
    replay = Replay().apply(records)
    assert replay.nodes == Replay().apply([whole]).nodes


def test_a_transaction_that_fails_after_writing_leaves_no_record(
    neo4j_store: Neo4jStore,
) -> None:
    # Arrange
    neo4j_store.apply(estate_batch())
    head = neo4j_store.feed_head()

    def work(tx: ManagedTransaction, feed: TxFeed) -> None:
        tx.run("MATCH (c:CI {ci_id: 'web'}) SET c.name = 'half-way'").consume()
        feed.reset = True  # it would record something
        raise RuntimeError("the work fails after it wrote")

    # Act
    with pytest.raises(RuntimeError):
        neo4j_store._write(work, None)
    neo4j_store.upsert_nodes([ci("after", "Server")])

    # Assert
    (record,) = _all(neo4j_store, head)
    assert record.seq == head + 1 and record.nodes[0].key == "after"
    assert neo4j_store.get_ci("web").name == "web name"


def test_the_write_counter_of_an_older_version_becomes_the_feed_head(
    neo4j_store: Neo4jStore, raw: Driver
) -> None:
    # Arrange: a database written by a version without records (a counter ``generation``)
    raw.execute_query("MATCH (n) WHERE n:CmdbMeta OR n:ChangeRecord DETACH DELETE n",
                      database_="neo4j")
    raw.execute_query("CREATE (:CmdbMeta {key: 'store', generation: 41, epoch: 'e'})",
                      database_="neo4j")
    assert neo4j_store.feed_head() == 41

    # Act
    neo4j_store.upsert_nodes([ci("a", "Server")])

    # Assert: numbers go on; the records it never wrote are a gap
    (record,) = neo4j_store.feed_since(41)
    assert record.seq == 42 and neo4j_store.feed_head() == 42
    with pytest.raises(FeedGapError):
        neo4j_store.feed_since(0)
    assert neo4j_store.cache_key()[:2] == ("e", 42)


def test_pruning_the_feed_leaves_the_cache_key(neo4j_store: Neo4jStore) -> None:
    # The engine keys its cached graph on it: pruning records must not cost a rebuild.
    neo4j_store.apply(estate_batch())
    key = neo4j_store.cache_key()

    pruned = neo4j_store.prune_feed(before=datetime.now(UTC))

    assert pruned >= 1
    assert neo4j_store.cache_key() == key
    assert neo4j_store.feed_since(neo4j_store.feed_head()) == []
