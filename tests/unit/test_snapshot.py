"""The MemoryStore snapshot: round trip, atomic replacement, refusal of foreign pickles."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cmdb_graph.errors import StoreError
from cmdb_graph.model import ConfigurationItem, Registry, SupportGroup
from cmdb_graph.store.base import Direction
from cmdb_graph.store.memory import MemoryStore, read_snapshot, write_snapshot
from tests.contract.estate import CLASSES, EDGES, estate_batch

REPO = Path(__file__).resolve().parents[2]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "estate.snapshot"
    first = MemoryStore(snapshot_path=path)
    first.apply(estate_batch())
    first.close()

    second = MemoryStore(snapshot_path=path)

    assert second.counts() == first.counts()
    assert second.relationships() == first.relationships()
    assert second.list_cis(limit=100).items == first.list_cis(limit=100).items
    assert second.get_node("Asset", "A-1") == first.get_node("Asset", "A-1")
    assert [c.ci_id for c in second.find_cis({"fqdn": "hv1.example.com"})] == ["hv1"]
    assert set(second.extract_subgraph(["hv1"], direction=Direction.UPSTREAM)) == set(
        first.extract_subgraph(["hv1"], direction=Direction.UPSTREAM)
    )
    assert second.counts()["CI"] == len(CLASSES)
    assert second.counts()["relationships"] == len(EDGES)


def test_autosave_after_apply(tmp_path: Path) -> None:
    path = tmp_path / "auto.snapshot"
    store = MemoryStore(snapshot_path=path, autosave=True)

    store.upsert_nodes([SupportGroup(group_id="g", name="G")])

    assert MemoryStore(snapshot_path=path).get_node("SupportGroup", "g").key == "g"


def test_no_save_without_autosave(tmp_path: Path) -> None:
    path = tmp_path / "manual.snapshot"
    store = MemoryStore(snapshot_path=path)

    store.upsert_nodes([SupportGroup(group_id="g", name="G")])

    assert not path.exists()
    store.save()
    assert path.exists()


def test_foreign_pickle_is_refused(tmp_path: Path) -> None:
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


def test_snapshot_survives_registry_extension(tmp_path: Path) -> None:
    path = tmp_path / "ext.snapshot"
    reg = Registry()
    reg.extend({"ci_classes": [{"name": "LoadBalancer", "parent": "NetworkDevice"}]})
    store = MemoryStore(registry=reg, snapshot_path=path)
    store.upsert_nodes([ConfigurationItem(ci_id="lb", name="lb", ci_class="LoadBalancer")])
    store.save()

    again = MemoryStore(registry=reg, snapshot_path=path)

    assert again.get_ci("lb").ci_class == "LoadBalancer"


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cmdb_graph.model import ConfigurationItem
    from cmdb_graph.store.memory import MemoryStore, SNAPSHOT_FORMAT, write_snapshot

    path, marker, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    store = MemoryStore(snapshot_path=path)
    for r in range(rounds):
        store.upsert_nodes([
            ConfigurationItem(ci_id=f"ci-{r}-{i}", name=f"round {r}", ci_class="Server",
                              serial_number=f"SN{r}-{i}")
            for i in range(2000)
        ])
        store.save()
    print("saved", rounds, flush=True)

    class Stall:
        # Pickled in the middle of the payload: the temp file already holds the first
        # part when this runs. It tells the parent, then waits to be killed.
        def __reduce__(self):
            marker.write_text("mid-write")
            while True:
                time.sleep(1)

    big = {f"ci-x-{i}": {"name": "x" * 200, "ci_class": "Server"} for i in range(200_000)}
    write_snapshot(path, {"format": SNAPSHOT_FORMAT, "cis": big, "stall": Stall(),
                          "tail": dict(big)})
    print("unexpected: write finished", flush=True)
    """
)


def test_kill_mid_write_keeps_previous_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "estate.snapshot"
    marker = tmp_path / "marker"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rounds = 3
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(marker), str(rounds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "writer never reached the middle of a write"
            time.sleep(0.05)
        temp_files = [p for p in tmp_path.iterdir() if p.name.startswith(".estate.snapshot.")]
        temp_size = temp_files[0].stat().st_size if temp_files else 0

        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == -signal.SIGKILL
    assert len(temp_files) == 1 and temp_size > 0, "the kill did not land mid-write"
    store = MemoryStore(snapshot_path=path)
    counts = store.counts()
    assert counts["CI"] == rounds * 2000  # the last complete snapshot, not the half one
    assert store.get_ci(f"ci-{rounds - 1}-1999").name == f"round {rounds - 1}"
    assert [c.ci_id for c in store.find_cis({"serial_number": "SN0-7"})] == ["ci-0-7"]
    assert path.stat().st_size < temp_files[0].stat().st_size
