"""The engine's lean whole graph, built straight from the embedded store's rows, is exactly the
store's full-shape dependency graph thinned out by ``lean_graph`` (what it replaces)."""

from __future__ import annotations

from typing import Any

import networkx as nx

from cmdb_graph.service.follow import lean_graph
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.memory import MemoryStore
from tests.contract.estate import ci, estate_batch, rel


def _shape(g: nx.MultiDiGraph) -> tuple[list[Any], list[Any]]:
    return (list(g.nodes(data=True)),
            sorted((u, v, k, sorted(d.items())) for u, v, k, d in g.edges(keys=True, data=True)))


def test_the_lean_dependency_graph_is_the_dependency_graph_made_lean() -> None:
    # Arrange: the contract estate plus CIs and edges with non-default values
    store = MemoryStore()
    store.apply(estate_batch())
    store.apply(WriteBatch(
        nodes=[ci("n1", "Application", ip_addresses=["10.0.0.1"], redundancy="1",
                  business_criticality=2),
               ci("n2", "Application", description="", environment=None)],
        relationships=[rel("RUNS_ON", "n1", "vm2", optional=True, properties={"p": 1}),
                       rel("DEPENDS_ON", "n2", "n1", inferred=True, evidence="seen")],
    ))
    full = store.dependency_graph()
    lean_graph(full)

    # Act
    lean = store.lean_dependency_graph()

    # Assert: same nodes in the same order with the same attributes, same edges
    assert _shape(lean) == _shape(full)
    assert lean.nodes["n1"]["ip_addresses"] == ["10.0.0.1"]
    assert "environment" not in lean.nodes["n2"] and lean.nodes["n2"]["description"] == ""
    assert lean.edges["n1", "vm2", "RUNS_ON"] == {"optional": True, "properties": {"p": 1}}
    assert lean.number_of_edges() > 2
