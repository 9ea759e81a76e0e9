"""Change impact kept as arrays: lazy items, the compiled (scipy) propagation, the snapshot of
CI classes and criticality in the topology."""

from __future__ import annotations

import pickle

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impact import (
    ChangeImpact,
    ImpactedCI,
    ImpactedCIs,
    ImpactGraph,
    ImpactStatus,
    RedundancyImpact,
    RedundancyImpacts,
    Topology,
    change_impact,
)
from tests.unit.impact.estates import ci, graph, shop
from tests.unit.impact.test_properties import REG, estates

# -- the compiled propagation gives the answers of the numpy passes -----------------------


def _compiled(g: nx.MultiDiGraph) -> Topology:
    topo = Topology.from_graph(g, REG)
    topo.large_closure = 0  # every single-seed closure goes to scipy's BFS
    return topo


@settings(max_examples=150, deadline=None)
@given(estates(), st.data())
def test_compiled_propagation_equals_the_level_passes(g: nx.MultiDiGraph,
                                                      data: st.DataObject) -> None:
    # Arrange
    seed = data.draw(st.sampled_from(sorted(g.nodes)))
    plain = Topology.from_graph(g, REG)
    fast = _compiled(g)

    # Act
    want = plain.propagate(plain.indexes([seed]))
    got = fast.propagate(fast.indexes([seed]))

    # Assert: same CIs, depths, statuses, inputs down and rounds (rounds computed on demand)
    assert want.known_rounds is not None
    assert got.nodes[0] == fast.index[seed]
    pos = want.positions(got.nodes)
    assert sorted(got.nodes.tolist()) == sorted(want.nodes.tolist())
    for name in ("depth", "status", "down_inputs", "down_round"):
        assert getattr(got, name).tolist() == getattr(want, name)[pos].tolist(), name
    assert fast.cycles_among(got.on_cycles) == plain.cycles_among(want.nodes)


@settings(max_examples=100, deadline=None)
@given(estates(), st.data())
def test_change_impact_is_the_same_on_the_compiled_path(g: nx.MultiDiGraph,
                                                        data: st.DataObject) -> None:
    # Arrange
    seed = data.draw(st.sampled_from(sorted(g.nodes)))
    depth = data.draw(st.sampled_from([None, 1, 2]))

    # Act
    want = change_impact(ImpactGraph(g), [seed], paths_per_ci=3, depth_limit=depth)
    got = change_impact(ImpactGraph(g, topology=_compiled(g)), [seed], paths_per_ci=3,
                        depth_limit=depth)

    # Assert (items with their paths, redundancy, cycles, summary)
    assert got == want
    assert got.model_dump() == want.model_dump()


def _cluster(extra: list[tuple[str, str, str]]) -> nx.MultiDiGraph:
    """Cluster ``cl`` (rule ``1`` of its members m1, m2) that ``app`` depends on."""
    return graph([ci("cl", "Cluster", redundancy="1"), ci("m1", "Server"), ci("m2", "Server"),
                  ci("app", "Application")],
                 [("m1", "MEMBER_OF", "cl"), ("m2", "MEMBER_OF", "cl"),
                  ("app", "DEPENDS_ON", "cl"), *extra])


@pytest.mark.parametrize(("extra", "down"), [
    ([], set()),  # the rule holds: the down pass finishes
    ([("m2", "DEPENDS_ON", "m1")], {"m2", "cl", "app"}),  # both members down by one BFS
    # m2 rests on the cluster: every member is reached over required edges, yet the
    # cluster holds with m2 up (the least fixed point), so the reach alone would be wrong
    ([("m2", "DEPENDS_ON", "cl")], set()),
])
def test_compiled_statuses_with_rules_reached_and_on_cycles(
        extra: list[tuple[str, str, str]], down: set[str]) -> None:
    # Arrange
    g = _cluster(extra)
    plain = Topology.from_graph(g, REG)
    fast = _compiled(g)

    # Act
    want = plain.propagate(plain.indexes(["m1"]))
    got = fast.propagate(fast.indexes(["m1"]))

    # Assert
    pos = want.positions(got.nodes)
    for name in ("depth", "status", "down_inputs", "down_round"):
        assert getattr(got, name).tolist() == getattr(want, name)[pos].tolist(), name
    assert {fast.ids[i] for i in got.down.tolist()} == down | {"m1"}


