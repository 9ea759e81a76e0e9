"""Change impact and change conflicts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt

from cmdb_graph.errors import CINotFoundError
from cmdb_graph.model import Change, ChangeState, Registry, Window, WindowKind
from impact._common import attr, get_topology, require_cis
from impact.limits import DEFAULT_LIMITS, ImpactLimits
from impact.results import (
    ChangeConflict,
    ChangeImpact,
    ConflictKind,
    ImpactedCI,
    ImpactedCIs,
    ImpactStatus,
    ImpactSummary,
    RedundancyImpact,
    RedundancyImpacts,
)
from impact.topology import (
    DEGRADED,
    DOWN,
    NO_CRITICALITY,
    OTHER_CRITICALITY,
    UNKNOWN_CLASS,
    BoolArray,
    IntArray,
    Propagation,
    Topology,
)
from impact.windows import intervals_overlap, window_contains, window_overlaps

__all__ = ["INACTIVE_CHANGE_STATES", "change_conflicts", "change_impact", "schedule_conflicts"]

#: Changes in these states are ignored when looking for conflicts.
INACTIVE_CHANGE_STATES = frozenset({ChangeState.CLOSED, ChangeState.CANCELLED})

_STATUS = {DOWN: ImpactStatus.DOWN, DEGRADED: ImpactStatus.DEGRADED}


def _explaining_paths(
    topo: Topology, prop: Propagation, targets: Iterable[int], per_ci: int
) -> dict[int, tuple[tuple[str, ...], ...]]:
    """Up to ``per_ci`` explaining paths (seed ... CI) for each target, shortest first."""
    paths = _Paths(topo, prop, per_ci, topo.explaining_inputs(prop))
    return {t: paths.of(t) for t in targets}


class _Paths:
    """Explaining paths, computed on demand and memoised.

    The paths of a CI are the ``per_ci`` first, by (length, lexicographic), of the paths of
    its explaining inputs extended by the CI; a seed's only path is itself. The explaining
    inputs of a CI are read per CI while few CIs were asked for, then for the whole closure
    at once.
    """

    #: Per-CI lookups of explaining inputs before they are computed for the whole closure.
    PER_CI = 256

    def __init__(self, topo: Topology, prop: Propagation, per_ci: int,
                 links: dict[int, list[int]] | None = None) -> None:
        self.topo = topo
        self.prop = prop
        self.per_ci = per_ci
        self.links = links
        self.looked_up = 0
        self.memo: dict[int, list[tuple[str, ...]]] = {
            int(s): [(topo.ids[int(s)],)] for s in prop.seeds.tolist()
        }

    def _inputs(self, node: int) -> list[int]:
        if self.links is None:
            self.looked_up += 1
            if self.looked_up > self.PER_CI:
                self.links = self.topo.explaining_inputs(self.prop)
            else:
                pos = self.prop.positions(np.array([node], dtype=np.int64))
                return self.topo.explaining_inputs(self.prop, pos).get(node, [])
        return self.links.get(node, [])

    def of(self, target: int) -> tuple[tuple[str, ...], ...]:
        memo = self.memo
        if target not in memo:
            pending: dict[int, list[int]] = {}
            stack = [target]
            while stack:
                node = stack[-1]
                if node in memo:
                    stack.pop()
                    continue
                preds = pending.get(node)
                if preds is None:
                    preds = pending[node] = self._inputs(node)
                todo = [p for p in preds if p not in memo]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                name = self.topo.ids[node]
                cands = [(*p, name) for pred in preds for p in memo[pred]]
                cands.sort(key=lambda p: (len(p), p))
                memo[node] = cands[: self.per_ci]
        return tuple(memo[target])


class _Impacted:
    """The reported CIs of a change impact as arrays; builds :class:`ImpactedCI` on demand.

    ``pos`` are positions in ``prop.nodes``, not yet in report order: the order (depth, then
    ``ci_id``) is computed on first use (one ``lexsort`` over the reported CIs).
    """

    def __init__(self, graph: nx.MultiDiGraph, reg: Registry, topo: Topology,
                 prop: Propagation, pos: IntArray, paths_per_ci: int) -> None:
        self.graph = graph
        self.reg = reg
        self.topo = topo
        self.prop = prop
        self._pos = pos
        self.paths_per_ci = paths_per_ci
        self._order: IntArray | None = None
        self._paths: _Paths | None = None

    def __len__(self) -> int:
        return int(self._pos.size)

    def order(self) -> IntArray:
        """Positions in ``prop.nodes`` of the reported CIs, in report order."""
        if self._order is None:
            pos = self._pos
            rank = self.topo.id_rank()[self.prop.nodes[pos]]
            self._order = pos[np.lexsort((rank, self.prop.depth[pos]))]
        return self._order

    def ci_ids(self) -> tuple[str, ...]:
        ids = self.topo.ids
        return tuple(ids[i] for i in self.prop.nodes[self.order()].tolist())

    def statuses(self) -> dict[str, ImpactStatus]:
        ids = self.topo.ids
        pos = self._pos
        return {ids[i]: _STATUS[s] for i, s in zip(self.prop.nodes[pos].tolist(),
                                                    self.prop.status[pos].tolist(), strict=True)}

    def _build(self, k: int, paths: _Paths | None) -> ImpactedCI:
        i = int(self.prop.nodes[k])
        ci = self.topo.ids[i]
        data = self.graph.nodes[ci]
        cls = str(data.get("ci_class") or "")
        return ImpactedCI(
            ci_id=ci,
            name=str(data.get("name") or ci),
            ci_class=cls,
            kind=str(self.reg.kind_of(cls)),
            status=_STATUS[int(self.prop.status[k])],
            depth=int(self.prop.depth[k]),
            business_criticality=data.get("business_criticality"),
            paths=paths.of(i) if paths is not None else (),
        )

    def _path_finder(self, bulk: bool) -> _Paths | None:
        if not self.paths_per_ci:
            return None
        if self._paths is None:
            self._paths = _Paths(self.topo, self.prop, self.paths_per_ci)
        if bulk and self._paths.links is None:
            self._paths.links = self.topo.explaining_inputs(self.prop)
        return self._paths

    def item(self, k: int) -> ImpactedCI:
        return self._build(int(self.order()[k]), self._path_finder(False))

    def items(self) -> tuple[ImpactedCI, ...]:
        paths = self._path_finder(True)
        return tuple(self._build(k, paths) for k in self.order().tolist())


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
        A topology already built from ``graph``. Its snapshot of the CI classes and business
        criticality (see :class:`Topology`) is what the summary counts.

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

    Notes
    -----
    The status of every CI in the closure, the summary, the redundancy impacts and the cycles
    are computed by the call, over arrays. The items of ``impacted`` (an
    :class:`~impact.results.ImpactedCIs`) and their explaining paths are built when they are
    first read (all at once when many are read); they are the same as if built eagerly. The
    result therefore keeps references to ``graph`` and ``topology`` and reads them when items
    are built: do not change either in place while results computed from them are in use
    (a store that keeps a topology warm should swap in a changed copy instead).
    """
    ids = require_cis(graph, changed)
    depth_cap = limits.check_depth(depth_limit)
    if paths_per_ci:
        limits.check_paths(paths_per_ci)
    reg, topo = get_topology(graph, registry, topology)
    prop = topo.propagate(topo.indexes(ids))
    nodes = prop.nodes
    depth = prop.depth
    within = depth <= depth_cap
    truncated = not bool(within.all())
    first = int(prop.seeds.size)  # the seeds come first in prop.nodes (depth 0)
    within[:first] = False
    if truncated:
        reported = np.flatnonzero(within)
        codes, names = _classes(graph, topo, nodes[reported])
    else:  # every CI but the seeds: views, not gathers
        reported = np.arange(first, nodes.size, dtype=np.int64)
        codes, names = _classes(graph, topo, nodes[first:])
    service = np.array([reg.is_service(c) for c in names], dtype=np.bool_)
    if services_only:
        keep = service[codes]
        reported, codes = reported[keep], codes[keep]
    limits.check_results(int(reported.size))
    redundancy = RedundancyImpacts(source=_Redundancy(graph, topo, prop, within))
    return ChangeImpact(
        changed=tuple(ids),
        impacted=ImpactedCIs(source=_Impacted(graph, reg, topo, prop, reported, paths_per_ci)),
        redundancy=redundancy,
        cycles=tuple(tuple(c) for c in topo.cycles_among(
            nodes if prop.on_cycles is None else prop.on_cycles)),
        summary=_summary(graph, topo, prop, reported, codes, names, service),
        depth_limit=depth_cap,
        truncated=truncated,
    )


