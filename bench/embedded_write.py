"""The embedded store's durability, old against new, in one run: one-CI upsert and start.

``python -m bench.embedded_write --size 100000`` builds the seeded synthetic estate
(:func:`cmdb_graph.synthetic.generate_estate`) in memory, then measures

* **one-CI upsert** (``MemoryStore.apply`` of one existing CI with a new name), p50 and p95:
  the old way (apply, then rewrite the whole snapshot file atomically, as ``autosave`` did)
  against the database (apply = one SQLite transaction with the changed row and its change
  record, ``synchronous=FULL``);
* **start to loaded**: reading the old snapshot into a store against loading the database
  (:class:`~cmdb_graph.store.memory.MemoryStore` with ``database_path``), each in a fresh
  process, and the files' sizes.

Prints one JSON object (and a small table on stderr); ratios are old / new.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Nodes (relationships) per batch of the bulk load, as an import writes them.
_CHUNK = 10_000

_LOAD = """
import sys, time
from pathlib import Path
t0 = time.perf_counter()
from cmdb_graph.store.memory import MemoryStore, read_snapshot
kind, path = sys.argv[1], Path(sys.argv[2])
if kind == "snapshot":
    store = MemoryStore()
    store._load(read_snapshot(path), path)  # what MemoryStore(snapshot_path=...) did
else:
    store = MemoryStore(database_path=path)
n = store.counts()["CI"]
print(time.perf_counter() - t0, n)
"""


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered) * 1000,
            "p95_ms": ordered[max(0, int(round(0.95 * len(ordered))) - 1)] * 1000,
            "n": len(ordered)}


def _load_seconds(kind: str, path: Path) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", _LOAD, kind, str(path)], capture_output=True,
                         text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def run(size: int, old_samples: int, new_samples: int) -> dict[str, Any]:
    """Measure (see the module docstring); returns the figures."""
    from cmdb_graph.store.base import WriteBatch
    from cmdb_graph.store.memory import MemoryStore, write_snapshot
    from cmdb_graph.synthetic import generate_estate

    estate = generate_estate(size)
    step = max(1, len(estate.cis) // 997)
    cis = estate.cis[::step]  # the CIs the upserts change (the others are let go)
    res: dict[str, Any] = {"size": size}
    with tempfile.TemporaryDirectory(prefix="cmdb-embedded-") as tmp:
        folder = Path(tmp)
        mem = MemoryStore()
        batch = estate.to_batch()
        del estate
        t0 = time.perf_counter()
        for start in range(0, len(batch.nodes), _CHUNK):  # import-sized batches
            mem.apply(WriteBatch(nodes=batch.nodes[start:start + _CHUNK]))
        for start in range(0, len(batch.relationships), _CHUNK):
            mem.apply(WriteBatch(relationships=batch.relationships[start:start + _CHUNK]))
        res["bulk_load_in_memory_s"] = time.perf_counter() - t0
        del batch
        gc.collect()
        snapshot, database = folder / "estate.snapshot", folder / "estate.db"
        t0 = time.perf_counter()
        write_snapshot(snapshot, mem.snapshot_payload())
        res["snapshot_write_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        mem.save_to(database)
        res["database_write_s"] = time.perf_counter() - t0
        res["snapshot_bytes"] = snapshot.stat().st_size
        res["database_bytes"] = database.stat().st_size

        def one(store: MemoryStore, i: int) -> None:
            ci = cis[(i * 7919) % len(cis)]  # a spread of CIs, each changed in turn
            store.apply(WriteBatch(nodes=[ci.model_copy(update={"name": f"{ci.name}~{i}"})]))

        old: list[float] = []
        for i in range(old_samples):
            t0 = time.perf_counter()
            one(mem, i)
            write_snapshot(snapshot, mem.snapshot_payload())
            old.append(time.perf_counter() - t0)
        del mem
        gc.collect()
        store = MemoryStore(database_path=database)
        new: list[float] = []
        for i in range(new_samples):
            t0 = time.perf_counter()
            one(store, i)
            new.append(time.perf_counter() - t0)
        store.close()
        del store
        gc.collect()
        res["upsert_one_ci"] = {"snapshot": _percentiles(old), "database": _percentiles(new)}
        res["upsert_one_ci"]["ratio_p50"] = (res["upsert_one_ci"]["snapshot"]["p50_ms"]
                                             / res["upsert_one_ci"]["database"]["p50_ms"])
        res["upsert_one_ci"]["ratio_p95"] = (res["upsert_one_ci"]["snapshot"]["p95_ms"]
                                             / res["upsert_one_ci"]["database"]["p95_ms"])
        snap_s, n1 = _load_seconds("snapshot", snapshot)
        db_s, n2 = _load_seconds("database", database)
        assert n1 == n2 == size, (n1, n2, size)
        res["start_to_loaded_s"] = {"snapshot": snap_s, "database": db_s,
                                    "ratio": snap_s / db_s}
    return res


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the JSON figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.embedded_write")
    parser.add_argument("--size", type=int, default=100_000, help="number of CIs")
    parser.add_argument("--old-samples", type=int, default=20,
                        help="upserts measured with the snapshot rewrite")
    parser.add_argument("--samples", type=int, default=200,
                        help="upserts measured with the database")
    args = parser.parse_args(argv)
    res = run(args.size, args.old_samples, args.samples)
    up, st = res["upsert_one_ci"], res["start_to_loaded_s"]
    table = (
        f"| {args.size} CIs | snapshot (old) | database (new) | old/new |\n|---|---|---|---|\n"
        f"| one-CI upsert p50 | {up['snapshot']['p50_ms']:.1f} ms | "
        f"{up['database']['p50_ms']:.2f} ms | {up['ratio_p50']:.0f}x |\n"
        f"| one-CI upsert p95 | {up['snapshot']['p95_ms']:.1f} ms | "
        f"{up['database']['p95_ms']:.2f} ms | {up['ratio_p95']:.0f}x |\n"
        f"| start to loaded | {st['snapshot']:.2f} s | {st['database']:.2f} s | "
        f"{st['ratio']:.2f}x |\n"
        f"| file size | {res['snapshot_bytes'] / 1e6:.0f} MB | "
        f"{res['database_bytes'] / 1e6:.0f} MB | |\n"
    )
    print(table, file=sys.stderr)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
