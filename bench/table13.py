"""The rows of issue 13's table, measured over HTTP as a new user meets them.

``python -m bench table13 --store embedded --cis 100k`` (``--store neo4j``, ``--cis 1m``,
``--samples 10``) writes ``bench/results/table13-<store>-<cis>.md`` and ``.json``.

Against a real ``cmdb-graph serve`` process on the seeded estate (see :mod:`bench.live`), one
client, one request at a time:

1. *Server start + first question*: launch to the first ``200`` from ``/healthz``, then the
   documented ``ChangeImpact`` operation on a random VM (the server builds its caches).
2. *Warm question*: the same operation on other VMs (``--samples`` of them).
3. *Core switch*: ``changeImpact(ciIds: [<sw-core-fra1-01>], servicesOnly: true)`` asking only
   the summary (as ``cmdb-graph demo`` prints it), ``--samples`` times.
4. *One ``ciUpsert`` of one CI*: the documented ``DiscoveryUpsert`` operation with one existing
   VM, found by FQDN, with a new description; then *the next question*: ``ChangeImpact`` of
   another random VM. ``--samples`` pairs.
5. *One ``incidentRecord``*: the documented ``RecordIncident`` operation on a random VM; then
   the next question, as above. ``--samples`` pairs.
6. *Server resident memory* after all of it (and the peak, sampled between requests).
   Embedded store: then ``--restarts`` times (default 3): the server is stopped (SIGTERM; it
   writes its checkpoint, timed) and started again on the same database: *server restart +
   first question* from the checkpoint, and one ``ciUpsert`` so that the next stop writes a new
   checkpoint (reported as the median and the range: one start is a noisy sample).
7. With ``--two-processes`` (Neo4j): a second ``cmdb-graph serve`` on the same database; one
   ``ciUpsert`` through the first, then the next question through the second (the CI's change
   impact and its description, which must be the one just written: a violation otherwise).

Each write's answer is checked (its type, the CI it named); an error or a cross-process
violation makes the run exit 1.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.live import (
    Estate,
    GqlClient,
    GqlError,
    ServeProcess,
    build_estate,
    latency_stats,
    log,
    size_label,
)
from bench.report import write_pair

__all__ = ["TableOptions", "run_table", "main"]

OPS = Path(__file__).resolve().parents[1] / "graphql" / "operations"

#: Through the second API process, after a write through the first: the written CI's change
#: impact (an engine question) and its description (which must be the one just written).
SEEN_ELSEWHERE = """
query SeenElsewhere($ciId: ID!) {
  impact: changeImpact(ciIds: [$ciId]) {
    __typename
    ... on ChangeImpact { summary { total } }
    ... on UserError { code message }
  }
  seen: ci(ciId: $ciId) { ciId description }
}
"""

CORE_SUMMARY = """
query CoreSwitch($ciIds: [ID!]) {
  changeImpact(ciIds: $ciIds, servicesOnly: true) {
    __typename
    ... on ChangeImpact { summary { total servicesHit mostCriticalService } }
    ... on UserError { code message }
  }
}
"""


def _op(name: str) -> str:
    return (OPS / f"{name}.graphql").read_text()


@dataclass
class TableOptions:
    """What to run (see the module docstring)."""

    store: str = "embedded"
    cis: int = 100_000
    seed: int = 42
    samples: int = 10
    two_processes: bool = False
    restarts: int = 3
    out_dir: Path = Path(__file__).resolve().parent / "results"
    clear_neo4j: bool = False
    command: str = ""


def _typename(result: dict[str, Any], want: str) -> dict[str, Any]:
    if result.get("__typename") != want:
        raise GqlError(f"{result.get('__typename')}: {result.get('code')} {result.get('message')}")
    return result


class Table:
    """One client measuring the rows."""

    def __init__(self, estate: Estate, server: ServeProcess, opts: TableOptions,
                 other: ServeProcess | None = None) -> None:
        self.estate = estate
        self.server = server
        self.opts = opts
        self.other = GqlClient(other.url, timeout=3600.0) if other is not None else None
        self.violations: list[str] = []
        self.last_upsert: tuple[str, str] | None = None
        self.rng = random.Random(f"{opts.seed}-table13")
        self.client = GqlClient(server.url, timeout=3600.0)
        self.impact = _op("ChangeImpact")
        self.upsert = _op("DiscoveryUpsert")
        self.incident = _op("RecordIncident")
        self.tag = format(int(time.time()), "x")
        self.rows: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.core_summary: dict[str, Any] | None = None
        self.counter = 0

    async def timed(self, row: str, fn: Callable[[], Awaitable[None]]) -> None:
        t0 = time.perf_counter()
        try:
            await fn()
        except (GqlError, KeyError, TypeError, IndexError) as exc:
            self.errors.append(f"{row}: {type(exc).__name__}: {exc}"[:300])
            return
        finally:
            self.server.rss()
        self.rows.setdefault(row, []).append(time.perf_counter() - t0)

    async def vm_question(self) -> None:
        vm = self.rng.choice(self.estate.vms)
        data = await self.client.query(self.impact, {"ciIds": [vm]})
        _typename(data["changeImpact"], "ChangeImpact")

    async def core(self) -> None:
        data = await self.client.query(CORE_SUMMARY, {"ciIds": [self.estate.index.core_switch]})
        self.core_summary = _typename(data["changeImpact"], "ChangeImpact")["summary"]

    async def upsert_one(self) -> None:
        ci, name, fqdn = self.rng.choice(self.estate.vm_pool)
        self.counter += 1
        description = f"seen by bench-discovery {self.tag} #{self.counter}"
        self.last_upsert = None
        data = await self.client.query(self.upsert, {"input": {
            "source": "bench-discovery", "priority": 60,
            "cis": [{"ciClass": "VirtualMachine", "name": name, "identifiers": {"fqdn": fqdn},
                     "description": description}],
        }})
        payload = _typename(data["ciUpsert"], "CIUpsertPayload")
        if [c["ciId"] for c in payload["cis"]] != [ci]:
            raise GqlError(f"upsert of {ci} named {[c['ciId'] for c in payload['cis']]}")
        self.last_upsert = (ci, description)

    async def other_sees_upsert(self) -> None:
        """Through the second process: the upserted VM's change impact and its description."""
        assert self.other is not None and self.last_upsert is not None
        ci, description = self.last_upsert
        data = await self.other.query(SEEN_ELSEWHERE, {"ciId": ci})
        _typename(data["impact"], "ChangeImpact")
        if (data["seen"] or {}).get("description") != description:
            self.violations.append(f"{ci}: {(data['seen'] or {}).get('description')!r}")

    async def record_incident(self) -> None:
        ci = self.rng.choice(self.estate.vms)
        self.counter += 1
        data = await self.client.query(self.incident, {"input": {
            "incidentId": f"INC-T{self.tag}-{self.counter:05d}", "title": "bench",
            "openedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cis": [{"ciId": ci}],
        }})
        payload = _typename(data["incidentRecord"], "IncidentRecordPayload")
        if payload["incident"]["ciIds"] != [ci]:
            raise GqlError(f"incident on {ci} recorded on {payload['incident']['ciIds']}")

    async def run(self) -> None:
        n = self.opts.samples
        try:
            log("first question")
            await self.timed("first_question", self.vm_question)
            log(f"warm questions ({n})")
            for _ in range(n):
                await self.timed("warm_question", self.vm_question)
            log(f"core switch, services only ({n})")
            for _ in range(n):
                await self.timed("core_services_only", self.core)
            log(f"one ciUpsert of one CI, then the next question ({n})")
            for _ in range(n):
                await self.timed("upsert_one_ci", self.upsert_one)
                await self.timed("question_after_upsert", self.vm_question)
            log(f"one incidentRecord, then the next question ({n})")
            for _ in range(n):
                await self.timed("incident_record", self.record_incident)
                await self.timed("question_after_incident", self.vm_question)
            if self.other is not None:
                log(f"a ciUpsert through one process, the next question through the other ({n})")
                await self.timed("other_first_question", self.other_vm_question)
                for _ in range(n):
                    await self.timed("upsert_one_ci_a", self.upsert_one)
                    if self.last_upsert is not None:  # else the failed write is the error
                        await self.timed("question_other_process", self.other_sees_upsert)
        finally:
            self.client.close()
            if self.other is not None:
                self.other.close()

    async def other_vm_question(self) -> None:
        assert self.other is not None
        data = await self.other.query(self.impact, {"ciIds": [self.rng.choice(self.estate.vms)]})
        _typename(data["changeImpact"], "ChangeImpact")


