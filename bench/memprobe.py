"""Resident memory of the embedded store, measured in a fresh process.

``python -m bench.memprobe <database>`` prints one JSON line: RSS after importing the store's
modules (``before``), after loading the database (``loaded``), and after the API's engine built
its cached whole graph and topology (``with_engine``), in bytes; and the seconds each step took
(``load_s``: the store from the database, or from its checkpoint when one is beside it;
``build_s``: the engine's graph and topology, built or taken from the checkpoint;
``first_question_s``: the change impact of the first virtual machine); ``resumed`` says
whether the checkpoint was used.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def rss() -> int:
    """Resident set size of this process in bytes (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(argv: list[str]) -> int:
    """Load the database ``argv[0]`` and print the RSS figures as JSON."""
    from cmdb_graph.service.engine import Engine
    from cmdb_graph.settings import Settings
    from cmdb_graph.store.memory import MemoryStore

    before = rss()
    t0 = time.perf_counter()
    store = MemoryStore(database_path=Path(argv[0]))
    load_s = time.perf_counter() - t0
    loaded = rss()
    n_ci = store.counts()["CI"]
    engine = Engine(store, Settings(max_results=10_000_000))
    t0 = time.perf_counter()
    engine.whole_graph()
    build_s = time.perf_counter() - t0
    graph = engine.whole_graph()
    vm = next(c for c in sorted(graph.ci_ids()) if graph.ci_class(c) == "VirtualMachine")
    t0 = time.perf_counter()
    engine.change_impact([vm])
    first_s = time.perf_counter() - t0
    with_engine = rss()
    print(json.dumps({"before": before, "loaded": loaded, "with_engine": with_engine,
                      "cis": n_ci, "load_s": load_s, "build_s": build_s,
                      "first_question_s": first_s, "start_to_answer_s": load_s + build_s + first_s,
                      "resumed": bool(engine.stats.get("resumed", 0))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
