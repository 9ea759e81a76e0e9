"""The first question after a one-CI write: an engine following the change feed against one
that rebuilds its whole graph, in the same run, on the embedded store.

``python -m bench.feed_engine --scale 100k --scale 1m`` loads (or first generates and
caches) the synthetic estate of each scale in a ``MemoryStore``, then, per scale:

* ``attribute upsert``: upsert one existing VM with a new ``last_seen`` and description (what
  a discovery delta does), then time the next question, a VM's change impact;
* ``new CI + relationship``: upsert a new application with a ``RUNS_ON`` relationship to a
  VM (the topology changes), then time the same question;
* for each, the engine that follows the feed (the default) and one that rebuilds from the
  store after every write (``far_behind=0``: the behaviour before the feed);
* the resident memory of a fresh serving process (store loaded, engine built), measured by
  :mod:`bench.memprobe` in a subprocess.

Writes the results as JSON and markdown (``--out``, default
``bench/results/feed_engine.{json,md}``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import machine
from bench.workload import SCALES, build_workload, bulk_load
from cmdb_graph.model import ConfigurationItem, Relationship
from cmdb_graph.service.engine import Engine
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import CIFilter, WriteBatch
from cmdb_graph.store.memory import MemoryStore

__all__ = ["main"]


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[feed_engine {datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def database_for(scale: str, cache: Path) -> Path:
    """The cached database of a scale's synthetic estate (seed 42), generated when missing."""
    path = cache / f"estate-{scale}.db"
    if path.exists():
        return path
    log(f"{scale}: generating the estate (cached in {path})")
    cache.mkdir(parents=True, exist_ok=True)
    wl = build_workload(SCALES[scale], 42)
    store = MemoryStore()
    bulk_load(store, wl)
    store.save_to(path)
    return path


