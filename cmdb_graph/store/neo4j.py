"""The Neo4j store: the system of record, on the official Python driver (6.x, Neo4j 5.26).

* One driver per store; every session names the database; writes run in managed write
  transactions (``execute_write``) as ``UNWIND $rows`` batches, reads in managed read
  transactions (``execute_read``, routed to readers in a cluster).
* Constraints (one uniqueness constraint per label key) and indexes are created with
  ``IF NOT EXISTS`` when the store opens.
* Every CI has the label ``:CI`` plus its CI class label; a class change swaps the label.
* Reference fields are materialised as relationships (``(:SupportGroup)-[:SUPPORTS]->(:CI)``);
  a missing target is MERGEd as a ``:Stub`` node, invisible to reads (see
  :mod:`cmdb_graph.store.cypher`).
* Lineage, ``attributes`` and ``properties`` are JSON strings; dates and datetimes are Neo4j
  temporal values (UTC), so Cypher can compare them.
* All Cypher lives in :mod:`cmdb_graph.store.cypher`; driver errors are wrapped:
  ``ServiceUnavailable``/``AuthError``/``SessionExpired`` as
  :class:`~cmdb_graph.errors.StoreUnavailableError`, any other as
  :class:`~cmdb_graph.errors.StoreError`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from typing import Any, TypeVar

import networkx as nx
from neo4j import READ_ACCESS, Driver, GraphDatabase, ManagedTransaction, Query
from neo4j.exceptions import (
    AuthError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from cmdb_graph.errors import (
    CINotFoundError,
    ConfigurationError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from cmdb_graph.model import NODE_SPECS, Asset, ConfigurationItem, Node, Registry, Relationship
from cmdb_graph.model.entities import Scalar
from cmdb_graph.settings import Settings
from cmdb_graph.store import cypher
from cmdb_graph.store._common import (
    CASELESS_IDENTIFIERS,
    CI_LABEL,
    LIST_IDENTIFIERS,
    REL_KEY_FIELDS,
    PreparedBatch,
    PreparedNode,
    PreparedRel,
    _temporal_to_json,  # the one ISO normaliser of both paths
    check_depth,
    check_ends,
    check_limit,
    check_where,
    class_filter,
    decode_cursor,
    encode_cursor,
    expand_ci,
    field_kinds,
    from_props,
    identifier_value,
    list_needle,
    node_from_row,
    prepare_batch,
    reference_rel_types,
    rel_from_row,
    shadow_props,
    split_temporals,
    to_props,
    traversal_types,
)
from cmdb_graph.store.base import CIFilter, Direction, Page, WriteBatch

__all__ = ["Neo4jStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_REF_TYPES = reference_rel_types()

#: Key of the write-counter node (see :data:`cmdb_graph.store.cypher.BUMP_GENERATION`).
_META_KEY = "store"


#: CIs per page of :meth:`Neo4jStore.dependency_graph` (bounds the server's memory per query).
GRAPH_PAGE = 20_000

_CI_KINDS = field_kinds(ConfigurationItem)
#: The CI properties of the graph shape, in the order :func:`cypher.ci_graph_page` returns.
_GRAPH_FIELDS: tuple[str, ...] = tuple(f for f in _CI_KINDS.fields if f != "lineage")
assert _GRAPH_FIELDS[0] == "ci_id"
_TEMPORALS: tuple[str, ...] = tuple(sorted(_CI_KINDS.datetimes | _CI_KINDS.dates))


def _graph(rows: list[list[Any]], keep: set[str] | None) -> nx.MultiDiGraph:
    """The graph of compact rows (see :func:`cypher.ci_graph_page`), nodes in ``ci_id`` order.

    ``keep``: the ids an edge's target must be among (``None``: any target).
    """
    g = nx.MultiDiGraph()
    convert = _GraphRows()
    rows.sort(key=lambda row: str(row[0]))
    g.add_nodes_from((row[0], convert.node(row)) for row in rows)
    g.add_edges_from(
        (row[0], target, rel_type,
         {"rel_type": rel_type, "optional": bool(optional), "inferred": bool(inferred),
          "evidence": evidence, "properties": json.loads(props) if props is not None else {}})
        for row in rows
        for rel_type, target, optional, inferred, evidence, props in row[-1]
        if keep is None or target in keep
    )
    return g


class _GraphRows:
    """Neo4j values of one CI (a row of :func:`cypher.ci_graph_page`) as graph node attributes.

    The same result as ``expand_ci(key, from_props(ConfigurationItem, props, skip=("ci_id",)))``
    (the shape of :mod:`cmdb_graph.store.base`), without the per-field generic work. A
    property Neo4j does not hold is ``None``, or a fresh empty list/dict for list and dict
    fields (``to_props`` writes every non-``None`` scalar, defaults included, and leaves out
    only ``None`` and empty lists/dicts); JSON fields are decoded; dates and datetimes, read
    as ISO text, become pydantic's JSON form (memoised: estates share few distinct instants).
    The contract suite checks the result equals the embedded store's graph.
    """

    def __init__(self) -> None:
        kinds = _CI_KINDS
        self.fields = _GRAPH_FIELDS
        self.lists = [f for f in self.fields if f in kinds.lists]
        self.dicts = [f for f in self.fields if f in kinds.dicts]
        self.temporals = [(f, f in kinds.datetimes) for f in self.fields
                          if f in kinds.datetimes or f in kinds.dates]
        self._instants: dict[tuple[str, bool], str] = {}

    def node(self, row: Sequence[Any]) -> dict[str, Any]:
        """The node attributes of one row (the values of ``_GRAPH_FIELDS``, then anything)."""
        out = dict(zip(self.fields, row, strict=False))
        for name in self.lists:
            if out[name] is None:
                out[name] = []
        for name in self.dicts:
            value = out[name]
            out[name] = {} if value is None else json.loads(value)
        for name, is_datetime in self.temporals:
            value = out[name]
            if value is not None:
                found = self._instants.get((value, is_datetime))
                if found is None:
                    found = _temporal_to_json(value, is_datetime)
                    self._instants[(value, is_datetime)] = found
                out[name] = found
        return out


def _chunks(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _prefetch(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """``items``, computed ahead in a helper thread (at most ``depth`` waiting).

    Building a statement's parameters is Python work; running it is the server's. With the
    parameters of the next statement built while the server runs the current one, the two
    overlap. An exception of ``items`` is raised here, in order; stopping early stops the
    helper.
    """
    out: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))

    helper = threading.Thread(target=produce, name="neo4j-statements", daemon=True)
    helper.start()
    try:
        while True:
            ok, item = out.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        helper.join()


class Neo4jStore:
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
    ) -> None:
        self.registry = registry if registry is not None else Registry()
        self.database = database
        self.batch_size = batch_size
        self.tx_limit = tx_limit if tx_limit is not None else batch_size * 4
        self.max_depth = max_depth
        self._check_registry()
        with self._errors():
            self._driver: Driver = GraphDatabase.driver(
                uri, auth=(user, password), notifications_min_severity="OFF"
            )
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
        )

    def _check_registry(self) -> None:
        clash = set(self.registry.classes) & (set(NODE_SPECS) | {cypher.STUB, cypher.META})
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

    def _read(self, work: Callable[[ManagedTransaction], T]) -> T:
        with self._errors(), self._driver.session(database=self.database) as session:
            return session.execute_read(work)

    def _write(self, work: Callable[[ManagedTransaction], T]) -> T:
        """Run ``work`` in a managed write transaction that also bumps the write counter.

        The counter (:data:`cypher.BUMP_GENERATION`) is incremented by the transaction's last
        statement, so it commits (or rolls back) with the write itself.
        """

        def counted(tx: ManagedTransaction) -> T:
            out = work(tx)
            tx.run(cypher.BUMP_GENERATION, key=_META_KEY).consume()
            return out

        with self._errors(), self._driver.session(database=self.database) as session:
            return session.execute_write(counted)

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
        with self._errors(), self._driver.session(database=self.database) as session:
            for statement in cypher.schema_statements():
                session.run(Query(statement)).consume()

    def clear(self) -> None:
        """Delete every node and relationship (constraints, indexes and the write counter stay).

        The deletion runs in batches of auto-commit transactions; the write counter is bumped
        after the last one.
        """
        with self._errors(), self._driver.session(database=self.database) as session:
            session.run(Query(cypher.CLEAR)).consume()
        self._write(lambda tx: None)

    # -- change detection -------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """The durable write counter of the database (0 before the first write).

        Kept in one ``(:CmdbMeta {key: 'store'})`` node and incremented inside every write
        transaction of every ``Neo4jStore`` on the database (``apply`` and its batches,
        ``delete_relationships``, ``clear``), so all processes sharing the database see each
        other's writes. Reads never change it. One small read query.
        """
        rows = self._read(lambda tx: self._rows(tx, cypher.GENERATION, key=_META_KEY))
        return int(rows[0]["generation"])

    def cache_key(self) -> tuple[str | None, int, int, int]:
        """What a cache of the graph must be keyed on, in one cheap read query.

        Returns
        -------
        (epoch, generation, nodes, relationships)
            ``epoch`` is a random id given to the write counter when it is created (``None``
            before the first write), so a database wiped and rebuilt from outside never
            repeats an old key; ``generation`` is :attr:`generation`; ``nodes`` and
            ``relationships`` are the numbers of all nodes and all relationships, from
            Neo4j's count store (O(1)).

        Notes
        -----
        Every write made through cmdb-graph changes the key. A write made outside
        cmdb-graph (raw Cypher) changes it when it adds or removes nodes or relationships;
        an edit of properties only, made outside cmdb-graph, does not, and is seen only
        after the next write made through cmdb-graph.
        """
        # One auto-commit read: one round trip instead of a managed transaction's two
        # (BEGIN+RUN, then COMMIT); the engine pays it on every question.
        with self._errors(), self._driver.session(
            database=self.database, default_access_mode=READ_ACCESS
        ) as session:
            r = session.run(Query(cypher.CACHE_KEY), key=_META_KEY).single(strict=True)
        epoch = r["epoch"]
        return (None if epoch is None else str(epoch), int(r["generation"]), int(r["nodes"]),
                int(r["relationships"]))

    # -- writes ---------------------------------------------------------------------------
    def _existing_in(self, tx: ManagedTransaction) -> Callable[[str, set[str]], set[str]]:
        def existing(label: str, keys: set[str]) -> set[str]:
            found: set[str] = set()
            for chunk in _chunks(sorted(keys), self.batch_size):
                for r in self._rows(tx, cypher.existing_keys(label), keys=chunk):
                    found.update(r["keys"])
            return found

        return existing

    def apply(self, batch: WriteBatch) -> None:
        """Upsert nodes then relationships.

        Up to ``tx_limit`` records in one transaction (all or nothing); beyond that, the batch
        is validated first and then written in idempotent batches of ``batch_size`` (a failure
        half-way leaves the batches before it written; applying the batch again completes it).

        Raises
        ------
        InvalidRecordError
            (and subclasses) a record is invalid; nothing is written.
        StoreUnavailableError, StoreError
            The server failed.
        """
        prepared = prepare_batch(batch, self.registry, existing=None)
        if not prepared.nodes and not prepared.relationships:
            return
        if len(batch) <= self.tx_limit:

            def work(tx: ManagedTransaction) -> None:
                check_ends(prepared, self._existing_in(tx))
                present = self._present_in(tx, prepared)
                with closing(_prefetch(self._iter_statements(prepared, present))) as statements:
                    for query, rows in statements:
                        tx.run(query, rows=rows).consume()

            self._write(work)
            return

        def check(tx: ManagedTransaction) -> dict[str, set[str]]:
            check_ends(prepared, self._existing_in(tx))
            return self._present_in(tx, prepared)

        present = self._read(check)
        with closing(_prefetch(self._iter_statements(prepared, present))) as statements:
            for query, rows in statements:
                for chunk in _chunks(rows, self.batch_size):
                    self._write(self._runner(query, list(chunk)))
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
            for chunk in _chunks(keys, self.batch_size):
                for r in self._rows(tx, cypher.present_keys(label), keys=list(chunk)):
                    found.update(r["keys"])
            out[label] = found
        return out

    @staticmethod
    def _runner(query: str, rows: list[dict[str, Any]]) -> Callable[[ManagedTransaction], None]:
        def work(tx: ManagedTransaction) -> None:
            tx.run(query, rows=rows).consume()

        return work

    def _statements(
        self, prepared: PreparedBatch, present: Mapping[str, set[str]] | None = None
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        """The write statements of a batch, in order: nodes, references, relationships.

        ``present``: per label, the keys of the batch's nodes that existed before it (``None``:
        treat every node as existing). The references of new nodes are only added.
        """
        return list(self._iter_statements(prepared, present))

    def _iter_statements(
        self, prepared: PreparedBatch, present: Mapping[str, set[str]] | None
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """:meth:`_statements` one at a time (each statement's rows built when it is reached)."""
        by_label = prepared.nodes_by_label()
        for label, nodes in sorted(by_label.items()):
            if label == CI_LABEL:
                by_class: dict[str, list[PreparedNode]] = {}
                for node in nodes:
                    by_class.setdefault(node.row["ci_class"], []).append(node)
                for cls, group in sorted(by_class.items()):
                    yield (
                        cypher.upsert_cis(cls, self.registry.classes),
                        [self._node_params(label, n) for n in group],
                    )
            else:
                yield (cypher.upsert_nodes(label), [self._node_params(label, n) for n in nodes])
        for label, nodes in sorted(by_label.items()):
            known = present.get(label) if present is not None else None
            for ref in NODE_SPECS[label].refs:
                rows = []
                added = []
                for node in nodes:
                    value = node.row.get(ref.field)
                    targets = list(value) if ref.many and value else ([value] if value else [])
                    if known is None or node.key in known:
                        rows.append({"key": node.key, "targets": targets})
                    elif targets:
                        added.append({"key": node.key, "targets": targets})
                if rows:
                    yield (cypher.sync_reference(label, ref), rows)
                if added:
                    yield (cypher.add_reference(label, ref), added)
        for (rel_type, sl, tl), rels in sorted(prepared.rels_by_type().items()):
            yield (
                cypher.merge_relationships(rel_type, sl, tl),
                [self._rel_params(r) for r in rels],
            )

    @staticmethod
    def _node_params(label: str, node: PreparedNode) -> dict[str, Any]:
        spec = NODE_SPECS[label]
        props = to_props(spec.model, node.row)
        props.update(shadow_props(label, node.row))
        props[spec.key] = node.key
        return {"key": node.key, "props": props, "tm": split_temporals(spec.model, props)}

    @staticmethod
    def _rel_params(rel: PreparedRel) -> dict[str, Any]:
        props = to_props(Relationship, rel.row)
        # The end labels are the end nodes' labels (reads take them from the nodes): storing
        # them on every relationship only costs write time and space.
        props.pop("source_label", None)
        props.pop("target_label", None)
        tm = split_temporals(Relationship, props)
        return {"s": rel.source, "t": rel.target, "props": props, "tm": tm}

    def upsert_nodes(self, nodes: Sequence[Node]) -> None:
        """Shorthand for ``apply(WriteBatch(nodes=list(nodes)))``."""
        self.apply(WriteBatch(nodes=list(nodes)))

    def upsert_relationships(self, relationships: Sequence[Relationship]) -> None:
        """Shorthand for ``apply(WriteBatch(relationships=list(relationships)))``."""
        self.apply(WriteBatch(relationships=list(relationships)))

    def delete_relationships(self, keys: Iterable[tuple[str, str, str]]) -> int:
        """Delete relationships by ``(rel_type, source, target)``; returns how many existed.

        Relationships derived from reference fields are not deleted this way (0 is counted):
        change the field instead.

        Raises
        ------
        UnknownRelationshipTypeError
            A key names an unknown relationship type.
        """
        by_type: dict[str, list[dict[str, str]]] = {}
        for rel_type, source, target in dict.fromkeys(tuple(k) for k in keys):
            self.registry.get_relationship_type(rel_type)
            if rel_type not in _REF_TYPES:
                by_type.setdefault(rel_type, []).append({"s": source, "t": target})

        def work(tx: ManagedTransaction) -> int:
            total = 0
            for rel_type, rows in sorted(by_type.items()):
                if self.registry.relationship_types[rel_type].ci_to_ci:
                    query = cypher.delete_ci_relationships(rel_type)
                else:
                    query = cypher.delete_relationships_any(rel_type)
                for chunk in _chunks(rows, self.batch_size):
                    total += sum(r["deleted"] for r in self._rows(tx, query, rows=chunk))
            return total

        return self._write(work) if by_type else 0

    # -- reads ----------------------------------------------------------------------------
    @staticmethod
    def _ci_row(props: Mapping[str, Any]) -> dict[str, Any]:
        return from_props(ConfigurationItem, props, skip=("ci_id",))

    def _node(self, label: str, key: str, props: Mapping[str, Any]) -> Node:
        spec = NODE_SPECS[label]
        return node_from_row(label, key, from_props(spec.model, props, skip=(spec.key,)))

    def _ci(self, key: str, props: Mapping[str, Any]) -> ConfigurationItem:
        ci = self._node(CI_LABEL, key, props)
        assert isinstance(ci, ConfigurationItem)
        return ci

    def get_ci(self, ci_id: str) -> ConfigurationItem:
        """The CI; ``CINotFoundError`` when absent."""
        found = self.get_cis([ci_id])
        if ci_id not in found:
            raise CINotFoundError(f"no CI with ci_id {ci_id!r}")
        return found[ci_id]

    def get_cis(self, ci_ids: Sequence[str]) -> dict[str, ConfigurationItem]:
        """The CIs that exist among ``ci_ids``, by id (one round trip)."""
        return {k: v for k, v in self.get_nodes(CI_LABEL, ci_ids).items()
                if isinstance(v, ConfigurationItem)}

    def get_node(self, label: str, key: str) -> Node:
        """A node of any label by key; ``NotFoundError`` when absent."""
        found = self.get_nodes(label, [key])
        if key not in found:
            if label == CI_LABEL:
                raise CINotFoundError(f"no CI with ci_id {key!r}")
            raise NotFoundError(f"no {label} with key {key!r}")
        return found[key]

    def get_nodes(self, label: str, keys: Sequence[str]) -> dict[str, Node]:
        """The nodes of ``label`` that exist among ``keys``, by key."""
        check_where(label, None)
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        rows = self._read(lambda tx: self._rows(tx, cypher.get_nodes(label), keys=wanted))
        return {r["key"]: self._node(label, r["key"], r["props"]) for r in rows}

    def assets_tracking(self, ci_ids: Sequence[str]) -> dict[str, list[Asset]]:
        """The asset records that TRACK each of ``ci_ids``, sorted by ``asset_id`` (one query).

        Unknown CIs map to an empty list. See
        :meth:`cmdb_graph.store.base.GraphStore.assets_tracking`.
        """
        out: dict[str, list[Asset]] = {c: [] for c in ci_ids}
        wanted = list(out)
        if not wanted:
            return out
        rows = self._read(lambda tx: self._rows(tx, cypher.assets_tracking(), keys=wanted))
        for r in rows:
            asset = self._node("Asset", r["key"], r["props"])
            if isinstance(asset, Asset):
                out[r["ci_id"]].append(asset)
        return out

    def find_cis(self, identifiers: Mapping[str, Scalar]) -> list[ConfigurationItem]:
        """CIs matching ANY of the given identifier fields, sorted by ``ci_id``."""
        branches: list[tuple[str, str]] = []
        params: dict[str, Any] = {}
        for name, value in identifiers.items():
            norm = identifier_value(name, value)
            if norm is None:
                continue
            if name in LIST_IDENTIFIERS:
                branches.append((name, "contains"))
                params[name] = list_needle(norm)
            elif name in CASELESS_IDENTIFIERS:
                branches.append((name, "lc"))
                params[name] = norm
            else:
                branches.append((name, "eq"))
                params[name] = norm
        if not branches:
            return []
        query = cypher.find_cis(branches)
        rows = self._read(lambda tx: self._rows(tx, query, **params))
        return [self._ci(r["key"], r["props"]) for r in rows]

    def find_cis_bulk(self, field: str, values: Sequence[Scalar]) -> list[ConfigurationItem]:
        """CIs whose identifier ``field`` matches any of ``values``, sorted by ``ci_id``.

        One query per ``batch_size`` values (an index seek per value).

        Raises
        ------
        InvalidRecordError
            ``field`` is not one of ``IDENTIFIER_FIELDS``.
        """
        identifier_value(field, None)  # validates the field name
        needles: list[str] = []
        for value in values:
            norm = identifier_value(field, value)
            if norm is not None:
                needles.append(list_needle(norm) if field in LIST_IDENTIFIERS else norm)
        needles = list(dict.fromkeys(needles))
        if not needles:
            return []
        mode = ("contains" if field in LIST_IDENTIFIERS
                else "lc" if field in CASELESS_IDENTIFIERS else "eq")
        query = cypher.find_cis_bulk(field, mode)
        found: dict[str, ConfigurationItem] = {}
        for chunk in _chunks(needles, self.batch_size):
            for r in self._read(self._reader(query, values=list(chunk))):
                found[r["key"]] = self._ci(r["key"], r["props"])
        return [found[k] for k in sorted(found)]

    def _reader(
        self, query: str, **params: Any
    ) -> Callable[[ManagedTransaction], list[dict[str, Any]]]:
        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return self._rows(tx, query, **params)

        return work

    def list_cis(
        self, flt: CIFilter | None = None, *, after: str | None = None, limit: int = 100
    ) -> Page[ConfigurationItem]:
        """CIs sorted by ``ci_id``, after the cursor, at most ``limit``.

        Raises
        ------
        TraversalLimitError
            ``limit`` is over ``MAX_PAGE_SIZE``.
        """
        check_limit(limit)
        start = decode_cursor(after)
        params: dict[str, Any] = {}
        classes = class_filter(flt, self.registry)
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
        page_q = cypher.list_cis(filters, after=start is not None)
        count_q = cypher.count_cis(filters)

        def work(tx: ManagedTransaction) -> tuple[list[dict[str, Any]], int]:
            rows = self._rows(tx, page_q, after=start, limit=limit + 1, **params)
            total = self._rows(tx, count_q, **params)[0]["total"]
            return rows, int(total)

        rows, total = self._read(work)
        items = [self._ci(r["key"], r["props"]) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].ci_id) if more and items else None, total)

    def list_nodes(
        self,
        label: str,
        *,
        where: Mapping[str, Scalar] | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[Node]:
        """Nodes of a label sorted by key, with equality filters on scalar fields.

        Raises
        ------
        TraversalLimitError
            ``limit`` is over ``MAX_PAGE_SIZE``.
        InvalidRecordError
            Unknown label or filter field.
        """
        filters = check_where(label, where)
        check_limit(limit)
        start = decode_cursor(after)
        fields = [(name, value is None) for name, value in filters.items()]
        params = {f"w{i}": value for i, value in enumerate(filters.values())}
        page_q = cypher.list_nodes(label, fields, after=start is not None)
        count_q = cypher.count_nodes(label, fields)

        def work(tx: ManagedTransaction) -> tuple[list[dict[str, Any]], int]:
            rows = self._rows(tx, page_q, after=start, limit=limit + 1, **params)
            total = self._rows(tx, count_q, **params)[0]["total"]
            return rows, int(total)

        rows, total = self._read(work)
        items = [self._node(label, r["key"], r["props"]) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].key) if more and items else None, total)

    def relationships(
        self,
        ci_id: str | None = None,
        *,
        rel_types: Sequence[str] | None = None,
        label: str = CI_LABEL,
    ) -> list[Relationship]:
        """Explicit relationships touching ``ci_id`` (either end), or all; sorted by key.

        Relationships derived from reference fields (``SUPPORTS``, ``TRACKS``, ...) are not
        listed: read the field instead.
        """
        check_where(label, None)
        if rel_types is None:
            types = sorted(set(self.registry.relationship_types) - _REF_TYPES)
        else:
            for name in rel_types:
                self.registry.get_relationship_type(name)
            types = sorted(set(rel_types) - _REF_TYPES)
        if not types:
            return []
        if ci_id is None:
            query = cypher.all_relationships(types)
            rows = self._read(lambda tx: self._rows(tx, query))
        else:
            query = cypher.relationships_of(label, types)
            rows = self._read(lambda tx: self._rows(tx, query, key=ci_id))
        out = [
            rel_from_row(
                r["rel_type"],
                r["source"],
                r["target"],
                from_props(Relationship, r["props"], skip=REL_KEY_FIELDS),
                source_label=r["source_label"],
                target_label=r["target_label"],
            )
            for r in rows
        ]
        out.sort(key=lambda r: (r.rel_type, r.source, r.target, r.source_label, r.target_label))
        return out

    # -- graphs ---------------------------------------------------------------------------
    def neighbourhood(
        self,
        ci_id: str,
        *,
        depth: int = 1,
        direction: Direction = Direction.BOTH,
        rel_types: Sequence[str] | None = None,
    ) -> nx.MultiDiGraph:
        """The CIs within ``depth`` hops of ``ci_id`` and the relationships among them.

        Raises
        ------
        CINotFoundError
            ``ci_id`` does not exist.
        TraversalLimitError
            ``depth`` is negative or over ``max_depth``.
        """
        return self.extract_subgraph([ci_id], direction=direction, rel_types=rel_types,
                                     depth=depth)

    def extract_subgraph(
        self,
        ci_ids: Sequence[str],
        *,
        direction: Direction = Direction.UPSTREAM,
        rel_types: Sequence[str] | None = None,
        depth: int | None = None,
    ) -> nx.MultiDiGraph:
        """The dependency subgraph reachable from ``ci_ids``, in ONE Cypher query.

        See :meth:`cmdb_graph.store.base.GraphStore.extract_subgraph` and
        :func:`cmdb_graph.store.cypher.reach`.

        Raises
        ------
        CINotFoundError
            An id does not exist.
        TraversalLimitError
            ``depth`` is negative or over ``max_depth``.
        """
        check_depth(depth, self.max_depth)
        forward, reverse = traversal_types(self.registry, direction, rel_types)
        types = sorted(set(forward) | set(reverse))
        seeds = list(dict.fromkeys(ci_ids))
        g = nx.MultiDiGraph()
        if not seeds:
            return g
        if not types:
            found = self.get_cis(seeds)
            self._check_seeds(seeds, found)
            for key in sorted(found):
                row = found[key].model_dump(mode="json", exclude_defaults=True)
                g.add_node(key, **expand_ci(key, row))
            return g
        query = cypher.reach(types, depth, _GRAPH_FIELDS, _TEMPORALS)
        rows: list[list[Any]] = self._read(
            lambda tx: tx.run(query, ids=seeds, fwd=forward, rev=reverse).single(strict=True)[0]
        )
        reached = {r[0] for r in rows}
        self._check_seeds(seeds, reached)
        return _graph(rows, reached)

    @staticmethod
    def _check_seeds(seeds: Sequence[str], found: Iterable[str]) -> None:
        have = set(found)
        missing = [s for s in seeds if s not in have]
        if missing:
            raise CINotFoundError(f"no CI with ci_id {missing[0]!r}")

    def dependency_graph(self) -> nx.MultiDiGraph:
        """The whole CI graph in the shape of :mod:`cmdb_graph.store.base`.

        Read in pages of :data:`GRAPH_PAGE` CIs (in ``ci_id`` order, in one read transaction),
        each page ONE list value holding, per CI, its properties in a fixed field order and
        its out-relationships as short lists (:func:`cypher.ci_graph_page`): the driver
        converts a few long lists instead of one record and one map of every property per CI.
        """
        types = self.registry.ci_relationship_types()
        first = cypher.ci_graph_page(_GRAPH_FIELDS, _TEMPORALS, types, after=False)
        more = cypher.ci_graph_page(_GRAPH_FIELDS, _TEMPORALS, types, after=True)

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
        return _graph([row for page in pages for row in page], None)

    def counts(self) -> dict[str, int]:
        """Node counts per label, per CI class (``"CI:Server"``) and ``"relationships"``.

        Read from the count store (fast at any size); stub nodes are not counted.
        """
        ci_types = self.registry.ci_relationship_types()
        query = cypher.counts(sorted(NODE_SPECS), sorted(self.registry.classes), ci_types)
        rows = self._read(lambda tx: self._rows(tx, query))
        raw = {r["name"]: int(r["n"]) for r in rows}
        out: dict[str, int] = {}
        for label in NODE_SPECS:
            out[label] = raw.get(label, 0) - raw.get(f"{cypher.STUB}:{label}", 0)
        for cls in self.registry.classes:
            n = raw.get(f"CI:{cls}", 0)
            if n:
                out[f"CI:{cls}"] = n
        out["relationships"] = sum(raw.get(f"rel:{t}", 0) for t in ci_types)
        return out
