"""Incident routing and probable cause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmdb_graph.errors import CINotFoundError, TraversalLimitError
from cmdb_graph.model import Change, ChangeState, Incident, IncidentState
from impact import ImpactGraph, probable_cause, route_incident
from tests.unit.impact.estates import ci, graph, shop

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_ci_with_its_own_group_is_routed_to_it() -> None:
    routing = route_incident(ImpactGraph(shop()), "app_search")

    assert (routing.support_group, routing.routed_via, routing.path) == (
        "grp_search", "app_search", ("app_search",)
    )


def test_ci_without_group_is_routed_through_its_dependency() -> None:
    # vm_search has no group; it is hosted on hv1 (grp_virt)
    routing = route_incident(ImpactGraph(shop()), "vm_search")

    assert routing.support_group == "grp_virt"
    assert routing.path == ("vm_search", "hv1")
    assert "hv1" in routing.reason


def test_nearest_group_wins_and_ties_go_to_the_smallest_id() -> None:
    # as_web -> app_web (no group) -> cl_web (no group) -> srv1..3 (grp_unix)
    # as_web -> app_search (grp_search, optional) is nearer
    assert route_incident(ImpactGraph(shop()), "as_web").routed_via == "app_search"
    routing = route_incident(ImpactGraph(shop()), "app_web")
    assert routing.path == ("app_web", "cl_web", "srv1")
    assert routing.support_group == "grp_unix"


def test_no_group_within_reach_gives_none() -> None:
    g = graph([ci("a", "Application"), ci("b", "Server")], [("a", "RUNS_ON", "b")])

    routing = route_incident(ImpactGraph(g), "a")

    assert routing.support_group is None and routing.routed_via is None


def test_routing_unknown_ci_raises() -> None:
    with pytest.raises(CINotFoundError):
        route_incident(ImpactGraph(shop()), "ghost")


def test_probable_cause_ranks_the_shared_dependency_first() -> None:
    # Arrange: both services and the blog are affected; the shared ones are as_web and below
    affected = ["bs_shop", "bs_blog"]

    # Act
    result = probable_cause(ImpactGraph(shop()), affected, now=NOW)

    # Assert: as_web explains both and is nearest
    top = result.candidates[0]
    assert top.ci_id == "as_web"
    assert top.explains == ("bs_blog", "bs_shop")
    assert all(len(c.explains) == 2 for c in result.candidates[:5])


def test_recent_change_and_open_incident_lift_a_candidate() -> None:
    # Arrange: app_web and app_search explain as_web equally
    recent = Change(change_id="CHG7", ci_ids=["app_search"], window_start=NOW - timedelta(1),
                    window_end=NOW - timedelta(hours=20), state=ChangeState.REVIEW)
    old = Change(change_id="CHG1", ci_ids=["cl_web"], window_start=NOW - timedelta(days=60),
                 window_end=NOW - timedelta(days=59))
    incident = Incident(incident_id="INC1", ci_ids=["sw1"], opened_at=NOW - timedelta(hours=1))
    closed = Incident(incident_id="INC0", ci_ids=["dc1"], opened_at=NOW - timedelta(days=2),
                      state=IncidentState.CLOSED)

    # Act
    result = probable_cause(ImpactGraph(shop()), ["bs_shop", "bs_blog"], now=NOW,
                            changes=[recent, old], incidents=[incident, closed])

    # Assert
    ranked = [c.ci_id for c in result.candidates]
    assert ranked[:3] == ["app_search", "sw1", "as_web"]
    by_id = {c.ci_id: c for c in result.candidates}
    assert by_id["app_search"].recent_changes == ("CHG7",)
    assert by_id["app_search"].support_group == "grp_search"
    assert by_id["cl_web"].recent_changes == ()
    assert by_id["dc1"].open_incidents == ()


def test_probable_cause_candidate_count_is_capped() -> None:
    result = probable_cause(ImpactGraph(shop()), ["bs_shop"], now=NOW, max_candidates=2)

    assert len(result.candidates) == 2
    with pytest.raises(TraversalLimitError):
        probable_cause(ImpactGraph(shop()), ["bs_shop"], now=NOW, max_candidates=0)
