"""Exploration: neighbourhood, paths between CIs, service map, single points of failure.

Directions follow each relationship type's impact direction (as in ``cmdb_graph.store.base``):
**upstream** of a CI are the CIs its failure reaches (its dependents), **downstream** are the
CIs it needs (its dependencies, and the members of a cluster). For a type whose impact is
``none``, downstream follows the stored orientation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import networkx as nx

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model import ImpactDirection
from impact.graph import ImpactGraph
from impact.limits import DEFAULT_LIMITS, ImpactLimits
from impact.results import (
    EdgeRef,
    Neighbourhood,
    NodeRef,
    PathsResult,
    ServiceLayer,
    ServiceMap,
    SinglePointOfFailure,
)
from impact.topology import DOWN

__all__ = ["neighbourhood", "paths_between", "service_map", "single_points_of_failure"]

_DIRECTIONS = ("upstream", "downstream", "both")


def _direction(direction: str) -> str:
    value = str(direction)
    if value not in _DIRECTIONS:
        raise InvalidRecordError(
            f"direction must be one of {', '.join(_DIRECTIONS)}, got {value!r}",
            field="direction",
        )
    return value


def _steps(
    graph: ImpactGraph,
    node: str,
    direction: str,
    rel_types: frozenset[str] | None,
) -> Iterator[str]:
    """Neighbours of ``node`` one hop away in ``direction`` over the allowed types."""
    dirs = graph.impact_directions
    for v, rel, _ in graph.out_relationships(node):
        if rel_types is not None and rel not in rel_types:
            continue
        # stored node -> v: v is downstream unless the type flows start -> end
        up = dirs.get(rel) is ImpactDirection.START_TO_END
        if direction == "both" or (direction == "upstream") == up:
            yield v
    for u, rel, _ in graph.in_relationships(node):
        if rel_types is not None and rel not in rel_types:
            continue
        up = dirs.get(rel) is not ImpactDirection.START_TO_END
        if direction == "both" or (direction == "upstream") == up:
            yield u


def _node_ref(graph: ImpactGraph, ci: str, distance: int) -> NodeRef:
    return NodeRef(ci_id=ci, name=graph.name(ci), ci_class=graph.ci_class(ci),
                   distance=distance)


def _edges_among(
    graph: ImpactGraph, nodes: Iterable[str], rel_types: frozenset[str] | None
) -> tuple[EdgeRef, ...]:
    out = [
        EdgeRef(source=u, target=v, rel_type=rel, optional=optional)
        for u, v, rel, optional in graph.relationships(among=nodes)
        if rel_types is None or rel in rel_types
    ]
    return tuple(sorted(out, key=lambda e: (e.source, e.target, e.rel_type)))


def neighbourhood(
    graph: ImpactGraph,
    ci_id: str,
    *,
    depth: int = 1,
    direction: str = "both",
    rel_types: Sequence[str] | None = None,
    limits: ImpactLimits = DEFAULT_LIMITS,
) -> Neighbourhood:
    """The CIs within ``depth`` hops of ``ci_id`` and the relationships among them.

    Parameters
    ----------
    graph : ImpactGraph
        The estate, or the part of it around ``ci_id``.
    ci_id : str
    depth : int
        Hops (at most ``limits.max_depth``).
    direction : {"upstream", "downstream", "both"}
        See the module docstring.
    rel_types : sequence of str, optional
        Follow only these relationship types (and list only their edges).
    limits : ImpactLimits
        Server-side caps.

    Returns
    -------
    Neighbourhood

    Raises
    ------
    CINotFoundError
        ``ci_id`` is not in ``graph``.
    InvalidRecordError
        Unknown direction.
    TraversalLimitError
        ``depth`` over the cap, or more CIs than ``limits.max_results``.
    """
    graph.require([ci_id])
    hops = limits.check_depth(depth)
    how = _direction(direction)
    types = frozenset(rel_types) if rel_types is not None else None
    dist = _within(graph, ci_id, hops, how, types, limits=limits)
    nodes = sorted((_node_ref(graph, c, d) for c, d in dist.items()),
                   key=lambda r: (r.distance, r.ci_id))
    return Neighbourhood(center=ci_id, depth=hops, direction=how, nodes=tuple(nodes),
                         edges=_edges_among(graph, dist, types))


def paths_between(
    graph: ImpactGraph,
    source: str,
    target: str,
    *,
    max_paths: int = 10,
    max_length: int | None = None,
    direction: str = "both",
    rel_types: Sequence[str] | None = None,
    limits: ImpactLimits = DEFAULT_LIMITS,
) -> PathsResult:
    """Simple paths from ``source`` to ``target``, shortest first.

    Parameters
    ----------
    graph : ImpactGraph
        The estate, or the part of it within ``max_length`` hops of ``source``.
    source, target : str
    max_paths : int
        At most this many paths (capped by ``limits.max_paths``).
    max_length : int, optional
        At most this many hops (default and cap ``limits.max_path_length``).
    direction : {"upstream", "downstream", "both"}
        ``downstream``: each hop goes from a CI to one it needs; ``upstream``: to one that its
        failure reaches; ``both``: either way.
    rel_types : sequence of str, optional
        Follow only these relationship types.
    limits : ImpactLimits
        Server-side caps.

    Returns
    -------
    PathsResult
        Empty when no path within the bounds exists. Sorted by length, then by their ``ci_id``
        sequences; which paths of equal length are kept when more exist is deterministic (the
        search runs on a graph built in sorted order). ``truncated`` tells whether more paths
        within the length bound exist.

    Raises
    ------
    CINotFoundError
        An end is not in ``graph``.
    InvalidRecordError
        Unknown direction.
    TraversalLimitError
        ``max_paths`` or ``max_length`` over the caps.
    """
    graph.require([source, target])
    count = limits.check_paths(max_paths)
    length = limits.check_path_length(max_length)
    how = _direction(direction)
    types = frozenset(rel_types) if rel_types is not None else None
    # only CIs within ``length`` hops of the source can lie on a path
    ball = _within(graph, source, length, how, types)
    found: list[tuple[str, ...]] = []
    truncated = False
    if source == target:
        found = [(source,)]
    elif target in ball:
        hop = nx.DiGraph()
        hop.add_nodes_from(sorted(ball))
        hop.add_edges_from(sorted(
            {(u, v) for u in ball for v in _steps(graph, u, how, types) if v in ball}
        ))
        found, truncated = _shortest_paths(hop, source, target, count, length)
    found.sort(key=lambda p: (len(p), p))
    return PathsResult(
        source=source,
        target=target,
        paths=tuple(found),
        rel_types=tuple(tuple(_hop_types(graph, a, b, types) for a, b in zip(p, p[1:],
                                                                             strict=False))
                        for p in found),
        truncated=truncated,
    )


def _within(
    graph: ImpactGraph,
    start: str,
    hops: int,
    direction: str,
    rel_types: frozenset[str] | None,
    *,
    limits: ImpactLimits | None = None,
) -> dict[str, int]:
    """Distance of every CI within ``hops`` of ``start`` (breadth-first); with ``limits``,
    the result size is checked after each level."""
    dist = {start: 0}
    frontier = [start]
    for level in range(1, hops + 1):
        nxt = []
        for node in frontier:
            for nb in _steps(graph, node, direction, rel_types):
                if nb not in dist:
                    dist[nb] = level
                    nxt.append(nb)
        if limits is not None:
            limits.check_results(len(dist))
        if not nxt:
            break
        frontier = nxt
    return dist


def _shortest_paths(hop: nx.DiGraph, source: str, target: str, count: int,
                    length: int) -> tuple[list[tuple[str, ...]], bool]:
    """Up to ``count`` simple paths of at most ``length`` hops, shortest first, and whether
    more exist."""
    found: list[tuple[str, ...]] = []
    try:
        for path in nx.shortest_simple_paths(hop, source, target):
            if len(path) - 1 > length:
                break
            if len(found) == count:
                return found, True
            found.append(tuple(path))
    except nx.NetworkXNoPath:
        return [], False
    return found, False


def _hop_types(graph: ImpactGraph, a: str, b: str, types: frozenset[str] | None) -> str:
    found = graph.rel_types_between(a, b)
    return "|".join(sorted(found if types is None else found & types))


def service_map(
    graph: ImpactGraph,
    service: str,
    *,
    depth_limit: int | None = None,
    limits: ImpactLimits = DEFAULT_LIMITS,
) -> ServiceMap:
    """A service down to its infrastructure: every CI it needs, layer by layer.

    Parameters
    ----------
    graph : ImpactGraph
        The estate, or what the service needs.
    service : str
        ``ci_id`` of the service (any CI works).
    depth_limit : int, optional
        Hops below the service (default and cap ``limits.max_depth``).
    limits : ImpactLimits
        Server-side caps.

    Returns
    -------
    ServiceMap
        Nodes with their distance, the impact-carrying relationships among them (stored
        orientation), and layers by distance; ``truncated`` when CIs lie beyond the depth.

    Raises
    ------
    CINotFoundError
        ``service`` is not in ``graph``.
    TraversalLimitError
        Depth over the cap, or more CIs than ``limits.max_results``.
    """
    graph.require([service])
    hops = limits.check_depth(depth_limit)
    topo = graph.topology
    nodes, depth = topo.closure(topo.indexes([service]), reverse=True, max_depth=hops + 1)
    kept = [(int(i), int(d)) for i, d in zip(nodes.tolist(), depth.tolist(), strict=True)
            if d <= hops]
    truncated = len(kept) < nodes.size
    limits.check_results(len(kept))
    ids = [topo.ids[i] for i, _ in kept]
    layers: dict[int, list[str]] = {}
    for i, d in kept:
        layers.setdefault(d, []).append(topo.ids[i])
    types = frozenset(graph.impact_directions)
    refs = sorted((_node_ref(graph, topo.ids[i], d) for i, d in kept),
                  key=lambda r: (r.distance, r.ci_id))
    return ServiceMap(
        service=service,
        nodes=tuple(refs),
        edges=_edges_among(graph, ids, types),
        layers=tuple(ServiceLayer(depth=d, ci_ids=tuple(sorted(c))) for d, c in
                     sorted(layers.items())),
        truncated=truncated,
    )


def single_points_of_failure(
    graph: ImpactGraph,
    service: str,
    *,
    limits: ImpactLimits = DEFAULT_LIMITS,
) -> tuple[SinglePointOfFailure, ...]:
    """The CIs whose failure alone takes ``service`` down.

    Each CI the service needs (its whole downstream closure) is failed on its own and the
    statuses propagated with the full rules, redundancy included: members of a cluster whose
    rule tolerates one loss are not single points of failure, while a switch they all hang
    from is. The propagation runs on the service's closure only, which holds every input of
    its CIs, so the result equals a propagation over the whole estate.

    Parameters
    ----------
    graph : ImpactGraph
        The estate, or what the service needs.
    service : str
    limits : ImpactLimits
        Server-side caps.

    Returns
    -------
    tuple of SinglePointOfFailure
        Sorted by depth below the service, then ``ci_id``; ``path`` runs from the service down
        to the CI: of the shortest such paths, the first in ``ci_id`` order (so the answer does
        not depend on the order in which the graph was built).

    Raises
    ------
    CINotFoundError
        ``service`` is not in ``graph``.
    TraversalLimitError
        The closure holds more CIs than ``limits.max_results``.
    """
    graph.require([service])
    topo = graph.topology
    nodes, depth = topo.closure(topo.indexes([service]), reverse=True)
    limits.check_results(int(nodes.size))
    ids = [topo.ids[i] for i in nodes.tolist()]
    depth_of = dict(zip(ids, depth.tolist(), strict=True))
    sub = graph.subgraph(ids).topology
    target = sub.index[service]
    impact_edges = nx.DiGraph()
    impact_edges.add_nodes_from(range(sub.n))
    for i in range(sub.n):
        deps, _ = sub.dependents(i)
        impact_edges.add_edges_from((i, int(j)) for j in deps.tolist())
    out: list[SinglePointOfFailure] = []
    for ci in ids:
        if ci == service:
            continue
        prop = sub.propagate(sub.indexes([ci]))
        if prop.status_of(target) == DOWN:
            path = _first_shortest_path(impact_edges, sub.ids, sub.index[ci], target)
            out.append(SinglePointOfFailure(
                ci_id=ci, name=graph.name(ci), ci_class=graph.ci_class(ci),
                depth=int(depth_of[ci]), path=tuple(path),
            ))
    return tuple(sorted(out, key=lambda s: (s.depth, s.ci_id)))


def _first_shortest_path(
    impact_edges: nx.DiGraph, ids: Sequence[str], source: int, target: int
) -> list[str]:
    """The shortest path ``target -> ... -> source`` against the impact edges (the service down
    to the CI), the lexicographically first by ``ci_id`` among the shortest ones."""
    dist = nx.single_source_shortest_path_length(impact_edges, source)
    path = [target]
    node = target
    while node != source:
        node = min((p for p in impact_edges.predecessors(node) if dist.get(p) == dist[node] - 1),
                   key=lambda p: ids[p])
        path.append(node)
    return [ids[i] for i in path]
