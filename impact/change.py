"""Change impact and change conflicts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import networkx as nx
import numpy as np

from cmdb_graph.errors import CINotFoundError
from cmdb_graph.model import Change, ChangeState, Registry, Window, WindowKind
from impact._common import attr, get_topology, require_cis
from impact.limits import DEFAULT_LIMITS, ImpactLimits
from impact.results import (
    ChangeConflict,
    ChangeImpact,
    ConflictKind,
    ImpactedCI,
    ImpactStatus,
    ImpactSummary,
    RedundancyImpact,
)
from impact.topology import DEGRADED, DOWN, Propagation, Topology
from impact.windows import intervals_overlap, window_contains, window_overlaps

__all__ = ["INACTIVE_CHANGE_STATES", "change_conflicts", "change_impact", "schedule_conflicts"]

#: Changes in these states are ignored when looking for conflicts.
INACTIVE_CHANGE_STATES = frozenset({ChangeState.CLOSED, ChangeState.CANCELLED})

_STATUS = {DOWN: ImpactStatus.DOWN, DEGRADED: ImpactStatus.DEGRADED}


def _explaining_paths(
    topo: Topology, prop: Propagation, targets: Iterable[int], per_ci: int
) -> dict[int, tuple[tuple[str, ...], ...]]:
    """Up to ``per_ci`` explaining paths (seed ... CI) for each target, shortest first."""
    links = topo.explaining_inputs(prop)
    memo: dict[int, list[tuple[str, ...]]] = {int(s): [(topo.ids[int(s)],)]
                                               for s in prop.seeds.tolist()}
    for target in targets:
        stack = [target]
        while stack:
            node = stack[-1]
            if node in memo:
                stack.pop()
                continue
            preds = links.get(node, [])
            todo = [p for p in preds if p not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            name = topo.ids[node]
            cands = [(*p, name) for pred in preds for p in memo[pred]]
            cands.sort(key=lambda p: (len(p), p))
            memo[node] = cands[:per_ci]
    return {t: tuple(memo.get(t, ())) for t in targets}


def change_impact(
    graph: nx.MultiDiGraph,
    changed: Iterable[str],
    *,
    registry: Registry | None = None,
    depth_limit: int | None = None,
    services_only: bool = False,
    paths_per_ci: int = 3,
    limits: ImpactLimits = DEFAULT_LIMITS,
    topology: Topology | None = None,
) -> ChangeImpact:
    """Every CI impacted when ``changed`` are taken down by a change, and why.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        Dependency graph in the store shape (``cmdb_graph.store.base``).
    changed : iterable of str
        ``ci_id`` of the CIs under change; they are assumed down for the whole window.
    registry : Registry, optional
        Impact direction per relationship type and kind per CI class (default ``Registry()``).
    depth_limit : int, optional
        Report CIs up to this many hops from a changed CI (default and cap:
        ``limits.max_depth``). Statuses are always computed over the whole closure, so a CI
        within the limit has the same status whatever the limit.
    services_only : bool
        Report only business and application services.
    paths_per_ci : int
        Explaining paths per impacted CI (0: none; at most ``limits.max_paths``).
    limits : ImpactLimits
        Server-side caps.
    topology : Topology, optional
        A topology already built from ``graph``.

    Returns
    -------
    ChangeImpact
        Impacted CIs (sorted by depth then ``ci_id``) with status, depth, business criticality
        and explaining paths; redundancy groups that lost headroom; cycles met; a summary.

    Raises
    ------
    CINotFoundError
        A changed CI is not in ``graph``.
    TraversalLimitError
        ``depth_limit`` or ``paths_per_ci`` above the caps, or more CIs to report than
        ``limits.max_results``.
    """
    ids = require_cis(graph, changed)
    depth_cap = limits.check_depth(depth_limit)
    if paths_per_ci:
        limits.check_paths(paths_per_ci)
    reg, topo = get_topology(graph, registry, topology)
    prop = topo.propagate(topo.indexes(ids))
    nodes = prop.nodes
    depth = prop.depth
    truncated = bool((depth > depth_cap).any())
    reported = np.flatnonzero((depth > 0) & (depth <= depth_cap))
    if services_only:
        keep = [
            k for k in reported.tolist()
            if reg.is_service(str(attr(graph, topo.ids[int(nodes[k])], "ci_class", "")))
        ]
        reported = np.array(keep, dtype=np.int64)
    limits.check_results(int(reported.size))
    rep_list = [(int(nodes[k]), int(k)) for k in reported.tolist()]
    paths = (_explaining_paths(topo, prop, [i for i, _ in rep_list], paths_per_ci)
             if paths_per_ci else {})
    impacted: list[ImpactedCI] = []
    nodes_view = graph.nodes
    status_arr = prop.status
    depth_arr = prop.depth
    for i, k in rep_list:
        ci = topo.ids[i]
        data = nodes_view[ci]
        cls = str(data.get("ci_class") or "")
        impacted.append(
            ImpactedCI(
                ci_id=ci,
                name=str(data.get("name") or ci),
                ci_class=cls,
                kind=str(reg.kind_of(cls)),
                status=_STATUS[int(status_arr[k])],
                depth=int(depth_arr[k]),
                business_criticality=data.get("business_criticality"),
                paths=paths.get(i, ()),
            )
        )
    impacted.sort(key=lambda c: (c.depth, c.ci_id))
    redundancy = _redundancy_impacts(graph, topo, prop, depth_cap)
    return ChangeImpact(
        changed=tuple(ids),
        impacted=tuple(impacted),
        redundancy=redundancy,
        cycles=tuple(tuple(c) for c in topo.cycles_among(nodes)),
        summary=_summary(impacted, reg),
        depth_limit=depth_cap,
        truncated=truncated,
    )


def _redundancy_impacts(
    graph: nx.MultiDiGraph, topo: Topology, prop: Propagation, depth_cap: int
) -> tuple[RedundancyImpact, ...]:
    nodes = prop.nodes
    mask = topo.has_rule_mask[nodes] & (prop.down_inputs > 0)
    mask &= (prop.depth > 0) & (prop.depth <= depth_cap)
    out = []
    for k in np.flatnonzero(mask).tolist():
        i = int(nodes[k])
        ci = topo.ids[i]
        req = int(topo.required_inputs[i])
        down = int(prop.down_inputs[k])
        thr = int(topo.threshold[i])
        out.append(
            RedundancyImpact(
                ci_id=ci,
                name=str(attr(graph, ci, "name", ci)),
                rule=topo.rules[ci],
                required_inputs=req,
                inputs_down=down,
                threshold=thr,
                headroom=req - down - thr,
                status=_STATUS[int(prop.status[k])],
            )
        )
    return tuple(sorted(out, key=lambda r: r.ci_id))


def _summary(impacted: Sequence[ImpactedCI], reg: Registry) -> ImpactSummary:
    by_status = Counter(str(c.status) for c in impacted)
    by_class = Counter(c.ci_class for c in impacted)
    services = [c for c in impacted if reg.is_service(c.ci_class)]
    ranked = sorted(
        services,
        key=lambda c: (
            c.business_criticality if c.business_criticality is not None else 99,
            0 if c.status is ImpactStatus.DOWN else 1,
            c.ci_id,
        ),
    )
    top = ranked[0] if ranked else None
    return ImpactSummary(
        total=len(impacted),
        by_status=dict(sorted(by_status.items())),
        by_class=dict(sorted(by_class.items())),
        services_hit=len(services),
        most_critical_service=top.ci_id if top else None,
        most_critical_level=top.business_criticality if top else None,
    )


# -- conflicts ----------------------------------------------------------------------------


def _known(topo: Topology, ci_ids: Iterable[str]) -> list[str]:
    return sorted({c for c in ci_ids if c in topo.index})


def _combined(
    graph: nx.MultiDiGraph,
    reg: Registry,
    topo: Topology,
    mine: Propagation,
    my_ids: set[str],
    their_ids: set[str],
    theirs: Propagation,
    *,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[str], str]:
    """Redundancy groups down with both sets of changes but with neither alone."""
    both = topo.propagate(topo.indexes(sorted(my_ids | their_ids)))
    both_down = both.down
    newly = both_down[(mine.status_at(both_down) != DOWN) & (theirs.status_at(both_down) != DOWN)]
    groups = sorted(
        g for g in (topo.ids[i] for i in newly[topo.has_rule_mask[newly]].tolist())
        if g not in exclude
    )
    if not groups:
        return [], ""
    services = sorted(
        topo.ids[i] for i in newly.tolist()
        if reg.is_service(str(attr(graph, topo.ids[i], "ci_class", "")))
    )
    detail = (f"{len(groups)} redundancy group(s) below their threshold; {len(newly)} CI(s) "
              "newly down" + (f", services: {', '.join(services[:10])}" if services else ""))
    return groups, detail


def change_conflicts(
    graph: nx.MultiDiGraph,
    change: Change,
    *,
    changes: Sequence[Change] = (),
    windows: Sequence[Window] = (),
    registry: Registry | None = None,
    topology: Topology | None = None,
) -> tuple[ChangeConflict, ...]:
    """Conflicts of one change with other changes and with maintenance and blackout windows.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        Dependency graph in the store shape.
    change : Change
        The change to assess; its ``ci_ids`` are taken down for ``[window_start, window_end)``.
    changes : sequence of Change
        Other scheduled changes (the assessed one, and closed or cancelled ones, are skipped).
        CIs they name that are not in ``graph`` are ignored.
    windows : sequence of Window
        Maintenance and blackout windows, once or recurring (RFC 5545 ``RRULE``). A window
        with no ``ci_ids`` applies to every CI.
    registry : Registry, optional
    topology : Topology, optional

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
            and the changed CIs);
        ``outside_maintenance``
            changed CIs that have maintenance windows, none of whose occurrences covers the
            whole change window (CIs without any maintenance window are not flagged);
        ``redundancy_combined``
            with another overlapping change, redundancy groups go below their threshold
            although neither change alone takes them down; also for every set of two or more
            other changes active at the same instant as this one (``other_change_id`` is then
            ``None`` and ``other_change_ids`` lists them): groups that the set plus this change
            take down, that the set alone does not, and no pair already reported.

    Raises
    ------
    CINotFoundError
        A CI of the assessed change is not in ``graph``.
    InvalidRecordError
        A window's recurrence is not a valid RRULE.
    """
    try:
        ids = require_cis(graph, change.ci_ids)
    except CINotFoundError as exc:
        raise CINotFoundError(f"change {change.change_id}: {exc}") from None
    reg, topo = get_topology(graph, registry, topology)
    start, end = change.window_start, change.window_end
    mine = topo.propagate(topo.indexes(ids))
    my_closure = {topo.ids[i] for i in mine.nodes.tolist()}
    my_ids = set(ids)
    out: list[ChangeConflict] = []
    concurrent: list[tuple[Change, list[str]]] = []
    reported_groups: set[str] = set()

    for other in changes:
        if other.change_id == change.change_id or other.state in INACTIVE_CHANGE_STATES:
            continue
        if not intervals_overlap(start, end, other.window_start, other.window_end):
            continue
        theirs_ids = _known(topo, other.ci_ids)
        if not theirs_ids:
            continue
        concurrent.append((other, theirs_ids))
        same = sorted(my_ids & set(theirs_ids))
        if same:
            out.append(ChangeConflict(
                kind=ConflictKind.SAME_CI, change_id=change.change_id,
                other_change_id=other.change_id, other_change_ids=(other.change_id,),
                ci_ids=tuple(same),
                detail=f"{len(same)} CI(s) under both changes in overlapping windows",
            ))
        theirs = topo.propagate(topo.indexes(theirs_ids))
        their_closure = {topo.ids[i] for i in theirs.nodes.tolist()}
        overlap = sorted(
            ((set(theirs_ids) & my_closure) | (my_ids & their_closure)) - set(same)
        )
        if overlap:
            out.append(ChangeConflict(
                kind=ConflictKind.IMPACT_OVERLAP, change_id=change.change_id,
                other_change_id=other.change_id, other_change_ids=(other.change_id,),
                ci_ids=tuple(overlap),
                detail="CIs changed by one change are impacted by the other in overlapping "
                       "windows",
            ))
        groups, detail = _combined(graph, reg, topo, mine, my_ids, set(theirs_ids), theirs)
        if groups:
            reported_groups.update(groups)
            out.append(ChangeConflict(
                kind=ConflictKind.REDUNDANCY_COMBINED, change_id=change.change_id,
                other_change_id=other.change_id, other_change_ids=(other.change_id,),
                ci_ids=tuple(groups),
                detail=f"together the changes take {detail}, which neither does alone",
            ))

    # three or more changes at once: every set of changes active together with this one
    seen: set[tuple[str, ...]] = set()
    for instant in sorted({max(start, o.window_start) for o, _ in concurrent}):
        active = [(o, c) for o, c in concurrent if o.window_start <= instant < o.window_end]
        names = tuple(sorted(o.change_id for o, _ in active))
        if len(active) < 2 or names in seen:
            continue
        seen.add(names)
        others = {c for _, cis in active for c in cis}
        alone = topo.propagate(topo.indexes(sorted(others)))
        groups, detail = _combined(graph, reg, topo, mine, my_ids, others, alone,
                                   exclude=reported_groups)
        if groups:
            reported_groups.update(groups)
            out.append(ChangeConflict(
                kind=ConflictKind.REDUNDANCY_COMBINED, change_id=change.change_id,
                other_change_ids=names, ci_ids=tuple(groups),
                detail=f"together with {', '.join(names)} from {instant.isoformat()} the "
                       f"change takes {detail}, which no pair of them does",
            ))

    for window in sorted(windows, key=lambda w: w.window_id):
        if window.kind is WindowKind.BLACKOUT and window_overlaps(window, start, end):
            if window.ci_ids:
                hit = sorted(my_closure & set(window.ci_ids))
            else:
                hit = sorted(
                    {c for c in my_closure
                     if reg.is_service(str(attr(graph, c, "ci_class", "")))} | my_ids
                )
            if hit:
                out.append(ChangeConflict(
                    kind=ConflictKind.BLACKOUT, change_id=change.change_id,
                    window_id=window.window_id, ci_ids=tuple(hit),
                    detail=f"{len(hit)} changed or impacted CI(s) are in blackout window "
                           f"{window.name or window.window_id}",
                ))

    maintenance = [w for w in windows if w.kind is WindowKind.MAINTENANCE]
    outside: list[str] = []
    for ci in ids:
        applicable = [w for w in maintenance if not w.ci_ids or ci in w.ci_ids]
        if applicable and not any(window_contains(w, start, end) for w in applicable):
            outside.append(ci)
    if outside:
        out.append(ChangeConflict(
            kind=ConflictKind.OUTSIDE_MAINTENANCE, change_id=change.change_id,
            ci_ids=tuple(outside),
            detail=f"{len(outside)} changed CI(s) have maintenance windows that do not cover "
                   "the change window",
        ))
    return tuple(sorted(
        out,
        key=lambda c: (str(c.kind), c.other_change_id or "", c.window_id or "", c.ci_ids),
    ))


def schedule_conflicts(
    graph: nx.MultiDiGraph,
    changes: Sequence[Change],
    *,
    windows: Sequence[Window] = (),
    registry: Registry | None = None,
    topology: Topology | None = None,
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
    reg, topo = get_topology(graph, registry, topology)
    out: dict[str, tuple[ChangeConflict, ...]] = {}
    for change in sorted(changes, key=lambda c: c.change_id):
        if change.state in INACTIVE_CHANGE_STATES:
            continue
        found = change_conflicts(graph, change, changes=changes, windows=windows,
                                 registry=reg, topology=topo)
        if found:
            out[change.change_id] = found
    return out
