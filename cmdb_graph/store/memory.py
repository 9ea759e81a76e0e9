"""The embedded store: a networkx graph in memory, made durable in an SQLite database.

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

Persistence (:mod:`cmdb_graph.store.database`): with a database path, every write is ONE
SQLite transaction holding the rows it changed and its change record; the graph is loaded from
the database at start, and follows the database's feed table before every read and write, so
writes committed by another process (``cmdb-graph import`` next to ``cmdb-graph serve``) are
seen on the next question. The change feed is the ``feed`` table (``feed_since`` reads it).
Without a database path the store is purely in memory and keeps its feed in a list. An old
snapshot file (:mod:`cmdb_graph.store.snapshot`) is migrated into an empty database once.

What the store answers is shared with Neo4j through :class:`~cmdb_graph.store.base.BaseStore`;
this module holds the in-memory layout and its primitive reads and writes.
"""

from __future__ import annotations

import bisect
import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx

from cmdb_graph.errors import FeedGapError, StoreError
from cmdb_graph.feed import (
    SYSTEM_ACTOR,
    Actor,
    ActorKind,
    ChangeRecord,
    NodeChange,
    RelChange,
    apply_node,
    apply_rel,
    node_change,
    rel_change,
)
from cmdb_graph.model import NODE_SPECS, ConfigurationItem, Registry
from cmdb_graph.model.entities import Scalar
from cmdb_graph.store.base import BaseStore, RelKey, RelRow, check_seeds
from cmdb_graph.store.batch import PreparedBatch, WriteBatch, prepare_batch
from cmdb_graph.store.database import (
    LOCK_TIMEOUT,
    Database,
    NodeWrite,
    RelWrite,
    is_database,
    replace_file,
)
from cmdb_graph.store.paging import RowPage, slice_page
from cmdb_graph.store.query import (
    CASELESS_IDENTIFIERS,
    IDENTIFIER_FIELDS,
    LIST_IDENTIFIERS,
    CIFilter,
)
from cmdb_graph.store.rows import CI_LABEL, RowMemo, edge_attrs, expand_ci, field_kinds
from cmdb_graph.store.snapshot import SNAPSHOT_FORMAT, read_snapshot, write_snapshot

__all__ = [
    "MemoryStore",
    "database_for_snapshot",
    "write_snapshot",
    "read_snapshot",
    "SNAPSHOT_FORMAT",
]

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

#: Changes per change record when a whole estate is written at once (migration, ``save_to``).
_BASELINE_CHUNK = 5000
_MIGRATION_ACTOR = Actor(ActorKind.SYSTEM, "migration")


