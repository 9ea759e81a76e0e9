"""Neighbourhood, paths, service map and single points of failure."""

from __future__ import annotations

import pytest

from cmdb_graph.errors import InvalidRecordError, TraversalLimitError
from impact import (
    ImpactGraph,
    ImpactLimits,
    neighbourhood,
    paths_between,
    service_map,
    single_points_of_failure,
)
from tests.unit.impact.estates import ci, graph, shop


def test_neighbourhood_downstream_follows_what_the_ci_needs() -> None:
    result = neighbourhood(ImpactGraph(shop()), "cl_web", depth=1, direction="downstream")

    assert [(n.ci_id, n.distance) for n in result.nodes] == [
        ("cl_web", 0), ("srv1", 1), ("srv2", 1), ("srv3", 1)
    ]
    assert {(e.source, e.rel_type, e.target) for e in result.edges} == {
        ("srv1", "MEMBER_OF", "cl_web"), ("srv2", "MEMBER_OF", "cl_web"),
        ("srv3", "MEMBER_OF", "cl_web"),
    }


def test_neighbourhood_upstream_and_both() -> None:
    up = neighbourhood(ImpactGraph(shop()), "cl_web", depth=2, direction="upstream")
    both = neighbourhood(ImpactGraph(shop()), "cl_web", depth=1, direction="both")

    assert [n.ci_id for n in up.nodes] == ["cl_web", "app_web", "as_web"]
    assert [n.ci_id for n in both.nodes] == ["cl_web", "app_web", "srv1", "srv2", "srv3"]


def test_neighbourhood_filters_relationship_types() -> None:
    result = neighbourhood(ImpactGraph(shop()), "srv1", depth=3,
                           rel_types=["CONNECTS_TO", "LOCATED_IN"])

    assert [n.ci_id for n in result.nodes] == ["srv1", "sw1", "dc1", "srv2", "srv3"]


def test_neighbourhood_limits_and_bad_direction() -> None:
    with pytest.raises(TraversalLimitError):
        neighbourhood(ImpactGraph(shop()), "srv1", depth=99)
    with pytest.raises(TraversalLimitError):
        neighbourhood(ImpactGraph(shop()), "sw1", depth=4, limits=ImpactLimits(max_results=3))
    with pytest.raises(InvalidRecordError):
        neighbourhood(ImpactGraph(shop()), "srv1", direction="sideways")


def test_paths_between_shortest_first_with_hop_types() -> None:
    result = paths_between(ImpactGraph(shop()), "bs_shop", "sw1", direction="downstream")

    assert result.paths == (
        ("bs_shop", "as_web", "app_web", "cl_web", "srv1", "sw1"),
        ("bs_shop", "as_web", "app_web", "cl_web", "srv2", "sw1"),
        ("bs_shop", "as_web", "app_web", "cl_web", "srv3", "sw1"),
    )
    assert result.rel_types[0] == ("DEPENDS_ON", "DEPENDS_ON", "RUNS_ON", "MEMBER_OF",
                                   "CONNECTS_TO")


def test_paths_between_bounded_by_count_and_length() -> None:
    two = paths_between(ImpactGraph(shop()), "bs_shop", "sw1", direction="downstream", max_paths=2)
    short = paths_between(ImpactGraph(shop()), "bs_shop", "sw1", max_length=3)
    wrong_way = paths_between(ImpactGraph(shop()), "bs_shop", "sw1", direction="upstream")

    assert len(two.paths) == 2 and two.truncated
    assert short.paths == ()
    assert wrong_way.paths == ()
    with pytest.raises(TraversalLimitError):
        paths_between(ImpactGraph(shop()), "bs_shop", "sw1", max_paths=1000)


def test_service_map_layers_down_to_infrastructure() -> None:
    result = service_map(ImpactGraph(shop()), "bs_shop")

    assert [(layer.depth, layer.ci_ids) for layer in result.layers] == [
        (0, ("bs_shop",)),
        (1, ("as_web",)),
        (2, ("app_search", "app_web")),
        (3, ("cl_web", "vm_search")),
        (4, ("hv1", "srv1", "srv2", "srv3")),
        (5, ("dc2", "sw1")),
        (6, ("dc1",)),
    ]
    assert ("as_web", "app_search", "DEPENDS_ON", True) in {
        (e.source, e.target, e.rel_type, e.optional) for e in result.edges
    }
    assert not result.truncated


def test_service_map_depth_limit_truncates() -> None:
    result = service_map(ImpactGraph(shop()), "bs_shop", depth_limit=2)

    assert result.layers[-1].depth == 2 and result.truncated


def test_spof_excludes_clustered_members_but_includes_their_shared_switch() -> None:
    # Act
    spofs = single_points_of_failure(ImpactGraph(shop()), "bs_shop")

    # Assert
    ids = [s.ci_id for s in spofs]
    assert ids == ["as_web", "app_web", "cl_web", "sw1", "dc1"]
    assert spofs[3].path == ("bs_shop", "as_web", "app_web", "cl_web", "srv1", "sw1")


def test_spof_without_redundancy_every_required_dependency_is_one() -> None:
    g = graph([ci("svc", "ApplicationService"), ci("app", "Application"), ci("vm", "Server"),
               ci("cache", "Application")],
              [("svc", "DEPENDS_ON", "app"), ("app", "RUNS_ON", "vm"),
               ("svc", "DEPENDS_ON", "cache", True)])

    assert [s.ci_id for s in single_points_of_failure(ImpactGraph(g), "svc")] == ["app", "vm"]


def test_spof_path_is_the_first_shortest_one_whatever_the_graph_order() -> None:
    # Arrange: two equally short ways from the service down to the switch, built in two orders
    cis = [ci("svc", "ApplicationService"), ci("app_b", "Application"),
           ci("app_a", "Application"), ci("sw", "NetworkDevice")]
    rels = [("svc", "DEPENDS_ON", "app_b"), ("svc", "DEPENDS_ON", "app_a"),
            ("app_b", "CONNECTS_TO", "sw"), ("app_a", "CONNECTS_TO", "sw")]
    forward = graph(cis, rels)
    backward = graph(cis[::-1], rels[::-1])

    # Act
    got = [single_points_of_failure(ImpactGraph(g), "svc") for g in (forward, backward)]

    # Assert: the switch is the single point of failure, explained through app_a both times
    assert got[0] == got[1]
    assert [(s.ci_id, s.path) for s in got[0]] == [
        ("app_a", ("svc", "app_a")), ("app_b", ("svc", "app_b")), ("sw", ("svc", "app_a", "sw"))
    ]
