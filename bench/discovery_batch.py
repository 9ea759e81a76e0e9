"""One discovery batch through GraphQL on the embedded store, in process: the writer of the
``mixed`` scenario without the network and the readers.

``python -m bench.discovery_batch --scale 100k --batches 10`` loads a copy of the cached estate
database (:func:`bench.feed_engine.database_for`), builds the API app around it and posts
``DiscoveryUpsert`` (``ciUpsert``) batches through FastAPI's test client: 40 existing VMs
identified by FQDN with a new description, and 10 new VMs each with a ``HOSTED_ON``
relationship to a server, as the ``mixed`` writer sends them. Prints the p50 and p95 of a
batch (after 3 untimed ones) as one JSON line. Run it under ``py-spy record`` to see where a
batch's time goes.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bench.feed_engine import database_for, working_copy
from bench.workload import SCALES
from cmdb_graph.api.app import create_app
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import CIFilter
from cmdb_graph.store.memory import MemoryStore

__all__ = ["main"]

OPERATION = (Path(__file__).resolve().parents[1] / "graphql" / "operations"
             / "DiscoveryUpsert.graphql")


def main(argv: list[str] | None = None) -> int:
    """Run the bench; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.discovery_batch")
    parser.add_argument("--scale", choices=sorted(SCALES), default="100k")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=Path(".cmdb/bench"))
    opts = parser.parse_args(argv)
    copy = working_copy(database_for(opts.scale, opts.cache))
    store = MemoryStore(database_path=copy)
    op = OPERATION.read_text()
    vms = [v for v in store.list_cis(CIFilter(ci_class="VirtualMachine"), limit=1000).items
           if v.fqdn]
    hosts = [c.ci_id for c in store.list_cis(CIFilter(ci_class="Server"), limit=200).items]
    client = TestClient(create_app(Settings(api_keys=[], max_results=10_000_000), store),
                        base_url="http://127.0.0.1")
    rng = random.Random(3)

    def batch(k: int) -> float:
        cis: list[dict[str, Any]] = [
            {"ciClass": "VirtualMachine", "name": v.name, "identifiers": {"fqdn": v.fqdn},
             "description": f"seen {k}"} for v in rng.sample(vms, 40)]
        rels: list[dict[str, Any]] = []
        for j in range(10):
            name, key = f"vm-batch-{k}-{j}", f"batch-{k}-{j}"
            cis.append({"ciClass": "VirtualMachine", "name": name,
                        "identifiers": {"nativeKey": key, "fqdn": f"{name}.bench.example.net"},
                        "environment": "production", "operationalStatus": "OPERATIONAL"})
            rels.append({"relType": "HOSTED_ON", "source": {"identifiers": {"nativeKey": key}},
                         "target": {"ciId": rng.choice(hosts)}})
        variables = {"input": {"source": "bench-discovery", "priority": 60, "cis": cis,
                               "relationships": rels}}
        t0 = time.perf_counter()
        resp = client.post("/graphql", json={"query": op, "variables": variables})
        took = time.perf_counter() - t0
        if resp.status_code != 200 or "errors" in resp.json():
            raise RuntimeError(f"batch {k} failed: {resp.text[:300]}")
        return took

    for k in range(3):
        batch(k)
    times = sorted(batch(k) for k in range(3, 3 + opts.batches))
    print(json.dumps({
        "command": "python -m bench.discovery_batch " + " ".join(argv or sys.argv[1:]),
        "scale": opts.scale, "batches": len(times),
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": times[min(len(times) - 1, round(0.95 * len(times)) - 1)] * 1000,
    }))
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
