"""The ``GraphStore`` protocol that both stores implement, and its small value types.

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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Protocol, TypeVar, runtime_checkable

import networkx as nx

from cmdb_graph.model import Asset, ConfigurationItem, Node, Registry, Relationship
from cmdb_graph.model.entities import OperationalStatus, Scalar

__all__ = [
    "Direction",
    "CIFilter",
    "Page",
    "WriteBatch",
    "GraphStore",
    "MAX_PAGE_SIZE",
    "IDENTIFIER_FIELDS",
]

T = TypeVar("T")

#: Largest page a listing returns; larger requests raise TraversalLimitError.
MAX_PAGE_SIZE = 1000

#: CI fields that :meth:`GraphStore.find_cis` can look up through an index.
IDENTIFIER_FIELDS: tuple[str, ...] = (
    "ci_id",
    "native_keys",
    "serial_number",
    "asset_tag",
    "cloud_id",
    "fqdn",
    "hostname",
    "mac_addresses",
    "name",
)


class Direction(StrEnum):
    """Traversal direction, by impact (see the module docstring)."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class CIFilter:
    """Filter for :meth:`GraphStore.list_cis`; every set field must match.

    ``ci_class`` matches the class and its subclasses. ``name_contains`` is case-insensitive.
    ``source`` matches CIs that the data source asserted.
    """

    ci_class: str | None = None
    operational_status: OperationalStatus | None = None
    environment: str | None = None
    support_group: str | None = None
    name_contains: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing sorted by key; ``next_cursor`` is ``None`` on the last page."""

    items: list[T]
    next_cursor: str | None
    total: int


@dataclass(slots=True)
class WriteBatch:
    """Writes applied together by :meth:`GraphStore.apply`.

    Order of application: nodes (any label, CIs included), then relationships. Relationship
    ends may be nodes of the same batch.
    """

    nodes: list[Node] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.nodes) + len(self.relationships)


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
        """A counter that every write made through the store increases; reads never change it.

        Caches of what the store holds (the API engine's whole graph) are keyed on it. The
        embedded store counts in memory; Neo4j keeps the counter in the database, incremented
        inside every write transaction, so every process on one database sees every other's
        writes (see :meth:`cmdb_graph.store.neo4j.Neo4jStore.cache_key` for writes made outside
        cmdb-graph).
        """

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Release connections / flush the snapshot."""

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

    def upsert_nodes(self, nodes: Sequence[Node]) -> None:
        """Shorthand for ``apply(WriteBatch(nodes=list(nodes)))``."""

    def upsert_relationships(self, relationships: Sequence[Relationship]) -> None:
        """Shorthand for ``apply(WriteBatch(relationships=list(relationships)))``."""

    def delete_relationships(self, keys: Iterable[tuple[str, str, str]]) -> int:
        """Delete relationships by ``(rel_type, source, target)``; returns how many existed."""

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
