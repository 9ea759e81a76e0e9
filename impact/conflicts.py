"""Change conflicts: one change against other changes and maintenance and blackout windows.

Each kind of conflict (:class:`~impact.results.ConflictKind`) has its own function below;
:func:`change_conflicts` composes them and :func:`schedule_conflicts` runs it for every
active change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from cmdb_graph.errors import CINotFoundError
from cmdb_graph.model import Change, ChangeState, Window, WindowKind
from impact.graph import ImpactGraph
from impact.results import ChangeConflict, ConflictKind
from impact.topology import DOWN, Propagation
from impact.windows import intervals_overlap, window_contains, window_overlaps

__all__ = ["INACTIVE_CHANGE_STATES", "change_conflicts", "schedule_conflicts"]

#: Changes in these states are ignored when looking for conflicts.
INACTIVE_CHANGE_STATES = frozenset({ChangeState.CLOSED, ChangeState.CANCELLED})


@dataclass(frozen=True, slots=True)
class _Assessed:
    """The change being assessed, its CIs and what its failure reaches."""

    change: Change
    ids: list[str]
    propagation: Propagation
    closure: frozenset[str]

    @property
    def start(self) -> datetime:
        return self.change.window_start

    @property
    def end(self) -> datetime:
        return self.change.window_end


@dataclass(frozen=True, slots=True)
class _Other:
    """Another active change whose window overlaps the assessed one's."""

    change: Change
    ids: list[str]  # its CIs known to the graph, sorted
    propagation: Propagation
    closure: frozenset[str]


def change_conflicts(
    graph: ImpactGraph,
    change: Change,
    *,
    changes: Sequence[Change] = (),
    windows: Sequence[Window] = (),
) -> tuple[ChangeConflict, ...]:
    """Conflicts of one change with other changes and with maintenance and blackout windows.

    Parameters
    ----------
    graph : ImpactGraph
        The estate.
    change : Change
        The change to assess; its ``ci_ids`` are taken down for ``[window_start, window_end)``.
    changes : sequence of Change
        Other scheduled changes (the assessed one, and closed or cancelled ones, are skipped).
        CIs they name that are not in ``graph`` are ignored.
    windows : sequence of Window
        Maintenance and blackout windows, once or recurring (RFC 5545 ``RRULE``). A window
        with no ``ci_ids`` applies to every CI.

    Returns
    -------
    tuple of ChangeConflict
        Sorted by (kind, other change, window, CIs). Kinds:

        ``same_ci``
            another change whose window overlaps names one of the same CIs;
        ``impact_overlap``
            another overlapping change names a CI in this change's impact closure, or this
            change names a CI in the other's;
        ``blackout``
            a blackout window overlapping the change applies to a CI of the change or of its
            impact closure (a window without CIs, i.e. estate-wide, lists the impacted services
            in service, see :meth:`ImpactGraph.in_service`, and the changed CIs);
        ``outside_maintenance``
            changed CIs that have maintenance windows, none of whose occurrences covers the
            whole change window (CIs without any maintenance window are not flagged);
        ``redundancy_combined``
            with another overlapping change, redundancy groups go below their threshold
            although neither change alone takes them down (members not in service give no
            redundancy; the detail names the services newly down that are in service); also
            for every set of two or more other changes active at the same instant as this
            one (``other_change_id`` is then ``None`` and ``other_change_ids`` lists them):
            groups that the set plus this change take down, that the set alone does not, and
            no pair already reported.

    Raises
    ------
    CINotFoundError
        A CI of the assessed change is not in ``graph``.
    InvalidRecordError
        A window's recurrence is not a valid RRULE.
    """
    me = _assess(graph, change)
    others = _overlapping(graph, me, changes)
    pairs = list(_redundancy_pairs(graph, me, others))
    found = [
        *_same_ci(me, others),
        *_impact_overlap(me, others),
        *pairs,
        *_redundancy_sets(graph, me, others, reported={g for c in pairs for g in c.ci_ids}),
        *_blackouts(graph, me, windows),
        *_outside_maintenance(me, windows),
    ]
    return tuple(sorted(
        found,
        key=lambda c: (str(c.kind), c.other_change_id or "", c.window_id or "", c.ci_ids),
    ))


