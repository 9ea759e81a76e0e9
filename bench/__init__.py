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

Figures are ratios against baselines measured in the same run, because the machines are noisy.
The baselines' Cypher lives here, in ``bench/``; it is not product code.
"""
