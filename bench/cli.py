"""Command line: ``python -m bench run|mixed|table13|soak [options]``.

* ``run --scale 10k [--scale 100k]``: the engine against its baselines (:mod:`bench.runner`).
* ``mixed --store embedded|neo4j --cis 100k [--seconds 60] [--smoke]``: readers while one
  writer streams deltas (:mod:`bench.mixed`).
* ``table13 --store embedded|neo4j --cis 100k [--samples 10]``: issue 13's table over HTTP
  (:mod:`bench.table13`).
* ``soak --store embedded|neo4j --minutes 10 --clients 16 [--smoke]``: clients reading and
  writing, then every acknowledged write checked after a kill -9 of the server
  (:mod:`bench.soak`).
"""

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
    _live_commands(sub)
    args = parser.parse_args(args_list)
    if args.command in ("mixed", "table13", "soak"):
        return _run_live(args, args_list)
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


def _live_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    results = Path(__file__).resolve().parent / "results"
    for name, text in (("mixed", "readers while one writer streams discovery deltas and ITSM "
                                 "records: bench/results/mixed-<store>-<cis>.md|json"),
                       ("table13", "issue 13's table over HTTP: "
                                   "bench/results/table13-<store>-<cis>.md|json"),
                       ("soak", "clients reading and writing for minutes, then every "
                                "acknowledged write checked after a kill -9 of the server: "
                                "bench/results/soak-<store>-<minutes>m.md|json")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--store", choices=("embedded", "neo4j"), default="embedded",
                       help="embedded (cmdb-graph demo) or neo4j (a fresh devserver, or "
                            "NEO4J_URI)")
        p.add_argument("--cis", default="2k" if name == "soak" else "100k",
                       help="estate size: 2k, 100k, 1m, ... (default 100k; soak 2k)")
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--out", type=Path, default=results,
                       help="results folder (default bench/results)")
        p.add_argument("--clear-neo4j", action="store_true",
                       help="allow clearing a non-empty database that NEO4J_URI names")
        if name == "mixed":
            p.add_argument("--seconds", type=float, default=60.0,
                           help="length of each phase (without writes, under the stream)")
            p.add_argument("--clients", type=int, default=16, help="reading clients")
            p.add_argument("--write-rate", type=float, default=10.0,
                           help="discovery batches per second")
            p.add_argument("--batch-cis", type=int, default=50, help="CIs per discovery batch")
            p.add_argument("--itsm-rate", type=float, default=2.0,
                           help="ITSM records (incidents, changes) per second")
            p.add_argument("--smoke", action="store_true",
                           help="2,000 CIs and 5 s phases (the CI smoke test)")
            p.add_argument("--subscribers", type=int, default=0,
                           help="also a third phase with N webhook receivers on 127.0.0.1 "
                                "subscribed to every event")
        elif name == "soak":
            p.add_argument("--minutes", type=float, default=10.0, help="length of the load")
            p.add_argument("--clients", type=int, default=16,
                           help="clients, each reading and writing")
            p.add_argument("--smoke", action="store_true",
                           help="2,000 CIs and 15 s (the CI smoke test)")
        else:
            p.add_argument("--samples", type=int, default=10, help="samples per row")
            p.add_argument("--two-processes", action="store_true",
                           help="also: a write through one API process, the next question "
                                "through a second one on the same store (Neo4j)")
            p.add_argument("--restarts", type=int, default=3,
                           help="embedded store: stop (checkpoint) and start the server this "
                                "many times, a write between")


def _run_live(args: argparse.Namespace, argv: list[str]) -> int:
    from bench.live import parse_size

    command = "python -m bench " + shlex.join(argv)
    cis = parse_size(args.cis)
    if args.command == "soak":
        from bench import soak

        minutes = args.minutes
        if args.smoke:
            cis, minutes = 2_000, 0.25
        return soak.main(soak.SoakOptions(
            store=args.store, cis=cis, seed=args.seed, minutes=minutes, clients=args.clients,
            out_dir=args.out, clear_neo4j=args.clear_neo4j, command=command,
        ))
    if args.command == "mixed":
        from bench import mixed

        seconds = args.seconds
        if args.smoke:
            cis, seconds = 2_000, 5.0
        return mixed.main(mixed.MixedOptions(
            store=args.store, cis=cis, seed=args.seed, seconds=seconds, clients=args.clients,
            write_rate=args.write_rate, batch_cis=args.batch_cis, itsm_rate=args.itsm_rate,
            out_dir=args.out, clear_neo4j=args.clear_neo4j, command=command,
            subscribers=args.subscribers,
        ))
    from bench import table13

    return table13.main(table13.TableOptions(
        store=args.store, cis=cis, seed=args.seed, samples=args.samples,
        two_processes=args.two_processes, restarts=args.restarts, out_dir=args.out,
        clear_neo4j=args.clear_neo4j, command=command,
    ))
