"""The engine's lean whole graph, built straight from the embedded store's rows, reads exactly as
the store's full-shape dependency graph thinned out by ``lean_graph`` (what it replaces), and
shares the store's rows without being changed by later writes."""

from __future__ import annotations

from typing import Any

import networkx as nx

import impact
from cmdb_graph.model import ConfigurationItem
from cmdb_graph.service.follow import lean_graph
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.store.rows import field_kinds
from tests.contract.estate import ci, estate_batch, rel


def _edges(g: nx.MultiDiGraph) -> list[Any]:
    return sorted((u, v, k, sorted(d.items())) for u, v, k, d in g.edges(keys=True, data=True))


def _read(g: nx.MultiDiGraph) -> list[tuple[str, dict[str, Any]]]:
    """Every CI's fields as the impact functions read them (``ImpactGraph.attr``)."""
    ig = impact.ImpactGraph(g)
    fields = [f for f in field_kinds(ConfigurationItem).fields if f not in ("lineage", "ci_id")]
    return [(n, {f: ig.attr(n, f) for f in fields} | {"status": ig.status(n)}) for n in g]


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

    # Assert: same nodes in the same order read the same, same edges
    assert _read(lean) == _read(full)
    assert _edges(lean) == _edges(full)
    assert lean.nodes["n1"]["ip_addresses"] == ["10.0.0.1"]
    assert "environment" not in lean.nodes["n2"] and lean.nodes["n2"]["description"] == ""
    assert lean.edges["n1", "vm2", "RUNS_ON"] == {"optional": True, "properties": {"p": 1}}
    assert lean.number_of_edges() > 2


def test_the_lean_graph_shares_the_store_rows_and_keeps_them_through_later_writes() -> None:
    # Arrange
    store = MemoryStore()
    store.apply(estate_batch())
    store.apply(WriteBatch(nodes=[ci("n1", "Application", description="before")]))
    lean = store.lean_dependency_graph()
    shared = lean.nodes["n1"]

    # Act: the store writes the CI again
    store.apply(WriteBatch(nodes=[ci("n1", "Application", description="after")]))

    # Assert: the graph still holds the row it was built with (one dict, not a copy)
    assert shared["description"] == "before" and lean.nodes["n1"] is shared
    assert store.lean_dependency_graph().nodes["n1"]["description"] == "after"
    assert store.lean_dependency_graph().nodes["vm1"] is lean.nodes["vm1"]


def test_an_engine_following_the_store_keeps_sharing_the_rows_it_changed() -> None:
    # Arrange: an engine on the store, built once
    from cmdb_graph.service.engine import Engine
    from cmdb_graph.settings import Settings

    store = MemoryStore()
    store.apply(estate_batch())
    engine = Engine(store, Settings())
    engine.change_impact(["vm1"])

    # Act: a CI changed and a new one, then a question (the engine follows the feed)
    store.apply(WriteBatch(nodes=[ci("vm1", "VirtualMachine", description="patched"),
                                  ci("n9", "Application")],
                           relationships=[rel("RUNS_ON", "n9", "vm1")]))
    impact_of = engine.change_impact(["vm1"])

    # Assert: it followed (no rebuild), answers with the new CI, and its graph holds the
    # store's new rows themselves
    graph = engine.whole_graph().graph
    assert engine.stats["rebuilds"] == 1
    assert "n9" in {i.ci_id for i in impact_of.impacted}
    assert graph.nodes["vm1"] is store.live_rows["vm1"]
    assert graph.nodes["vm1"]["description"] == "patched"
    assert graph.nodes["n9"] is store.live_rows["n9"]
