"""The embedded store's SQLite database: reopen after writes, migration of an old snapshot,
several processes on one file, and a writer killed mid-batch (kill -9)."""

from __future__ import annotations

import logging
import os
import pickle
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from cmdb_graph.errors import FeedGapError, StoreError
from cmdb_graph.feed import ChangeRecord, Replay, decode_record
from cmdb_graph.model import ConfigurationItem, Registry, SupportGroup
from cmdb_graph.store import iter_nodes
from cmdb_graph.store.base import Direction, WriteBatch
from cmdb_graph.store.memory import MemoryStore, read_snapshot, write_snapshot
from cmdb_graph.store.rows import decode_row
from tests.contract.estate import CLASSES, EDGES, ci, estate_batch, rel

REPO = Path(__file__).resolve().parents[2]


def _tables(path: Path) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str, str], Any]]:
    """The rows of the database's tables, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        nodes = {(lb, k): decode_row(row) for lb, k, row in conn.execute(
            "SELECT label, key, row FROM nodes")}
        rels = {(t, s, d): (sl, dl, decode_row(row)) for t, s, d, sl, dl, row in conn.execute(
            "SELECT rel_type, source, target, source_label, target_label, row FROM rels")}
    finally:
        conn.close()
    return nodes, rels


def _feed(path: Path) -> list[ChangeRecord]:
    conn = sqlite3.connect(path)
    try:
        return [decode_record(p) for (p,) in conn.execute("SELECT payload FROM feed ORDER BY seq")]
    finally:
        conn.close()


def _assert_feed_replays_to_tables(path: Path) -> None:
    records = _feed(path)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    replay = Replay().apply(records)
    nodes, rels = _tables(path)
    assert replay.nodes == nodes
    assert replay.rels == rels


def _writes(store: MemoryStore) -> None:
    store.apply(estate_batch())
    store.apply(WriteBatch(
        nodes=[ci("vm1", environment="test"), ci("vm2", operational_status="retired"),
               ci("hv2", duplicate_of="hv1")],
        relationships=[rel("DEPENDS_ON", "svc", "db", optional=True)],
    ))
    store.delete_relationships([("MEMBER_OF", "hv2", "cl"), ("DEPENDS_ON", "web", "cache")])


def _same(a: MemoryStore, b: MemoryStore) -> None:
    assert a.counts() == b.counts()
    assert a.relationships() == b.relationships()
    assert a.list_cis(limit=100).items == b.list_cis(limit=100).items
    for label in ("Asset", "SupportGroup", "SoftwareProduct", "Change"):
        assert list(iter_nodes(a, label)) == list(iter_nodes(b, label))
    assert [c.ci_id for c in a.find_cis({"fqdn": "hv1.example.com"})] == (
        [c.ci_id for c in b.find_cis({"fqdn": "hv1.example.com"})])
    assert set(a.extract_subgraph(["hv1"], direction=Direction.UPSTREAM)) == set(
        b.extract_subgraph(["hv1"], direction=Direction.UPSTREAM))


def test_reopen_after_writes_gives_the_same_store_and_feed(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "estate.db"
    first = MemoryStore(database_path=path)
    _writes(first)
    records = first.feed_since(0)
    first.close()

    # Act
    second = MemoryStore(database_path=path)

    # Assert
    memory = MemoryStore()
    _writes(memory)
    _same(second, memory)
    assert second.counts()["CI"] == len(CLASSES)
    assert second.feed_head() == 3 and second.feed_since(0) == records
    _assert_feed_replays_to_tables(path)


def test_clear_is_one_durable_reset(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "estate.db"
    store = MemoryStore(database_path=path)
    store.apply(estate_batch())

    # Act
    store.clear()
    store.upsert_nodes([SupportGroup(group_id="g", name="G")])
    store.close()

    # Assert
    again = MemoryStore(database_path=path)
    assert {k: v for k, v in again.counts().items() if v} == {"SupportGroup": 1}
    assert again.feed_since(1)[0].reset
    _assert_feed_replays_to_tables(path)


def test_registry_extension_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ext.db"
    reg = Registry()
    reg.extend({"ci_classes": [{"name": "LoadBalancer", "parent": "NetworkDevice"}]})
    store = MemoryStore(registry=reg, database_path=path)
    store.upsert_nodes([ConfigurationItem(ci_id="lb", name="lb", ci_class="LoadBalancer")])
    store.close()

    assert MemoryStore(registry=reg, database_path=path).get_ci("lb").ci_class == "LoadBalancer"


# -- migration of an old snapshot ------------------------------------------------------------
def test_an_old_snapshot_is_migrated_once_and_left_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange: a snapshot file as earlier versions wrote it
    old = MemoryStore()
    _writes(old)
    snapshot = tmp_path / "estate.snapshot"
    write_snapshot(snapshot, old.snapshot_payload())
    before = snapshot.read_bytes()

    # Act: the database beside it is created from it, once
    with caplog.at_level(logging.WARNING, logger="cmdb_graph.store.memory"):
        migrated = MemoryStore(snapshot_path=snapshot)
    migrated.upsert_nodes([SupportGroup(group_id="g", name="G")])
    migrated.close()
    snapshot.write_bytes(b"no longer read")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cmdb_graph.store.memory"):
        again = MemoryStore(database_path=tmp_path / "estate.db", snapshot_path=snapshot)

    # Assert
    assert (tmp_path / "estate.db").exists()
    assert not caplog.records  # the second open does not migrate again
    old.upsert_nodes([SupportGroup(group_id="g", name="G")])
    _same(again, old)
    assert before != snapshot.read_bytes()  # (our own overwrite above; the store wrote none)
    assert again.feed_since(0)[0].actor.name == "migration"
    _assert_feed_replays_to_tables(tmp_path / "estate.db")


def test_migration_logs_once_and_keeps_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot = tmp_path / "old.snapshot"
    old = MemoryStore()
    old.apply(estate_batch())
    write_snapshot(snapshot, old.snapshot_payload())
    before = snapshot.read_bytes()

    with caplog.at_level(logging.WARNING, logger="cmdb_graph.store.memory"):
        store = MemoryStore(database_path=tmp_path / "new.db", snapshot_path=snapshot)

    assert snapshot.read_bytes() == before
    assert [r.getMessage() for r in caplog.records] == [
        f"migrated the snapshot {snapshot} into the database {tmp_path / 'new.db'} "
        f"({len(CLASSES)} CIs); the snapshot file is left untouched and no longer read"]
    assert store.counts()["relationships"] == len(EDGES)


def test_a_foreign_pickle_is_refused_at_migration(tmp_path: Path) -> None:
    path = tmp_path / "evil.snapshot"
    path.write_bytes(pickle.dumps({"format": ("cmdb-graph-snapshot", 1), "x": Path("/")}))

    with pytest.raises(StoreError, match="only plain data"):
        MemoryStore(snapshot_path=path)


def test_truncated_snapshot_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.snapshot"
    write_snapshot(path, {"format": ("cmdb-graph-snapshot", 1), "cis": {"a": {}}})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(StoreError, match="cut.snapshot"):
        read_snapshot(path)


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "estate.db"
    path.write_bytes(b"someone's notes")

    with pytest.raises(StoreError, match="not a cmdb-graph database"):
        MemoryStore(database_path=path)


# -- several processes on one database -------------------------------------------------------
ONE_WRITE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cmdb_graph.model import ConfigurationItem
    from cmdb_graph.store.memory import MemoryStore

    store = MemoryStore(database_path=Path(sys.argv[1]))
    store.upsert_nodes([ConfigurationItem(ci_id="from-cli", name="imported", ci_class="Server",
                                          serial_number="SN-CLI")])
    store.delete_relationships([("RUNS_ON", "web", "vm1")])
    store.close()
    """
)


