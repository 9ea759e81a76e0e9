"""Compact integer-indexed form of the impact topology, and the array passes that run on it.

Closure and status propagation never walk networkx objects: :class:`Topology` holds the
impact edges of a dependency graph as compressed sparse row (CSR) arrays, oriented **in the
impact direction** (from the CI that fails to the CIs its failure reaches), with one entry per
ordered pair of CIs (parallel relationships collapse; the pair is *required* when any of them
is), the number of required inputs of every CI and the *slack* its redundancy rule allows.

Every pass is a level-synchronous breadth-first search whose frontier is a numpy array: each
level gathers the CSR slices of the whole frontier at once, so the Python work per query is
proportional to the number of levels, never to the number of CIs in the estate. Status
propagation runs only over the CIs that the failure reaches.

Keeping it in step with a store
-------------------------------
Node indexes are append-only: :meth:`Topology.add_nodes` gives new CIs the next indexes and
:meth:`Topology.add_edges` appends impact edges; both keep the raw (uncollapsed) edge arrays and
rebuild the CSR arrays from them in one vectorised pass (``O(E log E)`` numpy, a few hundred
milliseconds at a million edges, no Python loop over edges). :meth:`Topology.remove_edges` and
:meth:`Topology.set_redundancy` do the same. A store that wants to keep a topology warm applies
the same writes it applies to its graph (new CIs, new or deleted relationships, changed
redundancy rules) and may batch them: the CSR arrays are rebuilt lazily, on the first query after
a change. Retiring a CI needs no index change (its edges are removed, or it is simply left in).
When in doubt, ``Topology.from_graph(G, registry)`` rebuilds from scratch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from cmdb_graph.errors import CINotFoundError, InvalidRecordError
from cmdb_graph.model import ImpactDirection, Registry

__all__ = [
    "DEGRADED",
    "DOWN",
    "OPERATIONAL",
    "Propagation",
    "Topology",
    "parse_redundancy",
]

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Status codes of the array form (see :class:`impact.results.ImpactStatus`).
OPERATIONAL = 0
DEGRADED = 1
DOWN = 2

_EMPTY = np.zeros(0, dtype=np.int64)


def parse_redundancy(rule: str | None, required_inputs: int) -> int:
    """How many required inputs of a CI must be up for the CI not to be down.

    Parameters
    ----------
    rule : str or None
        ``None`` or ``"all"`` (every required input), ``"k"`` (at least ``k``) or ``"k%"``
        (at least ``ceil(k% of the required inputs)``).
    required_inputs : int
        Number of required inputs (members or required dependencies) of the CI.

    Returns
    -------
    int
        The threshold, between 0 and ``required_inputs``. A ``"k"`` above the number of inputs
        is capped at it (the CI is down as soon as one input is down), so that an estate with
        nothing failed is always fully operational.

    Raises
    ------
    InvalidRecordError
        The rule is not one of the three forms.

    Examples
    --------
    >>> parse_redundancy("2", 3), parse_redundancy("50%", 3), parse_redundancy(None, 3)
    (2, 2, 3)
    """
    if rule is None or rule == "all":
        return required_inputs
    text = str(rule).strip()
    try:
        if text.endswith("%"):
            pct = int(text[:-1])
            if not 0 <= pct <= 100:
                raise ValueError(text)
            return min(required_inputs, math.ceil(pct * required_inputs / 100))
        k = int(text)
        if k < 0:
            raise ValueError(text)
        return min(required_inputs, k)
    except ValueError:
        raise InvalidRecordError(
            f"redundancy rule {rule!r} must be 'all', 'k' or 'k%'", field="redundancy"
        ) from None


def _gather(indptr: IntArray, frontier: IntArray) -> IntArray:
    """Positions in the CSR ``indices`` array of every edge leaving ``frontier``."""
    starts = indptr[frontier]
    counts = indptr[frontier + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return _EMPTY
    ends = np.cumsum(counts)
    offs: IntArray = np.repeat(starts - (ends - counts), counts)
    offs += np.arange(total, dtype=np.int64)
    return offs


def _dedupe(values: IntArray, scratch: IntArray) -> IntArray:
    """``values`` without repeats, first occurrence kept, in O(len) (``scratch`` has size n)."""
    if values.size < 2:
        return values
    pos = np.arange(values.size, dtype=np.int64)
    scratch[values[::-1]] = pos[::-1]
    out: IntArray = values[scratch[values] == pos]
    return out


@dataclass(frozen=True, slots=True)
class Propagation:
    """Outcome of :meth:`Topology.propagate` in array form (indexes of the topology).

    Attributes
    ----------
    seeds : ndarray of int64
        The failed CIs (status down, depth 0, round 0).
    nodes : ndarray of int64
        Every CI the failure reaches, seeds included, in breadth-first order.
    depth : ndarray of int32, shape (n,)
        Hops from the nearest seed along impact edges; -1 outside ``nodes``.
    status : ndarray of int8, shape (n,)
        :data:`OPERATIONAL`, :data:`DEGRADED` or :data:`DOWN`.
    down_round : ndarray of int32, shape (n,)
        Fixed-point round in which the CI went down (0 for seeds); -1 when not down.
    down_inputs : ndarray of int32, shape (n,)
        Number of required inputs that are down (meaningful on ``nodes`` only).
    """

    seeds: IntArray
    nodes: IntArray
    depth: npt.NDArray[np.int32]
    status: npt.NDArray[np.int8]
    down_round: npt.NDArray[np.int32]
    down_inputs: npt.NDArray[np.int32]

    @property
    def down(self) -> IntArray:
        """Indexes of the CIs that are down (seeds included)."""
        out: IntArray = self.nodes[self.status[self.nodes] == DOWN]
        return out

    @property
    def degraded(self) -> IntArray:
        """Indexes of the CIs that are degraded."""
        out: IntArray = self.nodes[self.status[self.nodes] == DEGRADED]
        return out


class Topology:
    """Impact edges of a dependency graph as CSR arrays, plus per-CI redundancy data.

    Parameters
    ----------
    ids : sequence of str
        ``ci_id`` of every node; the position is the node's index.
    src, dst : array-like of int
        Impact edges, one per stored relationship: a failure of ``src`` reaches ``dst``.
    required : array-like of bool
        Whether each edge is a required (not optional) dependency.
    rules : mapping of str to str, optional
        Redundancy rule by ``ci_id`` (``"all"``, ``"k"``, ``"k%"``).

    Attributes
    ----------
    ids : list of str
        ``ci_id`` by index.
    index : dict of str to int
        Index by ``ci_id``.
    fwd_indptr, fwd_indices, fwd_required : ndarray
        CSR of the collapsed impact edges leaving each CI (its dependents).
    rev_indptr, rev_indices, rev_required : ndarray
        CSR of the collapsed impact edges entering each CI (its inputs).
    required_inputs : ndarray of int32
        Number of required inputs of each CI.
    threshold : ndarray of int32
        Required inputs that must be up for the CI not to be down.
    slack : ndarray of int32
        ``required_inputs - threshold``: how many required inputs may be down.
    has_rule_mask : ndarray of bool
        Whether each CI declares a redundancy rule.
    self_loops : frozenset of str
        CIs with an impact relationship to themselves (cycles of length one; not stored as
        edges, they cannot change a status).
    """

    def __init__(
        self,
        ids: Sequence[str],
        src: Iterable[int] | IntArray,
        dst: Iterable[int] | IntArray,
        required: Iterable[bool] | BoolArray,
        rules: Mapping[str, str] | None = None,
    ) -> None:
        self.ids: list[str] = list(ids)
        self.index: dict[str, int] = {ci: i for i, ci in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise InvalidRecordError("duplicate ci_id in topology nodes", field="ci_id")
        self._src = np.asarray(list(src) if not isinstance(src, np.ndarray) else src,
                               dtype=np.int64)
        self._dst = np.asarray(list(dst) if not isinstance(dst, np.ndarray) else dst,
                               dtype=np.int64)
        self._req = np.asarray(
            list(required) if not isinstance(required, np.ndarray) else required, dtype=np.bool_
        )
        if not (self._src.shape == self._dst.shape == self._req.shape):
            raise ValueError("src, dst and required must have the same length")
        self.rules: dict[str, str] = dict(rules or {})
        self._dirty = True
        self._build()

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_graph(cls, graph: nx.MultiDiGraph, registry: Registry | None = None) -> Topology:
        """Build from a dependency graph in the store shape (see ``cmdb_graph.store.base``).

        Parameters
        ----------
        graph : networkx.MultiDiGraph
            Node id = ``ci_id``; node attribute ``redundancy``; edges in stored orientation with
            key/attribute ``rel_type`` and attribute ``optional``.
        registry : Registry, optional
            Gives the impact direction of each relationship type (default ``Registry()``).
            Types with impact ``none`` and types the registry does not know carry no impact.

        Returns
        -------
        Topology

        Raises
        ------
        InvalidRecordError
            A node holds a redundancy rule that does not parse.
        """
        reg = registry or Registry()
        directions = reg.impacting_types()
        ids = list(graph.nodes)
        index = {ci: i for i, ci in enumerate(ids)}
        src: list[int] = []
        dst: list[int] = []
        req: list[bool] = []
        unknown: set[str] = set()
        for u, v, key, data in graph.edges(keys=True, data=True):
            rel = data.get("rel_type", key)
            direction = directions.get(rel)
            if direction is None:
                if rel not in reg.relationship_types:
                    unknown.add(str(rel))
                continue
            a, b = index[u], index[v]
            if direction is ImpactDirection.END_TO_START:
                src.append(b)
                dst.append(a)
            else:
                src.append(a)
                dst.append(b)
            req.append(not bool(data.get("optional", False)))
        if unknown:
            log.warning("relationship types unknown to the registry carry no impact: %s",
                        sorted(unknown))
        rules = {
            ci: str(attrs["redundancy"])
            for ci, attrs in graph.nodes(data=True)
            if attrs.get("redundancy") not in (None, "")
        }
        return cls(ids, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64),
                   np.array(req, dtype=np.bool_), rules)

    # -- incremental maintenance ------------------------------------------------------------
    def add_nodes(self, ci_ids: Iterable[str], rules: Mapping[str, str] | None = None) -> None:
        """Append CIs (ids already present are ignored) and set their redundancy rules."""
        for ci in ci_ids:
            if ci not in self.index:
                self.index[ci] = len(self.ids)
                self.ids.append(ci)
        if rules:
            self.rules.update(rules)
        self._dirty = True

    def add_edges(self, edges: Iterable[tuple[str, str, bool]]) -> None:
        """Append impact edges ``(failing ci_id, impacted ci_id, required)``.

        The ends must be known (see :meth:`add_nodes`); the CSR arrays are rebuilt lazily.

        Raises
        ------
        CINotFoundError
            An end is not a node of the topology.
        """
        rows = list(edges)
        src = self.indexes([r[0] for r in rows])
        dst = self.indexes([r[1] for r in rows])
        self._src = np.concatenate([self._src, src])
        self._dst = np.concatenate([self._dst, dst])
        self._req = np.concatenate([self._req, np.array([bool(r[2]) for r in rows], np.bool_)])
        self._dirty = True

    def remove_edges(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Remove every impact edge ``failing -> impacted`` of the given pairs; returns how many.

        Raises
        ------
        CINotFoundError
            An end is not a node of the topology.
        """
        rows = list(pairs)
        if not rows:
            return 0
        n = max(len(self.ids), 1)
        drop = self.indexes([r[0] for r in rows]) * n + self.indexes([r[1] for r in rows])
        keep = ~np.isin(self._src * n + self._dst, drop)
        removed = int((~keep).sum())
        self._src, self._dst, self._req = self._src[keep], self._dst[keep], self._req[keep]
        self._dirty = True
        return removed

    def set_redundancy(self, ci_id: str, rule: str | None) -> None:
        """Set or clear (``None``) the redundancy rule of a CI.

        Raises
        ------
        CINotFoundError
            Unknown CI.
        """
        self.indexes([ci_id])
        if rule is None:
            self.rules.pop(ci_id, None)
        else:
            self.rules[ci_id] = rule
        self._dirty = True

    def _build(self) -> None:
        n = len(self.ids)
        src, dst, req = self._src, self._dst, self._req
        loops = src == dst
        self._loop_idx = np.unique(src[loops])
        self.self_loops = frozenset(self.ids[int(i)] for i in self._loop_idx)
        src, dst, req = src[~loops], dst[~loops], req[~loops]
        key = src * max(n, 1) + dst
        order = np.argsort(key, kind="stable")
        key_s = key[order]
        req_s = req[order].astype(np.int8)
        if key_s.size:
            first = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
            ukey = key_s[first]
            ureq = np.maximum.reduceat(req_s, first).astype(np.bool_)
        else:
            ukey = _EMPTY
            ureq = np.zeros(0, dtype=np.bool_)
        us = ukey // max(n, 1)
        ud = ukey % max(n, 1)
        self.fwd_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(us, minlength=n), out=self.fwd_indptr[1:])
        self.fwd_indices = ud.astype(np.int64)
        self.fwd_required = ureq
        rorder = np.argsort(ud, kind="stable")
        self.rev_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(ud, minlength=n), out=self.rev_indptr[1:])
        self.rev_indices = us[rorder].astype(np.int64)
        self.rev_required = ureq[rorder]
        self.required_inputs = np.bincount(ud[ureq], minlength=n).astype(np.int32)
        self.threshold = self.required_inputs.copy()
        self.has_rule_mask = np.zeros(n, dtype=np.bool_)
        for ci, rule in self.rules.items():
            i = self.index.get(ci)
            if i is None:
                continue
            self.has_rule_mask[i] = True
            try:
                self.threshold[i] = parse_redundancy(rule, int(self.required_inputs[i]))
            except InvalidRecordError as exc:
                raise InvalidRecordError(exc.reason, record=ci, field="redundancy") from None
        self.slack = (self.required_inputs - self.threshold).astype(np.int32)
        matrix = self.csr()
        _, labels = connected_components(matrix, directed=True, connection="strong")
        self.scc_label = labels.astype(np.int64)
        sizes = np.bincount(self.scc_label, minlength=1)
        self._cyclic_label = sizes > 1
        self._scratch = np.empty(n, dtype=np.int64)
        self._dirty = False

    def _ensure(self) -> None:
        if self._dirty:
            self._build()

    # -- lookups ----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of CIs."""
        return len(self.ids)

    def csr(self) -> csr_matrix:
        """The collapsed impact edges as a scipy CSR matrix (``A[i, j] = 1``: i impacts j)."""
        n = len(self.ids)
        return csr_matrix(
            (np.ones(self.fwd_indices.size, dtype=np.int8), self.fwd_indices, self.fwd_indptr),
            shape=(n, n),
        )

    def indexes(self, ci_ids: Iterable[str]) -> IntArray:
        """Indexes of ``ci_ids``, in order.

        Raises
        ------
        CINotFoundError
            One of them is not a node (the message names the first few).
        """
        ids = list(ci_ids)
        missing = [c for c in ids if c not in self.index]
        if missing:
            raise CINotFoundError(f"unknown CI(s): {', '.join(sorted(missing)[:5])}")
        return np.fromiter((self.index[c] for c in ids), dtype=np.int64, count=len(ids))

    def has_rule(self, i: int) -> bool:
        """Whether CI ``i`` declares a redundancy rule."""
        self._ensure()
        return bool(self.has_rule_mask[i])

    def inputs(self, i: int) -> tuple[IntArray, BoolArray]:
        """Inputs of CI ``i`` (CIs whose failure reaches it directly) and whether required."""
        self._ensure()
        a, b = self.rev_indptr[i], self.rev_indptr[i + 1]
        return self.rev_indices[a:b], self.rev_required[a:b]

    def dependents(self, i: int) -> tuple[IntArray, BoolArray]:
        """CIs that the failure of ``i`` reaches directly, and whether the edge is required."""
        self._ensure()
        a, b = self.fwd_indptr[i], self.fwd_indptr[i + 1]
        return self.fwd_indices[a:b], self.fwd_required[a:b]

    def cycles_among(self, nodes: IntArray) -> list[list[str]]:
        """Cycles (strongly connected components, and self-loops) that touch ``nodes``.

        Returns
        -------
        list of list of str
            Every member of each cyclic strongly connected component having a member in
            ``nodes`` (sorted), then self-loops as one-element lists; the list sorted.
        """
        self._ensure()
        found: list[list[str]] = []
        if not nodes.size:
            return found
        labels = np.unique(self.scc_label[nodes])
        labels = labels[self._cyclic_label[labels]]
        if labels.size:
            members = np.flatnonzero(np.isin(self.scc_label, labels))
            groups: dict[int, list[str]] = {}
            for m in members.tolist():
                groups.setdefault(int(self.scc_label[m]), []).append(self.ids[m])
            found.extend(sorted(g) for g in groups.values())
        if self._loop_idx.size:
            in_cycle = {ci for g in found for ci in g}
            for i in self._loop_idx[np.isin(self._loop_idx, nodes)].tolist():
                if self.ids[i] not in in_cycle:
                    found.append([self.ids[i]])
        return sorted(found)

    # -- passes -----------------------------------------------------------------------------
    def closure(
        self,
        seeds: IntArray,
        *,
        reverse: bool = False,
        max_depth: int | None = None,
        required_only: bool = False,
    ) -> tuple[IntArray, npt.NDArray[np.int32]]:
        """Breadth-first closure from ``seeds`` along (or against) the impact direction.

        Parameters
        ----------
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
        depth : ndarray of int32, shape (n,)
            Hops from the nearest seed, -1 when not reached.
        """
        self._ensure()
        indptr, indices, req = (
            (self.rev_indptr, self.rev_indices, self.rev_required)
            if reverse
            else (self.fwd_indptr, self.fwd_indices, self.fwd_required)
        )
        depth = np.full(self.n, -1, dtype=np.int32)
        seeds = _dedupe(np.asarray(seeds, dtype=np.int64), self._scratch)
        depth[seeds] = 0
        parts = [seeds]
        frontier = seeds
        level = 0
        while frontier.size and (max_depth is None or level < max_depth):
            level += 1
            offs = _gather(indptr, frontier)
            if required_only:
                offs = offs[req[offs]]
            nb = indices[offs]
            nb = nb[depth[nb] < 0]
            if not nb.size:
                break
            nb = _dedupe(nb, self._scratch)
            depth[nb] = level
            parts.append(nb)
            frontier = nb
        return np.concatenate(parts), depth

    def propagate(self, seeds: IntArray) -> Propagation:
        """Status of every CI when ``seeds`` are down, to the fixed point.

        Rules (DESIGN section 4): a seed is down. A CI is down when more of its required inputs
        are down than its slack allows (slack 0 without a redundancy rule: any required input
        down takes it down; with a rule, it is down only below the threshold). A CI reached by
        the failure that is not down is degraded (an optional input down, a required input down
        within the slack, or any input degraded). Inputs that are degraded count as up for
        thresholds. The least fixed point is computed: a cycle of CIs that nothing outside takes
        down stays up, and the passes terminate on any cycle (each CI goes down at most once
        and each required edge is counted once).

        Parameters
        ----------
        seeds : ndarray of int
            Indexes of the failed CIs (or CIs under change).

        Returns
        -------
        Propagation

        Notes
        -----
        Cost: two breadth-first passes over the CIs the failure reaches (closure with depths,
        then the down fixed point over required edges), each a loop over levels of vectorised
        numpy operations; nothing is done per CI of the estate outside the closure apart from
        allocating a few length-n arrays.
        """
        nodes, depth = self.closure(seeds)
        n = self.n
        seeds = nodes[: np.count_nonzero(depth[nodes] == 0)]
        status = np.zeros(n, dtype=np.int8)
        status[nodes] = DEGRADED
        status[seeds] = DOWN
        down_round = np.full(n, -1, dtype=np.int32)
        down_round[seeds] = 0
        count = np.zeros(n, dtype=np.int32)
        frontier = seeds
        rnd = 0
        dense = max(64, n // 16)
        while frontier.size:
            rnd += 1
            offs = _gather(self.fwd_indptr, frontier)
            offs = offs[self.fwd_required[offs]]
            tg = self.fwd_indices[offs]
            tg = tg[status[tg] != DOWN]
            if not tg.size:
                break
            if tg.size > dense:
                count += np.bincount(tg, minlength=n).astype(np.int32)
            else:
                np.add.at(count, tg, 1)
            cand = tg[count[tg] > self.slack[tg]]
            if not cand.size:
                break
            cand = _dedupe(cand, self._scratch)
            status[cand] = DOWN
            down_round[cand] = rnd
            frontier = cand
        return Propagation(
            seeds=seeds,
            nodes=nodes,
            depth=depth,
            status=status,
            down_round=down_round,
            down_inputs=count,
        )

    def explaining_inputs(self, prop: Propagation) -> dict[int, list[int]]:
        """For every reached CI except the seeds, the inputs that explain its status.

        A down CI is explained by its required inputs that went down in an earlier round; a
        degraded CI by its reached inputs one hop nearer to the seeds. Following these links
        from any reached CI always ends at a seed (the links strictly decrease the round, or
        the depth, so they form no cycle).

        Returns
        -------
        dict of int to list of int
            Sorted input indexes by CI index.
        """
        self._ensure()
        targets = prop.nodes[prop.depth[prop.nodes] > 0]
        if not targets.size:
            return {}
        starts = self.rev_indptr[targets]
        counts = self.rev_indptr[targets + 1] - starts
        offs = _gather(self.rev_indptr, targets)
        owner = np.repeat(targets, counts)
        pred = self.rev_indices[offs]
        req = self.rev_required[offs]
        st = prop.status
        own_down = st[owner] == DOWN
        ok_down = own_down & req & (st[pred] == DOWN) & (
            prop.down_round[pred] < prop.down_round[owner]
        )
        ok_deg = ~own_down & (prop.depth[pred] >= 0) & (prop.depth[pred] == prop.depth[owner] - 1)
        keep = ok_down | ok_deg
        owner, pred = owner[keep], pred[keep]
        order = np.lexsort((pred, owner))
        out: dict[int, list[int]] = {}
        for o, p in zip(owner[order].tolist(), pred[order].tolist(), strict=True):
            out.setdefault(o, []).append(p)
        return out


def node_attrs(graph: nx.MultiDiGraph, ci_id: str) -> Mapping[str, Any]:
    """Attributes of a node (empty mapping when absent)."""
    attrs: Mapping[str, Any] = graph.nodes[ci_id] if ci_id in graph else {}
    return attrs
