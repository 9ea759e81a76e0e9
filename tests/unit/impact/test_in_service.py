"""CIs not in service (planned, in stock, offline, under repair, retired) in impact and reports.

A member of a redundancy group that is not in service gives no redundancy; an impacted CI not
in service is listed but marked and not counted as a service hit; reports leave out what is
expected of such a CI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import networkx as nx
import pytest

from cmdb_graph.model import Change, Registry, Window, WindowKind
from impact import (
    ConflictKind,
    ImpactGraph,
    ImpactStatus,
    Topology,
    change_conflicts,
    change_impact,
    propagate_status,
    single_points_of_failure,
)
from impact.quality import (
    infrastructure_unreachable_from_services,
    services_without_infrastructure,
    stale_cis,
)
from tests.unit.impact.estates import ci, graph

REG = Registry()
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def estate(hv2_status: str = "non_operational") -> nx.MultiDiGraph:
    """::

        shop (BusinessService, crit 1) -DEPENDS_ON-> app -RUNS_ON-> cl (Cluster, rule "1")
        legacy (BusinessService, crit 1, retired) -DEPENDS_ON-> app
        hv1 (operational), hv2 (``hv2_status``) -MEMBER_OF-> cl
        spare (Server, non_operational: in stock), idle (Server, operational): nothing on them
    """
    old = NOW - timedelta(days=90)
    cis = [
        ci("shop", "BusinessService", business_criticality=1),
        ci("legacy", "BusinessService", business_criticality=1, operational_status="retired"),
        ci("app", "Application"),
        ci("cl", "Cluster", redundancy="1"),
        ci("hv1", "Server", last_seen=NOW),
        ci("hv2", "Server", operational_status=hv2_status, last_seen=NOW),
        ci("spare", "Server", operational_status="non_operational", last_seen=old),
        ci("idle", "Server", last_seen=old),
    ]
    rels = [
        ("shop", "DEPENDS_ON", "app"),
        ("legacy", "DEPENDS_ON", "app"),
        ("app", "RUNS_ON", "cl"),
        ("hv1", "MEMBER_OF", "cl"),
        ("hv2", "MEMBER_OF", "cl"),
    ]
    return graph(cis, rels)


@pytest.mark.parametrize("compiled", [False, True])
def test_a_member_not_in_service_gives_no_redundancy(compiled: bool) -> None:
    # Arrange
    topo = Topology.from_graph(estate(), REG)
    if compiled:
        topo.large_closure = 0  # the single seed goes to scipy's BFS
    both = ImpactGraph(estate("operational"))

    # Act
    lost = propagate_status(ImpactGraph(estate(), REG, topo), ["hv1"])
    kept = propagate_status(both, ["hv1"])

    # Assert: the cluster and what rests on it go down (with hv2 in service: degraded)
    assert set(lost.down) == {"cl", "app", "shop", "legacy"}
    assert lost.degraded == ()
    assert kept.down == () and set(kept.degraded) == {"cl", "app", "shop", "legacy"}


def test_losing_the_member_not_in_service_changes_nothing_more() -> None:
    result = propagate_status(ImpactGraph(estate()), ["hv2"])

    assert result.down == ()
    assert set(result.degraded) == {"cl", "app", "shop", "legacy"}


def test_redundancy_impact_counts_members_not_in_service() -> None:
    result = change_impact(ImpactGraph(estate()), ["hv1"])

    (group,) = result.redundancy
    assert (group.ci_id, group.required_inputs, group.inputs_not_in_service, group.inputs_down,
            group.threshold, group.headroom, group.status) == (
        "cl", 2, 1, 1, 1, -1, ImpactStatus.DOWN)


def test_spof_lists_the_last_member_in_service() -> None:
    ids = [s.ci_id for s in single_points_of_failure(ImpactGraph(estate()), "shop")]
    with_both = [s.ci_id for s in single_points_of_failure(ImpactGraph(estate("operational")),
                                                           "shop")]

    assert ids == ["app", "cl", "hv1"]
    assert with_both == ["app", "cl"]


def test_an_impacted_ci_not_in_service_is_marked_and_not_a_service_hit() -> None:
    # Act
    result = change_impact(ImpactGraph(estate("operational")), ["cl"])

    # Assert
    by_id = {c.ci_id: c for c in result.impacted}
    assert set(by_id) == {"app", "shop", "legacy"}
    assert (by_id["legacy"].status, by_id["legacy"].in_service,
            by_id["legacy"].operational_status) == (ImpactStatus.DOWN, False, "retired")
    assert by_id["shop"].in_service and by_id["shop"].operational_status == "operational"
    s = result.summary
    assert (s.total, s.services_hit, s.not_in_service) == (3, 1, 1)
    assert s.by_status == {"down": 3}
    assert s.most_critical_service == "shop"


def test_services_only_impact_counts_only_services_in_service() -> None:
    g = estate("operational")
    g.nodes["shop"]["operational_status"] = "non_operational"  # planned

    result = change_impact(ImpactGraph(g), ["cl"], services_only=True)

    assert [(c.ci_id, c.in_service) for c in result.impacted] == [
        ("legacy", False), ("shop", False)]
    assert (result.summary.services_hit, result.summary.most_critical_service,
            result.summary.not_in_service) == (0, None, 2)


def test_a_status_change_on_a_fork_reaches_the_next_question_and_not_the_original() -> None:
    # Arrange
    topo = Topology.from_graph(estate(), REG)
    before = topo.propagate(topo.indexes(["hv1"]))

    # Act: hv2 back in service, then out again (as the feed follower applies it)
    fork = topo.fork()
    fork.set_attributes("hv2", ci_class="Server", operational_status="operational")
    after = fork.propagate(fork.indexes(["hv1"]))
    again = fork.fork()
    again.set_attributes("hv2", ci_class="Server", operational_status="repair")

    # Assert
    cl = topo.index["cl"]
    assert before.status_of(cl) == 2 and after.status_of(cl) == 1
    assert topo.propagate(topo.indexes(["hv1"])).status_of(cl) == 2
    assert again.propagate(again.indexes(["hv1"])).status_of(cl) == 2
    assert bool(topo.in_service[topo.index["hv2"]]) is False
    assert bool(fork.in_service[fork.index["hv2"]]) is True


def test_new_cis_not_in_service_count_once_added() -> None:
    # Arrange: the estate without hv2, which then arrives in stock
    g = estate()
    g.remove_node("hv2")
    topo = Topology.from_graph(g, REG)

    # Act
    topo.add_nodes(["hv2"], classes={"hv2": "Server"}, statuses={"hv2": "non_operational"})
    topo.add_edges([("hv2", "cl", True)])
    topo.refresh()

    # Assert
    assert int(topo.out_inputs[topo.index["cl"]]) == 1
    assert topo.propagate(topo.indexes(["hv1"])).status_of(topo.index["cl"]) == 2


def test_estate_wide_blackout_lists_only_services_in_service() -> None:
    # Arrange
    start = datetime(2026, 3, 1, 22, tzinfo=UTC)
    change = Change(change_id="CHG1", ci_ids=["cl"], window_start=start,
                    window_end=start + timedelta(hours=2))
    freeze = Window(window_id="W1", kind=WindowKind.BLACKOUT, start=start - timedelta(days=1),
                    end=start + timedelta(days=1))

    # Act
    found = change_conflicts(ImpactGraph(estate("operational")), change, windows=[freeze])

    # Assert
    (blackout,) = [c for c in found if c.kind is ConflictKind.BLACKOUT]
    assert blackout.ci_ids == ("cl", "shop")


def test_reports_leave_out_what_is_expected_of_cis_not_in_service() -> None:
    # Arrange: a planned service with nothing beneath it yet, and one in service
    g = estate()
    g.add_node("planned", **{"ci_class": "BusinessService", "name": "planned",
                             "operational_status": "non_operational"})
    g.add_node("empty", **{"ci_class": "BusinessService", "name": "empty"})
    ig = ImpactGraph(g)

    # Act
    orphans = infrastructure_unreachable_from_services(ig, now=NOW)
    stale = stale_cis(ig, now=NOW)
    bare = services_without_infrastructure(ig, now=NOW)

    # Assert: the in-stock server is no orphan and not stale; the idle one is both
    assert [f.subject for f in orphans.findings] == ["idle"]
    assert [f.subject for f in stale.findings] == ["idle"]
    assert [f.subject for f in bare.findings] == ["empty"]
