"""One benchmark run at one scale: import, change impact, GraphQL, memory, same answers."""

from __future__ import annotations

import cProfile
import gc
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.baselines import CsrImpact, CypherImpact, NxImpact, PlainLoader, impact_digraph
from bench.graphql_load import ApiServer, run_load
from bench.neo4j_server import Neo4jServer
from bench.workload import SCALES, SOURCE, Workload, build_workload, bulk_load, import_records
from bench.workload import pick_seeds as _pick
from cmdb_graph.ingest import run_import
from cmdb_graph.service.engine import Engine
from cmdb_graph.settings import Settings
from cmdb_graph.store.memory import MemoryStore

__all__ = ["Options", "run_scale"]

#: Limits of the engine in the benchmark: the core switch's closure at 1M is over the default
#: ``max_results`` (100,000), which the API would refuse; the depth cap stays the default.
BENCH_MAX_RESULTS = 10_000_000


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[bench {datetime.now(UTC).strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Options:
    """What to run."""

    scale: str
    seed: int = 42
    out_dir: Path = Path("bench/results")
    import_limit: int = 10_000
    neo4j: bool = True
    graphql: bool = True
    vm_samples: int = 30
    host_samples: int = 20
    core_samples: int = 7
    method_budget_s: float = 30.0
    graphql_requests: int = 800
    graphql_seconds: float = 20.0
    profile: bool = False
    clear_neo4j: bool = False
    command: str = ""


def _stats(samples: list[float]) -> dict[str, Any]:
    arr = np.asarray(samples)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "mean": float(arr.mean()),
        "n": len(samples),
    }


class Run:
    """State of one run."""

    def __init__(self, opts: Options, server: Neo4jServer | None) -> None:
        self.opts = opts
        self.server = server
        self.size = SCALES[opts.scale]
        self.checks: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.profiles: dict[str, str] = {}
        self.res: dict[str, Any] = {}
        self.settings = Settings(max_results=BENCH_MAX_RESULTS)
        self.neo_store: Any = None
        self.driver: Any = None

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        """Record a same-answers check."""
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        if not ok:
            log(f"MISMATCH: {name}: {detail}")

    # -- Neo4j ------------------------------------------------------------------------------
    def open_neo4j(self) -> None:
        from neo4j import GraphDatabase

        from cmdb_graph.store.neo4j import Neo4jStore

        assert self.server is not None
        self.neo_store = Neo4jStore(self.server.uri, self.server.user, self.server.password,
                                    batch_size=self.settings.batch_size)
        self.driver = GraphDatabase.driver(self.server.uri,
                                           auth=(self.server.user, self.server.password),
                                           notifications_min_severity="OFF")
        with self.driver.session(database="neo4j") as s:
            rec = s.run("CALL dbms.components() YIELD name, versions, edition "
                        "RETURN versions[0] AS v, edition AS e").single(strict=True)
            self.res["machine"]["neo4j_server"] = f"{rec['v']} {rec['e']}"
            if self.server.home is None and not self.opts.clear_neo4j:
                n = s.run("MATCH (n) RETURN count(n) AS n").single(strict=True)["n"]
                if n:
                    raise RuntimeError(
                        f"the Neo4j at {self.server.uri} holds {n} nodes and the bench clears "
                        "its database: pass --clear-neo4j to allow it, or unset NEO4J_URI to "
                        "let the bench start its own server"
                    )

    def close_neo4j(self) -> None:
        if self.neo_store is not None:
            self.neo_store.close()
        if self.driver is not None:
            self.driver.close()

    # -- import -----------------------------------------------------------------------------
    def bench_import(self, wl: Workload) -> None:
        limit = min(self.size, self.opts.import_limit)
        ci_rows, rel_rows = wl.import_slice(limit)
        records = import_records(ci_rows, rel_rows)
        n = len(records)
        out: dict[str, Any] = {"cis": len(ci_rows), "relationships": len(rel_rows), "records": n}
        now = datetime(2026, 1, 1, tzinfo=UTC)

        log(f"import: {n:,} records into the embedded store")
        mem = MemoryStore()
        t0 = time.perf_counter()
        run_import(mem, records, source=SOURCE, importer="bench", now=now)
        dt = time.perf_counter() - t0
        c = mem.counts()
        out["memory"] = {"seconds": dt, "rps": n / dt, "cis": c["CI"],
                         "relationships": c["relationships"]}
        del mem
        gc.collect()

        if self.opts.neo4j:
            rel_types = self.neo_store.registry.ci_relationship_types()
            plain = PlainLoader(self.driver, self.neo_store.registry)
            # warm the JVM on a small slice through both paths before timing either
            log("import: warming Neo4j up (both paths, 500 CIs)")
            w_cis, w_rels = wl.import_slice(min(500 if limit > 2_000 else 100, limit))
            plain.clear()
            plain.load(w_cis, w_rels)
            plain.clear()
            run_import(self.neo_store, import_records(w_cis, w_rels), source=SOURCE,
                       importer="bench", now=now)
            self.neo_store.clear()
            log(f"import: {n:,} rows through the plain UNWIND/MERGE loader")
            t0 = time.perf_counter()
            plain.load(ci_rows, rel_rows)
            dt = time.perf_counter() - t0
            pc, pr = plain.counts(rel_types)
            out["plain"] = {"seconds": dt, "rps": n / dt, "cis": pc, "relationships": pr}
            plain.clear()

            log(f"import: {n:,} records into Neo4j")
            t0 = time.perf_counter()
            run_import(self.neo_store, records, source=SOURCE, importer="bench", now=now)
            dt = time.perf_counter() - t0
            c = self.neo_store.counts()
            out["neo4j"] = {"seconds": dt, "rps": n / dt, "cis": c["CI"],
                            "relationships": c["relationships"]}
            self.neo_store.clear()
            for key in ("memory", "neo4j"):
                out[key]["vs_plain"] = out[key]["rps"] / out["plain"]["rps"]
            for key in ("memory", "neo4j"):
                self.check(
                    f"import: CIs and relationships, ours ({key}) = plain loader",
                    (out[key]["cis"], out[key]["relationships"]) == (pc, pr),
                    f"ours {out[key]['cis']}/{out[key]['relationships']} vs plain {pc}/{pr}",
                )
        self.check(
            "import: one CI per CI record and every relationship record (embedded store)",
            (out["memory"]["cis"], out["memory"]["relationships"])
            == (len(ci_rows), len(rel_rows)),
            f"{out['memory']['cis']}/{out['memory']['relationships']} vs "
            f"{len(ci_rows)}/{len(rel_rows)}",
        )
        self.res["import"] = out

    # -- impact -----------------------------------------------------------------------------
    def _time(
        self, methods: dict[str, Callable[[str], Any]], seeds: list[str], repeats: int
    ) -> dict[str, list[float]]:
        """Time ``fn(seed)`` of every method, interleaved: each seed runs through every method
        in turn (``repeats`` rounds), so a change of machine load hits all methods alike. Each
        timed call follows one untimed call of the same method on the same seed, so it runs
        with its own code and data in the CPU caches rather than the previous method's (no
        method caches answers). A method stops once it has 3 samples and has used its time
        budget."""
        samples: dict[str, list[float]] = {name: [] for name in methods}
        spent = dict.fromkeys(methods, 0.0)
        for _ in range(repeats):
            for seed in seeds:
                for name, fn in methods.items():
                    got = samples[name]
                    if len(got) >= 3 and spent[name] > self.opts.method_budget_s:
                        continue
                    fn(seed)  # warm the CPU caches for this method
                    t0 = time.perf_counter()
                    fn(seed)
                    dt = time.perf_counter() - t0
                    got.append(dt)
                    spent[name] += dt
        return samples

    def bench_impact(self, wl: Workload, mem: MemoryStore) -> None:
        registry = mem.registry
        graph = mem.dependency_graph()
        ig = impact_digraph(graph, registry)
        nxi = NxImpact(ig)
        csr = CsrImpact(ig)
        del graph
        engine_mem = Engine(mem, self.settings)
        t0 = time.perf_counter()
        engine_mem.change_impact([wl.index.core_switch])
        cold = time.perf_counter() - t0
        engine_neo = Engine(self.neo_store, self.settings) if self.opts.neo4j else None
        cyp = CypherImpact(self.driver, registry) if self.opts.neo4j else None
        cold_neo = None
        if engine_neo is not None:
            t0 = time.perf_counter()
            engine_neo.change_impact([wl.index.core_switch])
            cold_neo = time.perf_counter() - t0

        def ours(engine: Engine) -> Callable[[str], Any]:
            # the timed call: statuses of the whole closure, summary, redundancy, cycles; the
            # items of result.impacted (and their paths) are built when read, which only the
            # id conversion below does, outside the timing (as scipy's, in csr.impacted)
            def fn(seed: str) -> Any:
                result = engine.change_impact([seed])
                if result.truncated:
                    raise RuntimeError(f"impact of {seed} truncated at the depth cap")
                return result

            return fn

        def ids(fn: Callable[[str], Any]) -> Callable[[str], set[str]]:
            return lambda seed: set(fn(seed).impacted_ids())

        methods: dict[str, Callable[[str], Any]] = {
            "engine_memory": ours(engine_mem),
            "scipy": csr.reach,
            "networkx": nxi.impacted,
        }
        answers: dict[str, Callable[[str], set[str]]] = {
            "engine_memory": ids(methods["engine_memory"]),
            "scipy": csr.impacted,
            "networkx": nxi.impacted,
        }
        if engine_neo is not None and cyp is not None:
            methods["engine_neo4j"] = ours(engine_neo)
            methods["cypher"] = cyp.impacted
            answers["engine_neo4j"] = ids(methods["engine_neo4j"])
            answers["cypher"] = cyp.impacted
            # warm both paths (query plans, page cache) before timing
            for fn in (methods["engine_neo4j"], methods["cypher"]):
                fn(wl.index.core_switch)
        cases: dict[str, Any] = {}
        plan = (
            ("vm", self.opts.vm_samples, 1),
            ("host", self.opts.host_samples, 1),
            ("core", 1, self.opts.core_samples),
        )
        for case, count, repeats in plan:
            seeds = _pick(wl, count, case, self.opts.seed)
            sizes = []
            for seed in seeds[: min(len(seeds), 5)] if case != "core" else seeds:
                ref = answers["scipy"](seed)
                sizes.append(len(ref))
                for name, fn in answers.items():
                    if name == "scipy":
                        continue
                    got = fn(seed)
                    self.check(
                        f"impact {case} {seed}: {name} = scipy BFS ({len(ref):,} CIs)",
                        got == ref,
                        f"{len(got)} vs {len(ref)}; only {name}: {sorted(got - ref)[:3]}, "
                        f"only scipy: {sorted(ref - got)[:3]}",
                    )
            log(f"impact {case}: closure ~{int(np.mean(sizes)):,} CIs, {len(seeds)} seeds")
            meth: dict[str, Any] = {
                name: _stats(got) for name, got in self._time(methods, seeds, repeats).items()
            }
            entry: dict[str, Any] = {
                "closure_mean": float(np.mean(sizes)),
                "samples": len(seeds) * repeats,
                "methods": meth,
            }
            entry["ratio_memory_vs_scipy"] = meth["engine_memory"]["p50"] / meth["scipy"]["p50"]
            entry["ratio_memory_vs_networkx"] = (
                meth["engine_memory"]["p50"] / meth["networkx"]["p50"]
            )
            if "cypher" in meth:
                entry["ratio_neo4j_vs_cypher"] = meth["engine_neo4j"]["p50"] / meth["cypher"]["p50"]
            cases[case] = entry
        # what the API pays to serialise the core switch's whole closure: every impacted item
        # with its explaining paths, read from a fresh result (once; not a timed target)
        result = engine_mem.change_impact([wl.index.core_switch])
        t0 = time.perf_counter()
        n_paths = sum(len(c.paths) for c in result.impacted)
        full_read = time.perf_counter() - t0
        self.res["impact"] = {"cases": cases, "engine_cold_s": cold,
                              "engine_cold_neo4j_s": cold_neo,
                              "core_full_read_s": full_read, "core_full_read_paths": n_paths}
        if self.opts.profile:
            self.profiles["engine, embedded store, core switch"] = _profile(
                lambda: engine_mem.change_impact([wl.index.core_switch])
            )
            if engine_neo is not None:
                self.profiles["engine, Neo4j, core switch"] = _profile(
                    lambda: engine_neo.change_impact([wl.index.core_switch])
                )

    # -- GraphQL ----------------------------------------------------------------------------
    def bench_graphql(self, wl: Workload, snapshot: Path, nxi_check: NxImpact) -> None:
        seeds = _pick(wl, 64, "vm", self.opts.seed + 1)
        stores: dict[str, Any] = {}
        envs: dict[str, dict[str, str]] = {
            "embedded": {"CMDB_STORE": "memory", "CMDB_DATABASE_PATH": str(snapshot)},
        }
        if self.opts.neo4j and self.server is not None:
            envs["neo4j"] = {"CMDB_STORE": "neo4j", "CMDB_NEO4J_URI": self.server.uri,
                             "CMDB_NEO4J_USER": self.server.user,
                             "CMDB_NEO4J_PASSWORD": self.server.password}
        for key, env in envs.items():
            env = {**env, "CMDB_MAX_RESULTS": str(BENCH_MAX_RESULTS), "CMDB_API_KEYS": "[]"}
            log(f"graphql: {key} server, 16 clients")
            server = ApiServer(env)
            try:
                res = run_load(server.url, seeds, clients=16,
                               max_requests=self.opts.graphql_requests,
                               max_seconds=self.opts.graphql_seconds, check=seeds[:3])
            finally:
                server.stop()
            st = _stats(res.latencies) if res.latencies else {"p50": None, "p95": None}
            stores[key] = {"requests": len(res.latencies), "errors": len(res.errors),
                           "p50": st["p50"], "p95": st["p95"], "rps": res.rps,
                           "wall_s": res.wall, "first_errors": res.errors[:3]}
            self.check(f"graphql {key}: no errors", not res.errors,
                       "; ".join(res.errors[:2]))
            for seed in seeds[:3]:
                if seed in res.answers:
                    ref = nxi_check.impacted(seed)
                    self.check(f"graphql {key} {seed}: impacted = networkx",
                               res.answers[seed] == ref,
                               f"{len(res.answers[seed])} vs {len(ref)}")
        self.res["graphql"] = {"clients": 16, "stores": stores}

    # -- memory -----------------------------------------------------------------------------
    def bench_memory(self, snapshot: Path) -> None:
        proc = subprocess.run([sys.executable, "-m", "bench.memprobe", str(snapshot)],
                              capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1])
        probe = json.loads(proc.stdout.strip().splitlines()[-1])
        loaded = probe["loaded"] - probe["before"]
        engine = probe["with_engine"] - probe["before"]
        cis = probe["cis"]
        self.res.setdefault("memory", {})["embedded"] = {
            "cis": cis, "loaded_bytes": loaded, "bytes_per_ci": loaded / cis,
            "bytes_per_100k_cis": loaded / cis * 100_000,
            "with_engine_bytes": engine, "with_engine_bytes_per_ci": engine / cis,
            "snapshot_bytes": snapshot.stat().st_size,
        }

    def neo4j_size(self) -> None:
        if self.server is None:
            return
        size = self.server.store_size()
        self.res.setdefault("memory", {})["neo4j"] = size
        if size is None:
            self.notes.append("Neo4j store size not measured: NEO4J_URI names an external "
                              "server (its home is unknown to the bench).")

    # -- targets ----------------------------------------------------------------------------
    def targets(self) -> None:
        t: list[dict[str, Any]] = []
        imp = self.res.get("impact", {}).get("cases", {})
        here = self.opts.scale
        scale_note = "" if self.size >= 100_000 else f" (target set for 100k/1M; here {here})"
        if "core" in imp:
            r = imp["core"]["ratio_memory_vs_scipy"]
            t.append({"target": "impact, embedded, core switch: within 5x of scipy BFS (p50)"
                      + scale_note, "measured": f"{r:.1f}x", "met": r <= 5.0})
        if "vm" in imp:
            p = imp["vm"]["methods"]["engine_memory"]["p50"] * 1000
            t.append({"target": "impact, embedded, VM: under 1 ms in the engine (p50)",
                      "measured": f"{p:.3f} ms", "met": p < 1.0})
        for case, c in imp.items():
            if "ratio_neo4j_vs_cypher" in c:
                r = c["ratio_neo4j_vs_cypher"]
                t.append({"target": f"impact, Neo4j, {case}: ratio to hand-written Cypher <= 1.0 "
                          "(p50)", "measured": f"{r:.2f}", "met": r <= 1.0})
        im = self.res.get("import", {})
        for key in ("neo4j", "memory"):
            if key in im and "vs_plain" in im[key]:
                r = im[key]["vs_plain"]
                t.append({"target": f"import ({key}) with identification and reconciliation: "
                          ">= 0.5x the plain loader's records/s", "measured": f"{r:.2f}x",
                          "met": r >= 0.5})
        g = self.res.get("graphql", {}).get("stores", {}).get("embedded")
        if g and g["p95"] is not None:
            p = g["p95"] * 1000
            t.append({"target": "GraphQL change impact, VM, 16 clients, embedded: p95 < 100 ms"
                      + ("" if self.size >= 100_000 else f" (target at 100k; here {here})"),
                      "measured": f"{p:.1f} ms", "met": p < 100.0})
        e = self.res.get("memory", {}).get("embedded")
        if e:
            kb = e["bytes_per_ci"] / 1024
            t.append({"target": "embedded store: < 2.5 KB resident per CI"
                      + ("" if self.size >= 1_000_000 else f" (target at 1M; here {here})"),
                      "measured": f"{kb:.2f} KB", "met": kb < 2.5})
        self.res["targets"] = t


