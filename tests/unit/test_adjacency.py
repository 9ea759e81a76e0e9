"""The shared, read-only edge dicts of the dependency graphs (cmdb_graph.store.adjacency)."""

from __future__ import annotations

import copy
import pickle

import networkx as nx
import pytest

from cmdb_graph.store.adjacency import EMPTY, drop_edge, put_edge, shared_keys


def _graph() -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    put_edge(g, "app", "vm1", "RUNS_ON", {})
    put_edge(g, "db", "vm2", "RUNS_ON", {})
    return g


def test_attribute_less_edges_of_a_type_share_one_read_only_key_dict() -> None:
    g = _graph()

    assert g._succ["app"]["vm1"] is g._succ["db"]["vm2"] is shared_keys("RUNS_ON")
    assert g._pred["vm1"]["app"] is g._succ["app"]["vm1"]
    assert list(g.edges(keys=True, data=True)) == [("app", "vm1", "RUNS_ON", {}),
                                                   ("db", "vm2", "RUNS_ON", {})]
    with pytest.raises(TypeError, match="read-only"):
        g.add_edge("app", "vm1", key="RUNS_ON", optional=True)
    with pytest.raises(TypeError, match="read-only"):
        g.edges["app", "vm1", "RUNS_ON"]["optional"] = True
    assert shared_keys("RUNS_ON") == {"RUNS_ON": {}}


def test_put_and_drop_change_one_pair_only() -> None:
    g = _graph()

    put_edge(g, "app", "vm1", "RUNS_ON", {"optional": True})
    put_edge(g, "db", "vm2", "DEPENDS_ON", {})

    assert g.edges["app", "vm1", "RUNS_ON"] == {"optional": True}
    assert g._succ["db"]["vm2"] == {"RUNS_ON": {}, "DEPENDS_ON": {}}
    assert shared_keys("RUNS_ON") == {"RUNS_ON": {}}
    assert drop_edge(g, "db", "vm2", "DEPENDS_ON")
    assert g._succ["db"]["vm2"] is shared_keys("RUNS_ON")
    assert drop_edge(g, "app", "vm1", "RUNS_ON")
    assert not drop_edge(g, "app", "vm1", "RUNS_ON")
    assert not g.has_edge("app", "vm1") and list(g.predecessors("vm1")) == []
    put_edge(g, "new", "other", "RUNS_ON", {})
    assert set(g) == {"app", "vm1", "db", "vm2", "new", "other"}


def test_pickles_and_copies_keep_sharing_and_networkx_copies_are_plain() -> None:
    g = _graph()

    loaded = pickle.loads(pickle.dumps(g))
    deep = copy.deepcopy(g)
    plain = g.copy()

    assert loaded._succ["app"]["vm1"] is shared_keys("RUNS_ON")
    assert loaded.edges["db", "vm2", "RUNS_ON"] is EMPTY
    assert deep._succ["db"]["vm2"] is shared_keys("RUNS_ON")
    plain.edges["app", "vm1", "RUNS_ON"]["optional"] = True
    assert g.edges["app", "vm1", "RUNS_ON"] == {}
    assert type(EMPTY.copy()) is dict
