"""The standing fault suite (issue 17): real ``cmdb-graph import`` processes on both stores,
two at once, killed with kill -9 at chosen points of a run, and on a full disk.

After every fault the store must hold no CI without its run's links, runs whose status is
true, and a change feed that replays to exactly what the store holds; the next run finds an
interrupted run and marks it failed, and completes the data.
"""

from __future__ import annotations

import csv
import os
import resource
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cmdb_graph.feed import Replay
from cmdb_graph.model import NODE_SPECS, ImportRun, RunStatus
from cmdb_graph.store import iter_cis, iter_nodes
from cmdb_graph.store.base import GraphStore
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.store.neo4j import Neo4jStore
from tests.contract.test_feed import _all, _assert_replay_is_store

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["sys_id", "name", "sys_class_name", "serial_number", "fqdn", "support_group",
          "owned_by", "location"]
#: Rows per write transaction of the processes on Neo4j: a run of a few hundred hosts is then
#: many transactions, as a run of many thousands is with the default size.
BATCH = 20


def hosts(path: Path, n: int, *, prefix: str, first: int = 0) -> Path:
    """A ServiceNow CSV export of ``n`` Linux servers (same names and serials for any
    ``prefix``; ``sys_id`` differs per prefix, as two sources' native keys do)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(first, first + n):
            out.writerow([f"{prefix}{i:06d}", f"host{i:05d}", "Linux Server", f"SN{i:07d}",
                          f"host{i:05d}.corp.example.com", f"Group {i % 5}", f"Owner {i % 7}",
                          f"Site {i % 3}"])
    return path


def command(store: GraphStore, csv_path: Path, source: str) -> tuple[list[str], dict[str, str]]:
    """The ``cmdb-graph import`` arguments and environment that write to ``store``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMDB_")}
    args = ["import", "servicenow-ci", str(csv_path), "--source", source]
    if isinstance(store, MemoryStore):
        assert store.database_path is not None
        env["CMDB_STORE"] = "memory"
        args += ["--db", str(store.database_path)]
    else:
        env.update(CMDB_STORE="neo4j", CMDB_NEO4J_URI=os.environ["NEO4J_URI"],
                   CMDB_NEO4J_USER=os.environ.get("NEO4J_USER", "neo4j"),
                   CMDB_NEO4J_PASSWORD=os.environ.get("NEO4J_PASSWORD", ""),
                   CMDB_BATCH_SIZE=str(BATCH))
    return args, env


def spawn(store: GraphStore, csv_path: Path, source: str, *hook: str,
          limit_file_bytes: int | None = None) -> subprocess.Popen[str]:
    """Start one import process (through ``tests.helpers.faults`` when ``hook`` names a kill
    point)."""
    args, env = command(store, csv_path, source)
    if hook:
        argv = [sys.executable, "-m", "tests.helpers.faults", *hook, "--", *args]
    else:
        argv = [sys.executable, "-c", "from cmdb_graph.cli import main; main()", *args]

    def limit() -> None:
        if limit_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


def runs(store: GraphStore) -> list[ImportRun]:
    return [r for r in iter_nodes(store, "ImportRun") if isinstance(r, ImportRun)]


def unlinked_cis(store: GraphStore) -> list[str]:
    """CIs whose support group, owner or location field has no relationship behind it
    (Neo4j materialises reference fields as relationships; the embedded store has the
    field only)."""
    if not isinstance(store, Neo4jStore):
        return []
    out: list[str] = []
    with store._driver.session(database=store.database) as session:
        for ref in NODE_SPECS["CI"].refs:
            pattern = (f"(n)-[:{ref.rel_type}]->(:{ref.target_label})" if ref.outgoing
                       else f"(n)<-[:{ref.rel_type}]-(:{ref.target_label})")
            query = (f"MATCH (n:CI) WHERE n.{ref.field} IS NOT NULL "
                     f"AND NOT EXISTS {{ MATCH {pattern} }} RETURN n.ci_id AS id")
            out += [r["id"] for r in session.run(query)]  # type: ignore[arg-type]
    return out


def check_consistent(store: GraphStore, start: int) -> None:
    """No CI without its links, and the feed since ``start`` replays to the store."""
    assert unlinked_cis(store) == []
    _assert_replay_is_store(Replay().apply(_all(store, start)), store)


