"""Benchmarks of cmdb-graph against baselines measured in the same run.

Run from the repository root::

    .venv/bin/python -m bench run --scale 10k

Scales: ``tiny`` (2,000 CIs, the CI smoke test), ``10k``, ``100k``, ``1m``. Each run writes
``bench/results/<scale>.md`` and ``bench/results/<scale>.json``: the machine's description,
import throughput (ours through identification and reconciliation vs. a plain ``UNWIND ...
MERGE`` loader), change-impact latency (ours on the embedded store and on Neo4j vs. a
hand-written Cypher query, ``networkx.ancestors`` and a scipy CSR breadth-first search),
GraphQL latency under 16 concurrent clients, and memory. Every comparison also checks that
both sides return the same answer; a mismatch makes the run exit non-zero.

Over HTTP, against a real ``cmdb-graph serve`` process on the same seeded estate (written by
``cmdb-graph demo`` for the embedded store, loaded into a fresh devserver for Neo4j)::

    .venv/bin/python -m bench mixed --store embedded --cis 100k     # bench/results/mixed-*.md
    .venv/bin/python -m bench mixed --store neo4j --cis 100k
    .venv/bin/python -m bench mixed --smoke                          # 2,000 CIs, 5 s phases
    .venv/bin/python -m bench table13 --store embedded --cis 100k   # bench/results/table13-*.md

``mixed`` (:mod:`bench.mixed`): 16 readers (change impact, neighbourhood, routing of random
CIs) for ``--seconds`` alone, then as long again while one writer streams discovery deltas
(10 batches/s of 50 CIs) and ITSM records (2/s), checking after each write that its next
question sees it; read p50/p95/p99 of both phases and their ratio, errors, write latency,
read-your-writes violations. ``table13`` (:mod:`bench.table13`): the rows of issue 13's table
(one upsert, the question after it, one incident, server start + first question, the core
switch's services-only summary, resident memory; ``--store neo4j --two-processes``: a write
through one API process and the next question through a second one). Both exit 1 on any
error (and on any read-your-writes violation); timings never fail a run.

Figures are ratios against baselines measured in the same run, because the machines are noisy.
The baselines' Cypher lives here, in ``bench/``; it is not product code.
"""
