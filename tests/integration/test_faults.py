"""The standing fault suite (issue 17): real ``cmdb-graph import`` processes on both stores,
two at once, killed with kill -9 at chosen points of a run, and on a full disk.

After every fault the store must hold no CI without its run's links, runs whose status is
true, and a change feed that replays to exactly what the store holds; the next run finds an
interrupted run, undoes what it wrote (the store as before it, the undo in the feed and the
history) and marks it failed; re-running the input then gives what an uninterrupted run gives.
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

from cmdb_graph.feed import ChangeRecord, Replay
from cmdb_graph.model import NODE_SPECS, ConfigurationItem, ImportRun, RunStatus
from cmdb_graph.service.history import ci_history
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


def hosts(path: Path, n: int, *, prefix: str, first: int = 0, name: str = "host") -> Path:
    """A ServiceNow CSV export of ``n`` Linux servers (same names and serials for any
    ``prefix``; ``sys_id`` differs per prefix, as two sources' native keys do)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(first, first + n):
            out.writerow([f"{prefix}{i:06d}", f"{name}{i:05d}", "Linux Server", f"SN{i:07d}",
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


def estate(store: GraphStore) -> dict[str, object]:
    """What the store holds but its import runs: every node by label and key, every
    relationship."""
    out: dict[str, object] = {
        label: {getattr(n, NODE_SPECS[label].key): n for n in iter_nodes(store, label)}
        for label in NODE_SPECS if label != "ImportRun"
    }
    out["relationships"] = {r.key: r for r in store.relationships()}
    return out


def without(found: dict[str, object], records: list[ChangeRecord]) -> dict[str, object]:
    """``found`` (of :func:`estate`) without the nodes and relationships ``records`` wrote."""
    out: dict[str, object] = {}
    for name, items in found.items():
        assert isinstance(items, dict)
        if name == "relationships":
            gone = {c.key for r in records for c in r.relationships}
        else:
            gone = {c.key for r in records for c in r.nodes if c.label == name}
        out[name] = {k: v for k, v in items.items() if k not in gone}
    return out


def outcome(store: GraphStore) -> tuple[object, ...]:
    """What a run's result is made of, without its times (lineage, first and last seen):
    every CI's identity, attributes and sources, every relationship, every other node."""
    cis = sorted(
        (c.ci_id, c.name, c.ci_class, c.serial_number, c.fqdn, c.support_group, c.owner,
         c.location_id, str(c.operational_status), tuple(sorted(c.lineage.sources)))
        for c in iter_cis(store) if isinstance(c, ConfigurationItem))
    others = sorted((label, getattr(n, NODE_SPECS[label].key))
                    for label in NODE_SPECS if label not in ("CI", "ImportRun")
                    for n in iter_nodes(store, label))
    return (cis, sorted(r.key for r in store.relationships()), others)


def undo_inputs(folder: Path) -> tuple[Path, Path, Path]:
    """The inputs of the undo test: an estate of 100 hosts from one source, a run that updates
    50 of them and creates 250 more, and another source's export of one host."""
    return (hosts(folder / "base.csv", 100, prefix="c", name="cmdb-host"),
            hosts(folder / "hosts.csv", 300, prefix="s", first=50),
            hosts(folder / "other.csv", 1, prefix="o", first=1000, name="other-host"))


@pytest.fixture(scope="module")
def uninterrupted_outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ...]:
    """:func:`outcome` of the undo test's three inputs imported without a kill, each by its
    own process, into a fresh embedded store (the same for every kill point: built once)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    base, killed, other = undo_inputs(folder)
    reference = MemoryStore(database_path=folder / "reference.db")
    for path, source in ((base, "cmdb"), (killed, "discovery"), (other, "other")):
        code, _, err = finish(spawn(reference, path, source))
        assert code == 0, err
    found = outcome(reference)
    reference.close()
    return found


@pytest.mark.slow
@pytest.mark.neo4j
@pytest.mark.parametrize("point", [("after-writes", "4"), ("after-writes", "15"),
                                   ("before-done",)], ids=lambda p: "-".join(p))
def test_the_next_run_undoes_what_a_killed_run_wrote_and_a_rerun_completes_it(
    point: tuple[str, ...], neo4j_store: GraphStore, tmp_path: Path,
    uninterrupted_outcome: tuple[object, ...],
) -> None:
    # Arrange: an estate of 100 hosts from one source; the killed input updates 50 of them
    # and creates 250 more
    store = neo4j_store
    base, killed, other = undo_inputs(tmp_path)
    origin = store.feed_head()
    code, _, err = finish(spawn(store, base, "cmdb"))
    assert code == 0, err
    before = estate(store)
    start = store.feed_head()

    # Act: kill -9 at the point, then a run of another source (an empty export)
    code, _, err = finish(spawn(store, killed, "discovery", *point))
    assert code == -signal.SIGKILL, err
    (interrupted,) = [r for r in runs(store) if r.source == "discovery"]
    assert interrupted.status is RunStatus.RUNNING
    assert estate(store) != before
    mark = store.feed_head()
    code, _, err = finish(spawn(store, other, "other"))

    # Assert: the store as before the killed run, but for what the other run wrote
    assert code == 0, err
    theirs = [r for r in _all(store, mark) if r.actor.source == "other" and r.actor.run_id]
    assert theirs
    assert all(r.seq > min(u.seq for u in _all(store, mark)
                           if u.actor.name.startswith("undo of")) for r in theirs)
    assert without(estate(store), theirs) == without(before, theirs)
    undone = store.get_node("ImportRun", interrupted.run_id)
    assert isinstance(undone, ImportRun)
    assert undone.status is RunStatus.FAILED and undone.undone_at is not None
    assert undone.error is not None
    assert "interrupted" in undone.error and "writes were undone" in undone.error
    assert "nodes deleted" in undone.error
    # the undo is in the feed (one record) and in the history of a host the run had updated
    undo_records = [r for r in _all(store, start)
                    if r.actor.name == f"undo of {interrupted.run_id}"]
    assert len(undo_records) == 1
    touched = 0
    for host in iter_cis(store):
        history = ci_history(store, host.ci_id, first=1000).items
        if any(e.actor.run_id == interrupted.run_id for e in history):
            touched += 1  # the killed run changed this host: the undo is its last change
            assert history[-1].actor.name == f"undo of {interrupted.run_id}"
    assert touched > 0
    check_consistent(store, origin)

    # Act: re-run the killed input
    code, _, err = finish(spawn(store, killed, "discovery"))
    assert code == 0, err

    # Assert: the same result as the uninterrupted runs (and the other source's) on a fresh
    # store without the kill
    assert outcome(store) == uninterrupted_outcome
    check_consistent(store, origin)


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