def _classes(
    graph: nx.MultiDiGraph, topo: Topology, idx: IntArray
) -> tuple[npt.NDArray[np.int32], list[str]]:
    """Class code of each CI of ``idx`` and the class names by code (the topology's snapshot;
    the graph for CIs it has no class for)."""
    codes = topo.class_code[idx]
    names = list(topo.class_names)
    unknown = np.flatnonzero(codes == UNKNOWN_CLASS)
    if unknown.size:
        extra = {name: k for k, name in enumerate(names)}
        for u, i in zip(unknown.tolist(), idx[unknown].tolist(), strict=True):
            name = str(attr(graph, topo.ids[i], "ci_class", "") or "")
            code = extra.get(name)
            if code is None:
                code = extra[name] = len(names)
                names.append(name)
            codes[u] = code
    return codes, names


class _Redundancy:
    """The redundancy groups that lost headroom, as arrays sorted by ``ci_id``; builds
    :class:`RedundancyImpact` on demand."""

    def __init__(self, graph: nx.MultiDiGraph, topo: Topology, prop: Propagation,
                 within: BoolArray) -> None:
        # down_inputs is kept only for CIs with a redundancy rule (0 for the others);
        # ``within``: reached CIs reported (not changed, within the depth limit)
        nodes = prop.nodes
        pos = np.flatnonzero((prop.down_inputs > 0) & within)
        idx = nodes[pos]
        self.graph = graph
        self.topo = topo
        self.idx = idx
        self.required = topo.required_inputs[idx]
        self.down = prop.down_inputs[pos]
        self.threshold = topo.threshold[idx]
        self.headroom = self.required - self.down - self.threshold
        self.status = prop.status[pos]
        self._order: IntArray | None = None

    def __len__(self) -> int:
        return int(self.idx.size)

    def order(self) -> IntArray:
        """Positions in the arrays, by ``ci_id`` (sorted on first use)."""
        if self._order is None:
            self._order = np.argsort(self.topo.id_rank()[self.idx], kind="stable")
        return self._order

    def ci_ids(self) -> tuple[str, ...]:
        ids = self.topo.ids
        return tuple(ids[i] for i in self.idx[self.order()].tolist())

    def item(self, k: int) -> RedundancyImpact:
        j = int(self.order()[k])
        ci = self.topo.ids[int(self.idx[j])]
        return RedundancyImpact(
            ci_id=ci,
            name=str(attr(self.graph, ci, "name", ci)),
            rule=self.topo.rules[ci],
            required_inputs=int(self.required[j]),
            inputs_down=int(self.down[j]),
            threshold=int(self.threshold[j]),
            headroom=int(self.headroom[j]),
            status=_STATUS[int(self.status[j])],
        )

    def items(self) -> tuple[RedundancyImpact, ...]:
        return tuple(self.item(k) for k in range(len(self)))


