"""Change impact and change conflicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmdb_graph.errors import CINotFoundError, InvalidRecordError, TraversalLimitError
from cmdb_graph.model import Change, ChangeState, Window, WindowKind
from impact import (
    ConflictKind,
    ImpactGraph,
    ImpactLimits,
    ImpactStatus,
    change_conflicts,
    change_impact,
    schedule_conflicts,
)
from tests.unit.impact.estates import ci, graph, shop

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # a Sunday


def change(cid: str, cis: list[str], start: datetime = T0, hours: float = 2,
           state: ChangeState = ChangeState.SCHEDULED) -> Change:
    return Change(change_id=cid, ci_ids=cis, window_start=start,
                  window_end=start + timedelta(hours=hours), state=state)


# -- change impact -------------------------------------------------------------------------


def test_impact_lists_status_depth_criticality_and_paths() -> None:
    # Act
    result = change_impact(ImpactGraph(shop()), ["srv1", "srv2"])

    # Assert
    by_id = {c.ci_id: c for c in result.impacted}
    assert result.changed == ("srv1", "srv2")
    assert set(by_id) == {"cl_web", "app_web", "as_web", "bs_shop", "bs_blog"}
    assert by_id["cl_web"].depth == 1 and by_id["bs_shop"].depth == 4
    assert by_id["bs_shop"].status is ImpactStatus.DOWN
    assert by_id["bs_shop"].business_criticality == 1
    assert by_id["bs_shop"].paths == (
        ("srv1", "cl_web", "app_web", "as_web", "bs_shop"),
        ("srv2", "cl_web", "app_web", "as_web", "bs_shop"),
    )
    assert [c.ci_id for c in result.impacted] == [
        "cl_web", "app_web", "as_web", "bs_blog", "bs_shop"
    ]


def test_impact_reports_lost_redundancy_headroom() -> None:
    one = change_impact(ImpactGraph(shop()), ["srv1"])
    two = change_impact(ImpactGraph(shop()), ["srv1", "srv2"])

    assert [(r.ci_id, r.inputs_down, r.threshold, r.headroom, r.status) for r in one.redundancy] \
        == [("cl_web", 1, 2, 0, ImpactStatus.DEGRADED)]
    assert [(r.headroom, r.status) for r in two.redundancy] == [(-1, ImpactStatus.DOWN)]


def test_impact_summary_counts_and_most_critical_service() -> None:
    result = change_impact(ImpactGraph(shop()), ["vm_search"])

    assert result.summary.by_status == {"degraded": 3, "down": 1}
    assert result.summary.by_class["BusinessService"] == 2
    assert result.summary.services_hit == 3
    assert result.summary.most_critical_service == "bs_shop"
    assert result.summary.most_critical_level == 1


def test_impact_filters_to_services() -> None:
    result = change_impact(ImpactGraph(shop()), ["sw1"], services_only=True)

    assert [c.ci_id for c in result.impacted] == ["as_web", "bs_blog", "bs_shop"]
    assert result.summary.total == 3


def test_depth_limit_reports_near_cis_with_their_full_status() -> None:
    result = change_impact(ImpactGraph(shop()), ["sw1"], depth_limit=2)

    assert {c.ci_id: c.status for c in result.impacted} == {
        "srv1": ImpactStatus.DOWN, "srv2": ImpactStatus.DOWN, "srv3": ImpactStatus.DOWN,
        "cl_web": ImpactStatus.DOWN,
    }
    assert result.truncated is True


def test_degraded_paths_go_through_the_optional_dependency() -> None:
    result = change_impact(ImpactGraph(shop()), ["hv1"])

    by_id = {c.ci_id: c for c in result.impacted}
    assert by_id["as_web"].status is ImpactStatus.DEGRADED
    assert by_id["as_web"].paths == (("hv1", "vm_search", "app_search", "as_web"),)


def test_paths_are_bounded_per_ci() -> None:
    result = change_impact(ImpactGraph(shop()), ["sw1"], paths_per_ci=1)

    assert all(len(c.paths) == 1 for c in result.impacted)
    assert {c.ci_id: c.paths for c in result.impacted}["cl_web"] == (("sw1", "srv1", "cl_web"),)


def test_caps_raise_traversal_limit_error() -> None:
    with pytest.raises(TraversalLimitError):
        change_impact(ImpactGraph(shop()), ["sw1"], depth_limit=13)
    with pytest.raises(TraversalLimitError):
        change_impact(ImpactGraph(shop()), ["sw1"], limits=ImpactLimits(max_results=3))
    with pytest.raises(TraversalLimitError):
        change_impact(ImpactGraph(shop()), ["sw1"], paths_per_ci=1000)


def test_unknown_changed_ci_raises() -> None:
    with pytest.raises(CINotFoundError):
        change_impact(ImpactGraph(shop()), ["ghost"])


def test_impact_result_is_frozen() -> None:
    result = change_impact(ImpactGraph(shop()), ["srv1"])

    with pytest.raises(Exception, match="frozen"):
        result.impacted[0].status = ImpactStatus.DOWN  # type: ignore[misc]


# -- conflicts ----------------------------------------------------------------------------


def test_same_ci_under_overlapping_changes_conflicts() -> None:
    mine = change("CHG1", ["srv1"])
    other = change("CHG2", ["srv1"], start=T0 + timedelta(hours=1))
    later = change("CHG3", ["srv1"], start=T0 + timedelta(hours=2))  # starts when mine ends

    found = change_conflicts(ImpactGraph(shop()), mine, changes=[mine, other, later])

    assert [(c.kind, c.other_change_id, c.ci_ids) for c in found] == [
        (ConflictKind.SAME_CI, "CHG2", ("srv1",))
    ]


def test_change_on_a_ci_in_the_impact_closure_conflicts() -> None:
    mine = change("CHG1", ["hv1"])
    other = change("CHG2", ["as_web"])

    found = change_conflicts(ImpactGraph(shop()), mine, changes=[other])

    assert [(c.kind, c.ci_ids) for c in found] == [(ConflictKind.IMPACT_OVERLAP, ("as_web",))]


def test_cancelled_changes_do_not_conflict() -> None:
    mine = change("CHG1", ["srv1"])
    other = change("CHG2", ["srv1"], state=ChangeState.CANCELLED)

    assert change_conflicts(ImpactGraph(shop()), mine, changes=[other]) == ()


def test_two_changes_each_keep_quorum_but_break_it_together() -> None:
    # Arrange
    g = shop()
    a = change("CHG-A", ["srv1"])
    b = change("CHG-B", ["srv2"], start=T0 + timedelta(minutes=30))
    c_later = change("CHG-C", ["srv3"], start=T0 + timedelta(days=1))

    # Act
    found = change_conflicts(ImpactGraph(g), a, changes=[a, b, c_later])

    # Assert: each alone only degrades the cluster
    assert change_impact(ImpactGraph(g), ["srv1"]).summary.by_status.get("down", 0) == 0
    assert change_impact(ImpactGraph(g), ["srv2"]).summary.by_status.get("down", 0) == 0
    combined = [c for c in found if c.kind is ConflictKind.REDUNDANCY_COMBINED]
    assert [(c.other_change_id, c.ci_ids) for c in combined] == [("CHG-B", ("cl_web",))]
    assert "bs_shop" in combined[0].detail


def test_blackout_on_an_impacted_service_conflicts() -> None:
    mine = change("CHG1", ["srv1", "srv2"])
    freeze = Window(window_id="W-FREEZE", kind=WindowKind.BLACKOUT, start=T0 - timedelta(days=1),
                    end=T0 + timedelta(days=1), ci_ids=["bs_shop"])
    elsewhere = Window(window_id="W-OTHER", kind=WindowKind.BLACKOUT, start=T0,
                       end=T0 + timedelta(days=1), ci_ids=["dc2"])

    found = change_conflicts(ImpactGraph(shop()), mine, windows=[freeze, elsewhere])

    assert [(c.kind, c.window_id, c.ci_ids) for c in found] == [
        (ConflictKind.BLACKOUT, "W-FREEZE", ("bs_shop",))
    ]


def test_estate_wide_blackout_lists_impacted_services() -> None:
    mine = change("CHG1", ["vm_search"])
    freeze = Window(window_id="W-ALL", kind=WindowKind.BLACKOUT, start=T0, end=T0 + timedelta(1))

    (found,) = change_conflicts(ImpactGraph(shop()), mine, windows=[freeze])

    assert found.ci_ids == ("as_web", "bs_blog", "bs_shop", "vm_search")


def test_change_outside_a_recurring_maintenance_window_is_flagged() -> None:
    # Arrange: Sundays 21:00-01:00 for srv1; srv2 has no maintenance window
    weekly = Window(window_id="W-SUN", kind=WindowKind.MAINTENANCE,
                    start=datetime(2026, 1, 4, 21, 0, tzinfo=UTC),
                    end=datetime(2026, 1, 5, 1, 0, tzinfo=UTC),
                    recurrence="FREQ=WEEKLY;BYDAY=SU", ci_ids=["srv1"])
    inside = change("CHG-IN", ["srv1", "srv2"], start=T0, hours=2)  # Sun 22:00-24:00
    outside = change("CHG-OUT", ["srv1", "srv2"], start=T0 + timedelta(days=2), hours=2)
    too_long = change("CHG-LONG", ["srv1"], start=T0, hours=4)

    # Act
    found_in = change_conflicts(ImpactGraph(shop()), inside, windows=[weekly])
    found_out = change_conflicts(ImpactGraph(shop()), outside, windows=[weekly])
    found_long = change_conflicts(ImpactGraph(shop()), too_long, windows=[weekly])

    # Assert
    assert found_in == ()
    assert [(c.kind, c.ci_ids) for c in found_out] == [
        (ConflictKind.OUTSIDE_MAINTENANCE, ("srv1",))
    ]
    assert [c.kind for c in found_long] == [ConflictKind.OUTSIDE_MAINTENANCE]


def test_recurring_blackout_occurrence_overlapping_the_change_conflicts() -> None:
    monthly = Window(window_id="W-EOM", kind=WindowKind.BLACKOUT,
                     start=datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
                     end=datetime(2026, 1, 2, 0, 0, tzinfo=UTC),
                     recurrence="RRULE:FREQ=MONTHLY;BYMONTHDAY=1", ci_ids=["bs_shop"])
    on_first = change("CHG1", ["srv1", "srv2"], start=datetime(2026, 3, 1, 10, tzinfo=UTC))
    on_second = change("CHG2", ["srv1", "srv2"], start=datetime(2026, 3, 2, 10, tzinfo=UTC))

    assert [c.kind for c in change_conflicts(ImpactGraph(shop()), on_first, windows=[monthly])] == [
        ConflictKind.BLACKOUT
    ]
    assert change_conflicts(ImpactGraph(shop()), on_second, windows=[monthly]) == ()


def test_invalid_recurrence_names_the_window() -> None:
    bad = Window(window_id="W-BAD", kind=WindowKind.BLACKOUT, start=T0, end=T0 + timedelta(1),
                 recurrence="FREQ=SOMETIMES")

    with pytest.raises(InvalidRecordError, match="W-BAD") as info:
        change_conflicts(ImpactGraph(shop()), change("CHG1", ["srv1"]), windows=[bad])
    assert info.value.field == "recurrence"


def test_schedule_conflicts_reports_both_sides() -> None:
    a = change("CHG-A", ["srv1"])
    b = change("CHG-B", ["srv2"])
    c = change("CHG-C", ["dc2"], start=T0 + timedelta(days=3))

    found = schedule_conflicts(ImpactGraph(shop()), [a, b, c])

    assert sorted(found) == ["CHG-A", "CHG-B"]
    assert found["CHG-B"][0].other_change_id == "CHG-A"


def test_assessed_change_with_unknown_ci_names_the_change() -> None:
    with pytest.raises(CINotFoundError, match="CHG9"):
        change_conflicts(ImpactGraph(shop()), change("CHG9", ["ghost"]))


def test_other_change_on_an_unrelated_ci_does_not_conflict() -> None:
    g = graph([ci("a", "Server"), ci("b", "Server")], [])

    assert change_conflicts(ImpactGraph(g), change("C1", ["a"]),
                            changes=[change("C2", ["b"])]) == ()


def test_three_changes_break_a_group_no_pair_breaks() -> None:
    # Arrange: a 2-of-4 cluster (down below 2 up); three changes on three members
    members = [ci(f"m{i}", "Server") for i in range(1, 5)]
    g = graph([ci("svc", "ApplicationService"), ci("cl", "Cluster", redundancy="2"), *members],
              [("svc", "RUNS_ON", "cl"), *[(m.ci_id, "MEMBER_OF", "cl") for m in members]])
    a = change("CHG-A", ["m1"], hours=3)
    b = change("CHG-B", ["m2"], start=T0 + timedelta(hours=1), hours=3)
    c = change("CHG-C", ["m3"], start=T0 + timedelta(hours=2), hours=3)
    d = change("CHG-D", ["m3"], start=T0 + timedelta(hours=4), hours=3)  # not with CHG-A

    # Act
    found = change_conflicts(ImpactGraph(g), a, changes=[a, b, c, d])

    # Assert: no pair does it; A+B+C at 00:00 do
    combined = [x for x in found if x.kind is ConflictKind.REDUNDANCY_COMBINED]
    assert [(x.other_change_id, x.other_change_ids, x.ci_ids) for x in combined] == [
        (None, ("CHG-B", "CHG-C"), ("cl",))
    ]
    assert "svc" in combined[0].detail


def test_three_changes_not_at_the_same_time_do_not_combine() -> None:
    members = [ci(f"m{i}", "Server") for i in range(1, 5)]
    g = graph([ci("cl", "Cluster", redundancy="2"), *members],
              [(m.ci_id, "MEMBER_OF", "cl") for m in members])
    mine = change("CHG-A", ["m1"], hours=4)
    early = change("CHG-B", ["m2"], start=T0 - timedelta(hours=1), hours=2)
    late = change("CHG-C", ["m3"], start=T0 + timedelta(hours=2), hours=3)

    found = change_conflicts(ImpactGraph(g), mine, changes=[early, late])

    assert [x for x in found if x.kind is ConflictKind.REDUNDANCY_COMBINED] == []