def working_copy(database: Path) -> Path:
    """A copy of the cached database for one run to write to (the cache stays as generated)."""
    copy = database.with_name(f"{database.stem}.run.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(database, copy)
    return copy


def _stats(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"n": len(samples), "p50_ms": statistics.median(samples) * 1000,
            "p95_ms": p95 * 1000, "max_ms": ordered[-1] * 1000}


def _time(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _memory(database: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.memprobe", str(database)],
                          capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def run_scale(scale: str, cache: Path, runs: int, baseline_runs: int) -> dict[str, Any]:
    """Every measurement at one scale."""
    database = database_for(scale, cache)
    log(f"{scale}: memory of a fresh serving process")
    memory = _memory(database)
    log(f"{scale}: loading a copy of {database}")
    copy = working_copy(database)
    store = MemoryStore(database_path=copy)
    vms = [c.ci_id for c in store.list_cis(CIFilter(ci_class="VirtualMachine"),
                                           limit=1000).items]
    rng = random.Random(42)
    settings = Settings(max_results=10_000_000)
    out: dict[str, Any] = {"cis": store.counts()["CI"], "memory": memory}
    counter = iter(range(10**9))

    def attribute_upsert() -> str:
        vm = rng.choice(vms)
        ci = store.get_ci(vm)
        when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=next(counter))
        store.upsert_nodes([ci.model_copy(update={"last_seen": when,
                                                  "description": f"seen {when}"})])
        return vm

    def new_ci() -> str:
        vm = rng.choice(vms)
        app = f"bench-app-{next(counter)}"
        store.apply(WriteBatch(
            nodes=[ConfigurationItem(ci_id=app, name=app, ci_class="Application")],
            relationships=[Relationship(rel_type="RUNS_ON", source=app, target=vm)],
        ))
        return vm

    for mode, far_behind, n in (("follow", None, runs), ("rebuild", 0, baseline_runs)):
        log(f"{scale}: {mode}: building the engine")
        engine = Engine(store, settings, far_behind=far_behind)
        t_build = _time(lambda e=engine: e.change_impact([vms[0]]))  # type: ignore[misc]
        res: dict[str, Any] = {"first_build_s": t_build}
        for kind, write in (("attribute upsert", attribute_upsert),
                            ("new CI + relationship", new_ci)):
            writes: list[float] = []
            questions: list[float] = []
            for _ in range(n):
                box: dict[str, str] = {}
                writes.append(_time(lambda b=box, w=write: b.update(vm=w())))  # type: ignore[misc]
                vm = box["vm"]
                questions.append(_time(lambda e=engine, v=vm: e.change_impact([v])))  # type: ignore[misc]
            res[kind] = {"write": _stats(writes), "next_question": _stats(questions)}
            log(f"{scale}: {mode}: {kind}: next question p50 "
                f"{res[kind]['next_question']['p50_ms']:.1f} ms")
        res["engine_stats"] = dict(engine.stats)
        out[mode] = res
        del engine
        gc.collect()
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return out


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown report."""
    lines = [
        "# The first question after a one-CI write: following the feed vs rebuilding",
        "",
        "Commands: " + "; ".join(f"`{c}`" for c in results["commands"]) + "  ",
        f"Started {results['started_at']}; machine: {results['machine']['cpu_model']}, "
        f"{results['machine']['cores']} cores, load average at start "
        f"{results['machine']['load_average_at_start']}.",
        "",
        "Embedded store (`MemoryStore`), synthetic estate (seed 42). The question is a VM's "
        "change impact; times in ms (p50 / p95 over the runs); both engines of a scale run in "
        "the same process, one after the other, on the same store. *rebuild* is the engine "
        "before the feed (every write makes the next question read the whole graph again; "
        "`Engine(far_behind=0)`); *follow* applies the change records.",
        "",
        "| scale | write | engine | runs | write p50 | next question p50 | p95 | ratio p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scale, res in results["scales"].items():
        for kind in ("attribute upsert", "new CI + relationship"):
            base = res["rebuild"][kind]["next_question"]["p50_ms"]
            for mode in ("rebuild", "follow"):
                r = res[mode][kind]
                q = r["next_question"]
                ratio = base / q["p50_ms"] if q["p50_ms"] else float("nan")
                lines.append(
                    f"| {scale} | {kind} | {mode} | {q['n']} | {r['write']['p50_ms']:.1f} | "
                    f"{q['p50_ms']:.1f} | {q['p95_ms']:.1f} | "
                    f"{'1.0' if mode == 'rebuild' else f'{ratio:,.0f}x faster'} |")
    lines += [
        "",
        "Resident memory of a fresh serving process (`python -m bench.memprobe`: store loaded "
        "from the database, then the engine's whole graph and topology built):",
        "",
        "| scale | CIs | after import | store loaded | with engine | engine's share | "
        "per CI (engine) |",
        "|---|---|---|---|---|---|---|",
    ]
    for scale, res in results["scales"].items():
        m = res["memory"]
        eng = m["with_engine"] - m["loaded"]
        lines.append(
            f"| {scale} | {m['cis']:,} | {m['before'] / 2**20:,.0f} MiB | "
            f"{m['loaded'] / 2**20:,.0f} MiB | {m['with_engine'] / 2**20:,.0f} MiB | "
            f"{eng / 2**20:,.0f} MiB | {eng / max(m['cis'], 1):,.0f} B |")
    before = {scale: res["memory_before"] for scale, res in results["scales"].items()
              if "memory_before" in res}
    if before:
        lines += [
            "",
            "Before this branch (the engine rebuilding a store-shaped graph with every field), "
            "same probe, same estates, measured with `PYTHONPATH=<main checkout> python -m "
            "bench.memprobe <snapshot>` at " + ", ".join(
                f"{scale}: {m['commit']}" for scale, m in before.items()) + ":",
            "",
            "| scale | store loaded | with engine | engine's share | per CI (engine) | "
            "engine's share now |",
            "|---|---|---|---|---|---|",
        ]
        for scale, m in before.items():
            eng = m["with_engine"] - m["loaded"]
            now = results["scales"][scale]["memory"]
            now_eng = now["with_engine"] - now["loaded"]
            lines.append(
                f"| {scale} | {m['loaded'] / 2**20:,.0f} MiB | {m['with_engine'] / 2**20:,.0f} "
                f"MiB | {eng / 2**20:,.0f} MiB | {eng / max(m['cis'], 1):,.0f} B | "
                f"{now_eng / 2**20:,.0f} MiB ({now_eng / eng - 1:+.0%}) |")
    lines += ["", "First build of each engine (s): " + ", ".join(
        f"{scale} {mode} {res[mode]['first_build_s']:.1f}"
        for scale, res in results["scales"].items() for mode in ("follow", "rebuild")), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the bench; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.feed_engine")
    parser.add_argument("--scale", action="append", choices=sorted(SCALES))
    parser.add_argument("--runs", type=int, default=20, help="runs per write kind (follow)")
    parser.add_argument("--baseline-runs", type=int, default=5,
                        help="runs per write kind (rebuild)")
    parser.add_argument("--cache", type=Path, default=Path(".cmdb/bench"),
                        help="where generated estates are cached")
    parser.add_argument("--out", type=Path, default=Path("bench/results/feed_engine"))
    parser.add_argument("--merge", action="store_true",
                        help="keep the other scales already in the results file")
    opts = parser.parse_args(argv)
    scales = opts.scale or ["100k"]
    command = "python -m bench.feed_engine " + " ".join(argv or sys.argv[1:])
    results: dict[str, Any] = {"commands": [], "scales": {}}
    out_json = opts.out.with_suffix(".json")
    if opts.merge and out_json.exists():
        results = json.loads(out_json.read_text())
    results["commands"].append(command)
    results["started_at"] = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    results["machine"] = machine()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    for scale in scales:
        res = run_scale(scale, opts.cache, opts.runs, opts.baseline_runs)
        res["command"] = command
        results["scales"][scale] = res
        out_json.write_text(json.dumps(results, indent=2) + "\n")
        opts.out.with_suffix(".md").write_text(markdown(results))
        log(f"wrote {opts.out}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
