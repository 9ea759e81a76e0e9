"""Both stores answer the same traversals on random graphs (cycles, parallel edges, loops)."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from cmdb_graph.model import Registry
from cmdb_graph.store.base import Direction, GraphStore, WriteBatch
from cmdb_graph.store.memory import MemoryStore
from tests.contract.estate import ci, rel

TYPES = ["DEPENDS_ON", "RUNS_ON", "HOSTED_ON", "MEMBER_OF", "CONTAINS", "CONNECTS_TO"]
CLASSES = ["Server", "VirtualMachine", "Application", "Cluster", "Rack"]


def random_batch(seed: int, n: int = 40, m: int = 90) -> WriteBatch:
    rng = random.Random(seed)
    ids = [f"r{i:03d}" for i in range(n)]
    cis = [ci(i, rng.choice(CLASSES)) for i in ids]
    rels = {
        (t, s, d): rel(t, s, d, optional=rng.random() < 0.2)
        for t, s, d in ((rng.choice(TYPES), rng.choice(ids), rng.choice(ids)) for _ in range(m))
    }
    return WriteBatch(nodes=cis, relationships=list(rels.values()))


def shape(g: nx.MultiDiGraph) -> tuple[set[str], set[tuple[str, str, str, bool]]]:
    return set(g.nodes), {(s, t, k, d["optional"]) for s, t, k, d in
                          g.edges(keys=True, data=True)}


@pytest.mark.neo4j
@pytest.mark.parametrize("seed", range(6))
def test_stores_agree_on_random_graphs(neo4j_store: GraphStore, seed: int) -> None:
    batch = random_batch(seed)
    memory = MemoryStore(registry=Registry())
    memory.apply(batch)
    neo4j_store.apply(batch)
    rng = random.Random(1000 + seed)

    assert neo4j_store.counts() == memory.counts()
    assert shape(neo4j_store.dependency_graph()) == shape(memory.dependency_graph())
    for _ in range(12):
        seeds = rng.sample([c.key for c in batch.nodes], rng.choice([1, 1, 2, 3]))
        direction = rng.choice(list(Direction))
        depth = rng.choice([None, 0, 1, 2, 3, 5])
        types = rng.choice([None, None, rng.sample(TYPES, 2)])

        got = neo4j_store.extract_subgraph(seeds, direction=direction, depth=depth,
                                           rel_types=types)
        want = memory.extract_subgraph(seeds, direction=direction, depth=depth,
                                       rel_types=types)

        assert shape(got) == shape(want), (seeds, direction, depth, types)
