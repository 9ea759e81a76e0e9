"""The compressed arrays of the impact topology: construction and incremental maintenance.

:class:`TopologyArrays` holds the impact edges of a dependency graph as compressed sparse row
(CSR) arrays, oriented **in the impact direction** (from the CI that fails to the CIs its
failure reaches), with one entry per ordered pair of CIs (parallel relationships collapse; the
pair is *required* when any of them is), the number of required inputs of every CI and the
*slack* its redundancy rule allows, the strongly connected components (cycles), and a snapshot
of each CI's class, business criticality and whether it is in service as small arrays.

The passes that run on these arrays are in :mod:`impact.passes` (closure, status propagation)
and :mod:`impact.explain` (explaining inputs and paths); :class:`impact.topology.Topology`
puts the three together. How to keep the arrays in step with a store is described there.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

import networkx as nx
import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from cmdb_graph.errors import CINotFoundError, InvalidRecordError
from cmdb_graph.model import ImpactDirection, Registry
from impact.scratch import BoolArray, IntArray, Scratch, gather

__all__ = [
    "NO_CRITICALITY",
    "NOT_IN_SERVICE",
    "OTHER_CRITICALITY",
    "UNKNOWN_CLASS",
    "TopologyArrays",
    "in_service",
    "parse_redundancy",
]

log = logging.getLogger(__name__)


#: ``Topology.class_code`` of a CI whose class was not given.
UNKNOWN_CLASS = -1
#: ``Topology.criticality`` of a CI without business criticality.
NO_CRITICALITY = -1
#: ``Topology.criticality`` of a CI whose criticality is not an integer from 0 to 100.
OTHER_CRITICALITY = -2

#: Operational statuses of a CI that is not in service (planned, in stock, offline, under
#: repair, retired): it gives its redundancy group no redundancy, and impact marks it.
NOT_IN_SERVICE = frozenset({"non_operational", "repair", "retired"})

_GENERATIONS = itertools.count()

#: Edge keys are ``source << _SHIFT | target`` (indexes below 2**32).
_SHIFT = 32
_MASK = (1 << _SHIFT) - 1
#: A build patches the previous one when at most ``max(_PATCH_MIN, edges // _PATCH_SHARE)``
#: edge keys changed since; beyond, it sorts the whole edge list again.
_PATCH_MIN = 1024
_PATCH_SHARE = 16
_EMPTY = np.zeros(0, dtype=np.int64)

#: What :meth:`TopologyArrays.fork` shares until the fork first changes it (the node list and
#: index are shared for good: see :meth:`TopologyArrays._grow`).
_COW_PARTS = ("rules", "attributes")


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


def in_service(status: Any) -> bool:
    """Whether a CI with this ``operational_status`` is in service (``None`` or unknown: yes).

    Examples
    --------
    >>> in_service("operational"), in_service(None), in_service("non_operational")
    (True, True, False)
    """
    return status is None or str(status) not in NOT_IN_SERVICE


def _rule_form(rule: str) -> tuple[int, int]:
    """``(form, k)`` of a redundancy rule: ``(0, 0)`` all, ``(1, k)`` k, ``(2, k)`` k%.

    Raises
    ------
    InvalidRecordError
        As :func:`parse_redundancy`.
    """
    parse_redundancy(rule, 0)  # validates
    text = str(rule).strip()
    if text == "all":
        return 0, 0
    if text.endswith("%"):
        return 2, int(text[:-1])
    return 1, int(text)


def _collapse(keys: IntArray, req: BoolArray) -> tuple[IntArray, BoolArray]:
    """Distinct edge keys without self-loops, sorted, each required when any edge is."""
    loops = (keys >> _SHIFT) == (keys & _MASK)
    keys, req = keys[~loops], req[~loops]
    order = np.argsort(keys, kind="stable")
    key_s = keys[order]
    req_s = req[order].astype(np.int8)
    if not key_s.size:
        return _EMPTY, np.zeros(0, dtype=np.bool_)
    first = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
    return key_s[first], np.maximum.reduceat(req_s, first).astype(np.bool_)


def _bisect(ids: list[str], order: IntArray, x: str) -> int:
    """Where ``x`` goes among ``ids`` taken in ``order`` (sorted): ``bisect_left``."""
    lo, hi = 0, int(order.size)
    while lo < hi:
        mid = (lo + hi) // 2
        if ids[int(order[mid])] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _in_sorted(needles: IntArray, hay: IntArray) -> BoolArray:
    """Whether each of ``needles`` is in ``hay`` (sorted): ``np.isin`` without sorting or
    hashing the bigger side (``O(len(needles) log len(hay))``)."""
    if not hay.size:
        return np.zeros(needles.shape, dtype=np.bool_)
    pos = np.minimum(np.searchsorted(hay, needles), hay.size - 1)
    found: BoolArray = hay[pos] == needles
    return found


def _matches(hay: IntArray, keys: IntArray) -> BoolArray:
    """Whether each of ``hay`` (unsorted) is one of ``keys`` (sorted, distinct): a few
    vectorised comparisons for a few keys, a binary search per entry beyond."""
    if keys.size > 4:
        return _in_sorted(hay, keys)
    hit = np.zeros(hay.shape, dtype=np.bool_)
    for key in keys.tolist():
        hit |= hay == key
    return hit


def _kept_positions(old: IntArray, dpos: IntArray, new: IntArray) -> IntArray:
    """Where ``new`` (sorted) goes in ``old`` (sorted) once the entries at ``dpos`` (sorted)
    are taken out."""
    at = np.searchsorted(old, new)
    found: IntArray = at - np.searchsorted(dpos, at, side="left")
    return found


def _splice(arr: npt.NDArray[Any], dpos: IntArray, ipos: IntArray,
            values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``arr`` without the entries at ``dpos``, then ``values`` inserted at ``ipos``
    (positions in the array left)."""
    out = np.delete(arr, dpos) if dpos.size else arr
    if values.size:
        out = np.insert(out, ipos, values.astype(arr.dtype, copy=False))
    return out