def _python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO,
                          timeout=120, check=False)


def test_a_serving_process_sees_another_process_writes_on_its_next_read(tmp_path: Path) -> None:
    # Arrange: a "server" holding the estate
    path = tmp_path / "estate.db"
    server = MemoryStore(database_path=path)
    server.apply(estate_batch())
    generation, head = server.generation, server.feed_head()

    # Act: a one-shot "import" process writes to the same file
    done = _python(ONE_WRITE, str(path))

    # Assert: the server's next questions see it, without reopening
    assert done.returncode == 0, done.stderr
    assert server.get_ci("from-cli").name == "imported"
    assert [c.ci_id for c in server.find_cis({"serial_number": "SN-CLI"})] == ["from-cli"]
    assert ("RUNS_ON", "web", "vm1") not in {
        (r.rel_type, r.source, r.target) for r in server.relationships("web")}
    assert server.generation > generation and server.feed_head() == head + 2
    # and its own next write follows on (one order across processes)
    server.upsert_nodes([SupportGroup(group_id="g", name="G")])
    assert [r.seq for r in server.feed_since(0)] == list(range(1, head + 4))
    _same(server, MemoryStore(database_path=path))
    _assert_feed_replays_to_tables(path)


def test_a_writer_waits_for_another_process_write_lock_then_names_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "estate.db"
    store = MemoryStore(database_path=path, lock_timeout=0.2)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="another process is writing") as caught:
            store.upsert_nodes([SupportGroup(group_id="g", name="G")])
        waited = time.monotonic() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert str(path) in str(caught.value) and waited >= 0.2
    store.upsert_nodes([SupportGroup(group_id="g", name="G")])  # the lock is free again
    assert store.get_node("SupportGroup", "g").key == "g"
    assert store.feed_head() == 1


