"""The Neo4j store: the system of record, on the official Python driver (6.x, Neo4j 5.26).

* One driver per store; every session names the database; writes run in managed write
  transactions (``execute_write``) as ``UNWIND $rows`` batches, reads in managed read
  transactions (``execute_read``, routed to readers in a cluster).
* Constraints (one uniqueness constraint per label key) and indexes are created with
  ``IF NOT EXISTS`` when the store opens.
* Every CI has the label ``:CI`` plus its CI class label; a class change swaps the label.
* Reference fields are materialised as relationships (``(:SupportGroup)-[:SUPPORTS]->(:CI)``);
  a missing target is MERGEd as a ``:Stub`` node, invisible to reads (see
  :mod:`cmdb_graph.store.neo4j.cypher`).
* Lineage, ``attributes`` and ``properties`` are JSON strings; dates and datetimes are Neo4j
  temporal values (UTC), so Cypher can compare them (:mod:`cmdb_graph.store.neo4j.props`).
* All Cypher lives in :mod:`cmdb_graph.store.neo4j.cypher` (names, schema, writes) and
  :mod:`cmdb_graph.store.neo4j.cypher_reads`; driver errors are wrapped:
  ``ServiceUnavailable``/``AuthError``/``SessionExpired`` as
  :class:`~cmdb_graph.errors.StoreUnavailableError`, any other as
  :class:`~cmdb_graph.errors.StoreError`.
* Every write transaction goes through :meth:`Neo4jStore._write`, which takes the next
  sequence number of the change feed first and stores the transaction's change record last,
  in the same transaction (:mod:`cmdb_graph.store.neo4j.feed`).
* Every session shares one bookmark manager: a read made after a write through the store
  sees that write, also on a cluster whose reads go to other members (read-your-writes).

What both stores share (argument checks, models from rows, paging) is
:class:`~cmdb_graph.store.base.BaseStore`; this module holds the driver plumbing and the
primitive reads and writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import networkx as nx
from neo4j import READ_ACCESS, Driver, GraphDatabase, ManagedTransaction, Query, Session
from neo4j.exceptions import (
    AuthError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from cmdb_graph.errors import (
    ConfigurationError,
    FeedGapError,
    StoreError,
    StoreUnavailableError,
)
from cmdb_graph.feed import (
    SYSTEM_ACTOR,
    Actor,
    ChangeRecord,
    RelChange,
    node_change,
    rel_change,
)
from cmdb_graph.model import NODE_SPECS, Registry, Relationship
from cmdb_graph.model.entities import Scalar
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import BaseStore, RelKey, RelRow, check_seeds
from cmdb_graph.store.batch import (
    ExistingKeys,
    PreparedBatch,
    PreparedNode,
    PreparedRel,
    WriteBatch,
    check_ends,
    prepare_batch,
    reference_rel_types,
)
from cmdb_graph.store.neo4j import cypher, cypher_reads
from cmdb_graph.store.neo4j.feed import META_KEY, TxFeed, prune_oldest, read_feed, rel_row
from cmdb_graph.store.neo4j.props import (
    GRAPH_FIELDS,
    GRAPH_TEMPORALS,
    from_props,
    graph_from_rows,
    list_needle,
)
from cmdb_graph.store.neo4j.writes import Statement, batch_statements, chunks, prefetch
from cmdb_graph.store.paging import RowPage
from cmdb_graph.store.query import CASELESS_IDENTIFIERS, LIST_IDENTIFIERS, CIFilter
from cmdb_graph.store.rows import CI_LABEL, REL_KEY_FIELDS, expand_ci

__all__ = ["Neo4jStore", "GRAPH_PAGE"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_REF_TYPES = reference_rel_types()

#: The key of the meta node whose write lock is the import lock (see ``import_lock``).
IMPORT_LOCK_KEY = "import-lock"

#: Seconds between two automatic prunings of the change feed by one store (see
#: :meth:`Neo4jStore.prune_feed`).
PRUNE_EVERY = 3600.0
#: Change records deleted per pruning transaction.
PRUNE_BATCH = 10_000

#: CIs per page of :meth:`Neo4jStore.dependency_graph` (bounds the server's memory per query).
GRAPH_PAGE = 20_000


class Neo4jStore(BaseStore):
    """The :class:`~cmdb_graph.store.base.GraphStore` on Neo4j.

    Parameters
    ----------
    uri : str
        Bolt or neo4j URI (``bolt://127.0.0.1:7687``, ``neo4j+s://...``).
    user, password : str
        Credentials.
    database : str
        Database name, passed to every session.
    registry : Registry, optional
        CI classes and relationship types (default: the built-in registry).
    batch_size : int
        Rows per ``UNWIND`` batch.
    tx_limit : int, optional
        ``apply`` runs in one transaction up to this many records (default ``4 * batch_size``);
        larger batches run as idempotent batches of ``batch_size`` (nodes, then reference
        relationships, then relationships).
    max_depth : int, optional
        Largest traversal depth accepted.
    feed_retention_days : float, optional
        Change records older than this are pruned (see :meth:`prune_feed`); ``None`` or 0:
        kept for ever.

    Raises
    ------
    StoreUnavailableError
        The server cannot be reached or refuses the credentials.
    ConfigurationError
        A CI class name collides with a node label (labels must stay unambiguous).
    """

    def __init__(
        self,
        uri: str,
        user: str,
        password: str,
        *,
        database: str = "neo4j",
        registry: Registry | None = None,
        batch_size: int = 5000,
        tx_limit: int | None = None,
        max_depth: int | None = None,
        feed_retention_days: float | None = None,
    ) -> None:
        self.registry = registry if registry is not None else Registry()
        self.database = database
        self.batch_size = batch_size
        self.tx_limit = tx_limit if tx_limit is not None else batch_size * 4
        self.max_depth = max_depth
        self.feed_retention_days = feed_retention_days or None
        self._pruned_at: float | None = None
        self._check_registry()
        with self._errors():
            self._driver: Driver = GraphDatabase.driver(
                uri, auth=(user, password), notifications_min_severity="OFF"
            )
            self._bookmarks = GraphDatabase.bookmark_manager()
        try:
            with self._errors():
                self._driver.verify_connectivity()
            self.ensure_schema()
        except BaseException:
            self._driver.close()
            raise

    @classmethod
    def from_settings(cls, settings: Settings, registry: Registry | None = None) -> Neo4jStore:
        """A store for ``settings.neo4j_uri`` with the settings' credentials and limits.

        Raises
        ------
        ConfigurationError
            ``neo4j_uri`` is not set.
        StoreUnavailableError
            The server cannot be reached.
        """
        if not settings.neo4j_uri:
            raise ConfigurationError("neo4j_uri is not set (CMDB_NEO4J_URI)")
        return cls(
            settings.neo4j_uri,
            settings.neo4j_user,
            settings.neo4j_password.get_secret_value(),
            database=settings.neo4j_database,
            registry=registry,
            batch_size=settings.batch_size,
            max_depth=settings.max_depth,
            feed_retention_days=settings.feed_retention_days,
        )

    def _check_registry(self) -> None:
        clash = set(self.registry.classes) & (
            set(NODE_SPECS) | {cypher.STUB, cypher.META, cypher.FEED}
        )
        if clash:
            raise ConfigurationError(
                f"CI class names {sorted(clash)} collide with node labels of the store"
            )

    # -- plumbing -------------------------------------------------------------------------
    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (ServiceUnavailable, AuthError, SessionExpired) as exc:
            raise StoreUnavailableError(f"Neo4j is unavailable: {exc}") from exc
        except (Neo4jError, DriverError) as exc:
            raise StoreError(f"Neo4j error: {exc}") from exc

    def _session(self, **config: Any) -> Session:
        """A session on the store's database, sharing the store's bookmark manager.

        Every session waits for the bookmarks of the store's earlier transactions, so a read
        sees the store's own writes even where reads go to other cluster members.
        """
        return self._driver.session(database=self.database, bookmark_manager=self._bookmarks,
                                    **config)

    def _read(self, work: Callable[[ManagedTransaction], T]) -> T:
        with self._errors(), self._session() as session:
            return session.execute_read(work)

    def _write(self, work: Callable[[ManagedTransaction, TxFeed], T], actor: Actor | None) -> T:
        """Run ``work`` in a managed write transaction that records its change record.

        The transaction takes the next sequence number first (the counter's lock, see
        :class:`~cmdb_graph.store.neo4j.feed.TxFeed`), ``work`` reads old rows, writes and
        reports its changes to the ``TxFeed`` it is given, and the record is stored last: it
        commits, or rolls back, with the write itself. A retried transaction starts afresh.
        """

        def recorded(tx: ManagedTransaction) -> T:
            feed = TxFeed(tx, actor, self.batch_size)
            out = work(tx, feed)
            feed.finish()
            return out

        with self._errors(), self._session() as session:
            out = session.execute_write(recorded)
        self._prune_now_and_then()
        return out

    @staticmethod
    def _rows(tx: ManagedTransaction, query: str, **params: Any) -> list[dict[str, Any]]:
        return [r.data() for r in tx.run(query, params)]

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the driver."""
        self._driver.close()

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` when the server cannot answer."""
        self._read(lambda tx: self._rows(tx, cypher.PING))

    def ensure_schema(self) -> None:
        """Create the constraints and indexes (idempotent)."""
        with self._errors(), self._session() as session:
            for statement in cypher.schema_statements():
                session.run(Query(statement)).consume()

    def clear(self) -> None:
        """Delete every node and relationship (constraints, indexes and the change feed stay).

        The deletion runs in batches of auto-commit transactions (any size of store); then
        one write transaction deletes what was written meanwhile and records a reset (a
        follower drops what it holds), as the embedded store does.
        """
        with self._errors(), self._session() as session:
            session.run(Query(cypher.CLEAR)).consume()

        def reset(tx: ManagedTransaction, feed: TxFeed) -> None:
            tx.run(cypher.CLEAR_REST).consume()
            feed.reset = True

        self._write(reset, SYSTEM_ACTOR)

    @contextmanager
    def import_lock(self) -> Iterator[None]:
        """Hold the database's import lock (see :meth:`GraphStore.import_lock`).

        The lock is a write lock on a meta node (``IMPORT_LOCK``) taken in a transaction that
        stays open for as long as the block runs and is then rolled back: another process
        taking it waits for that transaction to end, and the server ends it when the holding
        process dies (its connection closes). Waits without limit.
        """
        with self._errors():
            session = self._session()
            try:
                tx = session.begin_transaction()
                tx.run(cypher.IMPORT_LOCK, key=IMPORT_LOCK_KEY).consume()
            except BaseException:
                session.close()
                raise
        try:
            yield
        finally:
            try:
                tx.rollback()
                session.close()
            except (Neo4jError, DriverError):  # the lock dies with the transaction anyway
                log.warning("import lock: the holding transaction could not be rolled back")

    def writes_at_once(self, batch: WriteBatch) -> bool:
        """Whether ``apply(batch)`` is one transaction (at most ``tx_limit`` records, or
        ``batch.atomic``)."""
        return batch.atomic or len(batch) <= self.tx_limit

    # -- change detection ---------------------------------------------------------------
    @property
    def generation(self) -> int:
        """The feed head (see :meth:`feed_head`): what caches of the store are keyed on.

        Every write transaction of every ``Neo4jStore`` on the database that changed something
        increments it (``apply`` and its batches, ``delete_relationships``, ``clear``), so all
        processes sharing the database see each other's writes. Reads never change it.
        """
        return self.feed_head()

    def cache_key(self) -> tuple[str | None, int, int, int]:
        """What a cache of the graph must be keyed on, in one cheap read query.

        Returns
        -------
        (epoch, generation, nodes, relationships)
            ``epoch`` is a random id given to the feed counter when it is created (``None``
            before the first write), so a database wiped and rebuilt from outside never
            repeats an old key; ``generation`` is the feed head; ``nodes`` (change records
            left out) and ``relationships`` are the numbers of all nodes and relationships,
            from Neo4j's count store (O(1)).

        Notes
        -----
        Every write made through cmdb-graph that changes something changes the key. A write
        made outside cmdb-graph (raw Cypher) changes it when it adds or removes nodes or
        relationships; an edit of properties only, made outside cmdb-graph, does not, and is
        seen only after the next write made through cmdb-graph.
        """
        # One auto-commit read: one round trip instead of a managed transaction's two
        # (BEGIN+RUN, then COMMIT); the engine pays it on every question.
        with self._errors(), self._session(default_access_mode=READ_ACCESS) as session:
            r = session.run(Query(cypher.CACHE_KEY), key=META_KEY).single(strict=True)
        epoch = r["epoch"]
        return (None if epoch is None else str(epoch), int(r["generation"]), int(r["nodes"]),
                int(r["relationships"]))

    # -- writes ---------------------------------------------------------------------------
    def _existing_in(self, tx: ManagedTransaction) -> ExistingKeys:
        def existing(label: str, keys: set[str]) -> set[str]:
            found: set[str] = set()
            for chunk in chunks(sorted(keys), self.batch_size):
                for r in self._rows(tx, cypher.existing_keys(label), keys=chunk):
                    found.update(r["keys"])
            return found

        return existing

    def apply(self, batch: WriteBatch) -> None:
        """Upsert nodes then relationships, then delete ``batch.deletes`` and
        ``batch.node_deletes`` (see :class:`~cmdb_graph.store.batch.WriteBatch`).

        Up to ``tx_limit`` records (any number when ``batch.atomic``) in one transaction (all
        or nothing) and one change record; beyond that, the batch is validated first and then
        written in idempotent transactions of at most ``batch_size`` nodes or relationships,
        each with its own change record: nodes per label, each transaction writing its nodes
        together with their reference-field relationships (a CI is never committed without its
        support group, owner or location link), then relationships, then the deletions
        (relationships, then nodes) in one transaction. A
        failure half-way leaves the transactions before it written; applying the batch again
        completes it.

        Raises
        ------
        InvalidRecordError
            (and subclasses) a record is invalid; nothing is written.
        StoreUnavailableError, StoreError
            The server failed.
        """
        prepared = prepare_batch(batch, self.registry, existing=None)
        deletes = batch.delete_keys(self.registry)
        node_deletes = batch.node_delete_keys()
        if not prepared.nodes and not prepared.relationships and not deletes and not node_deletes:
            return
        if self.writes_at_once(batch):

            def work(tx: ManagedTransaction, feed: TxFeed) -> None:
                check_ends(prepared, self._existing_in(tx))
                nodes, rels = feed.changes(
                    prepared.nodes, feed.old_nodes(prepared.nodes),
                    prepared.relationships, feed.old_rels(prepared.relationships))
                if nodes or rels:
                    todo = PreparedBatch(nodes, rels)
                    present = feed.present
                    with closing(prefetch(batch_statements(todo, self.registry, present))) as st:
                        for query, rows, _ in st:
                            tx.run(query, rows=rows).consume()
                self._delete_in(tx, feed, deletes)
                self._delete_nodes_in(tx, feed, node_deletes)

            self._write(work, batch.actor)
            return

        def check(tx: ManagedTransaction) -> dict[str, set[str]]:
            check_ends(prepared, self._existing_in(tx))
            return self._present_in(tx, prepared)

        present = self._read(check)
        parts: list[PreparedBatch] = [
            PreparedBatch(list(part), [])
            for _, nodes in sorted(prepared.nodes_by_label().items())
            for part in chunks(nodes, self.batch_size)
        ]
        parts += [PreparedBatch([], list(part))
                  for part in chunks(prepared.relationships, self.batch_size)]
        with closing(prefetch(
                list(batch_statements(part, self.registry, present)) for part in parts)) as txs:
            for statements in txs:
                self._write(self._runner(statements), batch.actor)
        if deletes or node_deletes:

            def delete(tx: ManagedTransaction, feed: TxFeed) -> None:
                self._delete_in(tx, feed, deletes)
                self._delete_nodes_in(tx, feed, node_deletes)

            self._write(delete, batch.actor)
        log.info(
            "applied %d nodes and %d relationships in batches of %d",
            len(prepared.nodes),
            len(prepared.relationships),
            self.batch_size,
        )

    def _present_in(self, tx: ManagedTransaction, prepared: PreparedBatch) -> dict[str, set[str]]:
        """The keys of the batch's nodes (of labels with reference fields) already in the store.

        Stubs count as present. A node absent before the batch has no reference relationships
        to remove, so its references are only created (or, when empty, skipped).
        """
        out: dict[str, set[str]] = {}
        for label, nodes in prepared.nodes_by_label().items():
            if not NODE_SPECS[label].refs:
                continue
            found: set[str] = set()
            keys = [n.key for n in nodes]
            for chunk in chunks(keys, self.batch_size):
                for r in self._rows(tx, cypher.present_keys(label), keys=list(chunk)):
                    found.update(r["keys"])
            out[label] = found
        return out

    @staticmethod
    def _runner(statements: Sequence[Statement]) -> Callable[[ManagedTransaction, TxFeed], None]:
        """The work of one transaction running ``statements`` (see ``writes.Statement``): the
        rows of nodes and relationships that change nothing are left out; the statements of
        reference fields run whole."""

        def work(tx: ManagedTransaction, feed: TxFeed) -> None:
            for query, rows, items in statements:
                todo = rows
                if items:
                    nodes = [x for x in items if isinstance(x, PreparedNode)]
                    rels = [x for x in items if isinstance(x, PreparedRel)]
                    changed_nodes, changed_rels = feed.changes(
                        nodes, feed.old_nodes(nodes), rels, feed.old_rels(rels))
                    keep = {id(x) for x in (*changed_nodes, *changed_rels)}
                    todo = [row for row, item in zip(rows, items, strict=True)
                            if id(item) in keep]
                if todo:
                    tx.run(query, rows=todo).consume()

        return work

    # -- the change feed ------------------------------------------------------------------
    def feed_head(self) -> int:
        """The sequence number of the newest change record (0 before the first write)."""
        state, _ = self._read(lambda tx: read_feed(tx, 0, 0))
        return state.head

    def feed_since(self, after: int, *, limit: int = 1000) -> list[ChangeRecord]:
        """Change records with ``seq > after``, oldest first, at most ``limit`` (one read).

        Raises
        ------
        FeedGapError
            Records after ``after`` were pruned (``after`` is below the feed's floor), or
            ``after`` is beyond the feed head (the database was replaced or wiped): the
            caller must rebuild from the store.
        """
        state, records = self._read(lambda tx: read_feed(tx, after, limit))
        if after < state.floor:
            raise FeedGapError(
                f"change records up to {state.floor} were pruned; asked for those after {after}"
            )
        if after > state.head:
            raise FeedGapError(f"the feed head is {state.head}, before {after}: the store was "
                               "replaced")
        return records

    def prune_feed(self, *, before: datetime | None = None) -> int:
        """Delete the change records written before ``before``; how many were deleted.

        ``before`` defaults to now minus ``feed_retention_days`` (no retention: nothing is
        pruned). Records go oldest first, in transactions of :data:`PRUNE_BATCH`, and the
        feed's floor rises with them: a follower asking for a pruned record gets
        :class:`~cmdb_graph.errors.FeedGapError` and rebuilds once. Writes call it on their
        own at most every :data:`PRUNE_EVERY` seconds; a periodic job may call it too.
        """
        if before is None:
            if self.feed_retention_days is None:
                return 0
            before = datetime.now(UTC) - timedelta(days=self.feed_retention_days)
        cutoff = before
        total = 0
        with self._errors(), self._session() as session:
            while True:
                n = session.execute_write(lambda tx: prune_oldest(tx, cutoff, PRUNE_BATCH))
                total += n
                if n < PRUNE_BATCH:
                    break
        if total:
            log.info("pruned %d change records written before %s", total, cutoff.isoformat())
        return total

    def _prune_now_and_then(self) -> None:
        """Prune the feed after a write when the last pruning is older than PRUNE_EVERY."""
        if self.feed_retention_days is None:
            return
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            self.prune_feed()
        except StoreError as exc:  # the write has committed; pruning is retried later
            log.warning("could not prune the change feed: %s", exc)

    def _delete_relationships(self, keys: list[RelKey], actor: Actor | None) -> int:
        """Delete by key; relationships derived from reference fields are left (0 counted)."""
        if not any(rel_type not in _REF_TYPES for rel_type, _, _ in keys):
            return 0
        return self._write(lambda tx, feed: self._delete_in(tx, feed, keys), actor)

    def _delete_in(self, tx: ManagedTransaction, feed: TxFeed, keys: Sequence[RelKey]) -> int:
        """Delete ``keys`` in ``tx`` (reference-field types left), recording the removals in
        ``feed``; how many existed."""
        by_type: dict[str, list[dict[str, str]]] = {}
        for rel_type, source, target in keys:
            if rel_type not in _REF_TYPES:
                by_type.setdefault(rel_type, []).append({"s": source, "t": target})
        removed: dict[RelKey, RelChange] = {}
        for rel_type, rows in sorted(by_type.items()):
            if self.registry.relationship_types[rel_type].ci_to_ci:
                query = cypher.delete_ci_relationships(rel_type)
            else:
                query = cypher.delete_relationships_any(rel_type)
            for chunk in chunks(rows, self.batch_size):
                deleted = tx.run(query, rows=chunk).single(strict=True)[0]
                for source, target, sl, tl, props in deleted:
                    key = (rel_type, source, target)
                    change = rel_change(key, (sl, tl), rel_row(props), None)
                    if change is not None:
                        removed.setdefault(key, change)
        feed.rels.extend(removed[k] for k in keys if k in removed)
        return len(removed)

    def _delete_nodes_in(self, tx: ManagedTransaction, feed: TxFeed,
                         keys: Sequence[tuple[str, str]]) -> int:
        """Delete the nodes ``keys`` (``(label, key)``) in ``tx`` with their explicit
        relationships (see :func:`cypher.delete_nodes`), recording the removals and the
        deletions in ``feed``; how many nodes existed."""
        if not keys:
            return 0
        explicit = sorted(set(self.registry.relationship_types) - _REF_TYPES)
        by_label: dict[str, list[str]] = {}
        for label, key in keys:
            by_label.setdefault(label, []).append(key)
        rels: list[RelKey] = []
        for label, wanted in sorted(by_label.items()):
            query = cypher.relationships_touching(label)
            for chunk in chunks(wanted, self.batch_size):
                found = tx.run(query, keys=list(chunk), types=explicit).single(strict=True)[0]
                rels += [(t, s, e) for t, s, e in found]
        self._delete_in(tx, feed, list(dict.fromkeys(rels)))
        prepared = [PreparedNode(label, key, {}) for label, key in keys]
        old = feed.old_nodes(prepared)
        deleted = 0
        for label, wanted in sorted(by_label.items()):
            gone = [k for k in wanted if (label, k) in old]
            for key in gone:
                change = node_change(label, key, old[(label, key)], None)
                if change is not None:
                    feed.nodes.append(change)
            keep_in, keep_out = cypher.referencing_types(label)
            query = cypher.delete_nodes(label, self.registry.classes)
            for chunk in chunks(gone, self.batch_size):
                tx.run(query, keys=list(chunk), keep_in=keep_in, keep_out=keep_out).consume()
            deleted += len(gone)
        return deleted

    # -- primitive reads ------------------------------------------------------------------
    def _query(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """The rows of one read query, in a managed read transaction."""
        return self._read(lambda tx: self._rows(tx, query, **params))

    @staticmethod
    def _row(label: str, props: Mapping[str, Any]) -> dict[str, Any]:
        spec = NODE_SPECS[label]
        return from_props(spec.model, props, skip=(spec.key,))

    def _node_rows(self, label: str, keys: list[str]) -> Mapping[str, Mapping[str, Any]]:
        rows = self._query(cypher_reads.get_nodes(label), keys=keys)
        return {key: self._row(label, props) for key, props in rows[0]["rows"]}

    def _ci_rows_matching(
        self, lookups: Mapping[str, Sequence[str]]
    ) -> Mapping[str, Mapping[str, Any]]:
        """One query over every field (an index each) when each has one value; else one
        query per field and ``batch_size`` values (an index seek per value)."""
        found: dict[str, Mapping[str, Any]] = {}
        if all(len(values) == 1 for values in lookups.values()):
            branches = [(name, _lookup_mode(name)) for name in lookups]
            params = {name: _needle(name, values[0]) for name, values in lookups.items()}
            rows = self._query(cypher_reads.find_cis(branches), **params)
            return {r["key"]: self._row(CI_LABEL, r["props"]) for r in rows}
        for name, values in lookups.items():
            query = cypher_reads.find_cis_bulk(name, _lookup_mode(name))
            needles = [_needle(name, v) for v in values]
            for chunk in chunks(needles, self.batch_size):
                for r in self._query(query, values=list(chunk)):
                    found[r["key"]] = self._row(CI_LABEL, r["props"])
        return found

    def _paged(self, page_q: str, count_q: str, label: str, limit: int, **params: Any
               ) -> RowPage:
        """A page (``limit + 1`` rows tell whether more follow) and the total, in one read."""

        def work(tx: ManagedTransaction) -> tuple[list[dict[str, Any]], int]:
            rows = self._rows(tx, page_q, limit=limit + 1, **params)
            total = self._rows(tx, count_q, **{k: v for k, v in params.items() if k != "after"})
            return rows, int(total[0]["total"])

        rows, total = self._read(work)
        return RowPage([(r["key"], self._row(label, r["props"])) for r in rows[:limit]],
                       len(rows) > limit, total)

    def _ci_page(
        self, flt: CIFilter | None, classes: set[str] | None, after: str | None, limit: int
    ) -> RowPage:
        params: dict[str, Any] = {}
        if classes is not None:
            params["classes"] = sorted(classes)
        if flt is not None:
            if flt.operational_status is not None:
                params["operational_status"] = str(flt.operational_status)
            for name in ("environment", "support_group", "source"):
                if getattr(flt, name) is not None:
                    params[name] = getattr(flt, name)
            if flt.name_contains is not None:
                params["name_contains"] = flt.name_contains.lower()
        filters = list(params)
        return self._paged(cypher_reads.list_cis(filters, after=after is not None),
                           cypher_reads.count_cis(filters), CI_LABEL, limit, after=after,
                           **params)

    def _node_page(
        self, label: str, where: Mapping[str, Scalar], after: str | None, limit: int
    ) -> RowPage:
        fields = [(name, value is None) for name, value in where.items()]
        params = {f"w{i}": value for i, value in enumerate(where.values())}
        return self._paged(cypher_reads.list_nodes(label, fields, after=after is not None),
                           cypher_reads.count_nodes(label, fields), label, limit, after=after,
                           **params)

    def _relationship_rows(
        self, ci_id: str | None, types: frozenset[str] | None, label: str
    ) -> Iterator[RelRow]:
        wanted = sorted((set(self.registry.relationship_types) if types is None else types)
                        - _REF_TYPES)
        if not wanted:
            return
        if ci_id is None:
            rows = self._query(cypher_reads.all_relationships(wanted))
        else:
            rows = self._query(cypher_reads.relationships_of(label, wanted), key=ci_id)
        for r in rows:
            yield (r["rel_type"], r["source"], r["target"], r["source_label"],
                   r["target_label"], from_props(Relationship, r["props"], skip=REL_KEY_FIELDS))

    def _tracking_rows(self, ci_ids: list[str]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        for r in self._query(cypher_reads.assets_tracking(), keys=ci_ids):
            yield r["ci_id"], r["key"], self._row("Asset", r["props"])

    def _subgraph(
        self, seeds: list[str], forward: list[str], reverse: list[str], depth: int | None
    ) -> nx.MultiDiGraph:
        """The graph reached from ``seeds``, breadth-first in one read transaction.

        One query per depth level (:func:`cypher_reads.reach_step`), then one for the rows.
        """
        types = sorted(set(forward) | set(reverse))
        if not types:
            found = self.get_cis(seeds)
            check_seeds(seeds, found)
            g = nx.MultiDiGraph()
            for key in sorted(found):
                row = found[key].model_dump(mode="json", exclude_defaults=True)
                g.add_node(key, **expand_ci(key, row))
            return g
        step = cypher_reads.reach_step(types)
        fetch = cypher_reads.graph_rows(GRAPH_FIELDS, GRAPH_TEMPORALS, types)

        def work(tx: ManagedTransaction) -> list[list[Any]]:
            seen = set(seeds)
            frontier = sorted(seen)
            level = 0
            while frontier and (depth is None or level < depth):
                found = tx.run(step, frontier=frontier, fwd=forward, rev=reverse).single(
                    strict=True
                )[0]
                frontier = sorted(set(found) - seen)
                seen.update(frontier)
                level += 1
            out: list[list[Any]] = tx.run(fetch, ids=sorted(seen)).single(strict=True)[0]
            return out

        rows = self._read(work)
        reached = {r[0] for r in rows}
        check_seeds(seeds, reached)
        return graph_from_rows(rows, reached)

    # -- whole estate ---------------------------------------------------------------------
    def dependency_graph(self) -> nx.MultiDiGraph:
        """The whole CI graph in the shape of :mod:`cmdb_graph.store.base`.

        Read in pages of :data:`GRAPH_PAGE` CIs (in ``ci_id`` order, in one read transaction),
        each page ONE list value holding, per CI, its properties in a fixed field order and
        its out-relationships as short lists (:func:`cypher_reads.ci_graph_page`): the driver
        converts a few long lists instead of one record and one map of every property per CI.
        """
        types = self.registry.ci_relationship_types()
        first = cypher_reads.ci_graph_page(GRAPH_FIELDS, GRAPH_TEMPORALS, types, after=False)
        more = cypher_reads.ci_graph_page(GRAPH_FIELDS, GRAPH_TEMPORALS, types, after=True)

        def work(tx: ManagedTransaction) -> list[list[Any]]:
            pages: list[list[Any]] = []
            after: str | None = None
            while True:
                query = first if after is None else more
                params: dict[str, Any] = {"limit": GRAPH_PAGE}
                if after is not None:
                    params["after"] = after
                page = tx.run(query, params).single(strict=True)[0]
                if not page:
                    return pages
                pages.append(page)
                if len(page) < GRAPH_PAGE:
                    return pages
                after = max(row[0] for row in page)

        pages = self._read(work)
        return graph_from_rows([row for page in pages for row in page], None)

    def counts(self) -> dict[str, int]:
        """Node counts per label, per CI class (``"CI:Server"``) and ``"relationships"``.

        Read from the count store (fast at any size); stub nodes are not counted.
        """
        ci_types = self.registry.ci_relationship_types()
        query = cypher_reads.counts(sorted(NODE_SPECS), sorted(self.registry.classes), ci_types)
        raw = {r["name"]: int(r["n"]) for r in self._query(query)}
        out: dict[str, int] = {}
        for label in NODE_SPECS:
            out[label] = raw.get(label, 0) - raw.get(f"{cypher.STUB}:{label}", 0)
        for cls in self.registry.classes:
            n = raw.get(f"CI:{cls}", 0)
            if n:
                out[f"CI:{cls}"] = n
        out["relationships"] = sum(raw.get(f"rel:{t}", 0) for t in ci_types)
        return out


def _lookup_mode(field: str) -> str:
    """How :mod:`cypher_reads` matches an identifier field: ``contains``, ``lc`` or ``eq``."""
    if field in LIST_IDENTIFIERS:
        return "contains"
    return "lc" if field in CASELESS_IDENTIFIERS else "eq"


def _needle(field: str, value: str) -> str:
    """The parameter value that looks up a normalised identifier ``value`` of ``field``."""
    return list_needle(value) if field in LIST_IDENTIFIERS else value