#: Row key -> label, in the issue's order.
ROWS = (
    ("upsert_one_ci", "one `ciUpsert` of one CI"),
    ("question_after_upsert", "the next question after it (a VM's change impact)"),
    ("warm_question", "a VM's change impact, warm (no write before it)"),
    ("incident_record", "one `incidentRecord`"),
    ("question_after_incident", "the next question after it (a VM's change impact)"),
    ("core_services_only", "core switch, `changeImpact(servicesOnly: true)` summary"),
    ("upsert_one_ci_a", "two API processes: one `ciUpsert` of one CI through the first"),
    ("question_other_process", "the next question through the second (the CI's change impact "
                               "and description, checked)"),
)


def run_table(opts: TableOptions) -> tuple[dict[str, Any], bool]:
    """Measure the rows; returns the results and whether no error was counted."""
    from bench.report import machine

    started = time.monotonic()
    res: dict[str, Any] = {
        "scenario": "table13", "store": opts.store, "cis": opts.cis, "seed": opts.seed,
        "samples": opts.samples, "command": opts.command, "machine": machine(),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with tempfile.TemporaryDirectory(prefix="cmdb-bench-table13-") as tmp:
        estate = build_estate(opts.store, opts.cis, opts.seed, Path(tmp),
                              clear_neo4j=opts.clear_neo4j)
        try:
            res["estate"] = {"build_s": estate.build_seconds, "how": estate.command}
            log("server: cmdb-graph serve")
            server = ServeProcess(estate.env, Path(tmp) / "serve.log")
            other: ServeProcess | None = None
            try:
                res["server_start_s"] = server.start_seconds
                res["rss_after_start"] = server.rss()
                log(f"server up in {server.start_seconds:.1f} s")
                if opts.two_processes:
                    log("second server: cmdb-graph serve on the same store")
                    other = ServeProcess(estate.env, Path(tmp) / "serve-2.log")
                table = Table(estate, server, opts, other)
                asyncio.run(table.run())
                res["rss_end"] = server.rss()
                res["rss_peak"] = server.peak_rss
                if opts.store == "embedded":
                    _restart(res, estate, server, opts, Path(tmp))
            finally:
                server.stop()
                if other is not None:
                    other.stop()
        finally:
            estate.close()
    res["rows"] = {key: latency_stats(v) for key, v in table.rows.items()}
    res["samples_s"] = table.rows
    first = table.rows.get("first_question", [None])[0]
    res["first_question_s"] = first
    res["start_plus_first_question_s"] = (res["server_start_s"] + first
                                          if first is not None else None)
    res["core_summary"] = table.core_summary
    res["errors"] = table.errors + res.pop("restart_errors", [])
    res["two_processes"] = opts.two_processes
    res["cross_process_violations"] = table.violations
    res["duration_s"] = time.monotonic() - started
    res["machine"]["load_average_at_end"] = list(os.getloadavg())
    return res, not table.errors and not table.violations


def _restart(res: dict[str, Any], estate: Estate, server: ServeProcess, opts: TableOptions,
             tmp: Path) -> None:
    """``opts.restarts`` times: stop the server (it writes its checkpoint), start it again,
    ask the first question, write one CI (the next stop has a change to write)."""
    database = Path(estate.env["CMDB_DATABASE_PATH"])
    cycles: list[dict[str, Any]] = []
    res["restarts"] = cycles
    for i in range(opts.restarts):
        log(f"server: stop (writing its checkpoint), restart {i + 1} of {opts.restarts}")
        t0 = time.perf_counter()
        server.stop(grace=900.0)
        cycle: dict[str, Any] = {"stop_s": time.perf_counter() - t0}
        cycle["checkpoint_written"] = database.with_name(database.name + ".checkpoint").exists()
        log(f"server stopped in {cycle['stop_s']:.1f} s; starting it again")
        server = ServeProcess(estate.env, tmp / f"serve-restart-{i + 1}.log")
        try:
            cycle["start_s"] = server.start_seconds
            table = Table(estate, server, opts)
            table.rng = random.Random(f"{opts.seed}-restart-{i}")  # another VM, a new value
            table.counter = 1000 * (i + 1)

            async def first_then_write(table: Table = table, cycle: dict[str, Any] = cycle,
                                       server: ServeProcess = server) -> None:
                await table.timed("first_question", table.vm_question)
                cycle["rss"] = server.rss()
                await table.timed("upsert", table.upsert_one)

            asyncio.run(first_then_write())
            cycle["first_question_s"] = table.rows.get("first_question", [None])[0]
            res.setdefault("restart_errors", []).extend(table.errors)
        except BaseException:
            server.stop()
            raise
        cycles.append(cycle)
        log(f"restart {i + 1}: {cycle['start_s']:.1f} s + first question "
            f"{cycle['first_question_s']}")
    server.stop()


def _spread(values: list[float], fmt: str) -> str:
    """``median (min-max)`` of ``values`` with ``fmt`` (one value: just it)."""
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}-{fmt.format(max(values))})")