def schedule_conflicts(
    graph: ImpactGraph,
    changes: Sequence[Change],
    *,
    windows: Sequence[Window] = (),
) -> dict[str, tuple[ChangeConflict, ...]]:
    """:func:`change_conflicts` of every active change against all the others.

    Returns
    -------
    dict of str to tuple of ChangeConflict
        By ``change_id`` (sorted), only changes that have conflicts. Pairwise conflicts appear
        under both changes.

    Raises
    ------
    CINotFoundError, InvalidRecordError
        As :func:`change_conflicts`.
    """
    out: dict[str, tuple[ChangeConflict, ...]] = {}
    for change in sorted(changes, key=lambda c: c.change_id):
        if change.state in INACTIVE_CHANGE_STATES:
            continue
        found = change_conflicts(graph, change, changes=changes, windows=windows)
        if found:
            out[change.change_id] = found
    return out


# -- the changes in play ------------------------------------------------------------------


def _assess(graph: ImpactGraph, change: Change) -> _Assessed:
    try:
        ids = graph.require(change.ci_ids)
    except CINotFoundError as exc:
        raise CINotFoundError(f"change {change.change_id}: {exc}") from None
    topo = graph.topology
    prop = topo.propagate(topo.indexes(ids))
    return _Assessed(change, ids, prop, frozenset(topo.ids[i] for i in prop.nodes.tolist()))


def _overlapping(graph: ImpactGraph, me: _Assessed, changes: Sequence[Change]) -> list[_Other]:
    """The other active changes whose windows overlap, with what their failure reaches."""
    topo = graph.topology
    out: list[_Other] = []
    for other in changes:
        if other.change_id == me.change.change_id or other.state in INACTIVE_CHANGE_STATES:
            continue
        if not intervals_overlap(me.start, me.end, other.window_start, other.window_end):
            continue
        ids = sorted({c for c in other.ci_ids if c in topo.index})
        if not ids:
            continue
        prop = topo.propagate(topo.indexes(ids))
        out.append(_Other(other, ids, prop, frozenset(topo.ids[i] for i in prop.nodes.tolist())))
    return out


def _pair_conflict(kind: ConflictKind, me: _Assessed, other: _Other, ci_ids: Iterable[str],
                   detail: str) -> ChangeConflict:
    return ChangeConflict(
        kind=kind, change_id=me.change.change_id, other_change_id=other.change.change_id,
        other_change_ids=(other.change.change_id,), ci_ids=tuple(ci_ids), detail=detail,
    )


# -- one function per kind ----------------------------------------------------------------


def _same_ci(me: _Assessed, others: list[_Other]) -> Iterator[ChangeConflict]:
    """``same_ci``: another overlapping change names one of the same CIs."""
    for other in others:
        same = sorted(set(me.ids) & set(other.ids))
        if same:
            yield _pair_conflict(ConflictKind.SAME_CI, me, other, same,
                                 f"{len(same)} CI(s) under both changes in overlapping windows")


def _impact_overlap(me: _Assessed, others: list[_Other]) -> Iterator[ChangeConflict]:
    """``impact_overlap``: a CI one change names is in the other's impact closure (CIs both
    name are ``same_ci`` instead)."""
    mine = set(me.ids)
    for other in others:
        theirs = set(other.ids)
        overlap = sorted(((theirs & me.closure) | (mine & other.closure)) - (mine & theirs))
        if overlap:
            yield _pair_conflict(
                ConflictKind.IMPACT_OVERLAP, me, other, overlap,
                "CIs changed by one change are impacted by the other in overlapping windows",
            )


def _redundancy_pairs(graph: ImpactGraph, me: _Assessed,
                      others: list[_Other]) -> Iterator[ChangeConflict]:
    """``redundancy_combined`` for a pair: groups down with both changes, with neither alone."""
    for other in others:
        groups, detail = _combined(graph, me, set(other.ids), other.propagation)
        if groups:
            yield _pair_conflict(
                ConflictKind.REDUNDANCY_COMBINED, me, other, groups,
                f"together the changes take {detail}, which neither does alone",
            )