def test_compiled_closure_adds_what_optional_edges_reach_and_shorten() -> None:
    # Arrange: db -> app1 -> app2 -> app3 over required edges; app3 also needs db (optional:
    # depth 1, not 3); report needs app1 optionally only, and viewer needs report
    g = graph([ci(c, "Application") for c in ("db", "app1", "app2", "app3", "report",
                                               "viewer")],
              [("app1", "DEPENDS_ON", "db"), ("app2", "DEPENDS_ON", "app1"),
               ("app3", "DEPENDS_ON", "app2"), ("app3", "DEPENDS_ON", "db", True),
               ("report", "DEPENDS_ON", "app1", True), ("viewer", "DEPENDS_ON", "report")])
    plain = Topology.from_graph(g, REG)
    fast = _compiled(g)

    # Act
    want = plain.propagate(plain.indexes(["db"]))
    got = fast.propagate(fast.indexes(["db"]))

    # Assert: same CIs, depths and statuses; still in breadth-first order
    pos = want.positions(got.nodes)
    for name in ("depth", "status", "down_inputs", "down_round"):
        assert getattr(got, name).tolist() == getattr(want, name)[pos].tolist(), name
    depth = {fast.ids[i]: d for i, d in zip(got.nodes.tolist(), got.depth.tolist(),
                                             strict=True)}
    assert depth == {"db": 0, "app1": 1, "app3": 1, "app2": 2, "report": 2, "viewer": 3}
    assert got.depth.tolist() == sorted(got.depth.tolist())
    assert {fast.ids[i] for i in got.degraded.tolist()} == {"report", "viewer"}


def test_cycles_of_a_small_closure_on_a_large_topology() -> None:
    # Arrange: a single seed whose closure stays under large_closure on a topology above it
    # (the probe of the closure decides; it once cleared its marks before the cycles were read)
    g = graph([ci("a", "Application"), ci("b", "Application"), ci("c", "Server"),
               ci("d", "Server"), ci("e", "Server")],
              [("a", "DEPENDS_ON", "b"), ("b", "DEPENDS_ON", "a"), ("c", "DEPENDS_ON", "d")])
    topo = Topology.from_graph(g, REG)
    topo.large_closure = 3

    # Act
    got = change_impact(ImpactGraph(g, topology=topo), ["a"])
    want = change_impact(ImpactGraph(g), ["a"])

    # Assert
    assert got.cycles == want.cycles == (("a", "b"),)


# -- items built one by one equal items built all at once -----------------------------------


@settings(max_examples=100, deadline=None)
@given(estates(), st.data())
def test_items_read_one_by_one_equal_items_read_together(g: nx.MultiDiGraph,
                                                         data: st.DataObject) -> None:
    # Arrange
    changed = data.draw(st.sets(st.sampled_from(sorted(g.nodes)), min_size=1, max_size=3))
    one_by_one = change_impact(ImpactGraph(g), changed, paths_per_ci=2)
    together = change_impact(ImpactGraph(g), changed, paths_per_ci=2)
    order = data.draw(st.permutations(range(len(together.impacted))))

    # Act
    items = {k: one_by_one.impacted[k] for k in order}
    redundancy = [one_by_one.redundancy[k] for k in range(len(one_by_one.redundancy))]

    # Assert
    assert tuple(items[k] for k in range(len(items))) == tuple(together.impacted)
    assert tuple(redundancy) == tuple(together.redundancy)
    assert one_by_one.impacted_ids() == tuple(c.ci_id for c in together.impacted)