def _profile(fn: Callable[[], Any]) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(18)
    text = buf.getvalue()
    start = text.find("   ncalls")
    return text[start:] if start >= 0 else text


def run_scale(opts: Options, server: Neo4jServer | None) -> tuple[dict[str, Any], bool]:
    """Run every section at one scale; returns the results and whether all checks passed."""
    from bench.report import machine

    started = time.monotonic()
    run = Run(opts, server)
    run.res.update({
        "scale": opts.scale, "cis": run.size, "seed": opts.seed, "command": opts.command,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine(),
    })
    try:
        if opts.neo4j:
            run.open_neo4j()
            run.neo_store.clear()
        log(f"{opts.scale}: generating {run.size:,} CIs")
        wl = build_workload(run.size, opts.seed)
        run.res["estate"] = {k.lower(): v for k, v in sorted(wl.counts().items())}
        run.bench_import(wl)

        log("bulk load: embedded store")
        with tempfile.TemporaryDirectory(prefix="cmdb-bench-") as tmp:
            snapshot = Path(tmp) / "estate.db"
            mem = MemoryStore()
            rows = sum(wl.counts().values())
            t0 = time.perf_counter()
            bulk_load(mem, wl)
            dt = time.perf_counter() - t0
            run.res["bulk_load"] = {"embedded": {"seconds": dt, "rps": rows / dt}}
            mem.save_to(snapshot)
            if opts.neo4j:
                log("bulk load: Neo4j")
                t0 = time.perf_counter()
                bulk_load(run.neo_store, wl, chunk=run.neo_store.batch_size)
                dt = time.perf_counter() - t0
                run.res["bulk_load"]["neo4j"] = {"seconds": dt, "rps": rows / dt}
                run.neo4j_size()
            log("impact")
            run.bench_impact(wl, mem)
            nxi = NxImpact(impact_digraph(mem.dependency_graph(), mem.registry))
            del mem
            gc.collect()
            log("memory")
            run.bench_memory(snapshot)
            if opts.graphql:
                run.bench_graphql(wl, snapshot, nxi)
        if opts.neo4j:
            run.neo_store.clear()
    finally:
        run.close_neo4j()
    run.targets()
    run.res["machine"]["load_average_at_end"] = list(os.getloadavg())
    run.res["checks"] = run.checks
    run.res["notes"] = run.notes
    run.res["profiles"] = run.profiles
    run.res["duration_s"] = time.monotonic() - started
    ok = all(c["ok"] for c in run.checks) and bool(run.checks)
    run.res["same_answers"] = ok
    return run.res, ok
