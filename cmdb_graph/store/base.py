"""The ``GraphStore`` protocol, its small value types, and ``BaseStore``, what both stores share.

One contract test suite (``tests/contract``) runs against every implementation.

Graphs returned by :meth:`GraphStore.extract_subgraph`, :meth:`GraphStore.neighbourhood` and
:meth:`GraphStore.dependency_graph` share one shape, which ``impact/`` relies on:

* ``networkx.MultiDiGraph``; node id = ``ci_id``; node attributes = the CI's fields as
  :func:`cmdb_graph.model.dump_flat` gives them (JSON values: enums as strings, times as ISO
  strings), without lineage;
* edges keep their stored orientation ``source -> target`` (dependent -> what it needs), the
  edge key is the relationship type, and the edge attributes are ``rel_type``, ``optional``,
  ``inferred``, ``evidence`` and ``properties``;
* only CI nodes and CI-to-CI relationship types appear.

Directions follow each relationship type's impact direction (see
:class:`cmdb_graph.model.ImpactDirection`): **upstream** of a CI are the CIs its failure
reaches (its dependents: the blast-radius side); **downstream** are the CIs it needs. For
a type whose impact is ``none``, downstream follows the stored orientation.

The value types live with their job and are re-exported here: :class:`Direction`,
:class:`CIFilter` and ``IDENTIFIER_FIELDS`` in :mod:`cmdb_graph.store.query`, :class:`Page` and
``MAX_PAGE_SIZE`` in :mod:`cmdb_graph.store.paging`, :class:`WriteBatch` in
:mod:`cmdb_graph.store.batch`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import networkx as nx

from cmdb_graph.errors import CINotFoundError, NotFoundError
from cmdb_graph.feed import Actor, ChangeRecord
from cmdb_graph.model import Asset, ConfigurationItem, Node, Registry, Relationship
from cmdb_graph.model.entities import Scalar
from cmdb_graph.store.batch import WriteBatch
from cmdb_graph.store.paging import MAX_PAGE_SIZE, Page, RowPage, check_limit, decode_cursor
from cmdb_graph.store.query import (
    IDENTIFIER_FIELDS,
    CIFilter,
    Direction,
    check_depth,
    check_where,
    class_filter,
    identifier_value,
    traversal_types,
)
from cmdb_graph.store.rows import CI_LABEL, ci_from_row, node_from_row, rel_from_row

__all__ = [
    "Direction",
    "CIFilter",
    "Page",
    "WriteBatch",
    "GraphStore",
    "BaseStore",
    "RelKey",
    "RelRow",
    "MAX_PAGE_SIZE",
    "IDENTIFIER_FIELDS",
    "check_seeds",
]

#: A relationship's key: ``(rel_type, source, target)``.
RelKey = tuple[str, str, str]

#: A relationship as a store reads it: ``(rel_type, source, target, source_label,
#: target_label, row)``.
RelRow = tuple[str, str, str, str, str, Mapping[str, Any]]


@runtime_checkable
class GraphStore(Protocol):
    """What every store serves. Implementations: ``MemoryStore``, ``Neo4jStore``.

    Errors: :class:`~cmdb_graph.errors.InvalidRecordError` (unknown CI class, unknown
    relationship type, relationship end missing, bad values; nothing of the call is written),
    :class:`~cmdb_graph.errors.NotFoundError` / ``CINotFoundError``,
    :class:`~cmdb_graph.errors.TraversalLimitError` (page or depth over the caps),
    :class:`~cmdb_graph.errors.StoreUnavailableError` and ``StoreError`` (wrapped driver errors).
    """

    registry: Registry

    @property
    def generation(self) -> int:
        """A counter that every write made through the store that changes something increases;
        reads never change it.

        Caches of what the store holds (the API engine's whole graph) are keyed on it. The
        embedded store counts in memory (every write); on Neo4j it is the feed head, kept in
        the database and incremented inside every write transaction that records a change, so
        every process on one database sees every other's writes (see
        :meth:`cmdb_graph.store.neo4j.Neo4jStore.cache_key` for writes made outside
        cmdb-graph).
        """

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Release connections (the embedded store's database)."""

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` when the store cannot serve."""

    def clear(self) -> None:
        """Delete everything (tests, demo reset)."""

    # -- writes (idempotent: the same call twice leaves the same state) --------------------
    def apply(self, batch: WriteBatch) -> None:
        """Upsert nodes then relationships, all or nothing where the store allows it.

        An upsert replaces the stored fields of the node/relationship with the given model's
        (the caller, e.g. ingestion, merges first). Neo4j applies one transaction per call up to
        the configured size, beyond that idempotent batches.
        """

    def writes_at_once(self, batch: WriteBatch) -> bool:
        """Whether ``apply(batch)`` is one transaction (all or nothing)."""

    def import_lock(self) -> AbstractContextManager[None]:
        """The store's import lock: one holder at a time across every process on the store.

        An import run holds it from identification to its last write, so two runs never
        identify against data the other is about to change (two runs creating the same host
        from two sources would otherwise each create it). Released when the block ends or
        the holding process dies.
        """

    def upsert_nodes(self, nodes: Sequence[Node]) -> None:
        """Shorthand for ``apply(WriteBatch(nodes=list(nodes)))``."""

    def upsert_relationships(self, relationships: Sequence[Relationship]) -> None:
        """Shorthand for ``apply(WriteBatch(relationships=list(relationships)))``."""

    def delete_relationships(
        self, keys: Iterable[tuple[str, str, str]], *, actor: Actor | None = None
    ) -> int:
        """Delete relationships by ``(rel_type, source, target)``; returns how many existed."""

    # -- the change feed (see cmdb_graph.feed) ----------------------------------------------
    def feed_head(self) -> int:
        """The sequence number of the newest change record (0 before the first write)."""

    def feed_since(self, after: int, *, limit: int = 1000) -> list[ChangeRecord]:
        """Change records with ``seq > after``, oldest first, at most ``limit``.

        Raises
        ------
        FeedGapError
            Records after ``after`` were pruned, or ``after`` is beyond the feed head (the
            store was replaced): the caller must rebuild from the store.
        """

    def prune_feed(self, *, before: datetime | None = None) -> int:
        """Drop the change records written before ``before`` (default: now minus the
        store's ``feed_retention_days``; without retention, none); how many were dropped."""

    # -- reads ----------------------------------------------------------------------------
    def get_ci(self, ci_id: str) -> ConfigurationItem:
        """The CI; ``CINotFoundError`` when absent."""

    def get_cis(self, ci_ids: Sequence[str]) -> dict[str, ConfigurationItem]:
        """The CIs that exist among ``ci_ids``, by id (one round trip; for DataLoaders)."""

    def get_node(self, label: str, key: str) -> Node:
        """A node of any label by key; ``NotFoundError`` when absent."""

    def get_nodes(self, label: str, keys: Sequence[str]) -> dict[str, Node]:
        """The nodes of ``label`` that exist among ``keys``, by key."""

    def assets_tracking(self, ci_ids: Sequence[str]) -> dict[str, list[Asset]]:
        """The asset records that TRACK each of ``ci_ids`` (``Asset.ci_id``), in one call.

        For the API's DataLoader: the assets of a page of CIs cost one store call, not one per
        CI. Returns every requested id (duplicates once) mapped to its assets sorted by
        ``asset_id``; an id no asset tracks, or no CI has, maps to an empty list.
        """

    def find_cis(self, identifiers: Mapping[str, Scalar]) -> list[ConfigurationItem]:
        """CIs matching ANY of the given identifier fields (see ``IDENTIFIER_FIELDS``).

        List fields (``native_keys``, ``mac_addresses``) match when they contain the value.
        ``hostname`` and ``fqdn`` compare case-insensitively. Result sorted by ``ci_id``.
        """

    def find_cis_bulk(self, field: str, values: Sequence[Scalar]) -> list[ConfigurationItem]:
        """CIs whose identifier ``field`` matches ANY of ``values``, in one call.

        The bulk form of :meth:`find_cis` for one field (same matching rules: list fields by
        membership, ``hostname``/``fqdn`` case-insensitive; ``None`` values ignored). Each CI
        once, sorted by ``ci_id``. For ingestion into large stores: one call per identifier
        kind instead of one per record.
        """

    def list_cis(
        self, flt: CIFilter | None = None, *, after: str | None = None, limit: int = 100
    ) -> Page[ConfigurationItem]:
        """CIs sorted by ``ci_id``, after the cursor, at most ``limit`` (<= MAX_PAGE_SIZE)."""

    def list_nodes(
        self,
        label: str,
        *,
        where: Mapping[str, Scalar] | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[Node]:
        """Nodes of a label sorted by key, with equality filters on scalar fields."""

    def relationships(
        self,
        ci_id: str | None = None,
        *,
        rel_types: Sequence[str] | None = None,
        label: str = "CI",
    ) -> list[Relationship]:
        """Relationships touching ``ci_id`` (either end), or all when ``None``; sorted by key."""

    def neighbourhood(
        self,
        ci_id: str,
        *,
        depth: int = 1,
        direction: Direction = Direction.BOTH,
        rel_types: Sequence[str] | None = None,
    ) -> nx.MultiDiGraph:
        """The CIs within ``depth`` hops of ``ci_id`` and the relationships among them."""

    def extract_subgraph(
        self,
        ci_ids: Sequence[str],
        *,
        direction: Direction = Direction.UPSTREAM,
        rel_types: Sequence[str] | None = None,
        depth: int | None = None,
    ) -> nx.MultiDiGraph:
        """The dependency subgraph reachable from ``ci_ids`` (cycles allowed).

        Every node reached within ``depth`` hops (``None``: unbounded) in ``direction`` over
        ``rel_types`` (``None``: every CI-to-CI type), and every relationship of those types
        between two reached nodes. Unknown ids raise ``CINotFoundError``.
        """

    def dependency_graph(self) -> nx.MultiDiGraph:
        """The whole CI graph in the same shape (reports over the estate, exports)."""

    def counts(self) -> dict[str, int]:
        """Node counts per label, per CI class (``"CI:Server"``) and ``"relationships"``."""


def check_seeds(seeds: Sequence[str], found: Iterable[str]) -> None:
    """Raise ``CINotFoundError`` for the first of ``seeds`` that is not in ``found``."""
    have = set(found)
    missing = [s for s in seeds if s not in have]
    if missing:
        raise CINotFoundError(f"no CI with ci_id {missing[0]!r}")


class BaseStore(ABC):
    """What both stores share: argument checks, models from rows, listings, shorthands.

    A store subclasses it and implements :meth:`apply`, the store-wide methods of
    :class:`GraphStore` (``close``, ``ping``, ``clear``, ``generation``, ``dependency_graph``,
    ``counts``) and the primitive reads and writes below, which take checked, normalised
    arguments and deal in lean rows (:mod:`cmdb_graph.store.rows`); this class checks what
    callers ask, builds the models and pages, and sorts results, so every store accepts,
    refuses and answers alike.

    Attributes
    ----------
    registry : Registry
        CI classes and relationship types.
    max_depth : int or None
        Largest traversal depth accepted (``None``: no cap).
    """

    registry: Registry
    max_depth: int | None

    # -- what a store implements ----------------------------------------------------------
    @abstractmethod
    def apply(self, batch: WriteBatch) -> None:
        """See :meth:`GraphStore.apply` (validate with ``prepare_batch``, then write)."""

    @abstractmethod
    def _delete_relationships(self, keys: list[RelKey], actor: Actor | None) -> int:
        """Delete these relationships (distinct keys of known types); how many existed.

        The deletion's change record names ``actor`` (``None``: the system).
        """

    @abstractmethod
    def feed_head(self) -> int:
        """See :meth:`GraphStore.feed_head`."""

    @abstractmethod
    def feed_since(self, after: int, *, limit: int = 1000) -> list[ChangeRecord]:
        """See :meth:`GraphStore.feed_since`."""

    @abstractmethod
    def prune_feed(self, *, before: datetime | None = None) -> int:
        """See :meth:`GraphStore.prune_feed`."""

    @abstractmethod
    def _node_rows(self, label: str, keys: list[str]) -> Mapping[str, Mapping[str, Any]]:
        """The rows of the nodes of ``label`` among ``keys`` (distinct, non-empty), by key."""

    @abstractmethod
    def _ci_rows_matching(
        self, lookups: Mapping[str, Sequence[str]]
    ) -> Mapping[str, Mapping[str, Any]]:
        """The rows of the CIs matching ANY ``field -> normalised values``, by ``ci_id``.

        Values are as :func:`~cmdb_graph.store.query.identifier_value` gives them; list fields
        match by membership, ``hostname``/``fqdn`` against the lower-cased value.
        """

    @abstractmethod
    def _ci_page(
        self, flt: CIFilter | None, classes: set[str] | None, after: str | None, limit: int
    ) -> RowPage:
        """The page of CIs matching ``flt`` after key ``after``, at most ``limit``, by ``ci_id``.

        ``classes`` is the set of classes ``flt.ci_class`` matches (with subclasses), or
        ``None``.
        """

    @abstractmethod
    def _node_page(
        self, label: str, where: Mapping[str, Scalar], after: str | None, limit: int
    ) -> RowPage:
        """The page of nodes of ``label`` whose fields equal ``where`` (checked), after key
        ``after``, at most ``limit``, by key."""

    @abstractmethod
    def _relationship_rows(
        self, ci_id: str | None, types: frozenset[str] | None, label: str
    ) -> Iterable[RelRow]:
        """Explicit relationships of ``types`` (``None``: all) touching the node, or all."""

    @abstractmethod
    def _tracking_rows(self, ci_ids: list[str]) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
        """``(ci_id, asset_id, asset row)`` of the assets tracking ``ci_ids``, by asset_id."""

    @abstractmethod
    def _subgraph(
        self, seeds: list[str], forward: list[str], reverse: list[str], depth: int | None
    ) -> nx.MultiDiGraph:
        """The graph reached from ``seeds`` (distinct; ``CINotFoundError`` when one is absent).

        Each hop follows ``forward`` types along and ``reverse`` types against their stored
        orientation; the graph holds every relationship of those types between reached CIs.
        """

    def _read_guard(self) -> AbstractContextManager[Any]:
        """Held while a primitive reads rows and while those rows are turned into models.

        The embedded store returns its lock (its rows are live dicts that writes change); the
        default holds nothing (Neo4j's rows are copies).
        """
        return nullcontext()

    # -- writes ---------------------------------------------------------------------------
    def upsert_nodes(self, nodes: Sequence[Node]) -> None:
        """Shorthand for ``apply(WriteBatch(nodes=list(nodes)))``."""
        self.apply(WriteBatch(nodes=list(nodes)))

    def upsert_relationships(self, relationships: Sequence[Relationship]) -> None:
        """Shorthand for ``apply(WriteBatch(relationships=list(relationships)))``."""
        self.apply(WriteBatch(relationships=list(relationships)))

    def delete_relationships(
        self, keys: Iterable[tuple[str, str, str]], *, actor: Actor | None = None
    ) -> int:
        """Delete relationships by ``(rel_type, source, target)``; returns how many existed.

        Relationships derived from reference fields are not deleted this way (0 is counted):
        change the field instead. The change record names ``actor`` (``None``: the system).

        Raises
        ------
        UnknownRelationshipTypeError
            A key names an unknown relationship type; nothing is deleted.
        """
        wanted: list[RelKey] = list(dict.fromkeys(
            (rel_type, source, target) for rel_type, source, target in keys
        ))
        for rel_type, _, _ in wanted:
            self.registry.get_relationship_type(rel_type)
        return self._delete_relationships(wanted, actor)

    # -- reads ----------------------------------------------------------------------------
    def get_ci(self, ci_id: str) -> ConfigurationItem:
        """The CI; ``CINotFoundError`` when absent."""
        found = self.get_cis([ci_id])
        if ci_id not in found:
            raise CINotFoundError(f"no CI with ci_id {ci_id!r}")
        return found[ci_id]

    def get_cis(self, ci_ids: Sequence[str]) -> dict[str, ConfigurationItem]:
        """The CIs that exist among ``ci_ids``, by id (one read)."""
        wanted = list(dict.fromkeys(ci_ids))
        if not wanted:
            return {}
        with self._read_guard():
            rows = self._node_rows(CI_LABEL, wanted)
            return {k: ci_from_row(k, rows[k]) for k in wanted if k in rows}

    def get_node(self, label: str, key: str) -> Node:
        """A node of any label by key; ``NotFoundError`` (``CINotFoundError``) when absent."""
        found = self.get_nodes(label, [key])
        if key not in found:
            if label == CI_LABEL:
                raise CINotFoundError(f"no CI with ci_id {key!r}")
            raise NotFoundError(f"no {label} with key {key!r}")
        return found[key]

    def get_nodes(self, label: str, keys: Sequence[str]) -> dict[str, Node]:
        """The nodes of ``label`` that exist among ``keys``, by key (one read).

        Raises
        ------
        InvalidRecordError
            Unknown label.
        """
        check_where(label, None)
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        with self._read_guard():
            rows = self._node_rows(label, wanted)
            return {k: node_from_row(label, k, rows[k]) for k in wanted if k in rows}

    def assets_tracking(self, ci_ids: Sequence[str]) -> dict[str, list[Asset]]:
        """The asset records that TRACK each of ``ci_ids``, sorted by ``asset_id`` (one read).

        See :meth:`GraphStore.assets_tracking`; an unknown CI maps to an empty list.
        """
        out: dict[str, list[Asset]] = {c: [] for c in ci_ids}
        if not out:
            return out
        with self._read_guard():
            for ci_id, asset_id, row in self._tracking_rows(list(out)):
                asset = node_from_row("Asset", asset_id, row)
                if isinstance(asset, Asset):
                    out[ci_id].append(asset)
        return out

    def find_cis(self, identifiers: Mapping[str, Scalar]) -> list[ConfigurationItem]:
        """CIs matching ANY of the given identifier fields, sorted by ``ci_id``.

        Raises
        ------
        InvalidRecordError
            A key is not one of ``IDENTIFIER_FIELDS``.
        """
        lookups: dict[str, list[str]] = {}
        for name, value in identifiers.items():
            norm = identifier_value(name, value)
            if norm is not None:
                lookups[name] = [norm]
        return self._found(lookups)

    def find_cis_bulk(self, field: str, values: Sequence[Scalar]) -> list[ConfigurationItem]:
        """CIs whose identifier ``field`` matches any of ``values``, sorted by ``ci_id``.

        Raises
        ------
        InvalidRecordError
            ``field`` is not one of ``IDENTIFIER_FIELDS``.
        """
        identifier_value(field, None)  # validates the field name
        norms = [n for n in (identifier_value(field, v) for v in values) if n is not None]
        return self._found({field: list(dict.fromkeys(norms))} if norms else {})

    def _found(self, lookups: Mapping[str, Sequence[str]]) -> list[ConfigurationItem]:
        if not lookups:
            return []
        with self._read_guard():
            rows = self._ci_rows_matching(lookups)
            return [ci_from_row(k, rows[k]) for k in sorted(rows)]

    def list_cis(
        self, flt: CIFilter | None = None, *, after: str | None = None, limit: int = 100
    ) -> Page[ConfigurationItem]:
        """CIs sorted by ``ci_id``, after the cursor, at most ``limit``.

        Raises
        ------
        TraversalLimitError
            ``limit`` is over ``MAX_PAGE_SIZE`` or under 1.
        InvalidRecordError
            Malformed cursor.
        UnknownCIClassError
            The filter names an unknown class.
        """
        check_limit(limit)
        start = decode_cursor(after)
        classes = class_filter(flt, self.registry)
        with self._read_guard():
            return self._ci_page(flt, classes, start, limit).page(ci_from_row)

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
            ``limit`` is over ``MAX_PAGE_SIZE`` or under 1.
        InvalidRecordError
            Unknown label or filter field, or a malformed cursor.
        """
        filters = check_where(label, where)
        check_limit(limit)
        start = decode_cursor(after)
        with self._read_guard():
            page = self._node_page(label, filters, start, limit)
            return page.page(lambda key, row: node_from_row(label, key, row))

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

        Raises
        ------
        InvalidRecordError
            Unknown label.
        UnknownRelationshipTypeError
            Unknown relationship type.
        """
        check_where(label, None)
        types = None if rel_types is None else frozenset(rel_types)
        for name in types or ():
            self.registry.get_relationship_type(name)
        with self._read_guard():
            out = [
                rel_from_row(rel_type, source, target, row, source_label=sl, target_label=tl)
                for rel_type, source, target, sl, tl, row in self._relationship_rows(
                    ci_id, types, label
                )
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
        """The dependency subgraph reachable from ``ci_ids`` (cycles allowed).

        See :meth:`GraphStore.extract_subgraph`; ``both`` follows every type in either
        orientation at each hop.

        Raises
        ------
        CINotFoundError
            An id does not exist.
        TraversalLimitError
            ``depth`` is negative or over ``max_depth``.
        UnknownRelationshipTypeError, InvalidRecordError
            A type is unknown or does not join two configuration items.
        """
        check_depth(depth, self.max_depth)
        forward, reverse = traversal_types(self.registry, direction, rel_types)
        seeds = list(dict.fromkeys(ci_ids))
        if not seeds:
            return nx.MultiDiGraph()
        with self._read_guard():
            return self._subgraph(seeds, forward, reverse, depth)
