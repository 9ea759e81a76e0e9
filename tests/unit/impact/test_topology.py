"""The array form of the impact topology and its incremental maintenance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cmdb_graph.errors import CINotFoundError, InvalidRecordError
from cmdb_graph.model import Window, WindowKind
from impact import Topology, parse_redundancy, window_contains, window_overlaps
from impact.topology import DEGRADED, DOWN, OPERATIONAL
from tests.unit.impact.estates import ci, graph, shop


@pytest.mark.parametrize(
    ("rule", "inputs", "expected"),
    [(None, 3, 3), ("all", 3, 3), ("2", 3, 2), ("5", 3, 3), ("0", 3, 0), ("50%", 3, 2),
     ("100%", 4, 4), ("1%", 4, 1), ("0%", 4, 0), ("2", 0, 0)],
)
def test_parse_redundancy(rule: str | None, inputs: int, expected: int) -> None:
    assert parse_redundancy(rule, inputs) == expected


@pytest.mark.parametrize("rule", ["two", "-1", "150%", "%", ""])
def test_parse_redundancy_rejects_bad_rules(rule: str) -> None:
    with pytest.raises(InvalidRecordError):
        parse_redundancy(rule, 3)


def test_edges_are_oriented_in_the_impact_direction() -> None:
    topo = Topology.from_graph(shop())

    dependents_of = {
        c: sorted(topo.ids[int(j)] for j in topo.dependents(topo.index[c])[0])
        for c in ("srv1", "cl_web", "vm_search")
    }

    assert dependents_of == {"srv1": ["cl_web"], "cl_web": ["app_web"],
                             "vm_search": ["app_search"]}
    assert int(topo.required_inputs[topo.index["cl_web"]]) == 3
    assert int(topo.slack[topo.index["cl_web"]]) == 1
    assert int(topo.required_inputs[topo.index["as_web"]]) == 1  # app_search is optional


def test_propagation_arrays_record_rounds_and_down_inputs() -> None:
    topo = Topology.from_graph(shop())

    prop = topo.propagate(topo.indexes(["srv1", "srv2"]))

    cl = topo.index["cl_web"]
    (pos,) = prop.positions(topo.indexes(["cl_web"]))
    assert prop.status_of(cl) == DOWN and int(prop.down_round[pos]) == 1
    assert int(prop.down_inputs[pos]) == 2
    assert prop.status_of(topo.index["srv3"]) == OPERATIONAL
    assert prop.status_of(topo.index["bs_shop"]) == DOWN
    one = topo.propagate(topo.indexes(["srv1"]))
    assert one.status_of(cl) == DEGRADED


def test_closure_depth_limit_and_required_only() -> None:
    topo = Topology.from_graph(shop())

    near, depth = topo.closure(topo.indexes(["hv1"]), max_depth=2)
    req, _ = topo.closure(topo.indexes(["hv1"]), required_only=True)

    assert {topo.ids[i] for i in near.tolist()} == {"hv1", "vm_search", "app_search"}
    assert dict(zip(near.tolist(), depth.tolist(), strict=True))[topo.index["app_search"]] == 2
    assert {topo.ids[i] for i in req.tolist()} == {"hv1", "vm_search", "app_search"}


def test_incremental_edge_removal_and_rule_change() -> None:
    # Arrange
    topo = Topology.from_graph(shop())

    # Act: srv3 leaves the cluster, the rule becomes "1"
    removed = topo.remove_edges([("srv3", "cl_web")])
    topo.set_redundancy("cl_web", "1")
    prop = topo.propagate(topo.indexes(["srv1"]))

    # Assert
    assert removed == 1
    cl = topo.index["cl_web"]
    assert int(topo.required_inputs[cl]) == 2
    assert prop.status_of(cl) == DEGRADED
    assert topo.propagate(topo.indexes(["srv1", "srv2"])).status_of(cl) == DOWN


def test_incremental_nodes_and_edges() -> None:
    topo = Topology.from_graph(shop())

    topo.add_nodes(["srv4"])
    topo.add_edges([("srv4", "cl_web", True)])
    prop = topo.propagate(topo.indexes(["srv1", "srv2"]))

    assert int(topo.required_inputs[topo.index["cl_web"]]) == 4
    assert prop.status_of(topo.index["cl_web"]) == DEGRADED  # 2 of 4 up, rule "2"
    with pytest.raises(CINotFoundError):
        topo.add_edges([("ghost", "cl_web", True)])


def test_unknown_relationship_types_carry_no_impact() -> None:
    g = graph([ci("a", "Server"), ci("b", "Server")], [("a", "RUNS_ON", "b")])
    g.add_edge("a", "b", key="WHATEVER", rel_type="WHATEVER", optional=False)

    topo = Topology.from_graph(g)

    assert topo.fwd_indices.size == 1


def test_explaining_inputs_point_towards_the_seeds() -> None:
    topo = Topology.from_graph(shop())
    prop = topo.propagate(topo.indexes(["srv1", "srv2"]))

    links = topo.explaining_inputs(prop)

    names = {topo.ids[k]: sorted(topo.ids[p] for p in v) for k, v in links.items()}
    assert names["cl_web"] == ["srv1", "srv2"]
    assert names["bs_shop"] == ["as_web"]
    assert "srv3" not in names


def test_cycles_among_closure() -> None:
    g = graph([ci("a", "Application"), ci("b", "Application"), ci("c", "Server")],
              [("a", "DEPENDS_ON", "b"), ("b", "DEPENDS_ON", "a"), ("b", "RUNS_ON", "c")])
    topo = Topology.from_graph(g)

    assert topo.cycles_among(topo.indexes(["c", "b"])) == [["a", "b"]]
    assert topo.cycles_among(np.zeros(0, dtype=np.int64)) == []


T0 = datetime(2026, 1, 4, 21, 0, tzinfo=UTC)  # Sunday


def test_windows_once_and_recurring() -> None:
    once = Window(window_id="W1", kind=WindowKind.MAINTENANCE, start=T0,
                  end=T0 + timedelta(hours=4))
    weekly = once.model_copy(update={"recurrence": "FREQ=WEEKLY;COUNT=3"})
    week3 = T0 + timedelta(weeks=2, hours=1)

    assert window_contains(once, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert not window_contains(once, week3, week3 + timedelta(hours=1))
    assert window_contains(weekly, week3, week3 + timedelta(hours=1))
    assert not window_contains(weekly, week3 + timedelta(weeks=1), week3 + timedelta(weeks=1,
                                                                                   hours=1))
    assert window_overlaps(weekly, week3 + timedelta(hours=2), week3 + timedelta(hours=9))
    assert not window_overlaps(weekly, week3 + timedelta(hours=3), week3 + timedelta(hours=9))
