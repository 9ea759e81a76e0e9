"""The core switch's services-only change impact against scipy's BFS over the same closure,
in one process, interleaved, on the embedded store.

``python -m bench.core_switch --scale 100k`` loads the cached estate database of the scale
(:func:`bench.feed_engine.database_for`), builds the engine, then times, seed by seed
alternately, ``Engine.change_impact([core switch], services_only=True)`` (the summary the API
returns for ``changeImpact(servicesOnly: true)``, without HTTP and GraphQL) and scipy's
``breadth_first_order`` from the core switch on the engine's own forward CSR matrix (the floor
of a reachability pass over the same closure), and the same question through the API: the
GraphQL request ``changeImpact(ciIds: [...], servicesOnly: true) { summary }`` posted to the
application (:func:`cmdb_graph.api.app.create_app`, over its ASGI interface in this process: the
middleware, GraphQL parsing, validation, resolvers and JSON of every request, without a socket).
The engine timed is the application's own. Prints one JSON line; ``--out`` writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from scipy.sparse.csgraph import breadth_first_order

from bench.feed_engine import database_for
from bench.report import machine
from bench.table13 import CORE_SUMMARY
from bench.workload import SCALES
from cmdb_graph.api.app import create_app
from cmdb_graph.settings import Settings
from cmdb_graph.store.memory import MemoryStore

__all__ = ["main"]

#: The synthetic estate's core switch (most of the estate depends on it).
CORE_SWITCH = "sw-core-fra1-01"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.core_switch")
    parser.add_argument("--scale", choices=sorted(SCALES), default="100k")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=Path(".cmdb/bench"))
    parser.add_argument("--out", type=Path)
    opts = parser.parse_args(argv)
    store = MemoryStore(database_path=database_for(opts.scale, opts.cache))
    app = create_app(Settings(max_results=10_000_000), store)
    engine = app.state.cmdb.engine
    with engine.reading() as graph:
        assert graph is not None
        core = next(c for c in graph.ci_ids() if graph.name(c) == CORE_SWITCH)
        topo = graph.topology
        seed = int(topo.indexes([core])[0])
        matrix = topo.bfs_matrix()
    result = engine.change_impact([core], services_only=True)
    closure = breadth_first_order(matrix, seed, directed=True, return_predecessors=False)
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://127.0.0.1")
    body = {"query": CORE_SUMMARY, "variables": {"ciIds": [core]}}

    def ask() -> dict[str, Any]:
        resp = loop.run_until_complete(client.post("/graphql", json=body))
        found: dict[str, Any] = resp.json()["data"]["changeImpact"]
        return found

    answer = ask()
    assert answer["summary"]["total"] == result.summary.total, answer
    api: list[float] = []
    direct: list[float] = []
    bfs: list[float] = []
    for _ in range(opts.runs):
        t0 = time.perf_counter()
        ask()
        api.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        engine.change_impact([core], services_only=True).summary  # noqa: B018 - what the API reads
        direct.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        breadth_first_order(matrix, seed, directed=True, return_predecessors=False)
        bfs.append(time.perf_counter() - t0)
    loop.run_until_complete(client.aclose())
    loop.close()
    out: dict[str, Any] = {
        "command": "python -m bench.core_switch " + " ".join(argv or sys.argv[1:]),
        "machine": machine(), "scale": opts.scale, "core_switch": core,
        "closure": int(closure.size), "summary_total": result.summary.total,
        "api_p50_ms": statistics.median(api) * 1000,
        "engine_p50_ms": statistics.median(direct) * 1000,
        "scipy_bfs_p50_ms": statistics.median(bfs) * 1000,
    }
    out["ratio_p50"] = out["engine_p50_ms"] / out["scipy_bfs_p50_ms"]
    out["api_ratio_p50"] = out["api_p50_ms"] / out["scipy_bfs_p50_ms"]
    print(json.dumps(out))
    if opts.out:
        opts.out.write_text(json.dumps(out, indent=2) + "\n")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
