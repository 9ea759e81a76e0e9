"""Closure and status propagation: the passes that run on the compressed arrays.

Every pass is a level-synchronous breadth-first search over a
:class:`~impact.csr.TopologyArrays` whose frontier is a numpy array: each level gathers the CSR
slices of the whole frontier at once, so the Python work per query is proportional to the
number of levels, never to the number of CIs in the estate. Status propagation runs only over
the CIs that the failure reaches. A single seed whose closure is large runs on scipy's
compiled breadth-first search instead (the same answers).

The functions take the arrays first; :class:`impact.topology.Topology` offers them as methods
(``topo.closure(...)``, ``topo.propagate(...)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse.csgraph import breadth_first_order

from impact.csr import TopologyArrays
from impact.scratch import EMPTY, IntArray, Scratch, gather

__all__ = ["DEGRADED", "DOWN", "OPERATIONAL", "Propagation", "closure", "propagate"]

#: Status codes of the array form (see :class:`impact.results.ImpactStatus`).
OPERATIONAL = 0
DEGRADED = 1
DOWN = 2

_ONE = np.int32(1)

#: A single-seed forward closure that reaches more than ``n >> _BFS_SHIFT`` CIs (and at
#: least ``_BFS_MIN``) switches from the level-synchronous numpy passes to scipy's
#: breadth-first search (compiled; costs O(n) to set up, so it only pays on large closures).
_BFS_SHIFT = 5
_BFS_MIN = 2048


@dataclass(frozen=True, slots=True, eq=False)
class Propagation:
    """Outcome of :func:`propagate` in array form (indexes of the topology).

    Every array but ``seeds`` is aligned with ``nodes``: the result holds nothing per CI of the
    estate, only per CI that the failure reaches.

    Attributes
    ----------
    seeds : ndarray of int64
        The failed CIs (status down, depth 0, round 0).
    nodes : ndarray of int64
        Every CI the failure reaches, seeds first, in breadth-first order.
    depth : ndarray of int32
        Hops from the nearest seed along impact edges.
    status : ndarray of int8
        :data:`DEGRADED` or :data:`DOWN` (a reached CI is never operational).
    known_rounds : ndarray of int32 or None
        ``down_round`` when computed with the statuses, else ``None`` (see ``rounds``).
    down_inputs : ndarray of int32
        Number of required inputs in service that are down, kept for the CIs that have a
        redundancy rule (0 elsewhere; a CI without a rule is down as soon as one is).
    rounds : callable, optional
        Computes ``down_round`` when ``known_rounds`` is ``None``.
    on_cycles : ndarray of int64, optional
        The reached CIs that lie on a cycle (a cyclic strongly connected component or a
        self-loop): ``cycles_among(on_cycles)`` equals ``cycles_among(nodes)``.
    down_round : ndarray of int32 (property)
        Fixed-point round in which the CI went down (0 for seeds); -1 when not down.
    """

    seeds: IntArray
    nodes: IntArray
    depth: npt.NDArray[np.int32]
    status: npt.NDArray[np.int8]
    known_rounds: npt.NDArray[np.int32] | None
    down_inputs: npt.NDArray[np.int32]
    rounds: Callable[[], npt.NDArray[np.int32]] | None = field(
        default=None, repr=False, compare=False)
    on_cycles: IntArray | None = field(default=None, repr=False, compare=False)
    _lookup: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def down_round(self) -> npt.NDArray[np.int32]:
        """Fixed-point round in which each CI went down (0 for seeds; -1 when not down).

        A large single-seed propagation computes the down set without rounds; they are then
        computed on the first read (one more pass) and kept.
        """
        if self.known_rounds is not None:
            return self.known_rounds
        found: npt.NDArray[np.int32] | None = self._lookup.get("down_round")
        if found is None:
            if self.rounds is None:
                raise ValueError("propagation without rounds")
            found = self.rounds()
            self._lookup["down_round"] = found
        return found

    def positions(self, idx: IntArray) -> IntArray:
        """Position in ``nodes`` of each index of ``idx``; -1 when the CI was not reached.

        The first call sorts ``nodes`` once (``O(k log k)`` for k reached CIs).
        """
        idx = np.asarray(idx, dtype=np.int64)
        if not self.nodes.size:
            return np.full(idx.shape, -1, dtype=np.int64)
        if not self._lookup:
            order = np.argsort(self.nodes, kind="stable")
            self._lookup["order"] = order
            self._lookup["sorted"] = self.nodes[order]
        ordered, order = self._lookup["sorted"], self._lookup["order"]
        where = np.minimum(np.searchsorted(ordered, idx), ordered.size - 1)
        out: IntArray = np.where(ordered[where] == idx, order[where], -1)
        return out

    def status_at(self, idx: IntArray) -> npt.NDArray[np.int8]:
        """Status code of each index of ``idx`` (:data:`OPERATIONAL` when not reached)."""
        pos = self.positions(idx)
        out = np.zeros(pos.shape, dtype=np.int8)
        hit = pos >= 0
        out[hit] = self.status[pos[hit]]
        return out

    def status_of(self, i: int) -> int:
        """Status code of CI index ``i``."""
        return int(self.status_at(np.array([i], dtype=np.int64))[0])

    @property
    def down(self) -> IntArray:
        """Indexes of the CIs that are down (seeds included)."""
        out: IntArray = self.nodes[self.status == DOWN]
        return out

    @property
    def degraded(self) -> IntArray:
        """Indexes of the CIs that are degraded."""
        out: IntArray = self.nodes[self.status == DEGRADED]
        return out



def closure(
    topo: TopologyArrays,
    seeds: IntArray,
    *,
    reverse: bool = False,
    max_depth: int | None = None,
    required_only: bool = False,
) -> tuple[IntArray, npt.NDArray[np.int32]]:
    """Breadth-first closure from ``seeds`` along (or against) the impact direction.

    Parameters
    ----------
    topo : TopologyArrays
        The arrays to walk.
    seeds : ndarray of int
        Start indexes (depth 0).
    reverse : bool
        ``False``: the CIs the seeds' failure reaches (upstream, blast radius).
        ``True``: the CIs the seeds need (downstream, their dependencies).
    max_depth : int, optional
        Stop after this many hops.
    required_only : bool
        Follow required edges only.

    Returns
    -------
    nodes : ndarray of int64
        Reached indexes, seeds first, in breadth-first order.
    depth : ndarray of int32
        Hops from the nearest seed, aligned with ``nodes``.

    Raises
    ------
    CINotFoundError
        A seed index is outside the topology.
    """
    work = topo.scratch()
    seeds = work.check(seeds)
    try:
        return _closure(topo, seeds, work, reverse, max_depth, required_only)
    finally:
        work.reset_depth()


def _closure(
    topo: TopologyArrays,
    seeds: IntArray,
    work: Scratch,
    reverse: bool,
    max_depth: int | None,
    required_only: bool,
    give_up: int | None = None,
) -> tuple[IntArray, npt.NDArray[np.int32]]:
    """The level passes of :func:`closure`; ``work.depth`` is left set (``work.touched``).
    With ``give_up``, stops once more CIs than that would be reached (``work.gave_up``)."""
    if reverse:
        indptr, indices, req = topo.rev_indptr, topo.rev_indices, topo.rev_required
    elif required_only:
        indptr, indices, req = topo.req_indptr, topo.req_indices, None
    else:
        indptr, indices, req = topo.fwd_indptr, topo.fwd_indices, None
    depth = work.depth
    depth[seeds] = 0
    parts = [seeds]
    levels = [np.zeros(seeds.size, dtype=np.int32)]
    work.touched = seeds
    frontier = seeds
    level = 0
    reached = seeds.size
    try:
        while frontier.size and (max_depth is None or level < max_depth):
            if give_up is not None and reached + int(
                (indptr[frontier + 1] - indptr[frontier]).sum()
            ) > give_up:
                reached = give_up + 1
                break
            level += 1
            offs = gather(indptr, frontier)
            if required_only and req is not None:
                offs = offs[req[offs]]
            nb = indices[offs]
            nb = nb[depth[nb] < 0]
            if not nb.size:
                break
            nb = work.unique(nb)
            depth[nb] = level
            reached += nb.size
            parts.append(nb)
            levels.append(np.full(nb.size, level, dtype=np.int32))
            frontier = nb
    finally:
        work.touched = np.concatenate(parts)
        work.gave_up = reached > give_up if give_up is not None else False
    return work.touched, np.concatenate(levels)


def _forward_closure(
    topo: TopologyArrays, seeds: IntArray, work: Scratch
) -> tuple[IntArray, npt.NDArray[np.int32]] | None:
    """Forward closure with depths by the level passes (as :func:`_closure`, ``work.depth``
    left set), or ``None`` when a single seed's closure turns out larger than
    ``large_closure`` (scipy's breadth-first search then: :func:`_compiled_closure`)."""
    n = topo.n
    give_up = (max(n >> _BFS_SHIFT, _BFS_MIN) if topo.large_closure is None
               else topo.large_closure)
    if seeds.size != 1 or n <= give_up:
        return _closure(topo, seeds, work, False, None, False)
    found = _closure(topo, seeds, work, False, None, False, give_up=give_up)
    if not work.gave_up:
        return found
    work.reset_depth()
    return None


def _levels(order: npt.NDArray[Any], pred: npt.NDArray[Any], pos: IntArray) -> list[int]:
    """Start of each level of a breadth-first ``order`` from one seed, and its end
    (``pred``: the BFS predecessors; ``pos`` holds the position of each node of ``order``).

    BFS dequeues in order, so the position of each node's predecessor never decreases along
    the order: the levels are runs, found with one binary search per level.
    """
    m = order.size

    def parent(j: int) -> int:  # position in the order of the predecessor of order[j]
        return int(pos[pred[order[j]]])

    bounds = [0, 1]
    while bounds[-1] < m:
        # the next level starts at the first node whose predecessor is in this level
        end = bounds[-1]
        lo, hi = end, m
        while lo < hi:
            mid = (lo + hi) // 2
            if parent(mid) < end:
                lo = mid + 1
            else:
                hi = mid
        bounds.append(lo)
    return bounds


def _compiled_closure(
    topo: TopologyArrays, seed: int, work: Scratch
) -> tuple[IntArray, npt.NDArray[np.int32], IntArray, npt.NDArray[np.int32], IntArray | None]:
    """The forward closure of one seed with depths by scipy's breadth-first search (the
    nodes and depths of :func:`_closure`; the order within a level may differ), the CIs of
    it on a cycle, the BFS predecessors over the required edges (``>= 0`` exactly on the
    CIs reached over required edges, the seed included) and the positions of the CIs not
    reached over them when known, for :func:`_down_by_reach`.

    The closure is the required reach ``R`` (one BFS) plus what optional edges add to it,
    with the depths over required edges lowered where edges of the closure shorten them
    (:func:`_closure_from_required`). When the optional edges or what they change are
    many, a second BFS over every edge gives the closure instead.
    """
    order, rpred = breadth_first_order(topo.required_matrix(), seed, directed=True,
                                       return_predecessors=True)
    rpred[seed] = seed  # (ours) the seed is reached
    pos = work.pos
    found = _closure_from_required(topo, order, rpred, work)
    if found is not None:
        nodes, depth, cyc, outside = found
        return nodes, depth, cyc, rpred, outside
    order, pred = breadth_first_order(topo.bfs_matrix(), seed, directed=True,
                                      return_predecessors=True)
    nodes = order.astype(np.int64)
    pos[nodes] = np.arange(nodes.size, dtype=np.int64)
    bounds = _levels(order, pred, pos)
    depth = np.repeat(np.arange(len(bounds) - 1, dtype=np.int32), np.diff(bounds))
    special = topo.cycle_nodes
    at = pos[special]  # stale entries too: check them
    ok = (at >= 0) & (at < nodes.size)
    ok[ok] = nodes[at[ok]] == special[ok]
    return nodes, depth, special[ok], rpred, None


def _closure_from_required(
    topo: TopologyArrays, order: npt.NDArray[np.int32], rpred: npt.NDArray[np.int32],
    work: Scratch,
) -> tuple[IntArray, npt.NDArray[np.int32], IntArray, IntArray] | None:
    """:func:`_compiled_closure` from the required reach ``order`` (``rpred`` its
    predecessors, the seed's set to itself); ``None`` when a second BFS must tell.

    The CIs outside ``R`` are found by the level passes from the optional edges leaving
    ``R``. The depths over required edges are upper bounds of the hop distances; they are
    lowered along the optional edges and on from every CI lowered (or outside ``R``) until no
    edge of the closure shortens any, which leaves the hop distances. The CIs whose depth
    changed move to the end of their level. New depths live in ``work.depth`` meanwhile
    (reset before returning).
    """
    opt_src, opt_dst = topo.optional_edges()
    nodes = order.astype(np.int64)
    m = nodes.size
    budget = max(64, m >> 4)  # CIs outside R or moved, beyond which the BFS is cheaper
    if opt_src.size > m:
        return None  # scanning the optional edges would cost more than the BFS
    pos = work.pos
    pos[nodes] = np.arange(m, dtype=np.int64)
    bounds = np.asarray(_levels(order, rpred, pos), dtype=np.int64)
    leave = rpred[opt_src] >= 0
    src, dst = opt_src[leave], opt_dst[leave]
    far = np.iinfo(np.int32).max
    new_depth = work.depth  # -1 but for the CIs lowered or outside R
    lowered: list[IntArray] = []
    try:
        touched = 0
        while src.size:  # lower the depths along the edges from the CIs lowered
            have = _depth_of(dst, rpred, pos, bounds, new_depth, far)
            cand = _depth_of(src, rpred, pos, bounds, new_depth, far) + 1
            better = cand < have
            if not bool(better.any()):
                break
            at, cand = dst[better], cand[better].astype(np.int32)
            new_depth[at] = np.minimum(have[better], far)
            np.minimum.at(new_depth, at, cand)  # the least among repeats
            changed = np.unique(at)
            lowered.append(changed)
            touched += changed.size
            if touched > budget:
                return None
            src = np.repeat(changed, topo.fwd_indptr[changed + 1] - topo.fwd_indptr[changed])
            dst = topo.fwd_indices[gather(topo.fwd_indptr, changed)]
        special = topo.cycle_nodes
        on_cycles = special[(rpred[special] >= 0) | (new_depth[special] >= 0)]
        if not lowered:
            depth = np.repeat(np.arange(bounds.size - 1, dtype=np.int32), np.diff(bounds))
            return nodes, depth, on_cycles, EMPTY
        move = np.unique(np.concatenate(lowered))
        to = new_depth[move].astype(np.int64)
    finally:
        for part in lowered:
            new_depth[part] = -1
    # out of their level in R (those of R), into the end of their new level
    in_r = rpred[move] >= 0
    was = np.searchsorted(bounds, pos[move[in_r]], side="right") - 1
    levels = max(bounds.size - 1, int(to.max()) + 1)
    kept = np.zeros(levels, dtype=np.int64)
    kept[:bounds.size - 1] = np.diff(bounds)
    kept -= np.bincount(was, minlength=levels)
    ends = np.cumsum(kept)
    rest = np.delete(nodes, pos[move[in_r]])
    by = np.argsort(to, kind="stable")
    at = ends[to[by]]
    nodes = np.insert(rest, at, move[by])
    at += np.arange(at.size, dtype=np.int64)  # where they landed
    counts = kept + np.bincount(to, minlength=levels)
    depth = np.repeat(np.arange(levels, dtype=np.int32), counts)
    return nodes, depth, on_cycles, at[~in_r[by]]


def _depth_of(x: IntArray, rpred: npt.NDArray[np.int32], pos: IntArray, bounds: IntArray,
              new_depth: npt.NDArray[np.int32], far: int) -> IntArray:
    """Current depth of closure CIs ``x`` in :func:`_closure_from_required`: the lowered
    one, else the level of their position in ``R``, else ``far`` (outside ``R``, not yet
    reached)."""
    out = np.full(x.size, far, dtype=np.int64)
    r = rpred[x] >= 0
    out[r] = np.searchsorted(bounds, pos[x[r]], side="right") - 1
    lowered = new_depth[x]
    hit = lowered >= 0
    out[hit] = lowered[hit]
    return out


def propagate(topo: TopologyArrays, seeds: IntArray, *, compiled: bool = True) -> Propagation:
    """Status of every CI when ``seeds`` are down, to the fixed point.

    Rules: a seed is down. A CI is down when more of its required inputs are down than its
    slack allows (slack 0 without a redundancy rule: any required input down takes it down;
    with a rule, it is down only below the threshold, and required inputs not in service
    count as lost already: see :attr:`~impact.csr.TopologyArrays.slack`). A CI reached by
    the failure that is not down is degraded (an optional input down, a required input down
    within the slack, or any input degraded). Inputs that are degraded count as up for
    thresholds. The least fixed point is computed: a cycle of CIs that nothing outside takes
    down stays up, and the passes terminate on any cycle (each CI goes down at most once and
    each required edge is counted once).

    Parameters
    ----------
    topo : TopologyArrays
        The arrays to propagate over.
    seeds : ndarray of int
        Indexes of the failed CIs (or CIs under change).
    compiled : bool
        Allow scipy's compiled breadth-first search for a large single-seed closure
        (``False``: always the level passes, with rounds).

    Returns
    -------
    Propagation

    Raises
    ------
    CINotFoundError
        A seed index is outside the topology.

    Notes
    -----
    Cost: two breadth-first passes over the CIs the failure reaches (closure with depths,
    then the down fixed point over the required-edge CSR), each a loop over levels of
    vectorised numpy operations. A single seed whose closure turns out larger than
    ``large_closure`` runs on scipy's compiled breadth-first search instead: one BFS over
    the required edges gives the CIs reached over them, with depths; the optional edges
    leaving them add the rest of the closure and lower the depths they shorten (or, when
    that is much, a BFS over every edge gives the closure and depths). The CIs reached over
    required edges are the down set when every rule CI among them, off cycles, has more
    inputs among them than its slack; otherwise the CIs taken down without passing a
    redundancy rule are found by another BFS, after which the rule CIs count their inputs
    and the level passes finish. ``down_round`` is then computed on first read.
    Only CIs with a redundancy rule keep a counter; the others
    go down with their first required input. The length-n working arrays live per thread
    and only the entries a query touched are reset, so a small closure costs nothing per CI
    of the estate (frontiers larger than n/32 use one pass over a length-n mask).
    """
    work = topo.scratch()
    seeds = work.check(seeds)
    required: npt.NDArray[np.int32] | None = None
    outside: IntArray | None = None
    try:
        found = (_forward_closure(topo, seeds, work) if compiled
                 else _closure(topo, seeds, work, False, None, False))
        if found is None:
            nodes, depth, on_cycles, required, outside = _compiled_closure(
                topo, int(seeds[0]), work)
        else:  # work.depth marks the nodes until it is reset
            nodes, depth = found
            on_cycles = topo.cycle_nodes[work.depth[topo.cycle_nodes] >= 0]
    finally:
        work.reset_depth()
    compiled = required is not None
    if required is not None:
        shortcut = _down_by_reach(topo, seeds, nodes, required, outside)
        if shortcut is not None:
            node_status, node_inputs = shortcut
            return Propagation(seeds, nodes, depth, node_status, None, node_inputs,
                               rounds=lambda: _rounds_of(topo, seeds, nodes),
                               on_cycles=on_cycles)
    down = _DownPass(topo, work, seeds)
    try:
        if compiled:
            gate_pos, gates = down.start_compiled(nodes)
        down.run()
        # a reached CI is down or degraded (DOWN > DEGRADED > OPERATIONAL)
        node_status = np.maximum(work.status[nodes], np.int8(DEGRADED))
        if compiled:  # only the rule CIs count their inputs
            node_inputs = np.zeros(nodes.size, dtype=np.int32)
            node_inputs[gate_pos] = work.count[gates]
            node_round = None
        else:
            node_inputs = work.count[nodes]
            node_round = work.rounds[nodes]
    finally:
        down.reset()
    if node_round is None:
        return Propagation(seeds, nodes, depth, node_status, None, node_inputs,
                           rounds=lambda: _rounds_of(topo, seeds, nodes), on_cycles=on_cycles)
    return Propagation(seeds, nodes, depth, node_status, node_round, node_inputs,
                       on_cycles=on_cycles)


def _down_by_reach(
    topo: TopologyArrays, seeds: IntArray, nodes: IntArray, pred: npt.NDArray[np.int32],
    outside: IntArray | None = None,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int32]] | None:
    """The statuses and redundancy counts of a large single-seed closure ``nodes`` from
    the CIs reached over required edges (``pred >= 0``: the predecessors of scipy's BFS,
    the seed's set to itself), when that is exact; ``None`` when the down pass must run.
    ``outside``: the positions in ``nodes`` of the CIs not reached over required edges, when
    known.

    Every CI down is reached over required edges. The reached set ``R`` is the down set
    when every CI of ``R`` with a redundancy rule (the seed aside) has more of its
    counted inputs in ``R`` than its slack and none of them lies on a cycle: ``R`` is then
    a fixed point, so it holds the least one; and were a rule CI of ``R`` not down in the
    least fixed point, an input of it in ``R`` would not be either, and going back along
    that input's required path from the seed would find another rule CI of ``R`` not down
    upstream of it, and so on: a cycle through a rule CI. A CI without a rule goes down
    with any required input, so the rest of ``R`` is down with the rule CIs. Rule CIs
    outside ``R`` have no input down (count 0), as in the down pass. Membership in ``R``
    is read from the BFS's predecessor array (no scratch written).
    """
    seed = int(seeds[0])
    ptr, inputs, cyclic = topo.counted_inputs()
    if cyclic.size and bool(((pred[cyclic] >= 0) & (cyclic != seed)).any()):
        return None  # a rule CI on a cycle: the down pass tells
    gate_pos = np.flatnonzero(topo.has_rule_mask[nodes])
    gates = nodes[gate_pos]
    # the counted inputs of the rule CIs (as :func:`~impact.scratch.gather`), summed by CI
    starts = ptr[gates]
    sizes = ptr[gates + 1] - starts
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if ends.size else 0
    offs = np.repeat(starts - (ends - sizes), sizes)
    offs += np.arange(total, dtype=np.int64)
    sums = np.zeros(total + 1, dtype=np.int64)
    np.cumsum(pred[inputs[offs]] >= 0, out=sums[1:])
    count = (sums[ends] - sums[ends - sizes]).astype(np.int32)
    held = count <= topo.slack[gates]
    held &= pred[gates] >= 0
    if gate_pos.size and gate_pos[0] == 0:
        held[0] = False  # the seed is down whatever its inputs
    if bool(held.any()):
        return None  # a redundancy rule holds: the down pass tells what else stays up
    if outside is None:
        node_status = (pred[nodes] >= 0).view(np.int8) + np.int8(DEGRADED)
    else:
        node_status = np.full(nodes.size, DOWN, dtype=np.int8)
        node_status[outside] = DEGRADED
    node_inputs = np.zeros(nodes.size, dtype=np.int32)
    node_inputs[gate_pos] = count
    return node_status, node_inputs


