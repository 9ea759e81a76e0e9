"""Status propagation rules on hand-drawn estates."""

from __future__ import annotations

import pytest

from cmdb_graph.errors import CINotFoundError, InvalidRecordError
from cmdb_graph.model import ImpactDirection, Registry, RelationshipType
from impact import ImpactGraph, ImpactStatus, propagate_status
from tests.unit.impact.estates import ci, graph, shop


def test_one_member_of_two_of_three_cluster_only_degrades_the_cluster() -> None:
    # Arrange
    g = shop()

    # Act
    result = propagate_status(ImpactGraph(g), ["srv1"])

    # Assert
    assert result.down == ()
    assert result.status_of("cl_web") is ImpactStatus.DEGRADED
    assert set(result.degraded) == {"cl_web", "app_web", "as_web", "bs_shop", "bs_blog"}


def test_two_members_of_two_of_three_cluster_take_everything_above_down() -> None:
    result = propagate_status(ImpactGraph(shop()), ["srv1", "srv2"])

    assert set(result.down) == {"cl_web", "app_web", "as_web", "bs_shop", "bs_blog"}
    assert result.failed == ("srv1", "srv2")
    assert result.degraded == ()


def test_optional_dependency_down_only_degrades_its_dependent() -> None:
    result = propagate_status(ImpactGraph(shop()), ["vm_search"])

    assert result.down == ("app_search",)
    assert result.status_of("as_web") is ImpactStatus.DEGRADED
    assert result.status_of("bs_shop") is ImpactStatus.DEGRADED
    assert result.status_of("cl_web") is ImpactStatus.OPERATIONAL


def test_shared_switch_takes_all_members_and_the_cluster_down() -> None:
    result = propagate_status(ImpactGraph(shop()), ["sw1"])

    assert {"srv1", "srv2", "srv3", "cl_web", "bs_shop"} <= set(result.down)
    assert "app_search" not in result.down + result.degraded


def test_datacenter_failure_follows_located_in_from_end_to_start() -> None:
    result = propagate_status(ImpactGraph(shop()), ["dc2"])

    assert set(result.down) == {"hv1", "vm_search", "app_search"}
    assert set(result.degraded) == {"as_web", "bs_shop", "bs_blog"}


@pytest.mark.parametrize(
    ("rule", "failed", "expected"),
    [
        ("50%", ["m1", "m2"], ImpactStatus.DEGRADED),
        ("50%", ["m1", "m2", "m3"], ImpactStatus.DOWN),
        ("all", ["m1"], ImpactStatus.DOWN),
        ("3", ["m1"], ImpactStatus.DEGRADED),
        ("3", ["m1", "m2"], ImpactStatus.DOWN),
        ("0", ["m1", "m2", "m3", "m4"], ImpactStatus.DEGRADED),
        ("9", ["m1"], ImpactStatus.DOWN),
    ],
)
def test_redundancy_rule_forms(rule: str, failed: list[str], expected: ImpactStatus) -> None:
    # Arrange: a cluster of four members
    members = [ci(f"m{i}", "Server") for i in range(1, 5)]
    g = graph([ci("cl", "Cluster", redundancy=rule), *members],
              [(m.ci_id, "MEMBER_OF", "cl") for m in members])

    # Act
    result = propagate_status(ImpactGraph(g), failed)

    # Assert
    assert result.status_of("cl") is expected


def test_redundancy_rule_applies_to_dependencies_too() -> None:
    g = graph(
        [ci("svc", "ApplicationService", redundancy="1"), ci("a", "Application"),
         ci("b", "Application")],
        [("svc", "DEPENDS_ON", "a"), ("svc", "DEPENDS_ON", "b")],
    )

    assert propagate_status(ImpactGraph(g), ["a"]).status_of("svc") is ImpactStatus.DEGRADED
    assert propagate_status(ImpactGraph(g), ["a", "b"]).status_of("svc") is ImpactStatus.DOWN