def _ms(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    return f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def markdown(res: dict[str, Any]) -> str:
    """The results as markdown, in the shape of issue 13's table."""
    store = "embedded" if res["store"] == "embedded" else "Neo4j"
    m = res["machine"]
    size = f"{res['cis']:,} CIs"
    lines = [
        f"# Issue 13's table: {store}, {size}",
        "",
        f"Run {res['started_at']} in {res['duration_s']:.0f} s with `{res['command']}`. "
        f"Estate written in {res['estate']['build_s']:.1f} s ({res['estate']['how']}). "
        "One client, one request at a time, over HTTP to a `cmdb-graph serve` subprocess on "
        f"127.0.0.1; {res['samples']} samples per row (p50 / p95, min-max).",
        "",
        f"Machine: {m['cpu_model']} ({m['cores']} cores), {m['memory_bytes'] / 2**30:.1f} GiB; "
        f"load average at start {m['load_average_at_start'][0]:.1f}, at end "
        f"{m['load_average_at_end'][0]:.1f} (other work shares the cores).",
        "",
        f"| | {size}, {store} |",
        "|---|---|",
    ]
    rows = res["rows"]
    samples = res["samples_s"]
    for key, label in ROWS:
        st = rows.get(key)
        if not st or not st["n"]:
            lines.append(f"| {label} | n/a |")
            continue
        lo, hi = min(samples[key]) * 1000, max(samples[key]) * 1000
        lines.append(f"| {label} | p50 {_ms(st['p50'])}, p95 {_ms(st['p95'])} "
                     f"({_ms(lo)}-{_ms(hi)}) |")
    first = res["first_question_s"]
    lines += [
        f"| server start + first question | {res['server_start_s']:.1f} s + "
        f"{'n/a' if first is None else f'{first:.1f} s'} |",
    ]
    cycles = [c for c in res.get("restarts", []) if c.get("first_question_s") is not None]
    if cycles:
        starts = [c["start_s"] for c in cycles]
        firsts = [c["first_question_s"] for c in cycles]
        both = [a + b for a, b in zip(starts, firsts, strict=True)]
        written = all(c["checkpoint_written"] for c in cycles)
        lines += [
            f"| server stop (SIGTERM; writes its checkpoint: {written}), median (range) of "
            f"{len(cycles)} | {_spread([c['stop_s'] for c in cycles], '{:.1f} s')} |",
            f"| server restart from the checkpoint + first question, median (range) of "
            f"{len(cycles)} | {_spread(starts, '{:.1f} s')} + {_spread(firsts, '{:.2f} s')}; "
            f"together {_spread(both, '{:.1f} s')} |",
            f"| server resident memory after a restart and its first question | "
            f"{_spread([(c['rss'] or 0) / 2**20 for c in cycles], '{:,.0f} MiB')} |",
        ]
    lines += [
        f"| server resident memory (after start / at the end / peak) | "
        f"{(res['rss_after_start'] or 0) / 2**20:,.0f} MiB / {(res['rss_end'] or 0) / 2**20:,.0f}"
        f" MiB / {(res['rss_peak'] or 0) / 2**20:,.0f} MiB |",
        "",
        f"Core switch summary: {res['core_summary']}.",
    ]
    if res.get("two_processes"):
        bad = res["cross_process_violations"]
        lines += ["", "Two API processes on one store: a write through the first, the next "
                  f"question through the second saw it {'every time' if not bad else 'NOT'} "
                  f"({len(bad)} violations)."]
        lines += [f"- violation: {v}" for v in bad[:5]]
    if res["errors"]:
        lines += ["", "## Errors", ""] + [f"- `{e}`" for e in res["errors"][:10]]
    return "\n".join(lines) + "\n"


def write_results(res: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``table13-<store>-<cis>.md`` and ``.json`` in ``out_dir``."""
    return write_pair(out_dir, f"table13-{res['store']}-{size_label(res['cis'])}",
                      markdown(res), res)


def main(opts: TableOptions) -> int:
    """Run, write the results, exit 1 on any error."""
    res, ok = run_table(opts)
    md, js = write_results(res, opts.out_dir)
    log(f"table13: wrote {md} and {js}; errors {len(res['errors'])}, cross-process "
        f"violations {len(res['cross_process_violations'])}")
    return 0 if ok else 1
