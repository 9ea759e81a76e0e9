"""Change impact: every CI a change takes down or degrades, and why."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from impact.explain import ExplainingPaths
from impact.graph import ImpactGraph
from impact.limits import DEFAULT_LIMITS, ImpactLimits
from impact.results import (
    ChangeImpact,
    ImpactedCI,
    ImpactedCIs,
    ImpactStatus,
    ImpactSummary,
    PathLink,
    RedundancyImpact,
    RedundancyImpacts,
)
from impact.scratch import BoolArray, IntArray
from impact.topology import (
    DEGRADED,
    DOWN,
    NO_CRITICALITY,
    OTHER_CRITICALITY,
    UNKNOWN_CLASS,
    Propagation,
)

__all__ = ["change_impact"]

_STATUS = {DOWN: ImpactStatus.DOWN, DEGRADED: ImpactStatus.DEGRADED}


class _Impacted:
    """The reported CIs of a change impact as arrays; builds :class:`ImpactedCI` on demand.

    ``pos`` are positions in ``prop.nodes``, not yet in report order: the order (depth, then
    ``ci_id``) is computed on first use (one ``lexsort`` over the reported CIs).
    """

    def __init__(self, graph: ImpactGraph, prop: Propagation, pos: IntArray,
                 paths_per_ci: int) -> None:
        self.graph = graph
        self.topo = graph.topology
        self.prop = prop
        self._pos = pos
        self.paths_per_ci = paths_per_ci
        self._order: IntArray | None = None
        self._paths: ExplainingPaths | None = None

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

    def _build(self, k: int, paths: ExplainingPaths | None) -> ImpactedCI:
        i = int(self.prop.nodes[k])
        ci = self.topo.ids[i]
        graph = self.graph
        found = paths.of(i) if paths is not None else ()
        links, confidence = _links(graph, found)
        return ImpactedCI(
            ci_id=ci,
            name=graph.name(ci),
            ci_class=graph.ci_class(ci),
            kind=str(graph.kind(ci)),
            status=_STATUS[int(self.prop.status[k])],
            depth=int(self.prop.depth[k]),
            business_criticality=graph.criticality(ci),
            operational_status=graph.status(ci) or None,
            in_service=bool(self.topo.in_service[i]),
            paths=found,
            links=links,
            confidence=confidence,
        )

    def _path_finder(self, bulk: bool) -> ExplainingPaths | None:
        if not self.paths_per_ci:
            return None
        if self._paths is None:
            self._paths = ExplainingPaths(self.topo, self.prop, self.paths_per_ci)
        if bulk:
            self._paths.read_all()
        return self._paths

    def item(self, k: int) -> ImpactedCI:
        return self._build(int(self.order()[k]), self._path_finder(False))

    def items(self) -> tuple[ImpactedCI, ...]:
        paths = self._path_finder(True)
        return tuple(self._build(k, paths) for k in self.order().tolist())


def _links(graph: ImpactGraph, paths: tuple[tuple[str, ...], ...]
           ) -> tuple[tuple[tuple[PathLink, ...], ...], float | None]:
    """The relationship of every hop of ``paths`` (see :meth:`ImpactGraph.link`), and the
    highest product of their confidences over the paths (``None`` without paths)."""
    links: list[tuple[PathLink, ...]] = []
    best: float | None = None
    for path in paths:
        hops = tuple(link for a, b in zip(path, path[1:], strict=False)
                     if (link := graph.link(a, b)) is not None)
        links.append(hops)
        product = 1.0
        for link in hops:
            product *= link.confidence
        best = product if best is None else max(best, product)
    return tuple(links), None if best is None else round(best, 6)


def change_impact(
    graph: ImpactGraph,
    changed: Iterable[str],
    *,
    depth_limit: int | None = None,
    services_only: bool = False,
    paths_per_ci: int = 3,
    limits: ImpactLimits = DEFAULT_LIMITS,
) -> ChangeImpact:
    """Every CI impacted when ``changed`` are taken down by a change, and why.

    Parameters
    ----------
    graph : ImpactGraph
        The estate (dependency graph, registry, topology). The topology's snapshot of the CI
        classes and business criticality (see :class:`~impact.csr.TopologyArrays`) is what
        the summary counts.
    changed : iterable of str
        ``ci_id`` of the CIs under change; they are assumed down for the whole window.
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

    Returns
    -------
    ChangeImpact
        Impacted CIs (sorted by depth then ``ci_id``) with status, depth, business
        criticality, operational status (and whether in service) and explaining paths;
        redundancy groups that lost headroom; cycles met; a summary. Impacted CIs that are not
        in service (planned, in stock, under repair, retired) are listed but not counted as
        services hit, nor as the most critical service.

    Raises
    ------
    CINotFoundError
        A changed CI is not in ``graph``.
    TraversalLimitError
        ``depth_limit`` or ``paths_per_ci`` above the caps, or more CIs to report than
        ``limits.max_results``.

    Notes
    -----
    The status of every CI in the closure, the summary and the cycles are computed by the
    call, over arrays. The items of ``impacted`` (an :class:`~impact.results.ImpactedCIs`)
    and their explaining paths, and the redundancy impacts (their arrays too), are built when
    they are first read (all at once when many are read); they are the same as if built
    eagerly. The result therefore keeps a reference to ``graph`` and reads it (and its
    topology's arrays) when items are built: do not
    change it in place while results computed from it are in use (a store that keeps a graph
    warm should swap in a changed copy instead).

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.MultiDiGraph()
    >>> g.add_node("app", ci_class="Application")
    >>> g.add_node("vm", ci_class="VirtualMachine")
    >>> _ = g.add_edge("app", "vm", key="RUNS_ON", rel_type="RUNS_ON", optional=False)
    >>> result = change_impact(ImpactGraph(g), ["vm"])
    >>> result.impacted_ids(), result.summary.by_status
    (('app',), {'down': 1})
    """
    ids = graph.require(changed)
    depth_cap = limits.check_depth(depth_limit)
    if paths_per_ci:
        limits.check_paths(paths_per_ci)
    topo = graph.topology
    prop = topo.propagate(topo.indexes(ids))
    nodes = prop.nodes
    truncated = bool(nodes.size) and int(prop.depth.max()) > depth_cap
    first = int(prop.seeds.size)  # the seeds come first in prop.nodes (depth 0)
    within: BoolArray | None = None  # None: every reached CI but the seeds is reported
    if truncated:
        within = prop.depth <= depth_cap
        within[:first] = False
    if services_only:  # the service classes first: classes are read for those CIs only
        reported = _maybe_services(graph, nodes, first, within)
        codes, names = _classes(graph, nodes[reported])
    elif within is not None:
        reported = np.flatnonzero(within)
        codes, names = _classes(graph, nodes[reported])
    else:  # every CI but the seeds: views, not gathers
        reported = np.arange(first, nodes.size, dtype=np.int64)
        codes, names = _classes(graph, nodes[first:])
    service = np.array([graph.registry.is_service(c) for c in names], dtype=np.bool_)
    if services_only:
        keep = service[codes]
        if not bool(keep.all()):  # a CI whose class only the graph knew is no service
            reported, codes = reported[keep], codes[keep]
    limits.check_results(int(reported.size))
    return ChangeImpact(
        changed=tuple(ids),
        impacted=ImpactedCIs(source=_Impacted(graph, prop, reported, paths_per_ci)),
        redundancy=RedundancyImpacts(source=_Redundancy(graph, prop, within, first)),
        cycles=tuple(tuple(c) for c in topo.cycles_among(
            nodes if prop.on_cycles is None else prop.on_cycles)),
        summary=_summary(graph, prop, reported, codes, names, service),
        depth_limit=depth_cap,
        truncated=truncated,
    )


def _maybe_services(graph: ImpactGraph, nodes: IntArray, first: int,
                   within: BoolArray | None) -> IntArray:
    """Positions in ``nodes`` (from ``first``; those of ``within`` if given) of the CIs whose
    class in the topology is a service class, or unknown there (read from the graph later)."""
    topo = graph.topology
    wanted = [UNKNOWN_CLASS, *(k for k, c in enumerate(topo.class_names)
                               if graph.registry.is_service(c))]
    codes = np.take(topo.class_code, nodes[first:] if within is None else nodes)
    keep = codes == wanted[0]
    for code in wanted[1:]:  # a few service classes: comparisons beat a table lookup
        keep |= codes == code
    if within is None:
        found: IntArray = np.flatnonzero(keep)
        found += first
        return found
    keep &= within
    return np.flatnonzero(keep)


def _classes(graph: ImpactGraph, idx: IntArray) -> tuple[npt.NDArray[np.int32], list[str]]:
    """Class code of each CI of ``idx`` and the class names by code (the topology's snapshot;
    the graph's accessor for CIs it has no class for)."""
    topo = graph.topology
    codes = topo.class_code[idx]
    names = list(topo.class_names)
    unknown = np.flatnonzero(codes == UNKNOWN_CLASS)
    if unknown.size:
        extra = {name: k for k, name in enumerate(names)}
        for u, i in zip(unknown.tolist(), idx[unknown].tolist(), strict=True):
            name = graph.ci_class(topo.ids[i])
            code = extra.get(name)
            if code is None:
                code = extra[name] = len(names)
                names.append(name)
            codes[u] = code
    return codes, names


class _Redundancy:
    """The redundancy groups that lost headroom, as arrays sorted by ``ci_id``; builds
    :class:`RedundancyImpact` on demand. The arrays are gathered on first use (a summary
    alone needs none of them)."""

    def __init__(self, graph: ImpactGraph, prop: Propagation, within: BoolArray | None,
                 first: int) -> None:
        # ``within``: reached CIs reported (not changed, within the depth limit); None:
        # every reached CI from position ``first`` on (after the changed ones)
        self.graph = graph
        self.topo = graph.topology
        self._prop = prop
        self._within = within
        self._first = first
        self._order: IntArray | None = None

    @functools.cached_property
    def _pos(self) -> IntArray:
        # down_inputs is kept only for CIs with a redundancy rule (0 for the others)
        prop, within = self._prop, self._within
        if within is None:
            pos: IntArray = np.flatnonzero(prop.down_inputs[self._first:] > 0)
            pos += self._first
            return pos
        return np.flatnonzero((prop.down_inputs > 0) & within)

    @functools.cached_property
    def idx(self) -> IntArray:
        found: IntArray = self._prop.nodes[self._pos]
        return found

    @functools.cached_property
    def required(self) -> npt.NDArray[np.int32]:
        return self.topo.required_inputs[self.idx]

    @functools.cached_property
    def down(self) -> npt.NDArray[np.int32]:
        return self._prop.down_inputs[self._pos]

    @functools.cached_property
    def out(self) -> npt.NDArray[np.int32]:
        return self.topo.out_inputs[self.idx]

    @functools.cached_property
    def threshold(self) -> npt.NDArray[np.int32]:
        return self.topo.threshold[self.idx]

    @functools.cached_property
    def headroom(self) -> npt.NDArray[np.int32]:
        found: npt.NDArray[np.int32] = self.required - self.out - self.down - self.threshold
        return found

    @functools.cached_property
    def status(self) -> npt.NDArray[np.int8]:
        return self._prop.status[self._pos]

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
            name=self.graph.name(ci),
            rule=self.topo.rules[ci],
            required_inputs=int(self.required[j]),
            inputs_down=int(self.down[j]),
            inputs_not_in_service=int(self.out[j]),
            threshold=int(self.threshold[j]),
            headroom=int(self.headroom[j]),
            status=_STATUS[int(self.status[j])],
        )

    def items(self) -> tuple[RedundancyImpact, ...]:
        return tuple(self.item(k) for k in range(len(self)))


def _summary(
    graph: ImpactGraph,
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
    serving = graph.topology.in_service[prop.nodes[reported]]
    svc = reported[service[codes] & serving]
    top, level = _most_critical(graph, prop, svc) if svc.size else (None, None)
    return ImpactSummary(
        total=int(reported.size),
        by_status={k: v for k, v in sorted(counts.items()) if v},
        by_class=dict(sorted(by_class.items())),
        services_hit=int(svc.size),
        not_in_service=int(reported.size) - int(np.count_nonzero(serving)),
        most_critical_service=top,
        most_critical_level=level,
    )


def _most_critical(graph: ImpactGraph, prop: Propagation, svc: IntArray) -> tuple[str, Any]:
    """The most critical impacted service (positions ``svc`` in ``prop.nodes``, not empty)
    and its criticality: lowest criticality first (none counts as 99), down before degraded,
    then ``ci_id``."""
    topo = graph.topology
    idx = prop.nodes[svc]
    crit = topo.criticality[idx].astype(np.int64)
    if (crit == OTHER_CRITICALITY).any():  # not a small integer: take the graph's value
        ranked = min(
            (_crit_key(graph.criticality(topo.ids[i])), 0 if s == DOWN else 1, topo.ids[i])
            for i, s in zip(idx.tolist(), prop.status[svc].tolist(), strict=True)
        )
        return ranked[2], graph.criticality(ranked[2])
    key = np.where(crit == NO_CRITICALITY, 99, crit) * 2 + (prop.status[svc] != DOWN)
    best = np.flatnonzero(key == key.min())
    k = int(best[np.argmin(topo.id_rank()[idx[best]])])
    c = int(crit[k])
    return topo.ids[int(idx[k])], None if c == NO_CRITICALITY else c


def _crit_key(value: Any) -> Any:
    return value if value is not None else 99