# -- two writers at once -------------------------------------------------------------------
@pytest.mark.slow
def test_two_imports_at_once_of_the_same_hosts_give_each_host_once(
    store: GraphStore, tmp_path: Path
) -> None:
    # Arrange: the same 400 hosts exported by two sources (own native keys, same serials)
    n = 400
    a = hosts(tmp_path / "a.csv", n, prefix="a")
    b = hosts(tmp_path / "b.csv", n, prefix="b")
    start = store.feed_head()

    # Act: two processes at once
    procs = [spawn(store, a, "cmdb-a"), spawn(store, b, "cmdb-b")]
    results = [finish(p) for p in procs]

    # Assert: both succeeded; each host is one CI asserted by both sources
    assert [code for code, _, _ in results] == [0, 0], results
    cis = list(iter_cis(store))
    serials = Counter(c.serial_number for c in cis)
    assert len(cis) == n
    assert [s for s, k in serials.items() if k > 1] == []
    assert all({"cmdb-a", "cmdb-b"} <= set(c.lineage.sources) for c in cis)
    assert sorted(r.status for r in runs(store)) == [RunStatus.SUCCEEDED] * 2
    check_consistent(store, start)


# -- kill -9 at chosen points of a run ------------------------------------------------------
#: Kill points of a run on Neo4j, where a run of 300 hosts in transactions of 20 rows is about
#: 30 transactions: after the "running" mark, after a few data transactions, half-way, and
#: right before the write that marks it succeeded.
NEO4J_KILLS = [("after-writes", "1"), ("after-writes", "4"), ("after-writes", "15"),
               ("before-done",)]
#: On the embedded store a run is one transaction: killed before it or right after it.
EMBEDDED_KILLS = [("before-done",), ("after-writes", "1")]


def kill_points() -> list[object]:
    memory = [pytest.param("memory", k, id="memory-" + "-".join(k)) for k in EMBEDDED_KILLS]
    neo = [pytest.param("neo4j", k, id="neo4j-" + "-".join(k), marks=pytest.mark.neo4j)
           for k in NEO4J_KILLS]
    return [*memory, *neo]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "point"), kill_points())
def test_a_run_killed_at_a_chosen_point_leaves_truth_and_the_next_run_completes_it(
    kind: str, point: tuple[str, ...], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Arrange
    store: GraphStore = request.getfixturevalue(f"{kind}_store")
    n = 300
    data = hosts(tmp_path / "hosts.csv", n, prefix="s")
    start = store.feed_head()

    # Act: kill -9 at the point
    code, _, err = finish(spawn(store, data, "discovery", *point))

    # Assert: killed; a run is stored only as running (or succeeded with all its data)
    assert code == -signal.SIGKILL, err
    cis = list(iter_cis(store))
    stored = runs(store)
    if not stored:
        assert cis == []
    else:
        assert len(stored) == 1
        if stored[0].status is RunStatus.SUCCEEDED:
            assert len(cis) == n
        else:
            assert stored[0].status is RunStatus.RUNNING
            assert len(cis) < n or point == ("before-done",)
    check_consistent(store, start)

    # Act: the next run of the same input
    code, out, err = finish(spawn(store, data, "discovery"))

    # Assert: the interrupted run is marked failed, the new one succeeded with everything
    assert code == 0, err
    after = {r.run_id: r for r in runs(store)}
    for old in stored:
        if old.status is RunStatus.RUNNING:
            assert after[old.run_id].status is RunStatus.FAILED
            assert "interrupted" in (after[old.run_id].error or "")
    assert [r.status for r in after.values()].count(RunStatus.SUCCEEDED) == (
        1 + sum(r.status is RunStatus.SUCCEEDED for r in stored))
    assert len(list(iter_cis(store))) == n
    check_consistent(store, start)


# -- a full disk ----------------------------------------------------------------------------
def test_an_import_on_a_full_disk_ends_with_one_line_and_writes_nothing(
    memory_store: MemoryStore, tmp_path: Path
) -> None:
    # Arrange: an estate of 50 hosts, then an import of 2,000 more whose process may not
    # grow any file past 64 KiB (the write fails as on a full disk: EFBIG)
    code, _, err = finish(spawn(memory_store, hosts(tmp_path / "a.csv", 50, prefix="a"), "a"))
    assert code == 0, err
    head, cis = memory_store.feed_head(), memory_store.counts()["CI"]
    more = hosts(tmp_path / "b.csv", 2000, prefix="b", first=50)

    # Act
    code, out, err = finish(spawn(memory_store, more, "b", limit_file_bytes=64 * 1024))

    # Assert: one clear line naming the database, no traceback; the store as it was
    assert code == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert str(memory_store.database_path) in err
    assert memory_store.feed_head() == head
    assert memory_store.counts()["CI"] == cis
    assert all(r.source == "a" for r in runs(memory_store))