def test_optional_inputs_do_not_count_towards_the_redundancy_threshold() -> None:
    g = graph(
        [ci("svc", "ApplicationService", redundancy="1"), ci("a", "Application"),
         ci("opt", "Application")],
        [("svc", "DEPENDS_ON", "a"), ("svc", "DEPENDS_ON", "opt", True)],
    )

    assert propagate_status(ImpactGraph(g), ["a"]).status_of("svc") is ImpactStatus.DOWN
    assert propagate_status(ImpactGraph(g), ["opt"]).status_of("svc") is ImpactStatus.DEGRADED


def test_cycle_terminates_and_is_reported() -> None:
    # Arrange: a <-> b, b needs c, d needs a
    g = graph(
        [ci("a", "Application"), ci("b", "Application"), ci("c", "Database"),
         ci("d", "ApplicationService")],
        [("a", "DEPENDS_ON", "b"), ("b", "DEPENDS_ON", "a"), ("b", "DEPENDS_ON", "c"),
         ("d", "DEPENDS_ON", "a")],
    )

    # Act
    result = propagate_status(ImpactGraph(g), ["c"])

    # Assert
    assert set(result.down) == {"a", "b", "d"}
    assert result.cycles == (("a", "b"),)


def test_cycle_nothing_outside_takes_down_stays_up() -> None:
    g = graph(
        [ci("a", "Application"), ci("b", "Application"), ci("x", "Server")],
        [("a", "DEPENDS_ON", "b"), ("b", "DEPENDS_ON", "a")],
    )

    result = propagate_status(ImpactGraph(g), ["x"])

    assert result.down == () and result.degraded == () and result.cycles == ()


def test_cycle_inside_a_redundancy_group_still_terminates() -> None:
    g = graph(
        [ci("cl", "Cluster", redundancy="1"), ci("m1", "Server"), ci("m2", "Server")],
        [("m1", "MEMBER_OF", "cl"), ("m2", "MEMBER_OF", "cl"), ("m1", "DEPENDS_ON", "cl")],
    )

    result = propagate_status(ImpactGraph(g), ["m2"])

    assert result.status_of("cl") is ImpactStatus.DEGRADED
    assert result.status_of("m1") is ImpactStatus.DEGRADED
    assert result.cycles == (("cl", "m1"),)


def test_self_loop_is_reported_as_a_cycle() -> None:
    g = graph([ci("a", "Application"), ci("b", "Server")],
              [("a", "DEPENDS_ON", "a"), ("a", "RUNS_ON", "b")])

    result = propagate_status(ImpactGraph(g), ["b"])

    assert result.down == ("a",)
    assert result.cycles == (("a",),)


def test_relationship_type_without_impact_carries_nothing() -> None:
    # Arrange
    reg = Registry()
    reg.add_relationship_type(RelationshipType("BACKS_UP", ImpactDirection.NONE))
    g = graph([ci("bk", "Server"), ci("db", "Database")], [("bk", "BACKS_UP", "db")])

    # Act
    result = propagate_status(ImpactGraph(g, reg), ["db"])

    # Assert
    assert result.down == () and result.degraded == ()


def test_parallel_relationships_are_required_when_any_is() -> None:
    g = graph([ci("a", "Application"), ci("b", "Server")],
              [("a", "DEPENDS_ON", "b", True), ("a", "RUNS_ON", "b")])

    assert propagate_status(ImpactGraph(g), ["b"]).down == ("a",)


def test_unknown_failed_ci_raises() -> None:
    with pytest.raises(CINotFoundError, match="nope"):
        propagate_status(ImpactGraph(shop()), ["nope"])


def test_bad_redundancy_attribute_names_the_ci() -> None:
    g = graph([ci("m", "Server"), ci("cl", "Cluster")], [("m", "MEMBER_OF", "cl")])
    g.nodes["cl"]["redundancy"] = "two"

    with pytest.raises(InvalidRecordError, match="cl") as info:
        propagate_status(ImpactGraph(g), ["m"])
    assert info.value.field == "redundancy"
