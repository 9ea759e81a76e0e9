"""The estate's past, read from the change feed: a CI's history, what changed between two
points, and the graph as it was at a time (time travel).

Every write is one :class:`~cmdb_graph.feed.ChangeRecord` with the old and new value of
every field it changed (see :mod:`cmdb_graph.feed`), so:

* **history** of a CI lists, oldest first, every change of its attributes and relationships
  in the retained feed, with who made it (import run and data source, API key, or the system)
  and when (:func:`ci_history`);
* **diff** (:mod:`cmdb_graph.service.diff`) folds the records between two points into
  created, changed, retired and deleted CIs and added, changed and removed relationships;
* **time travel** takes the current graph and *undoes* the records committed after the time
  asked for, newest first (:func:`rewind_graph`, :func:`rewind_ci`).

A time ``t`` stands for every write committed at or before ``t`` (records whose ``at`` is at
most ``t``); :func:`position_at` finds the last such record with a binary search over the
feed (a few one-record reads), so the cost of going back is the records undone, not the
feed's length. The feed keeps records for ``CMDB_FEED_RETENTION_DAYS``: a time before the
oldest retained record, or before a clear of the store (a reset record), has no answer
(:class:`~cmdb_graph.errors.HistoryUnavailableError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import networkx as nx

from cmdb_graph.errors import FeedGapError, HistoryUnavailableError, InvalidRecordError
from cmdb_graph.feed import (
    Actor,
    ChangeRecord,
    NodeChange,
    NodeOp,
    RelChange,
    RelOp,
    undo_node,
)
from cmdb_graph.model import ConfigurationItem, Registry, to_utc
from cmdb_graph.service.follow import lean, lean_edge, patched_edge
from cmdb_graph.store.adjacency import drop_edge, put_edge
from cmdb_graph.store.base import GraphStore
from cmdb_graph.store.paging import Page, decode_cursor, encode_cursor
from cmdb_graph.store.rows import (
    CI_LABEL,
    ci_from_row,
    dump_row,
    edge_attrs,
    expand_ci,
)

__all__ = [
    "FieldChange",
    "HistoryEntry",
    "ci_history",
    "entry_names",
    "names_of",
    "oldest_retained",
    "position_at",
    "Probes",
    "records_between",
    "require_history",
    "require_no_reset",
    "rewind_ci",
    "rewind_graph",
]

#: Records read per ``feed_since`` call while scanning.
_PAGE = 1000


# -- positions --------------------------------------------------------------------------------
def _first_after(store: GraphStore, after: int) -> ChangeRecord | None:
    """The record after ``after`` (``None``: none); raises FeedGapError when it was pruned."""
    found = store.feed_since(after, limit=1)
    return found[0] if found else None


def oldest_retained(store: GraphStore) -> int:
    """The position the retained feed starts after: ``feed_since(oldest_retained(store))``
    reads the oldest record still kept (0 when nothing was pruned).

    A binary search with one-record reads (``O(log head)``).
    """
    head = store.feed_head()
    try:
        store.feed_since(0, limit=1)
        return 0
    except FeedGapError:
        pass
    lo, hi = 1, head  # feed_since(hi) never gaps: at the head it answers []
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            store.feed_since(mid, limit=1)
            hi = mid
        except FeedGapError:
            lo = mid + 1
    return lo


#: Probe results of :func:`position_at`: the first record at or after a sequence number,
#: as ``(seq, at)`` (``None``: no record there yet is not kept).
Probes = dict[int, tuple[int, datetime]]


def _probe(store: GraphStore, seq: int, probes: Probes | None) -> tuple[int, datetime] | None:
    """``(seq, at)`` of the first record at or after ``seq`` (``None``: none); FeedGapError
    when it was pruned. Remembered in ``probes`` (records never change)."""
    if probes is not None and seq in probes:
        return probes[seq]
    record = _first_after(store, seq - 1)
    if record is None:
        return None
    if probes is not None:
        if len(probes) > 10_000:
            probes.clear()
        probes[seq] = (record.seq, record.at)
    return record.seq, record.at


def position_at(
    store: GraphStore, at: datetime, *, head: int | None = None, probes: Probes | None = None
) -> int:
    """The sequence number of the last record committed at or before ``at`` (0: before the
    first record).

    Searches back from the head, doubling the step, then bisects: ``O(log n)`` one-record
    reads for a time ``n`` records back, all of them near the head or the answer (so the big
    records of a bulk load long ago are not read for a question about yesterday).

    Parameters
    ----------
    store : GraphStore
    at : datetime
        The time (a naive time is UTC).
    head : int, optional
        The feed head to search below (default: read now).
    probes : dict, optional
        Records read by earlier searches on this store (read and filled): a search that
        lands on a big record (a bulk load's) decodes it once.

    Raises
    ------
    HistoryUnavailableError
        ``at`` is before the oldest retained record (records after it were pruned).
    """
    when = to_utc(at)
    top = store.feed_head() if head is None else head
    bad = top + 1  # every record from ``bad`` on is after ``when``
    good = 0  # record ``good`` (when above 0) is at or before ``when``
    step = 1
    while bad > 1:
        probe = max(bad - step, 1)
        try:
            found = _probe(store, probe, probes)
        except FeedGapError:
            record = _first_after(store, oldest_retained(store))
            if record is None or record.at > when:
                since = f" (at {record.at.isoformat()})" if record is not None else ""
                first = record.seq if record is not None else top
                raise HistoryUnavailableError(
                    f"{when.isoformat()} is before the change feed's oldest retained record "
                    f"{first}{since}: history is kept for CMDB_FEED_RETENTION_DAYS"
                ) from None
            good = record.seq
            break
        if found is not None and found[0] < bad and found[1] <= when:
            good = found[0]
            break
        bad = probe  # no record in [probe, bad) is at or before ``when``
        step *= 2
    lo, hi = good, bad - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            found = _probe(store, mid, probes)
        except FeedGapError as exc:  # pruned while we searched
            raise HistoryUnavailableError(f"{when.isoformat()}: {exc}") from exc
        if found is not None and found[0] <= hi and found[1] <= when:
            lo = found[0]
        else:
            hi = mid - 1
    return lo


def require_history(store: GraphStore, seq: int, head: int, at: datetime) -> None:
    """Raise when ``at`` is before the estate's first change record (``seq`` is 0 and the
    feed holds records): the graph then was empty, an answer no one asking about that time
    means; say when the history begins instead.

    Raises
    ------
    HistoryUnavailableError
        ``at`` is before the first record.
    """
    if seq > 0 or head == 0:
        return
    first = _first_after(store, 0)
    since = f" at {first.at.isoformat()}" if first is not None else ""
    raise HistoryUnavailableError(
        f"{to_utc(at).isoformat()} is before the estate's history begins (its first change "
        f"record is{since}): nothing was recorded then; ask about a later time")


def records_between(store: GraphStore, after: int, until: int) -> list[ChangeRecord]:
    """The records with ``after < seq <= until``, oldest first.

    Raises
    ------
    HistoryUnavailableError
        Some of them were pruned.
    """
    out: list[ChangeRecord] = []
    pos = after
    while pos < until:
        try:
            page = store.feed_since(pos, limit=_PAGE)
        except FeedGapError as exc:
            raise HistoryUnavailableError(
                f"the change records after {pos} are no longer kept ({exc})"
            ) from exc
        for record in page:
            if record.seq > until:
                return out
            out.append(record)
        if len(page) < _PAGE:
            break
        pos = page[-1].seq
    return out


def _scan(store: GraphStore) -> Iterator[ChangeRecord]:
    """Every retained record, oldest first."""
    pos = oldest_retained(store)
    while True:
        try:
            page = store.feed_since(pos, limit=_PAGE)
        except FeedGapError as exc:  # pruned while we read
            raise HistoryUnavailableError(f"the change feed was pruned while read: {exc}"
                                          ) from exc
        yield from page
        if len(page) < _PAGE:
            return
        pos = page[-1].seq


def require_no_reset(records: Iterable[ChangeRecord], at: datetime) -> None:
    """Raise unless ``records`` (those after ``at``) hold no reset.

    Raises
    ------
    HistoryUnavailableError
        One of them is a reset: the store was cleared after ``at``.
    """
    for record in records:
        if record.reset:
            raise HistoryUnavailableError(
                f"the store was cleared at {record.at.isoformat()} (change record "
                f"{record.seq}), after {to_utc(at).isoformat()}: the graph before a clear "
                "is not kept"
            )


# -- time travel ------------------------------------------------------------------------------
def rewind_graph(
    graph: nx.MultiDiGraph, records: Iterable[ChangeRecord], registry: Registry,
    at: datetime,
) -> nx.MultiDiGraph:
    """Undo ``records`` (in sequence order; undone newest first) on a dependency graph in
    the engine's lean shape (:func:`cmdb_graph.service.follow.lean_graph`), in place.

    Only CIs and CI-to-CI relationships of the registry's types are in the graph; other
    changes are skipped. Within a record, deleted CIs come back first, then its
    relationship changes are undone, then its other CI changes.

    Returns
    -------
    networkx.MultiDiGraph
        ``graph``.

    Raises
    ------
    HistoryUnavailableError
        A record is a reset (the store was cleared after ``at``).
    """
    ordered = list(records)
    require_no_reset(ordered, at)
    ci_types = frozenset(registry.ci_relationship_types())
    for record in reversed(ordered):
        cis = [c for c in reversed(record.nodes) if c.label == CI_LABEL]
        for change in cis:
            if change.op is NodeOp.DELETED:
                graph.add_node(change.key, **lean(expand_ci(change.key, change.old or {})))
        for rel in reversed(record.relationships):
            if ((rel.source_label, rel.target_label) == (CI_LABEL, CI_LABEL)
                    and rel.rel_type in ci_types):
                _undo_edge(graph, rel)
        for change in cis:
            if change.op is NodeOp.CREATED:
                if change.key in graph:
                    graph.remove_node(change.key)
            elif change.op is not NodeOp.DELETED and change.key in graph:
                _undo_attrs(graph.nodes[change.key], change)
    return graph


def _undo_attrs(attrs: dict[str, Any], change: NodeChange) -> None:
    full = expand_ci(change.key, {k: v for k, v in (change.old or {}).items()
                                  if v is not None})
    for name in change.old or {}:
        if name == "lineage" or name not in full:
            continue
        attrs.pop(name, None)
        attrs.update(lean({name: full[name]}))


def _undo_edge(graph: nx.MultiDiGraph, rel: RelChange) -> None:
    s, t, key = rel.source, rel.target, rel.rel_type
    if rel.op is RelOp.ADDED:
        drop_edge(graph, s, t, key)
        return
    if s not in graph or t not in graph:
        return
    if rel.op is RelOp.REMOVED or not graph.has_edge(s, t, key=key):
        put_edge(graph, s, t, key, lean_edge(key, edge_attrs(key, rel.old or {})))
        return
    put_edge(graph, s, t, key, patched_edge(graph.edges[s, t, key], key, rel.old or {}))


def rewind_ci(
    ci: ConfigurationItem | None, ci_id: str, records: Iterable[ChangeRecord], at: datetime
) -> ConfigurationItem | None:
    """The CI ``ci_id`` before ``records`` (``ci``: it now, ``None`` when it does not exist;
    returns ``None`` when it did not exist then).

    Raises
    ------
    HistoryUnavailableError
        A record is a reset.
    """
    ordered = list(records)
    require_no_reset(ordered, at)
    row: dict[str, Any] | None = (
        None if ci is None else dump_row(ci, {"ci_id"}, f"CI {ci_id!r}"))
    for record in reversed(ordered):
        for change in reversed(record.nodes):
            if change.label == CI_LABEL and change.key == ci_id:
                row = undo_node(row, change)
    return None if row is None else ci_from_row(ci_id, row)


# -- history ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FieldChange:
    """One attribute's old and new value (``None``: absent, at its default)."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of a CI: of its attributes, or of one of its relationships.

    Attributes
    ----------
    seq : int
        The change record.
    index : int
        The change's place in the record.
    at : datetime
        When the write committed.
    actor : Actor
        Who made it (import run and data source, API key, or the system).
    ci_id : str
        The CI.
    op : str
        ``created``, ``updated``, ``retired``, ``merged``, ``deleted`` (attributes) or
        ``added``, ``changed``, ``removed`` (a relationship).
    changes : tuple of FieldChange
        The attributes (the relationship's properties) that changed, with old and new values.
    rel_type, source, target : str, optional
        The relationship, for a relationship change.
    """

    seq: int
    index: int
    at: datetime
    actor: Actor
    ci_id: str
    op: str
    changes: tuple[FieldChange, ...]
    rel_type: str | None = None
    source: str | None = None
    target: str | None = None

    @property
    def cursor_key(self) -> str:
        """The entry's key in a page (``seq.index``)."""
        return f"{self.seq}.{self.index}"


def _fields(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
            ) -> tuple[FieldChange, ...]:
    names = sorted(set(old or ()) | set(new or ()))
    return tuple(FieldChange(n, (old or {}).get(n), (new or {}).get(n)) for n in names
                 if n != "lineage")


def _entries(record: ChangeRecord, ci_id: str) -> Iterator[HistoryEntry]:
    index = 0
    for change in record.nodes:
        if change.label == CI_LABEL and change.key == ci_id:
            yield HistoryEntry(record.seq, index, record.at, record.actor, ci_id,
                               str(change.op), _fields(change.old, change.new))
        index += 1
    for rel in record.relationships:
        if ci_id in (rel.source, rel.target) and CI_LABEL in (
                rel.source_label if rel.source == ci_id else None,
                rel.target_label if rel.target == ci_id else None):
            yield HistoryEntry(record.seq, index, record.at, record.actor, ci_id,
                               str(rel.op), _fields(rel.old, rel.new), rel.rel_type,
                               rel.source, rel.target)
        index += 1


def _after_key(after: str | None) -> tuple[int, int]:
    key = decode_cursor(after)
    if key is None:
        return (-1, -1)
    try:
        seq, index = key.split(".")
        return int(seq), int(index)
    except ValueError:
        raise InvalidRecordError("not a history cursor", field="after") from None


def ci_history(
    store: GraphStore, ci_id: str, *, first: int, after: str | None = None
) -> Page[HistoryEntry]:
    """Every change of ``ci_id``'s attributes and relationships in the retained feed since the
    store was last cleared, oldest first, one page at a time.

    Reads the whole retained feed (the total is counted over it): ``O(records)``.

    Parameters
    ----------
    store : GraphStore
    ci_id : str
    first : int
        Page size.
    after : str, optional
        ``next_cursor`` of the previous page.

    Raises
    ------
    InvalidRecordError
        ``after`` is not a history cursor.
    """
    start = _after_key(after)
    items: list[HistoryEntry] = []
    total = 0
    for record in _scan(store):
        if record.reset:  # the store was cleared: what came before is another estate's
            items, total = [], 0
        for entry in _entries(record, ci_id):
            total += 1
            if (entry.seq, entry.index) > start and len(items) <= first:
                items.append(entry)
    more = len(items) > first
    items = items[:first]
    cursor = encode_cursor(items[-1].cursor_key) if more and items else None
    return Page(items, cursor, total)


# -- names ----------------------------------------------------------------------------------
def names_of(store: GraphStore, ci_ids: set[str], *fallback: dict[str, str]) -> dict[str, str]:
    """The current names of ``ci_ids``, else the names ``fallback`` (from the feed) knows."""
    out: dict[str, str] = {}
    for found in fallback:
        out.update(found)
    out.update({k: ci.name for k, ci in store.get_cis(sorted(ci_ids)).items()})
    return out


def entry_names(store: GraphStore, entries: list[HistoryEntry]) -> dict[str, str]:
    """The names of the CIs ``entries`` mention (current, else their last name in them)."""
    ids: set[str] = set()
    seen: dict[str, str] = {}
    for e in entries:
        ids.add(e.ci_id)
        ids.update(x for x in (e.source, e.target) if x)
        if e.rel_type is None:
            for c in e.changes:
                if c.name == "name" and isinstance(c.new or c.old, str):
                    seen[e.ci_id] = str(c.new or c.old)
    return names_of(store, ids, seen)