class _DownPass:
    """The down fixed point of :func:`propagate`, round by round over the required edges.

    Writes ``work.status``, ``work.rounds`` and ``work.count``; :meth:`reset` clears every
    entry it wrote.
    """

    def __init__(self, topo: TopologyArrays, work: Scratch, seeds: IntArray) -> None:
        self.topo = topo
        self.work = work
        self.parts = [seeds]
        self.counted: list[IntArray] = []
        self.frontier = seeds
        work.status[seeds] = DOWN
        work.rounds[seeds] = 0

    def start_compiled(self, nodes: IntArray) -> tuple[IntArray, IntArray]:
        """A large closure of one seed: the CIs its failure takes down over required edges
        without passing a CI that has a redundancy rule, by scipy's BFS; then the rule CIs
        count their inputs down, and :meth:`run` goes on from the ones that go down. Rounds
        are then computed only if asked for (paths).

        Returns the positions in ``nodes`` of the rule CIs, and their indexes.
        """
        topo, work = self.topo, self.work
        status, count, slack = work.status, work.count, topo.slack
        reach = breadth_first_order(topo.gate_free_matrix(), int(self.frontier[0]),
                                    directed=True, return_predecessors=False)
        status[reach] = DOWN
        self.parts.append(reach)
        gate_pos = np.flatnonzero(topo.has_rule_mask[nodes])
        gates = nodes[gate_pos]
        offs = gather(topo.rev_indptr, gates)
        owner = np.repeat(np.arange(gates.size, dtype=np.int64),
                          topo.rev_indptr[gates + 1] - topo.rev_indptr[gates])
        inputs = topo.rev_indices[offs]
        hit = topo.rev_required[offs] & (status[inputs] == DOWN) & topo.in_service[inputs]
        count[gates] = np.bincount(owner[hit], minlength=gates.size)
        self.counted.append(gates)
        frontier = gates[(count[gates] > slack[gates]) & (status[gates] != DOWN)]
        status[frontier] = DOWN
        self.parts.append(frontier)
        self.frontier = frontier
        return gate_pos, gates

    def run(self) -> None:
        """Rounds until no more CI goes down."""
        topo, work = self.topo, self.work
        status, count, gate, slack = work.status, work.count, topo.has_rule_mask, topo.slack
        serving = topo.in_service
        frontier = self.frontier
        rnd = 0
        while frontier.size:
            rnd += 1
            tg = topo.req_indices[gather(topo.req_indptr, frontier)]
            if not tg.size:
                break
            # CIs with a redundancy rule count every required input in service that goes
            # down (each failing input reaches them once, in the round after it went down;
            # one not in service was off their slack already) ...
            is_gate = gate[tg]
            counts = is_gate
            if not serving[frontier].all():
                ptr = topo.req_indptr
                counts = is_gate & np.repeat(serving[frontier], ptr[frontier + 1] - ptr[frontier])
            gated = tg[counts]
            if gated.size:
                np.add.at(count, gated, _ONE)  # a numpy scalar: the fast path
                self.counted.append(gated)
                gated = gated[count[gated] > slack[gated]]
            # ... the others go down with their first required input down
            plain = tg[~is_gate]
            new = np.concatenate([plain, gated]) if gated.size else plain
            new = new[status[new] != DOWN]
            if not new.size:
                break
            new = work.unique(new)
            status[new] = DOWN
            work.rounds[new] = rnd
            self.parts.append(new)
            frontier = new

    def reset(self) -> None:
        """Clear the scratch entries this pass wrote."""
        work = self.work
        for part in self.parts:
            work.status[part] = OPERATIONAL
            work.rounds[part] = -1
        for c in self.counted:
            work.count[c] = 0


def _rounds_of(topo: TopologyArrays, seeds: IntArray, nodes: IntArray) -> npt.NDArray[np.int32]:
    """Fixed-point rounds of ``nodes`` under a failure of ``seeds`` (the level passes)."""
    full = propagate(topo, seeds, compiled=False)
    out: npt.NDArray[np.int32] = full.down_round[full.positions(nodes)]
    return out