def _summary(
    graph: nx.MultiDiGraph,
    topo: Topology,
    prop: Propagation,
    reported: IntArray,
    codes: npt.NDArray[np.int32],
    names: list[str],
    service: BoolArray,
) -> ImpactSummary:
    """Counts over the reported CIs (positions in ``prop.nodes``), computed over arrays."""
    first = int(reported[0]) if reported.size else 0
    contiguous = reported.size == prop.nodes.size - first and (
        not reported.size or int(reported[-1]) == prop.nodes.size - 1)
    status = prop.status[first:] if contiguous else prop.status[reported]
    n_down = int(np.count_nonzero(status == DOWN))
    counts = {str(ImpactStatus.DOWN): n_down,
              str(ImpactStatus.DEGRADED): int(reported.size) - n_down}
    per_class = np.bincount(codes, minlength=len(names))
    by_class = {names[c]: int(per_class[c]) for c in np.flatnonzero(per_class).tolist()}
    is_service = service[codes]
    svc = reported[is_service]
    top: str | None = None
    level: int | None = None
    if svc.size:
        idx = prop.nodes[svc]
        crit = topo.criticality[idx].astype(np.int64)
        other = crit == OTHER_CRITICALITY
        if other.any():  # not a small integer: take the graph's value as it is
            ranked = min(
                (_crit_key(attr(graph, topo.ids[i], "business_criticality")),
                 0 if s == DOWN else 1, topo.ids[i])
                for i, s in zip(idx.tolist(), prop.status[svc].tolist(), strict=True)
            )
            top = ranked[2]
            level = attr(graph, top, "business_criticality")
        else:
            key = np.where(crit == NO_CRITICALITY, 99, crit) * 2 + (prop.status[svc] != DOWN)
            best = np.flatnonzero(key == key.min())
            k = int(best[np.argmin(topo.id_rank()[idx[best]])])
            top = topo.ids[int(idx[k])]
            c = int(crit[k])
            level = None if c == NO_CRITICALITY else c
    return ImpactSummary(
        total=int(reported.size),
        by_status={k: v for k, v in sorted(counts.items()) if v},
        by_class=dict(sorted(by_class.items())),
        services_hit=int(svc.size),
        most_critical_service=top,
        most_critical_level=level,
    )


def _crit_key(value: Any) -> Any:
    return value if value is not None else 99


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