def _required_ranks(rows: IntArray, at: IntArray, indptr: IntArray, req_indptr: IntArray,
                    required: BoolArray) -> IntArray:
    """Rank among the required entries of each forward position ``at`` (in row ``rows``):
    the row's first required entry plus the required ones before it in the row."""
    ranks = [int(req_indptr[r]) + int(np.count_nonzero(required[int(indptr[r]):p]))
             for r, p in zip(rows.tolist(), at.tolist(), strict=True)]
    return np.array(ranks, dtype=np.int64)


def _shift_rows(indptr: IntArray, minus: IntArray, plus: IntArray) -> IntArray:
    """Row pointers after removing one entry from each row of ``minus`` and adding one to
    each row of ``plus``."""
    rows: dict[int, int] = {}
    for r in minus.tolist():
        rows[r] = rows.get(r, 0) - 1
    for r in plus.tolist():
        rows[r] = rows.get(r, 0) + 1
    rows = {r: d for r, d in rows.items() if d}
    out = indptr.copy()
    if len(rows) > 16:
        delta = np.zeros(indptr.size, dtype=np.int64)
        np.add.at(delta, np.array(list(rows), dtype=np.int64) + 1,
                  np.array(list(rows.values()), dtype=np.int64))
        out += np.cumsum(delta)
    else:
        for r, d in rows.items():
            out[r + 1:] += d
    return out