def _redundancy_sets(graph: ImpactGraph, me: _Assessed, others: list[_Other], *,
                     reported: set[str]) -> Iterator[ChangeConflict]:
    """``redundancy_combined`` for every set of two or more other changes active at the same
    instant as this one: groups the set and this change take down, that the set alone does
    not, and that no pair (nor an earlier set) already reported."""
    topo = graph.topology
    reported = set(reported)
    seen: set[tuple[str, ...]] = set()
    for instant in sorted({max(me.start, o.change.window_start) for o in others}):
        active = [o for o in others if o.change.window_start <= instant < o.change.window_end]
        names = tuple(sorted(o.change.change_id for o in active))
        if len(active) < 2 or names in seen:
            continue
        seen.add(names)
        cis = {c for o in active for c in o.ids}
        alone = topo.propagate(topo.indexes(sorted(cis)))
        groups, detail = _combined(graph, me, cis, alone, exclude=reported)
        if groups:
            reported.update(groups)
            yield ChangeConflict(
                kind=ConflictKind.REDUNDANCY_COMBINED, change_id=me.change.change_id,
                other_change_ids=names, ci_ids=tuple(groups),
                detail=f"together with {', '.join(names)} from {instant.isoformat()} the "
                       f"change takes {detail}, which no pair of them does",
            )


def _combined(
    graph: ImpactGraph,
    me: _Assessed,
    their_ids: set[str],
    theirs: Propagation,
    *,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[str], str]:
    """Redundancy groups down with both sets of changes but with neither alone, and how to
    say so."""
    topo = graph.topology
    both = topo.propagate(topo.indexes(sorted(set(me.ids) | their_ids)))
    both_down = both.down
    newly = both_down[(me.propagation.status_at(both_down) != DOWN)
                      & (theirs.status_at(both_down) != DOWN)]
    groups = sorted(
        g for g in (topo.ids[i] for i in newly[topo.has_rule_mask[newly]].tolist())
        if g not in exclude
    )
    if not groups:
        return [], ""
    services = sorted(c for c in (topo.ids[i] for i in newly.tolist())
                      if graph.is_service(c) and graph.in_service(c))
    detail = (f"{len(groups)} redundancy group(s) below their threshold; {len(newly)} CI(s) "
              "newly down" + (f", services: {', '.join(services[:10])}" if services else ""))
    return groups, detail


def _blackouts(graph: ImpactGraph, me: _Assessed,
               windows: Sequence[Window]) -> Iterator[ChangeConflict]:
    """``blackout``: an overlapping blackout window applies to a changed or impacted CI (an
    estate-wide window: to the impacted services and the changed CIs)."""
    for window in sorted(windows, key=lambda w: w.window_id):
        if window.kind is not WindowKind.BLACKOUT or not window_overlaps(window, me.start,
                                                                         me.end):
            continue
        if window.ci_ids:
            hit = sorted(me.closure & set(window.ci_ids))
        else:
            hit = sorted({c for c in me.closure if graph.is_service(c) and graph.in_service(c)}
                         | set(me.ids))
        if hit:
            yield ChangeConflict(
                kind=ConflictKind.BLACKOUT, change_id=me.change.change_id,
                window_id=window.window_id, ci_ids=tuple(hit),
                detail=f"{len(hit)} changed or impacted CI(s) are in blackout window "
                       f"{window.name or window.window_id}",
            )


def _outside_maintenance(me: _Assessed, windows: Sequence[Window]) -> Iterator[ChangeConflict]:
    """``outside_maintenance``: changed CIs that have maintenance windows, none of whose
    occurrences covers the whole change window."""
    maintenance = [w for w in windows if w.kind is WindowKind.MAINTENANCE]
    outside: list[str] = []
    for ci in me.ids:
        applicable = [w for w in maintenance if not w.ci_ids or ci in w.ci_ids]
        if applicable and not any(window_contains(w, me.start, me.end) for w in applicable):
            outside.append(ci)
    if outside:
        yield ChangeConflict(
            kind=ConflictKind.OUTSIDE_MAINTENANCE, change_id=me.change.change_id,
            ci_ids=tuple(outside),
            detail=f"{len(outside)} changed CI(s) have maintenance windows that do not cover "
                   "the change window",
        )
