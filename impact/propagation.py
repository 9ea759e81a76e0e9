"""Status propagation over the impact direction of each relationship type."""

from __future__ import annotations

from collections.abc import Iterable

from impact.graph import ImpactGraph
from impact.results import StatusResult

__all__ = ["propagate_status"]


def propagate_status(graph: ImpactGraph, failed: Iterable[str]) -> StatusResult:
    """Status of every CI when ``failed`` are down, computed to a fixed point.

    Parameters
    ----------
    graph : ImpactGraph
        The estate (its registry gives the impact direction of each relationship type).
    failed : iterable of str
        ``ci_id`` of the failed CIs (or CIs under change).

    Returns
    -------
    StatusResult
        Down and degraded CIs (failed ones listed apart) and the cycles met.

    Raises
    ------
    CINotFoundError
        A failed CI is not in ``graph``.

    Notes
    -----
    A CI is down when a required input (a dependency, or a member for a type that flows
    start -> end such as ``MEMBER_OF``) is down, unless it has a redundancy rule (node attribute
    ``redundancy``: ``all``, ``k``, ``k%`` of its required inputs up), in which case it is down
    only below the threshold. Any other CI the failure reaches is degraded: an optional
    dependency down, inputs down within the redundancy headroom, or an input degraded. The least
    fixed point is taken, so cycles terminate; they are reported in ``cycles``.

    Examples
    --------
    >>> import networkx as nx
    >>> from impact.graph import ImpactGraph
    >>> g = nx.MultiDiGraph()
    >>> g.add_nodes_from(["app", "vm"])
    >>> _ = g.add_edge("app", "vm", key="RUNS_ON", rel_type="RUNS_ON", optional=False)
    >>> propagate_status(ImpactGraph(g), ["vm"]).down
    ('app',)
    """
    ids = graph.require(failed)
    topo = graph.topology
    prop = topo.propagate(topo.indexes(ids))
    seeds = set(ids)
    down = sorted(topo.ids[i] for i in prop.down.tolist())
    degraded = sorted(topo.ids[i] for i in prop.degraded.tolist())
    return StatusResult(
        failed=tuple(ids),
        down=tuple(c for c in down if c not in seeds),
        degraded=tuple(degraded),
        cycles=tuple(tuple(c) for c in topo.cycles_among(prop.nodes)),
    )
