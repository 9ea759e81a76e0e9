"""Start to first answer on the embedded store: a full read against the checkpoint, same run.

``python -m bench.start --scale 1m --cache /tmp/benchcache`` takes the cached synthetic estate
of the scale (generated when missing, see :func:`bench.feed_engine.database_for`), works on a
copy, and runs :mod:`bench.memprobe` in a fresh process each time (store opened, engine built,
a VM's change impact answered; resident memory after it):

1. ``full read``: no checkpoint beside the database (the start before checkpoints);
2. ``cmdb-graph checkpoint`` on it (timed: what a server's stop costs when it writes one);
3. ``checkpoint``: the same start, from the checkpoint;
4. ``checkpoint + writes``: after ``--writes`` discovery-like batches committed since the
   checkpoint (each: one VM's description changed and one new application ``RUNS_ON`` it),
   which the store and the engine follow at start.

``--runs`` repeats steps 1, 3 and 4 alternately; medians are reported. Writes
``bench/results/start-<scale>.{md,json}`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.feed_engine import database_for, log, working_copy
from bench.live import _cmdb_graph
from bench.report import machine
from bench.workload import SCALES

REPO = Path(__file__).resolve().parent.parent


def _probe(database: Path) -> dict[str, Any]:
    """One :mod:`bench.memprobe` run in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "bench.memprobe", str(database)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def _write_after(database: Path, n: int) -> None:
    """``n`` small writes committed after the checkpoint, by another process."""
    code = f"""
import sys
from pathlib import Path
from cmdb_graph.model import ConfigurationItem, Relationship
from cmdb_graph.store.base import CIFilter, WriteBatch
from cmdb_graph.store.memory import MemoryStore
store = MemoryStore(database_path=Path({str(database)!r}))
vms = [c for c in store.list_cis(CIFilter(ci_class="VirtualMachine"), limit={n}).items]
for i, vm in enumerate(vms):
    app = f"bench-start-app-{{i}}"
    store.apply(WriteBatch(
        nodes=[vm.model_copy(update={{"description": f"changed {{i}}"}}),
               ConfigurationItem(ci_id=app, name=app, ci_class="Application")],
        relationships=[Relationship(rel_type="RUNS_ON", source=app, target=vm.ci_id)]))
store.close()
"""
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def run(scale: str, cache: Path, runs: int, writes: int) -> dict[str, Any]:
    """The figures of one scale (see the module docstring)."""
    database = database_for(scale, cache)
    copy = working_copy(database)
    ckpt = copy.with_name(copy.name + ".checkpoint")
    ckpt.unlink(missing_ok=True)
    out: dict[str, list[dict[str, Any]]] = {"full read": [], "checkpoint": [],
                                            "checkpoint + writes": []}
    write_s: list[float] = []
    for i in range(runs):
        log(f"{scale}: run {i + 1}/{runs}: full read")
        ckpt.unlink(missing_ok=True)
        out["full read"].append(_probe(copy))
        log(f"{scale}: run {i + 1}/{runs}: writing the checkpoint")
        t0 = time.perf_counter()
        subprocess.run([*_cmdb_graph(), "checkpoint", "--db", str(copy)], cwd=REPO,
                       check=True, capture_output=True)
        write_s.append(time.perf_counter() - t0)
        log(f"{scale}: run {i + 1}/{runs}: from the checkpoint")
        out["checkpoint"].append(_probe(copy))
        _write_after(copy, writes)
        log(f"{scale}: run {i + 1}/{runs}: from the checkpoint, {writes} writes after it")
        out["checkpoint + writes"].append(_probe(copy))
    for suffix in ("", "-wal", "-shm", ".checkpoint"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    summary: dict[str, Any] = {"writes_after": writes,
                               "checkpoint_write_s": statistics.median(write_s), "modes": {}}
    for mode, probes in out.items():
        summary["modes"][mode] = {
            k: statistics.median(float(p[k]) for p in probes)
            for k in ("load_s", "build_s", "first_question_s", "start_to_answer_s",
                      "with_engine")
        } | {"resumed": all(p["resumed"] for p in probes), "runs": probes}
    return summary


def markdown(res: dict[str, Any]) -> str:
    """The results as a markdown report."""
    modes = res["modes"]
    base = modes["full read"]["start_to_answer_s"]
    lines = [
        f"# Start to first answer, embedded store, {res['scale']} CIs",
        "",
        f"`{res['command']}`, started {res['started_at']}; machine: "
        f"{res['machine']['cpu_model']}, {res['machine']['cores']} cores, load average at "
        f"start {res['machine']['load_average_at_start']}. Medians of "
        f"{len(modes['full read']['runs'])} run(s), each mode in a fresh process "
        "(`python -m bench.memprobe`), the modes alternated.",
        "",
        "| start | store opened | engine built | first question | start to first answer | "
        "vs full read | resident |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, m in modes.items():
        label = mode if mode != "checkpoint + writes" else (
            f"checkpoint + {res['writes_after']} writes after it")
        lines.append(
            f"| {label} | {m['load_s']:.1f} s | {m['build_s']:.1f} s | "
            f"{m['first_question_s'] * 1000:.0f} ms | {m['start_to_answer_s']:.1f} s | "
            f"{base / m['start_to_answer_s']:.1f}x faster | "
            f"{m['with_engine'] / 2**20:,.0f} MiB |")
    lines += ["", f"Writing the checkpoint (`cmdb-graph checkpoint`, a fresh process: store "
              f"opened, engine built, file written): {res['checkpoint_write_s']:.1f} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the bench; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.start")
    parser.add_argument("--scale", choices=sorted(SCALES), default="100k")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--writes", type=int, default=100,
                        help="writes committed after the checkpoint (mode 3)")
    parser.add_argument("--cache", type=Path, default=Path(".cmdb/bench"))
    parser.add_argument("--out", type=Path)
    opts = parser.parse_args(argv)
    res = run(opts.scale, opts.cache, opts.runs, opts.writes)
    res |= {"scale": opts.scale, "command": "python -m bench.start " + " ".join(
        argv if argv is not None else sys.argv[1:]),
        "started_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}", "machine": machine()}
    out = opts.out or Path(f"bench/results/start-{opts.scale}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    log(f"wrote {out}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
