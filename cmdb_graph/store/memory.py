"""The embedded store: a networkx graph in memory, persisted to a snapshot file.

Layout
------
* CIs are the nodes of one ``networkx.MultiDiGraph`` (node id ``ci_id``); the node's attribute
  dict *is* the CI's lean row (see :mod:`cmdb_graph.store.rows`: JSON values, defaults left
  out), so that a CI costs little memory. CI-to-CI relationships are its edges (edge key = the
  relationship type, attributes = the relationship's lean row).
* Nodes of the other labels (Asset, SupportGroup, ...) are dicts ``key -> row`` per label;
  other explicit relationships (e.g. ``HAS_INSTALLED``) are a dict keyed by
  ``(rel_type, source, target)``, indexed by their ends.
* Identifier indexes map each normalised identifier value (lower-cased fqdn and hostname) to
  the CI holding it, or to a set of CIs when several do; they are updated on every upsert.

Reference fields (``support_group``, ``Asset.ci_id``, ...) stay plain fields here; only the
Neo4j store materialises them as relationships.

What the store answers is shared with Neo4j through :class:`~cmdb_graph.store.base.BaseStore`;
this module holds the in-memory layout, its primitive reads and writes, and what goes into the
snapshot (:mod:`cmdb_graph.store.snapshot`: the file format and its atomic write).
"""

from __future__ import annotations

import bisect
import logging
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx

from cmdb_graph.errors import FeedGapError, StoreError
from cmdb_graph.feed import (
    SYSTEM_ACTOR,
    Actor,
    ChangeRecord,
    NodeChange,
    RelChange,
    node_change,
    rel_change,
)
from cmdb_graph.model import NODE_SPECS, ConfigurationItem, Registry
from cmdb_graph.model.entities import Scalar
from cmdb_graph.store.base import BaseStore, RelKey, RelRow, check_seeds
from cmdb_graph.store.batch import PreparedBatch, WriteBatch, prepare_batch
from cmdb_graph.store.paging import RowPage, slice_page
from cmdb_graph.store.query import (
    CASELESS_IDENTIFIERS,
    IDENTIFIER_FIELDS,
    LIST_IDENTIFIERS,
    CIFilter,
)
from cmdb_graph.store.rows import CI_LABEL, RowMemo, edge_attrs, expand_ci, field_kinds
from cmdb_graph.store.snapshot import SNAPSHOT_FORMAT, read_snapshot, write_snapshot

__all__ = ["MemoryStore", "write_snapshot", "read_snapshot", "SNAPSHOT_FORMAT"]

log = logging.getLogger(__name__)

_INDEXED = tuple(f for f in IDENTIFIER_FIELDS if f != "ci_id")
_SCALAR_IX = tuple(
    (f, f in CASELESS_IDENTIFIERS) for f in _INDEXED if f not in LIST_IDENTIFIERS
)
_LIST_IX = tuple(f for f in _INDEXED if f in LIST_IDENTIFIERS)

#: Lineage values shared between rows (see ``MemoryStore._compact``); bounded.
_SHARED_LIMIT = 200_000
#: Row fields with few distinct values, interned so that all rows share one string.
_INTERNED = (
    "ci_class", "operational_status", "environment", "domain", "manufacturer", "model",
    "os_name", "os_version", "version", "support_group", "owner", "location_id",
    "first_seen", "last_seen", "lifecycle_stage", "currency", "category", "kind", "state",
)

IndexEntry = str | set[str]


def _index_add(index: dict[str, IndexEntry], value: str, ci_id: str) -> None:
    cur = index.get(value)
    if cur is None:
        index[value] = ci_id
    elif isinstance(cur, str):
        if cur != ci_id:
            index[value] = {cur, ci_id}
    else:
        cur.add(ci_id)


def _index_remove(index: dict[str, IndexEntry], value: str, ci_id: str) -> None:
    cur = index.get(value)
    if cur is None:
        return
    if isinstance(cur, str):
        if cur == ci_id:
            del index[value]
        return
    cur.discard(ci_id)
    if len(cur) == 1:
        index[value] = next(iter(cur))
    elif not cur:
        del index[value]