# -- kill -9 mid-batch -----------------------------------------------------------------------
BATCH = 40
WRITER = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    from cmdb_graph.model import ConfigurationItem, Relationship
    from cmdb_graph.store.base import WriteBatch
    from cmdb_graph.store.memory import MemoryStore

    store = MemoryStore(database_path=Path(sys.argv[1]))
    n = 0
    while True:
        n += 1
        cis = [ConfigurationItem(ci_id=f"b{{n}}-{{i}}", name=f"batch {{n}}", ci_class="Server",
                                 serial_number=f"SN{{n}}-{{i}}", environment="x" * 300)
               for i in range({BATCH})]
        if n > 1:  # an update of the previous batch, in the same transaction
            cis.append(ConfigurationItem(ci_id=f"b{{n - 1}}-0", name=f"seen by {{n}}",
                                         ci_class="Server", serial_number=f"SN{{n - 1}}-0"))
        rels = [Relationship(rel_type="CONNECTS_TO", source=f"b{{n}}-{{i}}",
                             target=f"b{{n}}-{{i + 1}}") for i in range({BATCH} - 1)]
        store.apply(WriteBatch(nodes=cis, relationships=rels))
        if n == 2 and sys.argv[2:] == ["checkpoint"]:
            store.save_checkpoint()
        print(n, flush=True)
    """
)


@pytest.mark.parametrize("checkpoint", [False, True], ids=["database", "checkpoint"])
def test_a_writer_killed_mid_batch_loses_no_committed_batch_and_leaves_no_partial_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, checkpoint: bool,
) -> None:
    # Arrange: a process writing batches as fast as it can; kill -9 at a random point
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    path = tmp_path / "estate.db"
    args = [str(path), *(["checkpoint"] if checkpoint else [])]
    proc = subprocess.Popen([sys.executable, "-c", WRITER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    reported = 0
    try:
        assert proc.stdout is not None
        wanted = rng.randint(3, 40)
        while reported < wanted:
            line = proc.stdout.readline()
            assert line, f"writer stopped: {proc.stderr.read() if proc.stderr else ''}"
            reported = int(line)
        time.sleep(rng.uniform(0, 0.03))  # somewhere inside the next batch(es)

        # Act
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reported = max([reported, *(int(x) for x in proc.stdout.read().split())])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # Assert: every reported batch is there in full; any other batch is all there or absent
    assert proc.returncode == -signal.SIGKILL, seed
    with caplog.at_level(logging.INFO, logger="cmdb_graph.store.checkpoint"):
        store = MemoryStore(database_path=path)  # with a checkpoint: from it, then the feed
    assert ("from its checkpoint at change record 2 " in caplog.text) is checkpoint, seed
    present = {}
    for n in range(1, reported + 3):
        found = store.get_cis([f"b{n}-{i}" for i in range(BATCH)])
        present[n] = len(found)
        assert len(found) in (0, BATCH), (seed, n, len(found))
    committed = [n for n, count in present.items() if count]
    assert committed == list(range(1, len(committed) + 1)), seed
    assert reported <= len(committed) <= reported + 1, (seed, reported, committed)
    last = len(committed)
    if last > 1:
        assert store.get_ci(f"b{last - 1}-0").name == f"seen by {last}"
    assert len(store.relationships(f"b{last}-0")) == 1
    assert store.counts()["relationships"] == last * (BATCH - 1)
    assert store.feed_head() == last
    _assert_feed_replays_to_tables(path)


# -- retention -------------------------------------------------------------------------------
def test_pruned_records_are_a_feed_gap_and_a_follower_rebuilds(tmp_path: Path) -> None:
    # Arrange: a follower that has seen nothing yet, three writes, two of them backdated
    path = tmp_path / "estate.db"
    follower = MemoryStore(database_path=path)
    writer = MemoryStore(database_path=path)
    writer.apply(estate_batch())
    writer.upsert_nodes([SupportGroup(group_id="g1", name="G1")])
    writer.upsert_nodes([SupportGroup(group_id="g2", name="G2")])
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE feed SET at = '2020-01-01T00:00:00.000000+00:00' WHERE seq <= 2")
    conn.close()

    # Act: a process with a retention writes (its first write prunes)
    pruning = MemoryStore(database_path=path, feed_retention_days=30)
    pruning.upsert_nodes([SupportGroup(group_id="g3", name="G3")])

    # Assert
    assert [r.seq for r in pruning.feed_since(2)] == [3, 4]
    with pytest.raises(FeedGapError):
        pruning.feed_since(0)
    with pytest.raises(FeedGapError):
        pruning.feed_since(1)
    assert follower.get_node("SupportGroup", "g3").key == "g3"  # rebuilt from the tables
    _same(follower, pruning)
    assert follower.feed_head() == 4


def test_a_closed_store_refuses_writes(tmp_path: Path) -> None:
    store = MemoryStore(database_path=tmp_path / "estate.db")
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.upsert_nodes([SupportGroup(group_id="g", name="G")])


def test_temporary_databases_of_dead_processes_are_removed_at_open(tmp_path: Path) -> None:
    # Arrange: what a `cmdb-graph demo` killed while writing leaves, and one being written now
    path = tmp_path / "estate.db"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = tmp_path / f".estate.db.{gone.stdout.strip()}.tmp"
    dead_wal = tmp_path / f"{dead.name}-wal"
    live = tmp_path / f".estate.db.{os.getpid()}.tmp"
    for f in (dead, dead_wal, live):
        f.write_bytes(b"x" * 100)

    # Act
    MemoryStore(database_path=path).close()

    # Assert
    assert not dead.exists() and not dead_wal.exists()
    assert live.exists()


def test_lookups_by_value_follow_writes_another_process_and_reopening(tmp_path: Path) -> None:
    # Arrange: a writer and a serving process on one database
    from datetime import UTC, datetime

    from cmdb_graph.model import Asset, ImportRun, RunMode, RunStatus

    path = tmp_path / "estate.db"
    writer, server = MemoryStore(database_path=path), MemoryStore(database_path=path)
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def run(run_id: str, status: RunStatus) -> ImportRun:
        return ImportRun(run_id=run_id, source="disco", importer="test", mode=RunMode.DELTA,
                         status=status, started_at=at)

    def running(store: MemoryStore) -> list[str]:
        return [n.key for n in iter_nodes(store, "ImportRun", {"status": "running"})]

    def tracked(store: MemoryStore) -> dict[str, list[str]]:
        found = store.assets_tracking(["ci-a", "ci-b"])
        return {c: [a.asset_id for a in assets] for c, assets in found.items()}

    writer.upsert_nodes([run("r1", RunStatus.RUNNING), run("r2", RunStatus.SUCCEEDED),
                         ConfigurationItem(ci_id="ci-a", name="a", ci_class="Server"),
                         ConfigurationItem(ci_id="ci-b", name="b", ci_class="Server"),
                         Asset(asset_id="ast-1", ci_id="ci-a")])
    assert running(server) == ["r1"] and tracked(server) == {"ci-a": ["ast-1"], "ci-b": []}

    # Act: the run finishes, another starts, the asset moves to the other CI
    writer.upsert_nodes([run("r1", RunStatus.SUCCEEDED), run("r3", RunStatus.RUNNING),
                         Asset(asset_id="ast-1", ci_id="ci-b")])

    # Assert: the writer, the serving process and a reopened store find the same
    for store in (writer, server, MemoryStore(database_path=path)):
        assert running(store) == ["r3"]
        assert tracked(store) == {"ci-a": [], "ci-b": ["ast-1"]}
        assert [n.key for n in iter_nodes(store, "ImportRun", {"status": "succeeded",
                                                               "source": "disco"})] == ["r1", "r2"]
