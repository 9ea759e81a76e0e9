"""Property-based tests of the impact engine on random graphs."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.model import ImpactDirection, Registry
from impact import (
    ImpactGraph,
    ImpactStatus,
    Topology,
    change_impact,
    paths_between,
    propagate_status,
    single_points_of_failure,
)
from tests.unit.impact.estates import ci, graph

REG = Registry()
TYPES = ["DEPENDS_ON", "RUNS_ON", "HOSTED_ON", "MEMBER_OF", "CONTAINS", "OWNS_NOTHING"]
RULES = [None, None, None, "all", "0", "1", "2", "50%", "67%"]
STATUSES = ["operational", "operational", "operational", "non_operational", "repair",
            "retired"]


@st.composite
def estates(draw: st.DrawFn) -> nx.MultiDiGraph:
    n = draw(st.integers(min_value=1, max_value=14))
    names = [f"c{i:02d}" for i in range(n)]
    rules = draw(st.lists(st.sampled_from(RULES), min_size=n, max_size=n))
    statuses = draw(st.lists(st.sampled_from(STATUSES), min_size=n, max_size=n))
    cis = [ci(name, "Cluster" if rule else "Server", redundancy=rule, operational_status=status)
           for name, rule, status in zip(names, rules, statuses, strict=True)]
    rels = draw(st.lists(
        st.tuples(st.sampled_from(names), st.sampled_from(TYPES[:5]), st.sampled_from(names),
                  st.booleans()),
        max_size=3 * n,
    ))
    return graph(cis, rels)


def impact_digraph(g: nx.MultiDiGraph) -> nx.DiGraph:
    """Reference: impact-oriented edges straight from the registry (failing -> impacted)."""
    h = nx.DiGraph()
    h.add_nodes_from(g.nodes)
    for u, v, key in g.edges(keys=True):
        direction = REG.impacting_types().get(key)
        if direction is ImpactDirection.END_TO_START:
            h.add_edge(v, u)
        elif direction is ImpactDirection.START_TO_END:
            h.add_edge(u, v)
    return h


def reference_down(g: nx.MultiDiGraph, failed: set[str]) -> set[str]:
    """Naive least fixed point of the down rule, one CI at a time: a CI with a redundancy rule
    counts its required inputs not in service as lost already (its slack, never below 0, is
    what the rule allows less them) and counts only those in service that are down."""
    serving = {c: g.nodes[c].get("operational_status") not in
               ("non_operational", "repair", "retired") for c in g.nodes}
    inputs: dict[str, dict[str, bool]] = {c: {} for c in g.nodes}
    for u, v, key, data in g.edges(keys=True, data=True):
        direction = REG.impacting_types().get(key)
        if direction is None or u == v:
            continue
        src, dst = (v, u) if direction is ImpactDirection.END_TO_START else (u, v)
        inputs[dst][src] = inputs[dst].get(src, False) or not data["optional"]
    down = set(failed)
    changed = True
    while changed:
        changed = False
        for c in g.nodes:
            if c in down:
                continue
            required = [s for s, req in inputs[c].items() if req]
            rule = g.nodes[c].get("redundancy")
            n = len(required)
            if rule is None or rule == "all":
                k = n
            elif rule.endswith("%"):
                k = min(n, math.ceil(int(rule[:-1]) * n / 100))
            else:
                k = min(n, int(rule))
            if rule is None:
                hit = any(s in down for s in required)
            else:
                out = sum(not serving[s] for s in required)
                hit = sum(s in down and serving[s] for s in required) > max(0, n - k - out)
            if hit:
                down.add(c)
                changed = True
    return down


@settings(max_examples=100, deadline=None)
@given(estates(), st.data())
def test_array_closure_equals_networkx_reference(g: nx.MultiDiGraph, data: st.DataObject) -> None:
    # Arrange
    seeds = data.draw(st.sets(st.sampled_from(sorted(g.nodes)), min_size=1, max_size=3))
    topo = Topology.from_graph(g, REG)
    h = impact_digraph(g)

    # Act
    up, up_depth = topo.closure(topo.indexes(sorted(seeds)))
    down, _ = topo.closure(topo.indexes(sorted(seeds)), reverse=True)

    # Assert
    expected_up = set(seeds).union(*(nx.descendants(h, s) for s in seeds))
    expected_down = set(seeds).union(*(nx.ancestors(h, s) for s in seeds))
    assert {topo.ids[i] for i in up.tolist()} == expected_up
    assert {topo.ids[i] for i in down.tolist()} == expected_down
    lengths = nx.multi_source_dijkstra_path_length(h, seeds)
    assert {topo.ids[i]: d for i, d in zip(up.tolist(), up_depth.tolist(), strict=True)} \
        == lengths


@settings(max_examples=100, deadline=None)
@given(estates(), st.data())
def test_propagation_equals_naive_fixed_point(g: nx.MultiDiGraph, data: st.DataObject) -> None:
    failed = data.draw(st.sets(st.sampled_from(sorted(g.nodes)), min_size=1, max_size=4))

    result = propagate_status(ImpactGraph(g), failed)

    assert set(result.down) | failed == reference_down(g, failed)
    reached = set(failed).union(*(nx.descendants(impact_digraph(g), s) for s in failed))
    assert set(result.degraded) == reached - reference_down(g, failed)


@settings(max_examples=100, deadline=None)
@given(estates(), st.data())
def test_down_set_only_grows_with_the_failed_set(g: nx.MultiDiGraph,
                                                 data: st.DataObject) -> None:
    # Arrange
    nodes = sorted(g.nodes)
    small = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=3))
    extra = data.draw(st.sets(st.sampled_from(nodes), max_size=3))
    topo = Topology.from_graph(g, REG)

    # Act
    a = propagate_status(ImpactGraph(g, topology=topo), small)
    b = propagate_status(ImpactGraph(g, topology=topo), small | extra)

    # Assert
    assert set(a.down) | set(a.failed) <= set(b.down) | set(b.failed)
    assert set(a.down + a.degraded + a.failed) <= set(b.down + b.degraded + b.failed)


@settings(max_examples=100, deadline=None)
@given(estates(), st.data())
def test_every_impacted_ci_has_an_explaining_path(g: nx.MultiDiGraph,
                                                  data: st.DataObject) -> None:
    # Arrange
    changed = data.draw(st.sets(st.sampled_from(sorted(g.nodes)), min_size=1, max_size=3))
    h = impact_digraph(g)

    # Act
    result = change_impact(ImpactGraph(g), changed, paths_per_ci=2)

    # Assert
    status = {c.ci_id: c.status for c in result.impacted}
    for item in result.impacted:
        assert 1 <= len(item.paths) <= 2
        assert [len(p) for p in item.paths] == sorted(len(p) for p in item.paths)
        for path in item.paths:
            assert path[0] in changed and path[-1] == item.ci_id
            assert all(h.has_edge(a, b) for a, b in zip(path, path[1:], strict=False))
            if item.status is ImpactStatus.DOWN:
                assert all(c in changed or status[c] is ImpactStatus.DOWN for c in path)
        assert len(item.paths[0]) - 1 >= item.depth


@settings(max_examples=60, deadline=None)
@given(estates(), estates())
def test_incremental_topology_equals_a_rebuild(g1: nx.MultiDiGraph,
                                               g2: nx.MultiDiGraph) -> None:
    # Arrange: g2's CIs renamed apart, then joined to g1 by one edge
    g2 = nx.relabel_nodes(g2, {c: f"x{c}" for c in g2.nodes})
    joined = nx.compose(g1, g2)
    first, other = sorted(g1.nodes)[0], sorted(g2.nodes)[0]
    joined.add_edge(other, first, key="RUNS_ON", rel_type="RUNS_ON", optional=False)
    topo = Topology.from_graph(g1, REG)
    extra = Topology.from_graph(g2, REG)

    # Act
    topo.add_nodes(extra.ids, rules=extra.rules,
                   statuses={c: g2.nodes[c]["operational_status"] for c in extra.ids})
    fwd = [(extra.ids[i], extra.ids[int(j)], bool(r))
           for i in range(extra.n) for j, r in zip(*extra.dependents(i), strict=True)]
    topo.add_edges([*fwd, (first, other, True)])
    rebuilt = Topology.from_graph(joined, REG)

    # Assert
    def edges(t: Topology) -> set[tuple[str, str, bool]]:
        return {(t.ids[i], t.ids[int(j)], bool(r))
                for i in range(t.n) for j, r in zip(*t.dependents(i), strict=True)}

    assert edges(topo) == edges(rebuilt)
    assert {c: int(topo.slack[topo.index[c]]) for c in topo.ids} == {
        c: int(rebuilt.slack[rebuilt.index[c]]) for c in rebuilt.ids
    }
    seed = np.array([topo.index[first]])
    assert {topo.ids[i] for i in topo.propagate(seed).down.tolist()} == {
        rebuilt.ids[i] for i in rebuilt.propagate(np.array([rebuilt.index[first]])).down.tolist()
    }


@settings(max_examples=60, deadline=None)
@given(estates(), st.data())
def test_queries_leave_no_state_behind(g: nx.MultiDiGraph, data: st.DataObject) -> None:
    # Arrange: one topology serves several queries in a row
    nodes = sorted(g.nodes)
    a = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=3))
    b = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=3))
    topo = Topology.from_graph(g, REG)
    fresh = propagate_status(ImpactGraph(g, topology=Topology.from_graph(g, REG)), a)

    # Act
    propagate_status(ImpactGraph(g, topology=topo), b)
    topo.closure(topo.indexes(sorted(b)), reverse=True, max_depth=2)
    again = propagate_status(ImpactGraph(g, topology=topo), a)

    # Assert
    assert again == fresh


@settings(max_examples=60, deadline=None)
@given(estates(), st.data())
def test_spofs_are_exactly_the_cis_whose_failure_alone_downs_the_service(
    g: nx.MultiDiGraph, data: st.DataObject
) -> None:
    # Arrange
    service = data.draw(st.sampled_from(sorted(g.nodes)))
    topo = Topology.from_graph(g, REG)

    # Act
    spofs = {s.ci_id for s in single_points_of_failure(ImpactGraph(g, topology=topo), service)}

    # Assert: brute force over the whole estate
    expected = {
        c for c in g.nodes
        if c != service
        and propagate_status(ImpactGraph(g, topology=topo), [c]).status_of(service)
        is ImpactStatus.DOWN
    }
    assert spofs == expected


@settings(max_examples=60, deadline=None)
@given(estates(), st.data())
def test_paths_between_are_the_simple_impact_paths(g: nx.MultiDiGraph,
                                                   data: st.DataObject) -> None:
    # Arrange
    nodes = sorted(g.nodes)
    source = data.draw(st.sampled_from(nodes))
    target = data.draw(st.sampled_from(nodes))
    h = impact_digraph(g)

    # Act
    result = paths_between(ImpactGraph(g), source, target, direction="upstream", max_paths=5,
                           max_length=4)

    # Assert
    if source == target:
        assert result.paths == ((source,),)
        return
    expected = {tuple(p) for p in nx.all_simple_paths(h, source, target, cutoff=4)}
    assert set(result.paths) <= expected
    assert len(result.paths) == min(5, len(expected))
    assert result.truncated == (len(expected) > 5)
    assert [len(p) for p in result.paths] == sorted(len(p) for p in result.paths)