def database_for_snapshot(snapshot: Path) -> Path:
    """The database that replaces an old snapshot file: the same name with ``.db``.

    Examples
    --------
    >>> str(database_for_snapshot(Path(".cmdb/estate.snapshot")))
    '.cmdb/estate.db'
    """
    snapshot = Path(snapshot)
    return snapshot if snapshot.suffix == ".db" else snapshot.with_suffix(".db")


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
    database_path : Path, optional
        SQLite database (:mod:`cmdb_graph.store.database`): created when missing, loaded at
        construction, written by every write. ``None``: purely in memory (nothing persisted).
    snapshot_path : Path, optional
        An old snapshot file (deprecated). When the database is empty and this file exists,
        it is read once and migrated into the database, then left untouched. Without
        ``database_path`` the database is :func:`database_for_snapshot` of it.
    max_depth : int, optional
        Largest traversal depth accepted (``None``: no cap).
    lock_timeout : float
        Seconds a write waits while another process writes to the same database.

    Raises
    ------
    StoreError
        The database (or the snapshot to migrate) cannot be read.

    Notes
    -----
    Thread-safe: one re-entrant lock serialises every call. ``apply`` validates the whole
    batch before it changes anything, so a failing batch leaves the store untouched. When a
    database write fails after the graph was changed, the graph is reloaded from the database.
    Several processes may open one database: writes are serialised by SQLite's write lock and
    each process follows the others' change records (see :mod:`cmdb_graph.store.database`).
    """

    def __init__(
        self,
        registry: Registry | None = None,
        database_path: Path | None = None,
        *,
        snapshot_path: Path | None = None,
        max_depth: int | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.registry = registry if registry is not None else Registry()
        if database_path is None and snapshot_path is not None:
            database_path = database_for_snapshot(snapshot_path)
        self.database_path = Path(database_path) if database_path is not None else None
        self.snapshot_path = Path(snapshot_path) if snapshot_path is not None else None
        self.max_depth = max_depth
        self._lock = threading.RLock()
        self._db: Database | None = None
        #: Sequence number of the last change record applied to the graph.
        self._seq = 0
        self._data_version: int | None = None
        self._touched = False
        self._reset()
        if self.database_path is not None:
            self._db = Database(self.database_path, timeout=lock_timeout)
            legacy = self.snapshot_path
            if (legacy is not None and legacy != self.database_path and legacy.exists()
                    and not is_database(legacy) and self._db.is_empty()):
                self._migrate(legacy)
            else:
                self._load_database()

    def _reset(self) -> None:
        self._generation: int = getattr(self, "_generation", 0) + 1
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
        #: The change feed without a database, oldest first (kept across ``clear``, which
        #: records a reset).
        self._feed: list[ChangeRecord] = getattr(self, "_feed", [])

    @property
    def generation(self) -> int:
        """Bumped by every write (this process's or, read from the feed, another's)."""
        self._follow()
        return self._generation

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the database (every write is already committed)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def ping(self) -> None:
        """Always succeeds: the embedded store is in this process."""

    def clear(self) -> None:
        """Delete everything (one transaction); the change feed records a reset."""
        with self._writing():
            self._touched = True
            self._reset()
            self._record(SYSTEM_ACTOR, [], [], reset=True)

    # -- the change feed ------------------------------------------------------------------
    def feed_head(self) -> int:
        """The sequence number of the newest change record (0 before the first write)."""
        with self._lock:
            self._follow()
            return self._seq

    def feed_since(self, after: int, *, limit: int = 1000) -> list[ChangeRecord]:
        """Change records with ``seq > after``, oldest first, at most ``limit``.

        With a database the records are read from its feed table (so they include other
        processes' writes); without one, from the in-memory list.

        Raises
        ------
        FeedGapError
            Records after ``after`` are no longer kept.
        """
        with self._lock:
            db = self._db
            if db is None:
                start = bisect.bisect_right(self._feed, after, key=lambda r: r.seq)
                return self._feed[start:start + limit]
            first = db.first()
            if first > after + 1:
                raise FeedGapError(f"{db.path}: change records {after + 1}..{first - 1} "
                                   "are no longer kept; rebuild from the store")
            return db.since(after, limit)

    def _record(
        self,
        actor: Actor | None,
        nodes: list[NodeChange],
        rels: list[RelChange],
        *,
        reset: bool = False,
    ) -> None:
        """Record one write: its change record and (with a database) its changed rows, in the
        write's transaction. Nothing when the write changed nothing."""
        if not nodes and not rels and not reset:
            return
        record = ChangeRecord(
            seq=self._seq + 1, at=datetime.now(UTC), actor=actor or SYSTEM_ACTOR,
            nodes=tuple(nodes), relationships=tuple(rels), reset=reset,
        )
        if self._db is not None:
            self._db.write(record, self._node_writes(nodes), self._rel_writes(rels),
                           reset=reset)
        else:
            self._feed.append(record)
        self._seq = record.seq

    def _node_writes(self, changes: Iterable[NodeChange]) -> list[NodeWrite]:
        """The current rows of the changed nodes (``None``: gone)."""
        return [(c.label, c.key, self._current_node(c.label, c.key)) for c in changes]

    def _rel_writes(self, changes: Iterable[RelChange]) -> list[RelWrite]:
        """The current rows of the changed relationships (``None``: gone)."""
        return [(c.rel_type, c.source, c.target, c.source_label, c.target_label,
                 self._current_rel(c.key)) for c in changes]

    def _current_node(self, label: str, key: str) -> dict[str, Any] | None:
        if label == CI_LABEL:
            return self._g.nodes[key] if key in self._g else None
        return self._nodes.get(label, {}).get(key)

    def _current_rel(self, key: RelKey) -> dict[str, Any] | None:
        rel_type, source, target = key
        if self._g.has_edge(source, target, key=rel_type):
            data: dict[str, Any] = self._g.edges[source, target, rel_type]
            return data
        found = self._rels.get(key)
        return found[2] if found is not None else None

    # -- the database ---------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The lock and, with a database, one write transaction, caught up with the feed.

        A failure after the graph was changed (``_touched``) reloads the graph from the
        database, where the transaction was rolled back.
        """
        with self._lock:
            db = self._db
            if db is None:
                yield
                return
            self._touched = False
            try:
                with db.transaction():
                    self._follow()
                    yield
            except BaseException:
                if self._touched:
                    log.warning("a write to %s failed; reloading the graph from it", db.path)
                    self._reset()
                    self._load_database()
                raise

    def _follow(self) -> None:
        """Apply the change records other processes committed since the last one applied."""
        db = self._db
        if db is None:
            return
        with self._lock:
            version = db.data_version()
            if version == self._data_version:
                return
            while records := db.since(self._seq, 1000):
                if records[0].seq != self._seq + 1:  # pruned past us: read the tables again
                    self._reset()
                    self._load_database()
                    return
                for record in records:
                    self._apply_record(record)
            self._data_version = version

    def _apply_record(self, record: ChangeRecord) -> None:
        """Apply another process's change record to the graph."""
        if record.reset:
            self._reset()
        self._version += 1
        self._generation += 1
        memo: RowMemo = {}
        for c in record.nodes:
            row = apply_node(self._current_node(c.label, c.key), c)
            if row is None:
                self._remove_node(c.label, c.key)
            else:
                self._write_node(c.label, c.key, self._compact(row, memo))
        for r in record.relationships:
            rrow = apply_rel(self._current_rel(r.key), r)
            if rrow is None:
                self._remove_rel(r.key)
            else:
                self._write_rel(r.key, (r.source_label, r.target_label),
                                self._compact(rrow, memo))
        self._seq = record.seq

    def _load_database(self) -> None:
        """Load every row of the database into the (empty) graph, in one read transaction."""
        db = self._db
        assert db is not None
        g = self._g
        stamps: dict[tuple[str, str], dict[str, str]] = {}
        memo: RowMemo = {}
        with db.reading():
            self._data_version = db.data_version()
            self._seq = db.head()
            for label, key, row in db.node_rows(stamps):
                row = self._compact(row, memo)
                if label == CI_LABEL:
                    g.add_node(key)
                    g.nodes[key].update(row)
                    self._index(key, row)
                else:
                    self._nodes.setdefault(label, {})[key] = row
            for t, s, d, sl, dl, rrow in db.rel_rows():
                if self._is_edge(t, (sl, dl)):
                    g.add_edge(s, d, key=t, **rrow)
                else:
                    self._put_rel((t, s, d), sl, dl, rrow)
        self._version += 1
        self._generation += 1
        if len(g):
            log.info("loaded %s (%d CIs, change record %d)", db.path, len(g), self._seq)

    def _migrate(self, snapshot: Path) -> None:
        """Read an old snapshot file once and write it into the (empty) database."""
        db = self._db
        assert db is not None
        self._load(read_snapshot(snapshot))
        with db.transaction():
            self._seq = self._write_baseline(db, {"migrated_from": str(snapshot)})
            db.set_meta("migrated_from", str(snapshot))
        self._data_version = db.data_version()
        log.warning("migrated the snapshot %s into the database %s (%d CIs); the snapshot "
                    "file is left untouched and no longer read", snapshot, db.path, len(self._g))

    def _everything(self) -> tuple[list[NodeChange], list[RelChange]]:
        """Changes that create every node and relationship the graph holds."""
        nodes = [NodeChange(*_created(label, key, row))
                 for label, rows in [(CI_LABEL, self._g.nodes), *self._nodes.items()]
                 for key, row in rows.items()]
        rels = [c for c in (rel_change((t, s, d), (sl, dl), None, row)
                            for t, s, d, sl, dl, row in self._relationship_rows(None, None, ""))
                if c is not None]
        return nodes, rels

    def _write_baseline(self, db: Database, meta: dict[str, Any]) -> int:
        """Write everything the graph holds into the empty ``db`` (inside a transaction): its
        rows, and records that create them in chunks (replaying them from empty gives the
        graph). Returns the last record's sequence number."""
        nodes, rels = self._everything()
        db.write(None, self._node_writes(nodes), self._rel_writes(rels))
        changes: list[NodeChange | RelChange] = [*nodes, *rels]
        seq = 0
        for start in range(0, len(changes), _BASELINE_CHUNK):
            part = changes[start:start + _BASELINE_CHUNK]
            seq += 1
            db.append(ChangeRecord(
                seq=seq, at=datetime.now(UTC), actor=_MIGRATION_ACTOR,
                nodes=tuple(c for c in part if isinstance(c, NodeChange)),
                relationships=tuple(c for c in part if isinstance(c, RelChange)),
                meta=meta,
            ))
        return seq

    def save_to(self, path: Path) -> None:
        """Write what the store holds into a NEW database at ``path``, replacing any file.

        The database is written to a temporary file in the same folder and moved over
        ``path`` when complete (``cmdb-graph demo``, the bench's bulk loads). Its feed is this
        store's feed when the store is purely in memory (it started empty, so its feed replays
        to the same rows), otherwise records that create every row.

        Raises
        ------
        StoreError
            The database cannot be written (a file already at ``path`` is left as it was).
        """
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with self._lock:
            self._follow()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)
            db = Database(tmp)
            try:
                with db.transaction():
                    if self._db is None:
                        nodes, rels = self._everything()
                        db.write(None, self._node_writes(nodes), self._rel_writes(rels))
                        for record in self._feed:
                            db.append(record)
                    else:
                        self._write_baseline(db, {})
            finally:
                db.close()
            try:
                replace_file(tmp, path)
            except OSError as exc:
                raise StoreError(f"{path}: cannot write the database: {exc}") from exc

    def snapshot_payload(self) -> dict[str, Any]:
        """What an old snapshot file held (the bench's comparison, migration tests)."""
        with self._reading():
            return {
                "format": SNAPSHOT_FORMAT,
                "cis": dict(self._g.nodes(data=True)),
                "ci_edges": [(s, t, k, d) for s, t, k, d in self._g.edges(keys=True, data=True)],
                "nodes": self._nodes,
                "rels": self._rels,
            }

    def _load(self, data: Mapping[str, Any]) -> None:
        """Load an old snapshot's payload into the (empty) graph."""
        self._generation += 1
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
        """Upsert the batch's nodes then relationships, all or nothing (one transaction).

        Raises
        ------
        InvalidRecordError
            (and its subclasses) a record is invalid; nothing of the batch is written.
        StoreError
            The database cannot be written (nothing of the batch is kept), or another
            process held its write lock too long.
        """
        with self._writing():
            prepared = prepare_batch(batch, self.registry, self._existing)
            self._write(prepared, batch.actor)

    def _write(self, prepared: PreparedBatch, actor: Actor | None) -> None:
        self._touched = True
        self._version += 1
        self._generation += 1
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
        if self._is_edge(rel_type, labels):
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

    def _is_edge(self, rel_type: str, labels: tuple[str, str]) -> bool:
        """Whether a relationship is an edge of the CI graph (CI-to-CI type between CIs)."""
        if labels != (CI_LABEL, CI_LABEL):
            return False
        found = self.registry.relationship_types.get(rel_type)
        return found is not None and found.ci_to_ci

    def _remove_node(self, label: str, key: str) -> None:
        """Remove one node (a replayed deletion; a CI loses its edges)."""
        if label != CI_LABEL:
            self._nodes.get(label, {}).pop(key, None)
        elif key in self._g:
            self._unindex(key, self._g.nodes[key])
            self._g.remove_node(key)

    def _remove_rel(self, key: RelKey) -> RelChange | None:
        """Remove one relationship; its change (``None``: there was none)."""
        rel_type, source, target = key
        if self._g.has_edge(source, target, key=rel_type):
            row = dict(self._g.edges[source, target, rel_type])
            self._g.remove_edge(source, target, key=rel_type)
            return rel_change(key, (CI_LABEL, CI_LABEL), row, None)
        if key in self._rels:
            sl, tl, old = self._rels[key]
            self._drop_rel(key)
            return rel_change(key, (sl, tl), old, None)
        return None

    def _delete_relationships(self, keys: list[RelKey], actor: Actor | None) -> int:
        removed: list[RelChange] = []
        with self._writing():
            self._touched = True
            self._generation += 1
            for key in keys:
                change = self._remove_rel(key)
                if change is not None:
                    removed.append(change)
            self._record(actor, [], removed)
        return len(removed)

    # -- primitive reads (called under the lock, see ``_read_guard``) ---------------------
    def _read_guard(self) -> AbstractContextManager[Any]:
        return self._reading()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock:
            self._follow()
            yield

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
        with self._reading():
            return self._graph_of(set(self._g), set(self.registry.ci_relationship_types()))

    def counts(self) -> dict[str, int]:
        """Node counts per label, per CI class (``"CI:Server"``) and ``"relationships"``."""
        with self._reading():
            out = {label: len(rows) for label, rows in self._nodes.items()}
            out[CI_LABEL] = self._g.number_of_nodes()
            per_class: dict[str, int] = {}
            for _, cls in self._g.nodes(data="ci_class"):
                per_class[cls] = per_class.get(cls, 0) + 1
            for cls, n in per_class.items():
                out[f"{CI_LABEL}:{cls}"] = n
            out["relationships"] = self._g.number_of_edges()
            return out


def _created(label: str, key: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """The fields of a :class:`NodeChange` that creates a node with ``row``."""
    change = node_change(label, key, None, row)
    assert change is not None
    return (change.op, change.label, change.key, change.old, change.new)