class TopologyArrays:
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
    classes : mapping of str to str, optional
        CI class by ``ci_id`` (CIs left out have no known class: readers fall back to the
        graph for them).
    criticality : mapping of str to int, optional
        Business criticality by ``ci_id`` (CIs left out: none).
    statuses : mapping of str to str, optional
        Operational status by ``ci_id`` (CIs left out: in service; see :func:`in_service`).

    Attributes
    ----------
    ids : list of str
        ``ci_id`` by index (read indexes below :attr:`n` only: the list is shared with the
        later versions :meth:`fork` made, which append their new CIs to it).
    index : dict of str to int
        Index by ``ci_id`` (shared likewise: on a version that is no longer the newest it
        may hold CIs added since, with indexes from :attr:`n` on; :meth:`indexes` checks).
    fwd_indptr, fwd_indices, fwd_required : ndarray
        CSR of the collapsed impact edges leaving each CI (its dependents).
    req_indptr, req_indices : ndarray
        The same restricted to required edges.
    rev_indptr, rev_indices, rev_required : ndarray
        CSR of the collapsed impact edges entering each CI (its inputs).
    required_inputs : ndarray of int32
        Number of required inputs of each CI.
    threshold : ndarray of int32
        Required inputs that must be up for the CI not to be down.
    slack : ndarray of int32
        How many more required inputs may go down before the CI is down:
        ``required_inputs - threshold`` less the required inputs not in service (those give
        no redundancy), never below 0.
    out_inputs : ndarray of int32
        Number of required inputs not in service, kept for the CIs that have a redundancy
        rule (0 elsewhere).
    has_rule_mask : ndarray of bool
        Whether each CI declares a redundancy rule.
    self_loops : frozenset of str
        CIs with an impact relationship to themselves (cycles of length one; not stored as
        edges, they cannot change a status).
    cycle_nodes : ndarray of int64
        Every CI on a cycle (a cyclic strongly connected component or a self-loop), sorted.
    large_closure : int or None
        A single-seed propagation whose closure reaches more CIs than this runs on scipy's
        compiled breadth-first search (same answers); ``None`` (default): ``n / 32``, at
        least 2048.
    class_names : list of str
        The distinct CI classes seen, by class code.
    class_code : ndarray of int32
        Class code of each CI (index into ``class_names``); :data:`UNKNOWN_CLASS` when the
        class was not given (read it from the graph).
    criticality : ndarray of int8
        Business criticality of each CI; :data:`NO_CRITICALITY` for none,
        :data:`OTHER_CRITICALITY` for a value that is not an integer from 0 to 100 (read it
        from the graph).
    in_service : ndarray of bool
        Whether each CI is in service (its ``operational_status`` is not one of
        :data:`NOT_IN_SERVICE`).

    Notes
    -----
    ``ci_class``, ``business_criticality`` and ``operational_status`` are a snapshot of the
    node attributes, like the redundancy rules: a store that keeps a topology warm applies
    changes to them with :meth:`set_attributes` (the impact summaries and the redundancy
    thresholds read them from here, not from the graph). A required input of a CI with a
    redundancy rule that is not in service counts as already lost: a two-member cluster with
    rule ``1`` and one member in stock goes down with the other member.
    The edge arrays are read only after :meth:`refresh` (every pass calls it).
    """

    _ukey: IntArray
    _ureq: BoolArray
    _rkey: IntArray
    _rreq: BoolArray
    fwd_indptr: IntArray
    fwd_indices: IntArray
    fwd_required: BoolArray
    rev_indptr: IntArray
    rev_indices: IntArray
    rev_required: BoolArray
    req_indptr: IntArray
    req_indices: IntArray
    required_inputs: npt.NDArray[np.int32]

    def __init__(
        self,
        ids: Sequence[str],
        src: Iterable[int] | IntArray,
        dst: Iterable[int] | IntArray,
        required: Iterable[bool] | BoolArray,
        rules: Mapping[str, str] | None = None,
        classes: Mapping[str, str] | None = None,
        criticality: Mapping[str, Any] | None = None,
        statuses: Mapping[str, Any] | None = None,
    ) -> None:
        self.ids: list[str] = list(ids)
        self.index: dict[str, int] = {ci: i for i, ci in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise InvalidRecordError("duplicate ci_id in topology nodes", field="ci_id")
        self._n = len(self.ids)
        src_a = np.asarray(list(src) if not isinstance(src, np.ndarray) else src,
                           dtype=np.int64)
        dst_a = np.asarray(list(dst) if not isinstance(dst, np.ndarray) else dst,
                           dtype=np.int64)
        self._req = np.asarray(
            list(required) if not isinstance(required, np.ndarray) else required, dtype=np.bool_
        )
        if not (src_a.shape == dst_a.shape == self._req.shape):
            raise ValueError("src, dst and required must have the same length")
        #: One key (``source << 32 | target``) per stored impact edge, in no order.
        self._raw: IntArray = (src_a << _SHIFT) | dst_a
        del src_a, dst_a
        self.rules: dict[str, str] = dict(rules or {})
        self._cow: set[str] = set()
        self.large_closure: int | None = None
        self.class_names: list[str] = []
        self._class_of_name: dict[str, int] = {}
        self.class_code = np.full(len(self.ids), UNKNOWN_CLASS, dtype=np.int32)
        self.criticality = np.full(len(self.ids), NO_CRITICALITY, dtype=np.int8)
        self.in_service = np.ones(len(self.ids), dtype=np.bool_)
        self._rank: npt.NDArray[np.int32] | None = None
        self._order: IntArray = _EMPTY
        self._rules_version = 0
        self._rule_cache: tuple[int, IntArray, npt.NDArray[np.int8], IntArray] | None = None
        #: Edge keys changed since the last build (``None``: rebuild everything).
        self._delta: list[IntArray] | None = None
        self._set_attributes(classes or {}, criticality or {}, statuses or {})
        self._local = Scratch()
        #: Held while pending changes are patched in (questions on several threads may be
        #: the first to need the arrays of the same version).
        self._build_lock = threading.Lock()
        self._dirty = True
        self._build()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_local", None)
        state.pop("_build_lock", None)
        n = self._n
        if len(self.ids) != n:  # later versions' CIs stay out
            state["ids"] = self.ids[:n]
            state["index"] = {ci: i for ci, i in self.index.items() if i < n}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_cow", set())
        self.__dict__.setdefault("_n", len(self.ids))
        self._local = Scratch()
        self._build_lock = threading.Lock()

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_graph(cls, graph: nx.MultiDiGraph, registry: Registry | None = None) -> Self:
        """Build from a dependency graph in the store shape (see ``cmdb_graph.store.base``).

        Parameters
        ----------
        graph : networkx.MultiDiGraph
            Node id = ``ci_id``; node attribute ``redundancy``; edges in stored orientation,
            keyed by their relationship type, with attribute ``optional``.
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
        # one pass over the edges without building per-edge dicts (the edge key is the type)
        rows = [
            (index[u], index[v], key, bool(opt))
            for u, v, key, opt in graph.edges(keys=True, data="optional", default=False)
        ]
        kinds = {key for _, _, key, _ in rows}
        unknown = {str(k) for k in kinds if k not in reg.relationship_types}
        backward = {k for k in kinds if directions.get(k) is ImpactDirection.END_TO_START}
        forward = {k for k in kinds if directions.get(k) is ImpactDirection.START_TO_END}
        src = [b if k in backward else a for a, b, k, _ in rows if k in backward or k in forward]
        dst = [a if k in backward else b for a, b, k, _ in rows if k in backward or k in forward]
        req = [not o for _, _, k, o in rows if k in backward or k in forward]
        if unknown:
            log.warning("relationship types unknown to the registry carry no impact: %s",
                        sorted(unknown))
        rules = {
            ci: str(rule)
            for ci, rule in graph.nodes(data="redundancy", default=None)
            if rule not in (None, "")
        }
        classes = {ci: str(c or "") for ci, c in graph.nodes(data="ci_class", default="")}
        crit = {
            ci: c for ci, c in graph.nodes(data="business_criticality", default=None)
            if c is not None
        }
        statuses = {
            ci: s for ci, s in graph.nodes(data="operational_status", default=None)
            if not in_service(s)
        }
        return cls(ids, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64),
                   np.array(req, dtype=np.bool_), rules, classes, crit, statuses)

    # -- incremental maintenance ------------------------------------------------------------
    def fork(self) -> Self:
        """A copy to change while this one keeps answering (copy-on-write, ``O(changed)``).

        The copy shares every array and container with this topology; its incremental
        methods replace what they change instead of changing it in place (the edge arrays
        always were; the rules, class, criticality and in-service arrays are copied on the
        copy's first change of them). The node list and index are shared for good: node indexes are
        append-only, so the copy appends its new CIs to them, and this topology keeps
        reading its first :attr:`n` (see :meth:`_grow`). So a caller can apply a batch of
        changes to the fork while questions (and lazily built results) keep reading this
        one, then swap.
        """
        new = copy.copy(self)
        new._local = Scratch()
        new._build_lock = threading.Lock()
        new._cow = set(_COW_PARTS)
        new._delta = None if self._delta is None else list(self._delta)
        return new

    def _own(self, part: str) -> None:
        """Copy ``part`` (see :data:`_COW_PARTS`) before its first change after :meth:`fork`."""
        if part in self._cow:
            self._cow.discard(part)
            if part == "rules":
                self.rules = dict(self.rules)
            else:  # attributes
                self.class_names = list(self.class_names)
                self._class_of_name = dict(self._class_of_name)
                self.class_code = self.class_code.copy()
                self.criticality = self.criticality.copy()
                self.in_service = self.in_service.copy()

    def add_nodes(
        self,
        ci_ids: Iterable[str],
        rules: Mapping[str, str] | None = None,
        classes: Mapping[str, str] | None = None,
        criticality: Mapping[str, Any] | None = None,
        statuses: Mapping[str, Any] | None = None,
    ) -> None:
        """Append CIs (ids already present are ignored) and set their redundancy rules, CI
        classes, business criticality and operational status (see :meth:`set_attributes`)."""
        n = self._n
        index = self.index
        fresh = [ci for ci in dict.fromkeys(ci_ids) if index.get(ci, n) >= n]
        if fresh:
            self._own("attributes")
            self._grow(fresh)
        grown = len(fresh)
        if grown:
            self.class_code = np.concatenate(
                [self.class_code, np.full(grown, UNKNOWN_CLASS, dtype=np.int32)])
            self.criticality = np.concatenate(
                [self.criticality, np.full(grown, NO_CRITICALITY, dtype=np.int8)])
            self.in_service = np.concatenate(
                [self.in_service, np.ones(grown, dtype=np.bool_)])
        if rules or any(ci in self.rules for ci in fresh):
            self._own("rules")
            self.rules.update(rules or {})
            self._rules_version += 1
        self._set_attributes(classes or {}, criticality or {}, statuses or {})
        self._dirty = True

    def _grow(self, fresh: list[str]) -> None:
        """Append the new CIs ``fresh`` to the node list and index.

        The list and index are shared by every version :meth:`fork` made (``O(added)`` per
        fork instead of a copy of a million entries); a version reads only its first
        :attr:`n`. A version appends in place when it is the newest (the list holds exactly
        its :attr:`n` CIs); otherwise (an older version, or a sibling fork appended first) it
        takes its own copy of its first :attr:`n` first.
        """
        n = self._n
        if len(self.ids) != n:
            self.ids = self.ids[:n]
            self.index = {ci: i for ci, i in self.index.items() if i < n}
        index, ids = self.index, self.ids
        for ci in fresh:
            index[ci] = len(ids)
            ids.append(ci)
        self._n = len(ids)

    def set_attributes(
        self,
        ci_id: str,
        *,
        ci_class: str | None = None,
        business_criticality: int | None = None,
        operational_status: str | None = None,
    ) -> None:
        """Set the CI class, business criticality and operational status of a CI (``None``:
        class unknown, no criticality, in service), as the store sets its node attributes.

        A change of whether the CI is in service is applied to the redundancy thresholds of
        the CIs it is a required input of on the next build (no change to the edge arrays).

        Raises
        ------
        CINotFoundError
            Unknown CI.
        """
        i = int(self.indexes([ci_id])[0])
        self._own("attributes")
        self.class_code[i] = UNKNOWN_CLASS
        self.criticality[i] = NO_CRITICALITY
        self._set_attributes({} if ci_class is None else {ci_id: ci_class},
                             {} if business_criticality is None
                             else {ci_id: business_criticality},
                             {ci_id: operational_status})

    def _set_attributes(self, classes: Mapping[str, str], crit: Mapping[str, Any],
                        statuses: Mapping[str, Any]) -> None:
        if classes or crit or statuses:
            self._own("attributes")
        index, n = self.index, self._n
        codes = self._class_of_name
        for ci, cls in classes.items():
            i = index.get(ci, n)
            if i >= n:
                continue
            name = str(cls or "")
            code = codes.get(name)
            if code is None:
                code = codes[name] = len(self.class_names)
                self.class_names.append(name)
            self.class_code[i] = code
        for ci, value in crit.items():
            i = index.get(ci, n)
            if i >= n:
                continue
            if value is None:
                self.criticality[i] = NO_CRITICALITY
            elif type(value) is int and 0 <= value <= 100:
                self.criticality[i] = value
            else:
                self.criticality[i] = OTHER_CRITICALITY
        for ci, status in statuses.items():
            i = index.get(ci, n)
            if i >= n:
                continue
            serving = in_service(status)
            if bool(self.in_service[i]) != serving:
                self.in_service[i] = serving
                self._dirty = True  # thresholds follow on the next build

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
        self._raw = np.concatenate([self._raw, (src << _SHIFT) | dst])
        self._req = np.concatenate([self._req, np.array([bool(r[2]) for r in rows], np.bool_)])
        self._note_delta((src << _SHIFT) | dst)
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
        drop = (self.indexes([r[0] for r in rows]) << _SHIFT) | self.indexes([r[1] for r in rows])
        hit = _matches(self._raw, np.unique(drop))
        removed = int(np.count_nonzero(hit))
        if removed:
            keep = ~hit
            self._raw, self._req = self._raw[keep], self._req[keep]
        self._note_delta(drop)
        self._dirty = True
        return removed

    def _note_delta(self, keys: IntArray) -> None:
        if self._delta is not None:
            self._delta.append(keys)

    def set_redundancy(self, ci_id: str, rule: str | None) -> None:
        """Set or clear (``None``) the redundancy rule of a CI.

        Raises
        ------
        CINotFoundError
            Unknown CI.
        """
        self.indexes([ci_id])
        if self.rules.get(ci_id) == rule:
            return
        self._own("rules")
        if rule is None:
            self.rules.pop(ci_id, None)
        else:
            self.rules[ci_id] = rule
        self._rules_version += 1
        self._dirty = True

    def _build(self) -> None:
        delta = self._delta
        if delta is not None and sum(d.size for d in delta) <= max(
                _PATCH_MIN, self._ukey.size // _PATCH_SHARE):
            self._patch(np.unique(np.concatenate(delta)) if delta else _EMPTY)
        else:
            ukey, ureq = self._collapsed_edges()
            rorder = np.argsort(((ukey & _MASK) << _SHIFT) | (ukey >> _SHIFT), kind="stable")
            self._build_csr(ukey, ureq, (((ukey & _MASK) << _SHIFT) | (ukey >> _SHIFT))[rorder],
                            ureq[rorder])
            self._build_thresholds()
            self._build_cycles()
        self._bfs: csr_matrix | None = None
        self._gate_free: csr_matrix | None = None
        self._required: csr_matrix | None = None
        self._counted: tuple[IntArray, IntArray, IntArray] | None = None
        self._optional: tuple[IntArray, IntArray] | None = None
        self._generation = next(_GENERATIONS)
        self._delta = []
        self._dirty = False

    def _loops(self) -> None:
        raw = self._raw
        src = raw >> _SHIFT
        self._set_loops(np.unique(src[src == (raw & _MASK)]))

    def _set_loops(self, loop_idx: IntArray) -> None:
        self._loop_idx = loop_idx
        self.self_loops = frozenset(self.ids[int(i)] for i in loop_idx)

    def _collapsed_edges(self) -> tuple[IntArray, BoolArray]:
        """The edge keys (``source << 32 | target``) without self-loops (kept apart) and
        with parallel edges collapsed, sorted, and whether each is required."""
        self._loops()
        return _collapse(self._raw, self._req)

    def _patch(self, keys: IntArray) -> None:
        """Bring the arrays of the last build up to date with the edges of ``keys`` (the
        pairs changed since, sorted): the changed entries are spliced out of and into every
        array at positions found by binary search (``O(k log E)`` plus one copy of each array,
        no pass over the edges in Python, no sort of the whole edge list)."""
        loop = (keys >> _SHIFT) == (keys & _MASK)
        if loop.any():
            found = self._raw[_matches(self._raw, keys[loop])] >> _SHIFT
            gone = np.setdiff1d(self._loop_idx, keys[loop] >> _SHIFT)
            self._set_loops(np.union1d(gone, found).astype(np.int64))
        keys = keys[~loop]
        sel = _matches(self._raw, keys)
        nkey, nreq = _collapse(self._raw[sel], self._req[sel])
        old_u, old_req = self._ukey, self._ureq
        n, known = self._n, self.fwd_indptr.size - 1
        grow = n - known
        fwd_indptr, rev_indptr, req_indptr = (
            np.concatenate([p, np.full(grow, p[-1], dtype=np.int64)]) if grow else p
            for p in (self.fwd_indptr, self.rev_indptr, self.req_indptr))
        # forward arrays: old entries of the changed pairs out, their new state in
        pos = np.minimum(np.searchsorted(old_u, keys), max(old_u.size - 1, 0))
        hit = old_u[pos] == keys if old_u.size else np.zeros(keys.shape, dtype=np.bool_)
        dpos, dkey, dreq = pos[hit], keys[hit], old_req[pos[hit]]
        ipos = _kept_positions(old_u, dpos, nkey)
        self._ukey = _splice(old_u, dpos, ipos, nkey)
        self.fwd_indices = _splice(self.fwd_indices, dpos, ipos, nkey & _MASK)
        self.fwd_required = self._ureq = _splice(old_req, dpos, ipos, nreq)
        # required-only arrays: the same entries, at their ranks among the required ones
        req_d = _required_ranks(dkey[dreq] >> _SHIFT, dpos[dreq], fwd_indptr, req_indptr,
                                old_req)
        at = np.searchsorted(old_u, nkey[nreq])
        req_i = _required_ranks(nkey[nreq] >> _SHIFT, at, fwd_indptr, req_indptr, old_req)
        req_i = req_i - np.searchsorted(np.sort(req_d), req_i, side="left")
        self.req_indices = _splice(self.req_indices, np.sort(req_d), req_i,
                                   nkey[nreq] & _MASK)
        # reverse arrays: the same pairs, keyed target first
        old_r = self._rkey
        rdrop = np.sort(((dkey & _MASK) << _SHIFT) | (dkey >> _SHIFT))
        rdpos = np.searchsorted(old_r, rdrop)
        rnew = ((nkey & _MASK) << _SHIFT) | (nkey >> _SHIFT)
        rorder = np.argsort(rnew, kind="stable")
        rnew, rnreq = rnew[rorder], nreq[rorder]
        ripos = _kept_positions(old_r, rdpos, rnew)
        self._rkey = _splice(old_r, rdpos, ripos, rnew)
        self.rev_indices = _splice(self.rev_indices, rdpos, ripos, rnew & _MASK)
        self.rev_required = self._rreq = _splice(self._rreq, rdpos, ripos, rnreq)
        # row pointers and required inputs
        self.fwd_indptr = _shift_rows(fwd_indptr, dkey >> _SHIFT, nkey >> _SHIFT)
        self.rev_indptr = _shift_rows(rev_indptr, dkey & _MASK, nkey & _MASK)
        self.req_indptr = _shift_rows(req_indptr, dkey[dreq] >> _SHIFT, nkey[nreq] >> _SHIFT)
        inputs = self.required_inputs
        inputs = (np.concatenate([inputs, np.zeros(grow, dtype=np.int32)]) if grow
                  else inputs.copy())
        np.subtract.at(inputs, dkey[dreq] & _MASK, 1)
        np.add.at(inputs, nkey[nreq] & _MASK, 1)
        self.required_inputs = inputs
        added = nkey[~_in_sorted(nkey, old_u)]
        removed = dkey[~_in_sorted(dkey, nkey)]
        old_scc = self.scc_label
        self._build_thresholds()
        if not self._cycles_unchanged(old_scc, added, removed):
            self._build_cycles()

    def _build_csr(self, ukey: IntArray, ureq: BoolArray, rkey: IntArray, rreq: BoolArray
                   ) -> None:
        """The forward, reverse and required-only CSR arrays of the collapsed edges, from
        their keys sorted by (source, target) and by (target, source)."""
        n = self._n
        self._ukey, self._ureq, self._rkey, self._rreq = ukey, ureq, rkey, rreq
        us, ud = ukey >> _SHIFT, ukey & _MASK
        self.fwd_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(us, minlength=n), out=self.fwd_indptr[1:])
        self.fwd_indices = ud
        self.fwd_required = ureq
        self.rev_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rkey >> _SHIFT, minlength=n), out=self.rev_indptr[1:])
        self.rev_indices = rkey & _MASK
        self.rev_required = rreq
        self.req_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(us[ureq], minlength=n), out=self.req_indptr[1:])
        self.req_indices = ud[ureq]
        self.required_inputs = np.bincount(ud[ureq], minlength=n).astype(np.int32)

    def _rule_arrays(self) -> tuple[IntArray, npt.NDArray[np.int8], IntArray]:
        """Index, form (0 all, 1 k, 2 k%) and k of every CI's redundancy rule; parsed again
        only when the rules changed."""
        cache = self._rule_cache
        if cache is None or cache[0] != self._rules_version:
            forms: dict[str, tuple[int, int]] = {}
            idx: list[int] = []
            kind: list[int] = []
            val: list[int] = []
            for ci, rule in self.rules.items():
                i = self.index.get(ci)
                if i is None or i >= self._n:
                    continue
                form = forms.get(rule)
                if form is None:
                    try:
                        form = forms[rule] = _rule_form(rule)
                    except InvalidRecordError as exc:
                        raise InvalidRecordError(exc.reason, record=ci,
                                                 field="redundancy") from None
                idx.append(i)
                kind.append(form[0])
                val.append(form[1])
            cache = (self._rules_version, np.array(idx, dtype=np.int64),
                     np.array(kind, dtype=np.int8), np.array(val, dtype=np.int64))
            self._rule_cache = cache
        return cache[1], cache[2], cache[3]

    def _build_thresholds(self) -> None:
        """Threshold and slack of every CI from its redundancy rule and required inputs
        (:func:`parse_redundancy`, vectorised); the required inputs not in service of the CIs
        with a rule are taken off their slack (a gather over those CIs' inputs only)."""
        idx, kind, val = self._rule_arrays()
        self.threshold = self.required_inputs.copy()
        self.has_rule_mask = np.zeros(self._n, dtype=np.bool_)
        self.has_rule_mask[idx] = True
        req = self.required_inputs[idx].astype(np.int64)
        found = np.where(kind == 1, np.minimum(req, val),
                         np.where(kind == 2, np.minimum(req, (val * req + 99) // 100), req))
        self.threshold[idx] = found.astype(np.int32)
        self.slack = (self.required_inputs - self.threshold).astype(np.int32)
        self.out_inputs = np.zeros(self._n, dtype=np.int32)
        if idx.size and not self.in_service.all():
            offs = gather(self.rev_indptr, idx)
            owner = np.repeat(np.arange(idx.size, dtype=np.int64),
                              self.rev_indptr[idx + 1] - self.rev_indptr[idx])
            out = self.rev_required[offs] & ~self.in_service[self.rev_indices[offs]]
            lost = np.bincount(owner[out], minlength=idx.size).astype(np.int32)
            self.out_inputs[idx] = lost
            self.slack[idx] = np.maximum(self.slack[idx] - lost, 0)

    def _build_cycles(self) -> None:
        """Strongly connected components; the CIs on a cycle, grouped by component."""
        _, labels = connected_components(self.csr(), directed=True, connection="strong")
        self._set_cycles(labels.astype(np.int64))

    def _set_cycles(self, labels: IntArray) -> None:
        self.scc_label = labels
        sizes = np.bincount(self.scc_label, minlength=1)
        self._cyclic_label = sizes > 1
        cyclic = np.flatnonzero(self._cyclic_label[self.scc_label])
        self._cyc_members = cyclic[np.argsort(self.scc_label[cyclic], kind="stable")]
        self._cyc_labels = self.scc_label[self._cyc_members]
        self.cycle_nodes = np.union1d(self._cyc_members, self._loop_idx).astype(np.int64)

    def _cycles_unchanged(self, old: IntArray, added: IntArray, removed: IntArray) -> bool:
        """Whether the components of the last build still hold after these edge changes (new
        CIs get components of their own); ``False``: compute them again."""
        n, known = self._n, old.size
        cyclic = self._cyclic_label
        for key in removed.tolist():
            u, v = key >> _SHIFT, key & _MASK
            if old[u] == old[v] and cyclic[old[u]]:
                return False  # an edge inside a cycle: the component may split
        for key in added.tolist():
            u, v = key >> _SHIFT, key & _MASK
            if u < known and v < known and old[u] == old[v]:
                continue
            if self._reaches(v, u) is not False:
                return False  # a new cycle (or too far to tell)
        if n > known:  # each new CI a component of its own, on no cycle
            grow = n - known
            self.scc_label = np.concatenate(
                [old, np.arange(grow, dtype=np.int64) + self._cyclic_label.size])
            self._cyclic_label = np.concatenate(
                [self._cyclic_label, np.zeros(grow, dtype=np.bool_)])
        self.cycle_nodes = np.union1d(self._cyc_members, self._loop_idx).astype(np.int64)
        return True

    def _reaches(self, start: int, goal: int, cap: int = 10_000) -> bool | None:
        """Whether ``goal`` is reached from ``start`` along the forward edges (``None``: more
        than ``cap`` CIs visited first)."""
        indptr, indices = self.fwd_indptr, self.fwd_indices
        seen = {start}
        frontier = [start]
        while frontier:
            nxt: list[int] = []
            for x in frontier:
                for y in indices[indptr[x]:indptr[x + 1]].tolist():
                    if y == goal:
                        return True
                    if y not in seen:
                        seen.add(y)
                        nxt.append(y)
            if len(seen) > cap:
                return None
            frontier = nxt
        return False

    def _ensure(self) -> None:
        if self._dirty:
            with self._build_lock:
                if self._dirty:  # another thread may have patched it meanwhile
                    self._build()

    def refresh(self) -> None:
        """Rebuild the CSR arrays now if changes are pending (queries do it on their own)."""
        self._ensure()

    # -- lookups ----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of CIs."""
        return self._n

    def csr(self) -> csr_matrix:
        """The collapsed impact edges as a scipy CSR matrix (``A[i, j] = 1``: i impacts j)."""
        n = self._n
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
        index, n = self.index, self._n
        found = [index.get(c, n) for c in ids]
        if any(i >= n for i in found):
            missing = [c for c, i in zip(ids, found, strict=True) if i >= n]
            raise CINotFoundError(f"unknown CI(s): {', '.join(sorted(missing)[:5])}")
        return np.array(found, dtype=np.int64)

    def id_rank(self) -> npt.NDArray[np.int32]:
        """Rank of each CI's ``ci_id`` in sorted order (``rank[i] < rank[j]`` iff
        ``ids[i] < ids[j]``), computed once per set of CIs (``O(n log n)``; CIs added since
        are merged in by binary search, ``O(n)`` numpy copies)."""
        rank = self._rank
        ids, n = self.ids, self._n
        if rank is not None and rank.size == n:
            return rank
        if rank is not None and n - rank.size <= _PATCH_MIN:
            order = self._order  # index of the CI at each rank
            fresh = sorted(range(rank.size, n), key=ids.__getitem__)
            pos = np.array([_bisect(ids, order, ids[i]) for i in fresh], dtype=np.int64)
            merged = np.empty(n, dtype=np.int32)
            merged[:rank.size] = rank + np.searchsorted(pos, rank, side="right")
            new_idx = np.array(fresh, dtype=np.int64)
            merged[new_idx] = (pos + np.arange(len(fresh), dtype=np.int64)).astype(np.int32)
            order = np.insert(order, pos, new_idx)
        else:
            order = np.array(sorted(range(n), key=ids.__getitem__), dtype=np.int64)
            merged = np.empty(n, dtype=np.int32)
            merged[order] = np.arange(n, dtype=np.int32)
        self._rank, self._order = merged, order
        return merged

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
        ids = self.ids
        labels = self.scc_label[nodes]
        labels = np.unique(labels[self._cyclic_label[labels]])
        if labels.size:
            lo = np.searchsorted(self._cyc_labels, labels, side="left").tolist()
            hi = np.searchsorted(self._cyc_labels, labels, side="right").tolist()
            members = self._cyc_members
            found.extend(sorted(ids[m] for m in members[a:b].tolist())
                         for a, b in zip(lo, hi, strict=True))
        if self._loop_idx.size:
            in_cycle = {ci for g in found for ci in g}
            work = self.scratch()
            mask = work.mask
            mask[nodes] = True
            try:
                loops = self._loop_idx[mask[self._loop_idx]].tolist()
            finally:
                mask[nodes] = False
            found.extend([ids[i]] for i in loops if ids[i] not in in_cycle)
        return sorted(found)

    # -- for the passes -----------------------------------------------------------------------
    def scratch(self) -> Scratch:
        """This thread's working arrays, sized for the current arrays (rebuilt when pending)."""
        self._ensure()
        return self._local.ready(self._n, self._generation)

    def bfs_matrix(self) -> csr_matrix:
        """The forward CSR in the dtypes scipy's graph routines take without a copy."""
        matrix = self._bfs
        if matrix is None:
            n = self._n
            matrix = csr_matrix(
                (np.ones(self.fwd_indices.size, dtype=np.float64),
                 self.fwd_indices.astype(np.int32), self.fwd_indptr.astype(np.int32)),
                shape=(n, n),
            )
            self._bfs = matrix
        return matrix

    def gate_free_matrix(self) -> csr_matrix:
        """Required impact edges into CIs without a redundancy rule, for scipy's BFS."""
        matrix = self._gate_free
        if matrix is None:
            n = self._n
            keep = ~self.has_rule_mask[self.req_indices]
            src = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.req_indptr))[keep]
            indptr = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
            matrix = csr_matrix(
                (np.ones(int(keep.sum()), dtype=np.float64),
                 self.req_indices[keep].astype(np.int32), indptr),
                shape=(n, n),
            )
            self._gate_free = matrix
        return matrix

    def required_matrix(self) -> csr_matrix:
        """Required impact edges (the CSR of ``req_indptr``/``req_indices``), for scipy's BFS:
        what it reaches from a CI is every CI that CI's failure can take down."""
        matrix = self._required
        if matrix is None:
            n = self._n
            matrix = csr_matrix(
                (np.ones(self.req_indices.size, dtype=np.float64),
                 self.req_indices.astype(np.int32), self.req_indptr.astype(np.int32)),
                shape=(n, n),
            )
            self._required = matrix
        return matrix

    def optional_edges(self) -> tuple[IntArray, IntArray]:
        """The impact edges that are optional (no required relationship between the pair),
        as source and target arrays (by source)."""
        found = self._optional
        if found is None:
            opt = np.flatnonzero(~self.fwd_required)
            src = np.searchsorted(self.fwd_indptr, opt, side="right") - 1
            found = (src.astype(np.int64), self.fwd_indices[opt].astype(np.int64))
            self._optional = found
        return found

    def counted_inputs(self) -> tuple[IntArray, IntArray, IntArray]:
        """The inputs that a redundancy rule counts, as a CSR over every CI.

        Returns
        -------
        indptr, indices : ndarray of int64
            Row ``i`` lists the required inputs in service of CI ``i`` when it has a
            redundancy rule (the inputs whose failure takes its slack; an input not in
            service is off the slack already), and nothing when it has none.
        cyclic : ndarray of int64
            The CIs with a redundancy rule that lie on a cycle (sorted).
        """
        found = self._counted
        if found is None:
            n = self._n
            rows = np.flatnonzero(self.has_rule_mask)
            offs = gather(self.rev_indptr, rows)
            owner = np.repeat(rows, self.rev_indptr[rows + 1] - self.rev_indptr[rows])
            inputs = self.rev_indices[offs]
            keep = self.rev_required[offs] & self.in_service[inputs]
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(owner[keep], minlength=n), out=indptr[1:])
            cyclic = self.cycle_nodes[self.has_rule_mask[self.cycle_nodes]]
            found = (indptr, inputs[keep].astype(np.int64), cyclic.astype(np.int64))
            self._counted = found
        return found
