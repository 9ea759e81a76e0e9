"""The machine's description and the results as markdown and JSON."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["machine", "write_results", "markdown"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions, load average."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _mem_total(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "networkx": _version("networkx"),
        "neo4j_driver": _version("neo4j"),
        "load_average_at_start": list(os.getloadavg()),
    }


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    ms = seconds * 1000
    if ms < 1:
        return f"{ms:.3f}"
    if ms < 100:
        return f"{ms:.2f}"
    return f"{ms:,.0f}"


def _num(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def markdown(res: dict[str, Any]) -> str:
    """The results as a markdown document."""
    m = res["machine"]
    lines = [
        f"# cmdb-graph benchmark: {res['scale']} ({res['cis']:,} CIs)",
        "",
        f"Run {res['started_at']} in {res['duration_s']:.0f} s with "
        f"`{res['command']}`. All figures from the same run; ratios are ours / baseline.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu_model']} ({m['cores']} cores) |",
        f"| Memory | {_num((m['memory_bytes'] or 0) / 2**30, '{:.1f}')} GiB |",
        f"| OS | {m['os']} |",
        f"| Python | {m['python']} |",
        f"| numpy / scipy / networkx | {m['numpy']} / {m['scipy']} / {m['networkx']} |",
        f"| Neo4j server / driver | {m.get('neo4j_server', 'n/a')} / {m['neo4j_driver']} |",
        f"| Load average at start / end | "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])} / "
        f"{', '.join(f'{x:.1f}' for x in m.get('load_average_at_end', []))} |",
        "",
        f"Estate: {', '.join(f'{k} {v:,}' for k, v in res['estate'].items())}.",
        "",
    ]
    imp = res.get("import")
    if imp:
        lines += [
            "## Import",
            "",
            f"{imp['cis']:,} CI records and {imp['relationships']:,} relationship records "
            f"({imp['records']:,} records; the first {imp['cis']:,} CIs of the estate in "
            "generation order and the relationships among them). Ours: "
            "`cmdb_graph.ingest.run_import` (identification, reconciliation, lineage, one "
            "import run). Plain: UNWIND batches of 10,000 rows, MERGE by `ci_id` (the "
            "Cartography style), on the same Neo4j.",
            "",
            "| path | seconds | records/s | vs plain loader | CIs | relationships |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, label in (("memory", "ours, embedded store"), ("neo4j", "ours, Neo4j"),
                           ("plain", "plain UNWIND/MERGE, Neo4j")):
            row = imp.get(key)
            if not row:
                continue
            lines.append(
                f"| {label} | {row['seconds']:.2f} | {row['rps']:,.0f} | "
                f"{_num(row.get('vs_plain'), '{:.2f}')} | {row['cis']:,} | "
                f"{row['relationships']:,} |"
            )
        lines.append("")
        bulk = res.get("bulk_load", {})
        if bulk:
            lines.append(
                "Whole estate for the queries below, through the stores' batch path "
                "(`apply`, as `cmdb-graph demo` loads): "
                + "; ".join(f"{k} {v['seconds']:.1f} s ({v['rps']:,.0f} rows/s)"
                            for k, v in bulk.items())
                + "."
            )
            lines.append("")
    impact = res.get("impact")
    if impact:
        lines += [
            "## Change impact",
            "",
            "Latency in ms (p50 / p95 over the samples). *engine*: "
            "`cmdb_graph.service.engine.Engine.change_impact` as the GraphQL API calls it, after "
            "the engine's first call: the status of every CI in the closure (redundancy rules, "
            "optional edges, cycles), the summary and the redundancy headroom; the impacted "
            "items and their explaining paths (3 per CI) are built when read, as the API "
            "serialises them, so they are not in the timing (see the full read below); the "
            "same-answers check converts to ids outside the timing, as for scipy. The methods "
            "are timed interleaved, seed by seed, each timed call right after an untimed one of "
            "the same method. On both stores it runs on the engine's "
            "cached whole-graph "
            "topology, rebuilt after every write (on Neo4j each question first reads the "
            "database's write counter and node and relationship totals: one small query). "
            "*Cypher*: a hand-written quantified-path query returning the "
            "impacted ids. *networkx*: `ancestors` over needs-oriented edges. *scipy*: "
            "`breadth_first_order` on a CSR matrix (the floor of a reachability pass).",
            "",
            "| case | closure | samples | engine, embedded | engine, Neo4j | Cypher | "
            "networkx | scipy BFS | embedded / scipy | Neo4j / Cypher |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for case, c in impact["cases"].items():
            meth = c["methods"]

            def cell(name: str, meth: dict[str, Any] = meth) -> str:
                v = meth.get(name)
                return "n/a" if not v else f"{_ms(v['p50'])} / {_ms(v['p95'])}"

            lines.append(
                f"| {case} | {c['closure_mean']:,.0f} | {c['samples']} | {cell('engine_memory')} | "
                f"{cell('engine_neo4j')} | {cell('cypher')} | {cell('networkx')} | "
                f"{cell('scipy')} | {_num(c.get('ratio_memory_vs_scipy'), '{:.1f}x')} | "
                f"{_num(c.get('ratio_neo4j_vs_cypher'), '{:.2f}x')} |"
            )
        lines.append("")
        cold = impact.get("engine_cold_s")
        if cold is not None:
            lines.append(
                f"First call on the embedded store (builds the cached dependency graph and "
                f"topology): {cold:.2f} s. The VM case inside the engine, without HTTP: "
                f"p50 {_ms(impact['cases']['vm']['methods']['engine_memory']['p50'])} ms."
            )
            lines.append("")
        full = impact.get("core_full_read_s")
        if full is not None:
            lines.append(
                f"Reading every impacted item of the core switch with its explaining paths "
                f"(what a client asking for the whole closure with `paths` makes the API do; "
                f"{impact.get('core_full_read_paths', 0):,} paths), once, on the embedded "
                f"store: {full:.2f} s."
            )
            lines.append("")
        cold_neo = impact.get("engine_cold_neo4j_s")
        if cold_neo is not None:
            lines.append(
                f"First call on Neo4j (reads the whole dependency graph from the database and "
                f"builds the topology; paid again by the first question after any write): "
                f"{cold_neo:.2f} s, against {cold:.2f} s on the embedded store."
                if cold is not None else f"First call on Neo4j: {cold_neo:.2f} s."
            )
            lines.append("")
    gql = res.get("graphql")
    if gql:
        lines += [
            "## GraphQL",
            "",
            f"`graphql/operations/ChangeImpact.graphql` for random VMs, {gql['clients']} "
            "concurrent clients (HTTP/1.1 keep-alive connections, one asyncio task each, "
            "every answer decoded and checked) against uvicorn on 127.0.0.1 (one process, "
            "a subprocess of the bench; clients and server share the machine).",
            "",
            "| store | requests | errors | p50 ms | p95 ms | requests/s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, g in gql["stores"].items():
            lines.append(
                f"| {key} | {g['requests']} | {g['errors']} | {_ms(g['p50'])} | "
                f"{_ms(g['p95'])} | {g['rps']:.1f} |"
            )
        lines.append("")
    mem = res.get("memory")
    if mem:
        lines += ["## Memory", ""]
        if "embedded" in mem:
            e = mem["embedded"]
            lines.append(
                f"Embedded store, fresh process loading the database: "
                f"{e['loaded_bytes'] / 2**20:,.0f} MiB resident for {e['cis']:,} CIs "
                f"(with their assets, people and ITSM records): "
                f"{e['bytes_per_ci']:,.0f} B per CI, "
                f"{e['bytes_per_100k_cis'] / 2**20:,.0f} MiB per 100k CIs; "
                f"with the API engine's cached graph and topology "
                f"{e['with_engine_bytes_per_ci']:,.0f} B per CI."
            )
        if mem.get("neo4j"):
            n = mem["neo4j"]
            lines.append(
                f"Neo4j store on disk after loading the estate: store files "
                f"{n['store_bytes'] / 2**20:,.0f} MiB, transaction logs "
                f"{n['transaction_log_bytes'] / 2**20:,.0f} MiB (fresh home; the import "
                "comparison before it wrote and deleted its own data there)."
            )
        lines.append("")
    lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in res.get("targets", []):
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    lines += ["", "## Same answers", "", "| check | result |", "|---|---|"]
    for c in res.get("checks", []):
        lines.append(f"| {c['name']} | {'ok' if c['ok'] else '**MISMATCH** ' + c['detail']} |")
    notes = res.get("notes")
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in notes]
    profiles = res.get("profiles")
    if profiles:
        lines += ["", "## Profiles", ""]
        for name, text in profiles.items():
            lines += [f"### {name}", "", "```", text.rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


def write_pair(out_dir: Path, stem: str, text: str, res: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``<stem>.md`` (``text``) and ``<stem>.json`` (``res``) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md.write_text(text)
    js.write_text(json.dumps(res, indent=2, sort_keys=True, default=str) + "\n")
    return md, js


def write_results(res: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``<scale>.md`` and ``<scale>.json`` into ``out_dir``."""
    return write_pair(out_dir, str(res["scale"]), markdown(res), res)
