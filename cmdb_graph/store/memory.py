"""The embedded store: a networkx graph in memory, made durable in an SQLite database.

The in-memory layout (CIs as the nodes of a ``networkx.MultiDiGraph`` whose attribute dicts are
lean rows, other labels in dicts, identifier indexes) is :class:`~cmdb_graph.store.layout.
EstateGraph`'s; this module adds the store's API, its lock and its database.

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
this module holds the primitive reads and writes over the layout.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx

from cmdb_graph import heap
from cmdb_graph.errors import FeedGapError, StoreError
from cmdb_graph.feed import (
    SYSTEM_ACTOR,
    Actor,
    ActorKind,
    ChangeRecord,
    NodeChange,
    RelChange,
)
from cmdb_graph.model import NODE_SPECS, ConfigurationItem, Registry
from cmdb_graph.model.entities import Scalar
from cmdb_graph.store.adjacency import put_edge_dicts
from cmdb_graph.store.base import BaseStore, RelKey, check_seeds
from cmdb_graph.store.batch import PreparedBatch, WriteBatch, prepare_batch
from cmdb_graph.store.checkpoint import Checkpoints
from cmdb_graph.store.database import (
    LOCK_TIMEOUT,
    Database,
    NodeWrite,
    RelWrite,
    is_database,
    remove_stale_temp_files,
    replace_file,
    temp_path,
)
from cmdb_graph.store.layout import EstateGraph, index_get
from cmdb_graph.store.paging import RowPage, slice_page
from cmdb_graph.store.query import CIFilter
from cmdb_graph.store.rows import (
    CI_LABEL,
    RowMemo,
    edge_attrs,
    expand_ci,
    field_kinds,
    lean_edge_attrs,
)
from cmdb_graph.store.snapshot import SNAPSHOT_FORMAT, read_snapshot, write_snapshot

__all__ = [
    "MemoryStore",
    "database_for_snapshot",
    "write_snapshot",
    "read_snapshot",
    "SNAPSHOT_FORMAT",
]

log = logging.getLogger(__name__)

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


class MemoryStore(Checkpoints, EstateGraph, BaseStore):
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
    feed_retention_days : float, optional
        Change records older than this many days are pruned by the write that finds the
        oldest one past it (``None`` or 0: kept for ever; see :meth:`prune_feed`). The newest
        record is always kept. A follower that missed pruned records gets ``FeedGapError``
        and rebuilds.

    Raises
    ------
    StoreError
        The database (or the snapshot to migrate) cannot be read, or it is empty while a
        checkpoint of an estate lies beside it (deleted or replaced: see
        :mod:`cmdb_graph.store.checkpoint`).

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
        feed_retention_days: float | None = None,
    ) -> None:
        self.registry = registry if registry is not None else Registry()
        if database_path is None and snapshot_path is not None:
            database_path = database_for_snapshot(snapshot_path)
        self.database_path = Path(database_path) if database_path is not None else None
        self.snapshot_path = Path(snapshot_path) if snapshot_path is not None else None
        self.max_depth = max_depth
        self.feed_retention_days = feed_retention_days or None
        #: The last sequence number pruned from the in-memory feed (kept across ``clear``).
        self._feed_floor = 0
        self._lock = threading.RLock()
        self._import_lock = threading.Lock()
        self._db: Database | None = None
        #: Sequence number of the last change record applied to the graph.
        self._seq = 0
        self._data_version: int | None = None
        self._touched = False
        self._closed = False
        #: The change feed without a database, oldest first (kept across ``clear``, which
        #: records a reset).
        self._feed: list[ChangeRecord] = []
        self._checkpoint_extra = None
        self._reset()
        if self.database_path is not None:
            remove_stale_temp_files(self.database_path)
            self._db = Database(self.database_path, timeout=lock_timeout)
            legacy = self.snapshot_path
            if (legacy is not None and legacy != self.database_path and legacy.exists()
                    and not is_database(legacy) and self._db.is_empty()):
                self._migrate(legacy)
            else:
                self._load_database(checkpoint=True)

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
            self._closed = self.database_path is not None

    def ping(self) -> None:
        """Always succeeds: the embedded store is in this process."""

    @contextmanager
    def import_lock(self) -> Iterator[None]:
        """Hold the import lock (see :meth:`GraphStore.import_lock`).

        With a database: an exclusive ``flock`` on the file ``<database>.import-lock`` next to
        it (every process on the database; the kernel releases it when the holder dies), after
        a lock of this store object (its threads). Without: the latter only. Waits without
        limit. The holder removes the file before it unlocks, so none is left beside the
        database (:func:`_hold_lock_file`).
        """
        with self._import_lock:
            if self.database_path is None:
                yield
                return
            lock_path = self.database_path.with_name(self.database_path.name + ".import-lock")
            with _hold_lock_file(lock_path):
                yield

    def writes_at_once(self, batch: WriteBatch) -> bool:
        """Always: ``apply`` is one transaction whatever the batch's size."""
        return True

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
            Records after ``after`` were pruned, or ``after`` is beyond the feed head (the
            store was replaced): the caller must rebuild from the store.
        """
        with self._lock:
            self._follow()
            if after > self._seq:
                raise FeedGapError(f"the feed head is {self._seq}, before {after}: the "
                                   "store was replaced")
            db = self._db
            if db is None:
                if after < self._feed_floor:
                    raise FeedGapError(f"change records up to {self._feed_floor} were "
                                       f"pruned; asked for those after {after}")
                start = bisect.bisect_right(self._feed, after, key=lambda r: r.seq)
                return self._feed[start:start + limit]
            first = db.first()
            if first > after + 1:
                raise FeedGapError(f"{db.path}: change records {after + 1}..{first - 1} "
                                   "are no longer kept; rebuild from the store")
            return db.since(after, limit)

    def prune_feed(self, *, before: datetime | None = None) -> int:
        """Drop the change records written before ``before``; how many were dropped.

        ``before`` defaults to now minus ``feed_retention_days`` (no retention: nothing is
        pruned). Records go oldest first, never the newest (so the head stays known); a
        follower asking for a dropped one gets :class:`~cmdb_graph.errors.FeedGapError`.
        """
        if before is None:
            if self.feed_retention_days is None:
                return 0
            before = datetime.now(UTC) - timedelta(days=self.feed_retention_days)
        with self._lock:
            db = self._db
            if db is not None:
                with db.transaction():
                    return db.prune(before)
            n = 0
            while n < len(self._feed) - 1 and self._feed[n].at < before:
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
            days = self.feed_retention_days
            if days is not None and self._feed[0].at < record.at - timedelta(days=days):
                self.prune_feed()
        self._seq = record.seq

    def _node_writes(self, changes: Iterable[NodeChange]) -> list[NodeWrite]:
        """The current rows of the changed nodes (``None``: gone)."""
        return [(c.label, c.key, self._current_node(c.label, c.key)) for c in changes]

    def _rel_writes(self, changes: Iterable[RelChange]) -> list[RelWrite]:
        """The current rows of the changed relationships (``None``: gone)."""
        return [(c.rel_type, c.source, c.target, c.source_label, c.target_label,
                 self._current_rel(c.key)) for c in changes]

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
                if self._closed:
                    raise StoreError(f"{self.database_path}: the store is closed")
                yield
                return
            self._touched = False
            try:
                with db.transaction():
                    self._follow()
                    yield
                    self._prune(db)
            except BaseException:
                if self._touched:
                    log.info("a write to %s failed; reloading the graph from it", db.path)
                    self._reset()
                    self._load_database()
                raise

    def _prune(self, db: Database) -> None:
        """Prune the change records past the retention, when the oldest kept one is."""
        days = self.feed_retention_days
        if days is None:
            return
        cutoff = datetime.now(UTC) - timedelta(days=days)
        oldest = db.oldest_at()
        if oldest is None or oldest >= cutoff:
            return
        gone = db.prune(cutoff)
        if gone:
            log.info("pruned %d change record(s) older than %s days from %s", gone, days,
                     db.path)

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

    def _load_database(self, *, checkpoint: bool = False) -> None:
        """Load every row of the database into the (empty) graph, in one read transaction;
        with ``checkpoint``, from the checkpoint beside it when it is usable
        (:mod:`cmdb_graph.store.checkpoint`)."""
        db = self._db
        assert db is not None
        if checkpoint and self._resume(db):
            return
        stamps: dict[tuple[str, str], dict[str, str]] = {}
        # The cyclic garbage collector would scan the growing graph again and again while
        # millions of rows are built (a third of the load time); rows hold no cycles.
        with heap.paused():
            with db.reading():
                self._data_version = db.data_version()
                self._seq = db.head()
                self._load_rows(db.node_rows(stamps), db.rel_rows())
            heap.settle(len(self._g))
        if len(self._g):
            log.info("loaded %s (%d CIs, change record %d)", db.path, len(self._g), self._seq)

    def _migrate(self, snapshot: Path) -> None:
        """Read an old snapshot file once and write it into the (empty) database.

        The emptiness is checked again under the write lock: when another process migrated
        first, this one loads what it wrote.
        """
        db = self._db
        assert db is not None
        with db.transaction():
            migrating = db.is_empty()
            if migrating:
                self._load(read_snapshot(snapshot), snapshot)
                self._seq = self._write_baseline(db, {"migrated_from": str(snapshot)})
                db.set_meta("migrated_from", str(snapshot))
        if not migrating:
            self._load_database()
            return
        self._data_version = db.data_version()
        log.warning("migrated the snapshot %s into the database %s (%d CIs); the snapshot "
                    "file is left untouched and no longer read", snapshot, db.path, len(self._g))

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
        remove_stale_temp_files(path)
        tmp = temp_path(path)
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
                "ci_edges": [(s, t, k, dict(d))
                             for s, t, k, d in self._g.edges(keys=True, data=True)],
                "nodes": self._nodes,
                "rels": self._rels,
            }

    # -- writes ---------------------------------------------------------------------------
    def apply(self, batch: WriteBatch) -> None:
        """Upsert the batch's nodes then relationships, then delete ``batch.deletes`` and
        ``batch.node_deletes``, all or nothing (one transaction, whatever ``batch.atomic``).

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
            self._write(prepared, batch.actor, batch.delete_keys(self.registry),
                        batch.node_delete_keys())

    def _write(self, prepared: PreparedBatch, actor: Actor | None,
               deletes: list[RelKey] | None = None,
               node_deletes: list[tuple[str, str]] | None = None) -> None:
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
        for key in deletes or ():
            rchange = self._remove_rel(key)
            if rchange is not None:
                rels.append(rchange)
        for label, node_key in node_deletes or ():
            removed, gone = self._delete_node(label, node_key)
            rels += removed
            if gone is not None:
                nodes.append(gone)
        self._record(actor, nodes, rels)

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
                    found |= index_get(index, value)
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
        indexed = self._indexed_keys(label, where) if where else None
        keys = sorted(
            k for k in (rows if indexed is None else indexed)
            if all(rows[k].get(f, defaults.get(f)) == v for f, v in where.items())
        )
        return slice_page(keys, after, limit, rows)

    def _tracking_rows(self, ci_ids: list[str]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        # TRACKS is derived from Asset.ci_id (a reference field), found through its index
        rows = self._nodes.get("Asset", {})
        index = self._vix["Asset"]["ci_id"]
        found: set[str] = set()
        for ci_id in set(ci_ids):
            found |= index.get(ci_id, set())
        for asset_id in sorted(found):
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

    @property
    def live_rows(self) -> Mapping[str, Mapping[str, Any]]:
        """Every CI's current row by ``ci_id``: the working graph's own dict, to read only
        (rows are replaced on write, never changed; the engine's follower shares them)."""
        return self._g._node  # type: ignore[no-any-return]

    def lean_dependency_graph(self) -> nx.MultiDiGraph:
        """The engine's whole graph: :meth:`dependency_graph` with each CI's attributes being
        the store's own row (shared, not copied: rows are replaced on write, never changed;
        fields at their default are absent, ``lineage`` is there) and each edge's attributes
        :func:`~cmdb_graph.store.rows.lean_edge_attrs` (the shared empty dicts of
        :mod:`cmdb_graph.store.adjacency` when it has none), built straight into networkx's
        dicts. :class:`impact.ImpactGraph` reads a missing attribute as its default.
        """
        with self._reading():
            types = set(self.registry.ci_relationship_types())
            g = self._g
            out = nx.MultiDiGraph()
            node, succ, pred = out._node, out._succ, out._pred
            rows = g._node
            order = sorted(rows)
            for n in order:
                node[n] = rows[n]
                succ[n] = {}
                pred[n] = {}
            g_succ = g._succ
            for n in order:
                for t, keyed in g_succ[n].items():
                    if t not in node:
                        continue
                    for k, d in keyed.items():
                        if k in types:
                            put_edge_dicts(succ, pred, n, t, k, lean_edge_attrs(d))
            nx._clear_cache(out)
            return out

    def count_cis(self) -> int:
        """The number of CIs (``counts()["CI"]`` without counting everything else: an import
        run asks it for every batch)."""
        with self._reading():
            return int(self._g.number_of_nodes())

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


@contextmanager
def _hold_lock_file(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created when missing); remove it on release.

    Only a holder removes the file, and it does so while still holding the lock: a process
    that waited on the removed file finds, once it has the lock, that the path no longer
    names the file it locked, and locks the path again (the file there now, or a new one).
    So at any time at most one process holds the lock on the file the path names.

    Raises
    ------
    StoreError
        The file cannot be opened or created.
    """
    while True:
        try:
            fh = open(path, "a+b")  # noqa: SIM115 - closed below, after the unlock
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the import lock: {exc}") from exc
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            held = os.fstat(fh.fileno())
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            fh.close()
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        fh.close()  # the previous holder removed the file we waited on: lock the path again
    with fh:
        try:
            yield
        finally:
            with suppress(OSError):  # a file left (read-only folder) is still a valid lock
                path.unlink()  # still held: no other process has this file locked
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
