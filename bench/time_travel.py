"""Time travel: a change impact ``asOf`` a time N writes ago, against the same question now, in
the same run, on the embedded store.

``python -m bench.time_travel --scale 10k`` generates the synthetic estate of each scale
(seed 42) into an embedded store with a database in a temporary folder, makes
1,000 writes (one-VM attribute upserts, new applications with a ``RUNS_ON`` relationship, and
removals of those relationships; one change record each), then, for N in 10, 100 and 1,000:

* ``first asOf``: the first question at the time of the record N writes before the head (the
  engine copies its current graph, undoes the N records, builds the topology, answers);
* ``again``: a second question at the same time (the graph of the past is kept);
* ``now``: the same question on the current graph (the baseline).

Also times the parts of the first question: the graph copy and the undo of the records.
Writes ``bench/results/time_travel.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import machine
from bench.workload import SCALES, build_workload, bulk_load
from cmdb_graph.model import ConfigurationItem, Relationship
from cmdb_graph.service import history
from cmdb_graph.service.engine import Engine
from cmdb_graph.service.follow import copy_graph
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import CIFilter, WriteBatch
from cmdb_graph.store.memory import MemoryStore

__all__ = ["main"]

WRITES = 1000
DEPTHS = (10, 100, 1000)


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[time_travel {datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def _time(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run_scale(scale: str, folder: Path, runs: int) -> dict[str, Any]:
    """Every measurement at one scale."""
    log(f"{scale}: generating the estate")
    store = MemoryStore(database_path=folder / f"estate-{scale}.db")
    bulk_load(store, build_workload(SCALES[scale], 42))
    vms = [c.ci_id for c in store.list_cis(CIFilter(ci_class="VirtualMachine"),
                                           limit=1000).items]
    rng = random.Random(42)
    engine = Engine(store, Settings(max_results=10_000_000))
    question = vms[0]
    engine.change_impact([question])
    log(f"{scale}: {WRITES} writes")
    added: list[tuple[str, str]] = []
    for i in range(WRITES):
        kind = i % 3
        if kind == 0:
            ci = store.get_ci(rng.choice(vms))
            when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
            store.upsert_nodes([ci.model_copy(update={"last_seen": when,
                                                      "description": f"seen {when}"})])
        elif kind == 1 or not added:
            app, vm = f"tt-app-{i}", rng.choice(vms)
            store.apply(WriteBatch(
                nodes=[ConfigurationItem(ci_id=app, name=app, ci_class="Application")],
                relationships=[Relationship(rel_type="RUNS_ON", source=app, target=vm)]))
            added.append((app, vm))
        else:
            app, vm = added.pop(rng.randrange(len(added)))
            store.delete_relationships([("RUNS_ON", app, vm)])
    head = store.feed_head()
    engine.change_impact([question])  # follow the writes
    out: dict[str, Any] = {"cis": store.counts()["CI"], "writes": WRITES, "depths": {}}
    now = [_time(lambda: engine.change_impact([question])) for _ in range(runs)]
    for n in DEPTHS:
        at = store.feed_since(head - n - 1, limit=1)[0].at
        first: list[float] = []
        again: list[float] = []
        for _ in range(runs):
            engine._past = None  # noqa: SLF001 - a cold graph of the past each run

            def ask(at: datetime = at) -> None:
                with engine.as_of(at):
                    engine.change_impact([question])

            first.append(_time(ask))
            again.append(_time(ask))
        with engine.reading() as current:
            assert current is not None
            copy_s = [_time(lambda c=current: copy_graph(c.graph)) for _ in range(runs)]
            base = copy_graph(current.graph)
        seq = history.position_at(store, at)
        records = history.records_between(store, seq, head)
        t0 = time.perf_counter()
        history.rewind_graph(base, records, store.registry, at)
        undo_s = time.perf_counter() - t0
        out["depths"][n] = {"records": len(records), "first_ms": _p50(first),
                            "again_ms": _p50(again), "copy_ms": _p50(copy_s),
                            "undo_ms": undo_s * 1000}
        log(f"{scale}: N={n}: first {out['depths'][n]['first_ms']:.1f} ms, again "
            f"{out['depths'][n]['again_ms']:.1f} ms")
    out["now_ms"] = _p50(now)
    return out


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown report."""
    lines = [
        "# Time travel: change impact asOf N writes ago",
        "",
        "Command: `" + results["command"] + "`  ",
        f"Started {results['started_at']}; machine: {results['machine']['cpu_model']}, "
        f"{results['machine']['cores']} cores, load average at start "
        f"{results['machine']['load_average_at_start']}.",
        "",
        "Embedded store, synthetic estate (seed 42) plus 1,000 one-record writes. The question "
        "is a VM's change impact; p50 in ms over the runs. *first asOf*: copy the current graph, "
        "undo the N records, build the topology, answer; *again*: the same time asked again "
        "(the graph of the past is kept); *now*: the question on the current graph. *copy* and "
        "*undo* are the parts of the first question that are not the topology build and the "
        "answer.",
        "",
        "| scale | CIs | N records undone | first asOf | again | now | first / now | "
        "again / now | copy | undo |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scale, res in results["scales"].items():
        for d in res["depths"].values():
            lines.append(
                f"| {scale} | {res['cis']:,} | {d['records']} | {d['first_ms']:.1f} | "
                f"{d['again_ms']:.1f} | {res['now_ms']:.1f} | "
                f"{d['first_ms'] / res['now_ms']:.1f}x | {d['again_ms'] / res['now_ms']:.1f}x | "
                f"{d['copy_ms']:.1f} | {d['undo_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the bench; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.time_travel")
    parser.add_argument("--scale", action="append", choices=sorted(SCALES))
    parser.add_argument("--runs", type=int, default=5, help="runs per depth")
    parser.add_argument("--out", type=Path, default=Path("bench/results/time_travel"))
    opts = parser.parse_args(argv)
    results: dict[str, Any] = {
        "command": "python -m bench.time_travel " + " ".join(argv or sys.argv[1:]),
        "started_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}", "machine": machine(),
        "scales": {}}
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    for scale in opts.scale or ["10k"]:
        with tempfile.TemporaryDirectory() as folder:
            results["scales"][scale] = run_scale(scale, Path(folder), opts.runs)
        opts.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        opts.out.with_suffix(".md").write_text(markdown(results))
        log(f"wrote {opts.out}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