def test_many_single_reads_switch_to_the_bulk_pass_and_agree() -> None:
    # Arrange: a fan of 300 applications on one server, each with a service above it
    cis = [ci("srv", "Server")]
    rels = []
    for k in range(300):
        cis += [ci(f"app{k:03d}", "Application"), ci(f"svc{k:03d}", "ApplicationService")]
        rels += [(f"app{k:03d}", "RUNS_ON", "srv"), (f"svc{k:03d}", "DEPENDS_ON", f"app{k:03d}")]
    g = graph(cis, rels)
    lazy = change_impact(ImpactGraph(g), ["srv"])
    eager = tuple(change_impact(ImpactGraph(g), ["srv"]).impacted)

    # Act
    read = [lazy.impacted[-k - 1] for k in range(len(lazy.impacted))][::-1]

    # Assert
    assert tuple(read) == eager
    assert eager[0].paths == (("srv", "app000"),)
    assert eager[-1].paths == (("srv", "app299", "svc299"),)


# -- the sequence behaves as the tuple of its items -----------------------------------------


def test_impacted_behaves_as_a_tuple() -> None:
    # Arrange
    result = change_impact(ImpactGraph(shop()), ["srv1", "srv2"])
    items = tuple(result.impacted)

    # Act / Assert
    assert isinstance(result.impacted, ImpactedCIs)
    assert len(result.impacted) == len(items) == 5
    assert result.impacted == items and result.impacted == list(items)
    assert result.impacted != items[:-1]
    assert result.impacted[-1] == items[-1]
    assert result.impacted[1:3] == items[1:3]
    assert result.impacted[::-1] == items[::-1]
    assert items[2] in result.impacted
    assert hash(result.impacted) == hash(items)
    with pytest.raises(IndexError):
        result.impacted[5]
    assert repr(result.impacted) == "ImpactedCIs(<5 items>)"


def test_cheap_accessors_need_no_items() -> None:
    # Arrange
    result = change_impact(ImpactGraph(shop()), ["srv1", "srv2"])

    # Act
    ids = result.impacted_ids()

    # Assert
    assert ids == tuple(c.ci_id for c in result.impacted)
    assert result.status_of("cl_web") is ImpactStatus.DOWN
    assert result.status_of("srv1") is ImpactStatus.DOWN  # changed
    assert result.status_of("sw1") is None  # not reached
    assert {c.ci_id: result.status_of(c.ci_id) for c in result.impacted} == {
        c.ci_id: c.status for c in result.impacted
    }


def test_result_serialises_pickles_and_validates_like_tuples() -> None:
    # Arrange
    result = change_impact(ImpactGraph(shop()), ["srv1", "srv2"])
    items = tuple(result.impacted)

    # Act
    dumped = result.model_dump(mode="json")
    rebuilt = ChangeImpact(**{**result.model_dump(), "impacted": items,
                              "redundancy": tuple(result.redundancy)})
    from_json = ChangeImpact.model_validate_json(result.model_dump_json())
    copied = pickle.loads(pickle.dumps(result))

    # Assert
    assert dumped["impacted"] == [c.model_dump(mode="json") for c in items]
    assert dumped["redundancy"] == [r.model_dump(mode="json") for r in result.redundancy]
    assert rebuilt == result == from_json == copied
    assert isinstance(rebuilt.impacted, ImpactedCIs)
    assert isinstance(rebuilt.redundancy, RedundancyImpacts)
    assert isinstance(from_json.redundancy[0], RedundancyImpact)
    with pytest.raises(ValueError):
        ChangeImpact(**{**result.model_dump(), "impacted": ("not an item",)})


def test_sequences_of_items_compare_by_items() -> None:
    # Arrange
    a = ImpactedCI(ci_id="a", name="a", ci_class="Server", kind="infrastructure",
                   status=ImpactStatus.DOWN, depth=1)
    b = a.model_copy(update={"ci_id": "b"})

    # Act / Assert
    assert ImpactedCIs([a, b]) == ImpactedCIs((a, b)) == (a, b)
    assert ImpactedCIs([a, b]) != ImpactedCIs([b, a])
    assert ImpactedCIs([a]) != RedundancyImpacts()
    assert ImpactedCIs([a]).status_of("a") is ImpactStatus.DOWN
    assert ImpactedCIs() == ()


