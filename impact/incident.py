"""Incident routing and probable cause."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np

from cmdb_graph.errors import TraversalLimitError
from cmdb_graph.model import Change, Incident, IncidentState
from impact.conflicts import INACTIVE_CHANGE_STATES
from impact.graph import ImpactGraph
from impact.limits import DEFAULT_LIMITS, ImpactLimits
from impact.results import ProbableCause, ProbableCauses, Routing
from impact.windows import intervals_overlap

__all__ = ["CLOSED_INCIDENT_STATES", "probable_cause", "route_incident"]

#: Incidents in these states are not open.
CLOSED_INCIDENT_STATES = frozenset({IncidentState.RESOLVED, IncidentState.CLOSED})


def route_incident(
    graph: ImpactGraph,
    ci_id: str,
    *,
    limits: ImpactLimits = DEFAULT_LIMITS,
) -> Routing:
    """The support group an incident on ``ci_id`` goes to, and why.

    The CI's own ``support_group`` when it has one; else the group of the nearest CI downstream
    (the CIs it needs: its dependencies, and the members of a cluster), found breadth-first
    against the impact direction up to ``limits.max_depth`` hops. Ties at the same distance go
    to the smallest ``ci_id``; the path is the breadth-first one (smallest ids first).

    Parameters
    ----------
    graph : ImpactGraph
        The estate, or what ``ci_id`` needs.
    ci_id : str
    limits : ImpactLimits
        Server-side caps (``max_depth``: how far downstream to look).

    Returns
    -------
    Routing
        ``support_group`` is ``None`` when no CI within reach has one.

    Raises
    ------
    CINotFoundError
        ``ci_id`` is not in ``graph``.
    """
    graph.require([ci_id])
    own = graph.support_group(ci_id)
    if own:
        return Routing(ci_id=ci_id, support_group=own, routed_via=ci_id, path=(ci_id,),
                       reason="the CI's own support group")
    topo = graph.topology
    start = topo.index[ci_id]
    parent: dict[int, int] = {start: -1}
    frontier = [start]
    for level in range(1, limits.max_depth + 1):
        nxt: list[int] = []
        for node in sorted(frontier, key=lambda i: topo.ids[i]):
            inputs, _ = topo.inputs(node)
            for p in sorted(inputs.tolist(), key=lambda i: topo.ids[i]):
                if p not in parent:
                    parent[p] = node
                    nxt.append(p)
        if not nxt:
            break
        found = sorted((topo.ids[i], i) for i in nxt if graph.support_group(topo.ids[i]))
        if found:
            via_id, via = found[0]
            path: list[str] = []
            cur = via
            while cur != -1:
                path.append(topo.ids[cur])
                cur = parent[cur]
            path.reverse()
            group = str(graph.support_group(via_id))
            return Routing(
                ci_id=ci_id, support_group=group, routed_via=via_id, path=tuple(path),
                reason=f"{ci_id} has no support group; routed to the group of {via_id}, "
                       f"{level} hop(s) downstream via {' -> '.join(path)}",
            )
        frontier = nxt
    return Routing(ci_id=ci_id, support_group=None, routed_via=None, path=(ci_id,),
                   reason=f"no support group on {ci_id} nor within {limits.max_depth} hops "
                          "downstream")


def probable_cause(
    graph: ImpactGraph,
    affected: Iterable[str],
    *,
    now: datetime,
    changes: Sequence[Change] = (),
    incidents: Sequence[Incident] = (),
    lookback: timedelta = timedelta(days=7),
    max_candidates: int = 20,
    limits: ImpactLimits = DEFAULT_LIMITS,
) -> ProbableCauses:
    """Rank the CIs whose failure would explain several affected CIs.

    Candidates are the affected CIs and everything they need (their downstream closure, up to
    ``limits.max_depth`` hops). A candidate *explains* an affected CI when its failure reaches
    it. Ranking: most affected CIs explained; then most recent changes on the candidate (a
    change, not cancelled or closed, whose window overlaps ``[now - lookback, now]``); then most
    own open incidents; then the smallest total distance (the nearest shared dependency); then
    ``ci_id``.

    Parameters
    ----------
    graph : ImpactGraph
        The estate, or what the affected CIs need.
    affected : iterable of str
        CIs with symptoms.
    now : datetime
        Reference time (UTC); the function never reads the clock.
    changes, incidents : sequence of Change / Incident
        Recent changes and incidents to weigh.
    lookback : timedelta
        How far back a change counts as recent.
    max_candidates : int
        How many candidates to return (at most ``limits.max_results``).
    limits : ImpactLimits
        Server-side caps (``max_depth``: how far downstream candidates are looked for).

    Returns
    -------
    ProbableCauses

    Raises
    ------
    CINotFoundError
        An affected CI is not in ``graph``.
    TraversalLimitError
        ``max_candidates`` below 1 or above ``limits.max_results``.
    """
    ids = graph.require(affected)
    if max_candidates < 1:
        raise TraversalLimitError(f"max_candidates must be >= 1, got {max_candidates}")
    limits.check_results(max_candidates, "candidates")
    topo = graph.topology
    n = topo.n
    explains = np.zeros(n, dtype=np.int64)
    distance = np.zeros(n, dtype=np.int64)
    closures: list[tuple[str, np.ndarray]] = []
    for ci in ids:
        nodes, depth = topo.closure(topo.indexes([ci]), reverse=True, max_depth=limits.max_depth)
        explains[nodes] += 1
        distance[nodes] += depth
        closures.append((ci, nodes))
    recent = _recent_changes(changes, now - lookback, now)
    open_inc = _open_incidents(incidents)
    cand = np.flatnonzero(explains)
    n_changes = np.array([len(recent.get(topo.ids[i], ())) for i in cand.tolist()],
                         dtype=np.int64)
    n_incidents = np.array([len(open_inc.get(topo.ids[i], ())) for i in cand.tolist()],
                           dtype=np.int64)
    names = np.array([topo.ids[i] for i in cand.tolist()], dtype=object)
    order = sorted(
        range(cand.size),
        key=lambda k: (-int(explains[cand[k]]), -int(n_changes[k]), -int(n_incidents[k]),
                       int(distance[cand[k]]), str(names[k])),
    )[:max_candidates]
    out: list[ProbableCause] = []
    for k in order:
        i = int(cand[k])
        ci = topo.ids[i]
        who = sorted(a for a, nodes in closures if bool(np.any(nodes == i)))
        out.append(ProbableCause(
            ci_id=ci,
            name=graph.name(ci),
            ci_class=graph.ci_class(ci),
            explains=tuple(who),
            distance=int(distance[i]),
            recent_changes=tuple(sorted(recent.get(ci, ()))),
            open_incidents=tuple(sorted(open_inc.get(ci, ()))),
            support_group=graph.support_group(ci),
        ))
    return ProbableCauses(affected=tuple(ids), candidates=tuple(out))


def _recent_changes(changes: Sequence[Change], since: datetime,
                    now: datetime) -> dict[str, list[str]]:
    """``change_id`` of the active changes whose window overlaps ``[since, now]``, by CI."""
    recent: dict[str, list[str]] = {}
    for ch in changes:
        if ch.state in INACTIVE_CHANGE_STATES:
            continue
        if intervals_overlap(ch.window_start, ch.window_end, since, now) or (
            ch.window_start <= now <= ch.window_end
        ):
            for c in ch.ci_ids:
                recent.setdefault(c, []).append(ch.change_id)
    return recent


def _open_incidents(incidents: Sequence[Incident]) -> dict[str, list[str]]:
    """``incident_id`` of the open incidents, by CI."""
    open_inc: dict[str, list[str]] = {}
    for inc in incidents:
        if inc.state not in CLOSED_INCIDENT_STATES:
            for c in inc.ci_ids:
                open_inc.setdefault(c, []).append(inc.incident_id)
    return open_inc