def _index_get(index: dict[str, IndexEntry], value: str) -> set[str]:
    cur = index.get(value)
    if cur is None:
        return set()
    return {cur} if isinstance(cur, str) else set(cur)


class MemoryStore(BaseStore):
    """The embedded :class:`~cmdb_graph.store.base.GraphStore` on networkx.

    Parameters
    ----------
    registry : Registry, optional
        CI classes and relationship types (default: the built-in registry).
    snapshot_path : Path, optional
        Snapshot file: loaded at construction when it exists, written by :meth:`save` and
        :meth:`close` (and after every :meth:`apply` when ``autosave``). ``None``: no
        persistence.
    autosave : bool
        Save after every successful :meth:`apply` (off by default to keep bulk loads fast).
    max_depth : int, optional
        Largest traversal depth accepted (``None``: no cap).
    feed_retention_days : float, optional
        Change records older than this are pruned when a write finds the oldest one past it
        (``None`` or 0: kept for ever); see :meth:`prune_feed`.

    Raises
    ------
    StoreError
        The snapshot exists but cannot be read.

    Notes
    -----
    Thread-safe: one re-entrant lock serialises every call. ``apply`` validates the whole
    batch before it changes anything, so a failing batch leaves the store untouched.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        snapshot_path: Path | None = None,
        *,
        autosave: bool = False,
        max_depth: int | None = None,
        feed_retention_days: float | None = None,
    ) -> None:
        self.registry = registry if registry is not None else Registry()
        self.snapshot_path = Path(snapshot_path) if snapshot_path is not None else None
        self.autosave = autosave
        self.max_depth = max_depth
        self.feed_retention_days = feed_retention_days or None
        #: The newest sequence number, and the last one pruned (kept across ``clear``).
        self._feed_head = 0
        self._feed_floor = 0
        self._lock = threading.RLock()
        self._reset()
        if self.snapshot_path is not None and self.snapshot_path.exists():
            self._load(read_snapshot(self.snapshot_path))
            log.info("loaded snapshot %s (%d CIs)", self.snapshot_path, len(self._g))

    def _reset(self) -> None:
        #: Bumped by every write; a cache built at one generation is stale at another.
        self.generation: int = getattr(self, "generation", 0) + 1
        self._g: nx.MultiDiGraph = nx.MultiDiGraph()
        self._nodes: dict[str, dict[str, dict[str, Any]]] = {
            label: {} for label in NODE_SPECS if label != CI_LABEL
        }
        self._rels: dict[RelKey, tuple[str, str, dict[str, Any]]] = {}
        self._rels_by_node: dict[tuple[str, str], set[RelKey]] = {}
        self._ix: dict[str, dict[str, IndexEntry]] = {name: {} for name in _INDEXED}
        self._shared: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._version = getattr(self, "_version", 0) + 1
        self._sorted: tuple[int, list[str]] | None = None
        #: The change feed, oldest first (kept across ``clear``, which records a reset).
        self._feed: list[ChangeRecord] = getattr(self, "_feed", [])

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Write the snapshot (when there is a snapshot path)."""
        self.save()

    def ping(self) -> None:
        """Always succeeds: the embedded store is in this process."""

    def clear(self) -> None:
        """Delete everything (the snapshot file is rewritten on the next save).

        The change feed records a reset: a follower drops what it holds.
        """
        with self._lock:
            self._reset()
            self._record(SYSTEM_ACTOR, [], [], reset=True)

    # -- the change feed ------------------------------------------------------------------
    def feed_head(self) -> int:
        """The sequence number of the newest change record (0 before the first write)."""
        with self._lock:
            return self._feed_head

    def feed_since(self, after: int, *, limit: int = 1000) -> list[ChangeRecord]:
        """Change records with ``seq > after``, oldest first, at most ``limit``.

        Raises
        ------
        FeedGapError
            Records after ``after`` were pruned, or ``after`` is beyond the feed head (the
            store was replaced): the caller must rebuild from the store.
        """
        with self._lock:
            if after < self._feed_floor:
                raise FeedGapError(f"change records up to {self._feed_floor} were pruned; "
                                   f"asked for those after {after}")
            if after > self._feed_head:
                raise FeedGapError(f"the feed head is {self._feed_head}, before {after}: the "
                                   "store was replaced")
            start = bisect.bisect_right(self._feed, after, key=lambda r: r.seq)
            return self._feed[start:start + limit]

    def prune_feed(self, *, before: datetime | None = None) -> int:
        """Drop the change records written before ``before``; how many were dropped.

        ``before`` defaults to now minus ``feed_retention_days`` (no retention: nothing is
        pruned). Records go oldest first; a follower asking for a dropped one gets
        :class:`~cmdb_graph.errors.FeedGapError`.
        """
        if before is None:
            if self.feed_retention_days is None:
                return 0
            before = datetime.now(UTC) - timedelta(days=self.feed_retention_days)
        with self._lock:
            n = 0
            while n < len(self._feed) and self._feed[n].at < before:
                n += 1
            if n:
                self._feed_floor = self._feed[n - 1].seq
                del self._feed[:n]
            return n

    def _record(
        self,
        actor: Actor | None,
        nodes: list[NodeChange],
        rels: list[RelChange],
        *,
        reset: bool = False,
    ) -> None:
        """Append the change record of one write (none when the write changed nothing)."""
        if not nodes and not rels and not reset:
            return
        self._feed_head += 1
        now = datetime.now(UTC)
        self._feed.append(ChangeRecord(
            seq=self._feed_head, at=now, actor=actor or SYSTEM_ACTOR,
            nodes=tuple(nodes), relationships=tuple(rels), reset=reset,
        ))
        days = self.feed_retention_days
        if days is not None and self._feed[0].at < now - timedelta(days=days):
            self.prune_feed()

    def save(self) -> None:
        """Write the snapshot atomically; a no-op without a snapshot path.

        Raises
        ------
        StoreError
            The snapshot cannot be written (the previous one is kept).
        """
        if self.snapshot_path is None:
            return
        with self._lock:
            payload = {
                "format": SNAPSHOT_FORMAT,
                "cis": dict(self._g.nodes(data=True)),
                "ci_edges": [(s, t, k, d) for s, t, k, d in self._g.edges(keys=True, data=True)],
                "nodes": self._nodes,
                "rels": self._rels,
            }
            write_snapshot(self.snapshot_path, payload)

    def _load(self, data: Mapping[str, Any]) -> None:
        self.generation += 1
        try:
            for ci_id, row in data["cis"].items():
                self._g.add_node(ci_id)
                self._g.nodes[ci_id].update(row)
                self._index(ci_id, row)
            for s, t, k, d in data["ci_edges"]:
                self._g.add_edge(s, t, key=k, **d)
            for label, rows in data["nodes"].items():
                self._nodes.setdefault(label, {}).update(rows)
            for key, (sl, tl, row) in data["rels"].items():
                self._put_rel(tuple(key), sl, tl, row)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{self.snapshot_path}: malformed snapshot: {exc}") from exc

    # -- indexes --------------------------------------------------------------------------
    @staticmethod
    def _index_values(row: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        for name, caseless in _SCALAR_IX:
            value = row.get(name)
            if value is not None:
                yield name, value.lower() if caseless else value
        for name in _LIST_IX:
            for item in row.get(name, ()):
                yield name, item

    def _index(self, ci_id: str, row: Mapping[str, Any]) -> None:
        for name, value in self._index_values(row):
            _index_add(self._ix[name], value, ci_id)

    def _unindex(self, ci_id: str, row: Mapping[str, Any]) -> None:
        for name, value in self._index_values(row):
            _index_remove(self._ix[name], value, ci_id)

    def _put_rel(self, key: RelKey, source_label: str, target_label: str, row: dict[str, Any]
                 ) -> None:
        self._rels[key] = (source_label, target_label, row)
        self._rels_by_node.setdefault((source_label, key[1]), set()).add(key)
        self._rels_by_node.setdefault((target_label, key[2]), set()).add(key)

    def _drop_rel(self, key: RelKey) -> None:
        source_label, target_label, _ = self._rels.pop(key)
        for end in ((source_label, key[1]), (target_label, key[2])):
            keys = self._rels_by_node.get(end)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._rels_by_node[end]

    # -- compact rows ---------------------------------------------------------------------
    def _share(self, value: dict[str, Any]) -> dict[str, Any]:
        """One shared dict per distinct small lineage entry (rows are never changed in place)."""
        key = tuple(value.items())
        try:
            found = self._shared.get(key)
        except TypeError:  # an unhashable value: keep the entry as it is
            return value
        if found is None:
            if len(self._shared) >= _SHARED_LIMIT:
                self._shared.clear()
            found = self._shared[key] = {
                sys.intern(k): sys.intern(v) if isinstance(v, str) else v
                for k, v in value.items()
            }
        return found

    def _compact(self, row: dict[str, Any], memo: dict[int, tuple[Any, Any]] | None = None
                 ) -> dict[str, Any]:
        """Save memory: share lineage entries, intern low-cardinality strings.

        Lineage repeats the same ``{source, asserted_at}`` entries across every CI of an import
        run; one dict per distinct entry serves them all (and the snapshot pickles it once).
        """
        lineage = row.get("lineage")
        if lineage:
            out: dict[str, Any] = {}
            for part, entries in lineage.items():
                if part == "attributes":
                    shared: dict[str, Any] = {}
                    for n, e in entries.items():
                        # rows of one batch share entry objects: share each once (by id)
                        hit = memo.get(id(e)) if memo is not None else None
                        if hit is None or hit[0] is not e:
                            hit = (e, self._share(e))
                            if memo is not None:
                                memo[id(e)] = hit
                        shared[sys.intern(n)] = hit[1]
                    out[part] = shared
                else:  # sources: per-CI native keys, nothing to share but the strings
                    out[part] = {
                        sys.intern(n): {
                            k: sys.intern(v) if isinstance(v, str) and k != "native_key" else v
                            for k, v in e.items()
                        }
                        for n, e in entries.items()
                    }
            row["lineage"] = out
        for name in _INTERNED:
            value = row.get(name)
            if isinstance(value, str):
                row[name] = sys.intern(value)
        return row

    # -- writes ---------------------------------------------------------------------------
    def _existing(self, label: str, keys: set[str]) -> set[str]:
        if label == CI_LABEL:
            return {k for k in keys if k in self._g}
        rows = self._nodes.get(label, {})
        return {k for k in keys if k in rows}

    def apply(self, batch: WriteBatch) -> None:
        """Upsert the batch's nodes then relationships, all or nothing.

        Raises
        ------
        InvalidRecordError
            (and its subclasses) a record is invalid; nothing of the batch is written.
        StoreError
            ``autosave`` is on and the snapshot cannot be written (the batch is applied).
        """
        with self._lock:
            prepared = prepare_batch(batch, self.registry, self._existing)
            self._write(prepared, batch.actor)
            if self.autosave:
                self.save()

    def _write(self, prepared: PreparedBatch, actor: Actor | None) -> None:
        self._version += 1
        self.generation += 1
        memo: RowMemo = {}
        nodes: list[NodeChange] = []
        rels: list[RelChange] = []
        for node in prepared.nodes:
            change = self._write_node(node.label, node.key, self._compact(node.row, memo))
            if change is not None:
                nodes.append(change)
        for rel in prepared.relationships:
            rchange = self._write_rel(rel.key, (rel.source_label, rel.target_label),
                                      self._compact(rel.row, memo))
            if rchange is not None:
                rels.append(rchange)
        self._record(actor, nodes, rels)

    def _write_node(self, label: str, key: str, row: dict[str, Any]) -> NodeChange | None:
        """Replace one node's row; its change."""
        if label != CI_LABEL:
            rows = self._nodes[label]
            old = rows.get(key)
            rows[key] = row
            return node_change(label, key, old, row)
        g = self._g
        if key in g:
            attrs = g.nodes[key]
            before: dict[str, Any] | None = dict(attrs)
            self._unindex(key, attrs)
            attrs.clear()
        else:
            before = None
            g.add_node(key)
            attrs = g.nodes[key]
        attrs.update(row)
        self._index(key, row)
        return node_change(label, key, before, row)

    def _write_rel(
        self, key: RelKey, labels: tuple[str, str], row: dict[str, Any]
    ) -> RelChange | None:
        """Replace one relationship's row; its change."""
        rel_type, source, target = key
        if labels == (CI_LABEL, CI_LABEL) and self.registry.relationship_types[rel_type].ci_to_ci:
            g = self._g
            if g.has_edge(source, target, key=rel_type):
                data = g.edges[source, target, rel_type]
                before: dict[str, Any] | None = dict(data)
                data.clear()
                data.update(row)
            else:
                before = None
                g.add_edge(source, target, key=rel_type, **row)
            return rel_change(key, labels, before, row)
        old = self._rels.get(key)
        if old is not None:
            self._drop_rel(key)
        self._put_rel(key, labels[0], labels[1], row)
        return rel_change(key, labels, old[2] if old else None, row)

    def _delete_relationships(self, keys: list[RelKey], actor: Actor | None) -> int:
        removed: list[RelChange] = []
        with self._lock:
            self.generation += 1
            for key in keys:
                rel_type, source, target = key
                if self._g.has_edge(source, target, key=rel_type):
                    row = dict(self._g.edges[source, target, rel_type])
                    self._g.remove_edge(source, target, key=rel_type)
                    change = rel_change(key, (CI_LABEL, CI_LABEL), row, None)
                elif key in self._rels:
                    sl, tl, old = self._rels[key]
                    self._drop_rel(key)
                    change = rel_change(key, (sl, tl), old, None)
                else:
                    continue
                if change is not None:
                    removed.append(change)
            self._record(actor, [], removed)
        return len(removed)

    # -- primitive reads (called under the lock, see ``_read_guard``) ---------------------
    def _read_guard(self) -> AbstractContextManager[Any]:
        return self._lock

    def _rows_of(self, label: str) -> Mapping[str, dict[str, Any]]:
        """Every row of ``label``, by key (the graph's node view for CIs)."""
        return self._g.nodes if label == CI_LABEL else self._nodes[label]

    def _node_rows(self, label: str, keys: list[str]) -> Mapping[str, Mapping[str, Any]]:
        rows = self._rows_of(label)
        return {k: rows[k] for k in keys if k in rows}

    def _ci_rows_matching(
        self, lookups: Mapping[str, Sequence[str]]
    ) -> Mapping[str, Mapping[str, Any]]:
        found: set[str] = set()
        for name, values in lookups.items():
            if name == "ci_id":
                found.update(v for v in values if v in self._g)
            else:
                index = self._ix[name]
                for value in values:
                    found |= _index_get(index, value)
        return self._node_rows(CI_LABEL, list(found))

    def _matches(self, row: Mapping[str, Any], flt: CIFilter, classes: set[str] | None) -> bool:
        defaults = field_kinds(ConfigurationItem).defaults
        if classes is not None and row["ci_class"] not in classes:
            return False
        if flt.operational_status is not None and row.get(
            "operational_status", defaults["operational_status"]
        ) != str(flt.operational_status):
            return False
        if flt.environment is not None and row.get("environment") != flt.environment:
            return False
        if flt.support_group is not None and row.get("support_group") != flt.support_group:
            return False
        if flt.name_contains is not None and flt.name_contains.lower() not in row[
            "name"
        ].lower():
            return False
        return flt.source is None or flt.source in row.get("lineage", {}).get("sources", {})

    def _ci_page(
        self, flt: CIFilter | None, classes: set[str] | None, after: str | None, limit: int
    ) -> RowPage:
        if flt is None:
            ids = self._sorted_ids()
        else:
            ids = sorted(n for n, row in self._g.nodes(data=True)
                         if self._matches(row, flt, classes))
        return slice_page(ids, after, limit, self._g.nodes)

    def _sorted_ids(self) -> list[str]:
        """Every ``ci_id``, sorted; cached until the next write (paging a large estate)."""
        if self._sorted is None or self._sorted[0] != self._version:
            self._sorted = (self._version, sorted(self._g))
        return self._sorted[1]

    def _node_page(
        self, label: str, where: Mapping[str, Scalar], after: str | None, limit: int
    ) -> RowPage:
        defaults = field_kinds(NODE_SPECS[label].model).defaults
        rows = self._rows_of(label)
        keys = sorted(
            k for k in rows
            if all(rows[k].get(f, defaults.get(f)) == v for f, v in where.items())
        )
        return slice_page(keys, after, limit, rows)

    def _relationship_rows(
        self, ci_id: str | None, types: frozenset[str] | None, label: str
    ) -> Iterator[RelRow]:
        g = self._g
        if ci_id is None:
            edges: Iterable[tuple[str, str, str, dict[str, Any]]] = g.edges(keys=True, data=True)
            others: Iterable[RelKey] = self._rels
        else:
            edges = []
            if label == CI_LABEL and ci_id in g:
                edges = [
                    *g.out_edges(ci_id, keys=True, data=True),
                    *(e for e in g.in_edges(ci_id, keys=True, data=True) if e[0] != ci_id),
                ]
            others = self._rels_by_node.get((label, ci_id), set())
        for s, t, k, d in edges:
            if types is None or k in types:
                yield k, s, t, CI_LABEL, CI_LABEL, d
        for key in others:
            if types is None or key[0] in types:
                sl, tl, row = self._rels[key]
                yield key[0], key[1], key[2], sl, tl, row

    def _tracking_rows(self, ci_ids: list[str]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        # TRACKS is derived from Asset.ci_id (a reference field): one pass over the assets
        wanted = set(ci_ids)
        rows = self._nodes.get("Asset", {})
        for asset_id in sorted(k for k, row in rows.items() if row.get("ci_id") in wanted):
            yield rows[asset_id]["ci_id"], asset_id, rows[asset_id]

    def _subgraph(
        self, seeds: list[str], forward: list[str], reverse: list[str], depth: int | None
    ) -> nx.MultiDiGraph:
        check_seeds(seeds, [s for s in seeds if s in self._g])
        fwd, rev = set(forward), set(reverse)
        return self._graph_of(self._reach(seeds, fwd, rev, depth), fwd | rev)

    def _reach(self, seeds: list[str], fwd: set[str], rev: set[str], depth: int | None
               ) -> set[str]:
        g = self._g
        seen = set(seeds)
        frontier = list(seen)
        hops = 0
        while frontier and (depth is None or hops < depth):
            hops += 1
            nxt: list[str] = []
            for node in frontier:
                if fwd:
                    for _, nb, key in g.out_edges(node, keys=True):
                        if key in fwd and nb not in seen:
                            seen.add(nb)
                            nxt.append(nb)
                if rev:
                    for nb, _, key in g.in_edges(node, keys=True):
                        if key in rev and nb not in seen:
                            seen.add(nb)
                            nxt.append(nb)
            frontier = nxt
        return seen

    def _graph_of(self, nodes: set[str], types: set[str]) -> nx.MultiDiGraph:
        g = self._g
        out = nx.MultiDiGraph()
        for n in sorted(nodes):
            out.add_node(n, **expand_ci(n, g.nodes[n]))
        for n in sorted(nodes):
            for _, t, k, d in g.out_edges(n, keys=True, data=True):
                if k in types and t in nodes:
                    out.add_edge(n, t, key=k, **edge_attrs(k, d))
        return out

    # -- whole estate ---------------------------------------------------------------------
    def dependency_graph(self) -> nx.MultiDiGraph:
        """The whole CI graph in the shape of :mod:`cmdb_graph.store.base`."""
        with self._lock:
            return self._graph_of(set(self._g), set(self.registry.ci_relationship_types()))

    def counts(self) -> dict[str, int]:
        """Node counts per label, per CI class (``"CI:Server"``) and ``"relationships"``."""
        with self._lock:
            out = {label: len(rows) for label, rows in self._nodes.items()}
            out[CI_LABEL] = self._g.number_of_nodes()
            per_class: dict[str, int] = {}
            for _, cls in self._g.nodes(data="ci_class"):
                per_class[cls] = per_class.get(cls, 0) + 1
            for cls, n in per_class.items():
                out[f"{CI_LABEL}:{cls}"] = n
            out["relationships"] = self._g.number_of_edges()
            return out