# -- CI classes and criticality from the topology's snapshot --------------------------------


def test_topology_snapshots_classes_and_criticality() -> None:
    # Arrange
    g = shop()

    # Act
    topo = Topology.from_graph(g, REG)

    # Assert
    i = topo.index["bs_shop"]
    assert topo.class_names[int(topo.class_code[i])] == "BusinessService"
    assert int(topo.criticality[i]) == 1
    assert int(topo.criticality[topo.index["srv1"]]) == -1  # none


def test_summary_follows_set_attributes_and_add_nodes() -> None:
    # Arrange
    g = shop()
    topo = Topology.from_graph(g, REG)
    before = change_impact(ImpactGraph(g, topology=topo), ["srv1", "srv2"]).summary

    # Act: the store re-classifies a CI and changes a criticality, and adds a CI
    topo.set_attributes("bs_blog", ci_class="BusinessService", business_criticality=0)
    topo.add_nodes(["new"], classes={"new": "Server"}, criticality={"new": 2})
    after = change_impact(ImpactGraph(g, topology=topo), ["srv1", "srv2"]).summary

    # Assert
    assert (before.most_critical_service, before.most_critical_level) == ("bs_shop", 1)
    assert (after.most_critical_service, after.most_critical_level) == ("bs_blog", 0)
    assert topo.class_names[int(topo.class_code[topo.index["new"]])] == "Server"


@pytest.mark.parametrize(("services_only", "depth"), [(False, None), (True, None), (True, 3)])
def test_topology_without_classes_reads_them_from_the_graph(services_only: bool,
                                                            depth: int | None) -> None:
    # Arrange: a topology built from arrays only (no class snapshot)
    g = shop()
    built = Topology.from_graph(g, REG)
    bare = Topology(built.ids, *_edges(built), rules=built.rules)

    # Act
    want = change_impact(ImpactGraph(g, topology=built), ["srv1", "srv2"],
                         services_only=services_only, depth_limit=depth)
    got = change_impact(ImpactGraph(g, topology=bare), ["srv1", "srv2"],
                        services_only=services_only, depth_limit=depth)

    # Assert
    assert (bare.class_code == -1).all()
    assert got.summary.by_class == want.summary.by_class
    assert got.summary.services_hit == want.summary.services_hit == (3 if depth is None else 1)
    assert got.impacted_ids() == want.impacted_ids()  # (no criticality snapshot in bare)
    assert (got.summary.total, got.summary.by_status) == (want.summary.total,
                                                          want.summary.by_status)


def test_most_critical_service_ties_and_unusual_values() -> None:
    # Arrange: two services of the same criticality, both down: the smaller ci_id wins;
    # a criticality that is not a small integer is compared as the graph holds it
    g = graph([ci("srv", "Server"), ci("svc_b", "BusinessService", business_criticality=2),
               ci("svc_a", "BusinessService", business_criticality=2),
               ci("svc_c", "BusinessService")],
              [("svc_b", "RUNS_ON", "srv"), ("svc_a", "RUNS_ON", "srv"),
               ("svc_c", "RUNS_ON", "srv")])
    odd = g.copy()
    odd.nodes["svc_c"]["business_criticality"] = np.int64(1)

    # Act
    plain = change_impact(ImpactGraph(g), ["srv"]).summary
    unusual = change_impact(ImpactGraph(odd), ["srv"]).summary

    # Assert
    assert (plain.most_critical_service, plain.most_critical_level) == ("svc_a", 2)
    assert unusual.most_critical_service == "svc_c"
    assert unusual.most_critical_level == 1


def _edges(topo: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src, dst, req = [], [], []
    for i in range(topo.n):
        deps, required = topo.dependents(i)
        src += [i] * deps.size
        dst += deps.tolist()
        req += required.tolist()
    return (np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64),
            np.array(req, dtype=np.bool_))
