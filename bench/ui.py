"""The web UI in headless Chromium: layout and drawing time of large neighbourhoods, and the
README's screenshots.

    python -m bench.ui [--size 5000] [--nodes 200,1000] [--repeat 3] [--out bench/results]
    python -m bench.ui --screenshots docs     # also write docs/ui-*.png
    python -m bench.ui --quick                # 50 nodes, once (the smoke test)

Serves a demo estate of ``--size`` CIs (``bench.serve``), opens the map of the core switch
``sw-core-fra1-01`` upstream with ``maxNodes`` = each of ``--nodes`` and grouping off, and reads
the page's own timings (``window.cmdb.timings``): ``layout`` is ELK's layered layout plus
cytoscape's placement, ``draw`` the time until the next frame is painted. A benchmark, not a
timed test: it writes ``ui.md`` and ``ui.json`` under ``--out`` and asserts only that the
drawn map has the nodes asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.browser import chromium, demo_server

_DRAWN = ("() => window.cmdb && window.cmdb.timings && "
          "!document.getElementById('status').textContent.startsWith('Load')")


def _find(base: str, text: str) -> str:
    resp = httpx.post(f"{base}/graphql", timeout=60, json={
        "query": "query($t: String!) { search(text: $t, first: 1) { ... on SearchResults "
                 "{ hits { ci { ciId } } } } }", "variables": {"t": text}})
    ci_id: str = resp.json()["data"]["search"]["hits"][0]["ci"]["ciId"]
    return ci_id


def _gql(base: str, query: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.post(f"{base}/graphql", json={"query": query},
                                      timeout=60).json()["data"]
    return data


def measure(base: str, nodes: list[int], repeat: int) -> list[dict[str, Any]]:
    """Per node count: layout and draw times (ms) of ``repeat`` page loads."""
    core = _find(base, "sw-core-fra1-01")
    out = []
    with chromium() as browser:
        page = browser.new_page()
        for n in nodes:
            runs = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                page.goto(f"{base}/#ci={core}&depth=6&dir=upstream&max={n}&group=0")
                page.reload()
                page.wait_for_function(_DRAWN, timeout=300_000)
                total = (time.perf_counter() - t0) * 1000
                t = page.evaluate("() => window.cmdb.timings")
                if t["nodes"] != n:
                    raise AssertionError(f"asked for {n} nodes, the map drew {t['nodes']}")
                runs.append({"layout_ms": t["layout"], "draw_ms": t["draw"],
                             "edges": t["edges"], "page_ms": total})
            out.append({
                "nodes": n, "edges": runs[0]["edges"], "runs": runs,
                "layout_ms_median": statistics.median(r["layout_ms"] for r in runs),
                "draw_ms_median": statistics.median(r["draw_ms"] for r in runs),
                "page_ms_median": statistics.median(r["page_ms"] for r in runs),
            })
    return out


def screenshots(base: str, folder: Path) -> list[Path]:
    """The map, a change impact and a probable cause on the demo estate, as PNGs."""
    payments = _find(base, "Payments")
    changes = _gql(base, "{ changes(first: 50) { edges { node { changeId title ciIds } } } }")
    patched = next(e["node"] for e in changes["changes"]["edges"]
                   if e["node"]["title"] == "Kernel update, first node")
    incidents = _gql(base, "{ incidents(first: 10) { edges { node { ciIds } } } }")
    affected = ",".join(e["node"]["ciIds"][0] for e in incidents["incidents"]["edges"][:2])
    views = {
        "ui-map.png": f"#ci={payments}&depth=4&dir=downstream&sel={payments}",
        "ui-impact.png": f"#ci={patched['ciIds'][0]}&change={patched['changeId']}&tab=impact",
        "ui-incident.png": f"#cause={affected}&tab=incident",
    }
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with chromium(1500, 900) as browser:
        page = browser.new_page()
        for name, view in views.items():
            page.goto(f"{base}/{view}")
            page.reload()
            page.wait_for_function(_DRAWN, timeout=120_000)
            page.wait_for_timeout(1500)  # badges and the details panel
            page.screenshot(path=folder / name)
            written.append(folder / name)
    return written


def report(size: int, results: list[dict[str, Any]], load: float) -> str:
    lines = [
        "# Web UI: layout and drawing in headless Chromium",
        "",
        f"Demo estate of {size} CIs; the map of `sw-core-fra1-01` upstream, `maxNodes` = N, "
        "grouping off; Debian's chromium (headless, no GPU) on "
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.1f} when it "
        "started (other work shares the machine); `python -m bench.ui` (medians of the runs).",
        "",
        "| CIs drawn | relationships | ELK layout + placement (ms) | first paint after (ms) "
        "| page load to drawn map (ms) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['nodes']} | {r['edges']} | {r['layout_ms_median']:.0f} | "
                     f"{r['draw_ms_median']:.0f} | {r['page_ms_median']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=5000, help="CIs in the demo estate")
    parser.add_argument("--nodes", default="200,1000", help="neighbourhood sizes to draw")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="also write ui-map.png, ui-impact.png, ui-incident.png here")
    parser.add_argument("--quick", action="store_true", help="1000 CIs, 50 nodes, once")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    size, nodes, repeat = args.size, [int(n) for n in args.nodes.split(",")], args.repeat
    if args.quick:
        size, nodes, repeat = 1000, [50], 1
    with tempfile.TemporaryDirectory() as tmp, demo_server(size, Path(tmp)) as base:
        results = measure(base, nodes, repeat)
        if args.screenshots is not None:
            for path in screenshots(base, args.screenshots):
                print(f"wrote {path}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"size": size, "load_average": load, "results": results}
    (args.out / "ui.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = report(size, results, load)
    (args.out / "ui.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
