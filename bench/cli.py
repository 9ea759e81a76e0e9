"""Command line: ``python -m bench run --scale 10k [--scale 100k] [options]``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench.neo4j_server import Neo4jServer
from bench.report import write_results
from bench.runner import Options, log, run_scale
from bench.workload import SCALES

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit 1 when an answer differs from its baseline, 2 on errors."""
    args_list = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the benchmarks and write bench/results/<scale>.md|json")
    run.add_argument("--scale", action="append", choices=sorted(SCALES), required=True,
                     help="estate size; repeat for several (one Neo4j for all)")
    run.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                     help="results folder (default bench/results)")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--import-limit", type=int, default=10_000,
                     help="CIs in the import comparison (default 10,000; the first CIs of "
                          "the estate and the relationships among them)")
    run.add_argument("--no-neo4j", action="store_true", help="embedded store only")
    run.add_argument("--no-graphql", action="store_true", help="skip the HTTP load test")
    run.add_argument("--quick", action="store_true",
                     help="fewer samples and shorter budgets (the CI smoke test)")
    run.add_argument("--clear-neo4j", action="store_true",
                     help="allow clearing a non-empty database that NEO4J_URI names")
    run.add_argument("--profile", action="store_true",
                     help="add cProfile listings of the core-switch impact to the results")
    args = run_args = parser.parse_args(args_list)
    del run_args
    server: Neo4jServer | None = None
    all_ok = True
    try:
        if not args.no_neo4j:
            log("Neo4j: using NEO4J_URI or starting a fresh one")
            server = Neo4jServer.acquire()
        for scale in args.scale:
            opts = Options(scale=scale, seed=args.seed, out_dir=args.out,
                           import_limit=args.import_limit, neo4j=not args.no_neo4j,
                           graphql=not args.no_graphql, profile=args.profile,
                           clear_neo4j=args.clear_neo4j,
                           command="python -m bench " + shlex.join(args_list))
            if args.quick:
                opts.vm_samples, opts.host_samples, opts.core_samples = 3, 3, 2
                opts.method_budget_s, opts.graphql_requests, opts.graphql_seconds = 3.0, 32, 3.0
                opts.import_limit = min(opts.import_limit, 1_000)
            res, ok = run_scale(opts, server)
            md, js = write_results(res, args.out)
            log(f"{scale}: wrote {md} and {js}; same answers: {'yes' if ok else 'NO'}")
            all_ok = all_ok and ok
    finally:
        if server is not None:
            server.release()
    return 0 if all_ok else 1
