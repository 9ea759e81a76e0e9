"""Candidates: the one place where ingestion reads the store.

What a run (or an API mutation resolving references) may match against is read here, in bulk,
and put into the run's :class:`~cmdb_graph.ingest.workset.WorkSet` as originals; every other
module of ingestion works on the working set alone.

Two ways to load, chosen per run by the number of CIs in the store:

* up to ``preload_limit`` CIs: every CI, and every node of the labels the records can touch
  (and every relationship when the records hold relationships or software), in pages;
* beyond: every CI that shares an identifier with a record or a reference of the run (and,
  for the ``name_system`` rule, the CIs named after a record's service or
  ``<system>/<service>``), with one ``find_cis_bulk`` call per identifier kind
  (:func:`wanted_identifiers` computes them from the records, before any read); a full run
  (which counts the misses of every CI the source asserted) also reads the source's own CIs in
  pages. A delta run does not: it costs what its records name, not what the source ever
  reported. What the run asks for later (a node by key, the relationships of a CI, the assets
  with a serial number, the source's CIs when a merge moves a duplicate's dependents) is
  fetched once and remembered.

Lookups for a key the run has already asked about never go back to the store.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from cmdb_graph.errors import ConfigurationError, NotFoundError
from cmdb_graph.ingest.identify import RecordKeys, norm_serial, record_identifiers
from cmdb_graph.ingest.workset import RelKey, WorkSet
from cmdb_graph.model import (
    AssetRecord,
    CIRecord,
    DataSource,
    EntitlementRecord,
    GroupRecord,
    Identifiers,
    LocationRecord,
    Node,
    PersonRecord,
    Registry,
    Relationship,
    RelationshipRecord,
    SoftwareRecord,
)
from cmdb_graph.store import iter_cis, iter_nodes
from cmdb_graph.store.base import CIFilter, GraphStore

__all__ = [
    "Candidates",
    "labels_needed",
    "lookup_identifiers",
    "stored_source",
    "wanted_identifiers",
]

log = logging.getLogger(__name__)


def stored_source(store: GraphStore, source: DataSource | str) -> DataSource:
    """The data source of a run: as given, as stored under that name, or a default one.

    Raises
    ------
    ConfigurationError
        The name is not a valid data source name.
    """
    if isinstance(source, DataSource):
        return source
    try:
        node = store.get_node("DataSource", source)
    except NotFoundError:
        try:
            return DataSource(name=source)
        except ValidationError as exc:
            raise ConfigurationError(
                f"invalid data source name {source!r}: use letters, digits, '_', '.', '-'"
            ) from exc
    assert isinstance(node, DataSource)
    return node


def lookup_identifiers(keys: RecordKeys) -> dict[str, Any]:
    """The ``find_cis`` identifiers of a record's (or reference's) normalised keys."""
    pairs = (("native_keys", keys.native_key), ("serial_number", keys.serial),
             ("asset_tag", keys.asset_tag), ("cloud_id", keys.cloud_id), ("fqdn", keys.fqdn),
             ("hostname", keys.hostname), ("mac_addresses", keys.macs[0] if keys.macs else None),
             ("name", keys.name))
    return {field: value for field, value in pairs if value}


def service_names(keys: RecordKeys) -> list[str]:
    """Other names a CI of the record's service may carry in the store: the service's short
    name and ``<system>/<service>`` (a Kubernetes workload's name when its system is its
    namespace), for the ``name_system`` rule."""
    if not keys.service and not keys.system:
        return []
    service = keys.service or keys.name
    if not service:
        return []
    names = [service] + ([f"{keys.system}/{service}"] if keys.system else [])
    return [n for n in names if n != keys.name]


def _cache_key(ids: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in ids.items()))


def _referenced(rec: Any) -> Iterator[Identifiers | None]:
    """The identifiers a record is identified by or refers to (hosts not included)."""
    if isinstance(rec, CIRecord):
        yield record_identifiers(rec)
    elif isinstance(rec, RelationshipRecord):
        yield rec.source
        yield rec.target
    elif isinstance(rec, AssetRecord):
        yield rec.tracks
    elif isinstance(rec, SoftwareRecord):
        yield rec.installed_on
    elif isinstance(rec, EntitlementRecord):
        yield from rec.assigned_to_cis


def wanted_identifiers(records: Iterable[Any], source: str) -> Iterator[RecordKeys]:
    """The normalised keys of every CI the records name, hosts included, in record order.

    Pure: the identifiers a run can match on are known before it reads the store. An asset
    without ``tracks`` is looked up by its serial number.
    """
    for rec in records:
        for ids in _referenced(rec):
            while ids is not None:
                yield RecordKeys.of(ids, source)
                ids = ids.host
        if isinstance(rec, AssetRecord) and rec.tracks is None:
            serial = norm_serial(rec.serial_number)
            if serial:
                yield RecordKeys(serial=serial)


def labels_needed(records: Sequence[Any]) -> tuple[set[str], bool]:
    """The node labels, and whether relationships, a run of these records can touch."""
    labels: set[str] = set()
    rels = False
    for r in records:
        if isinstance(r, CIRecord):
            if r.support_group:
                labels.add("SupportGroup")
            if r.owner:
                labels.add("Person")
            if r.location:
                labels.add("Location")
            if r.identifiers.serial_number or r.attributes.get("serial_number"):
                labels.add("Asset")  # assets without a CI link to CIs by serial number
        elif isinstance(r, AssetRecord):
            labels.add("Asset")
            if r.holder:
                labels.add("Person")
            if r.location:
                labels.add("Location")
        elif isinstance(r, GroupRecord):
            labels.add("SupportGroup")
        elif isinstance(r, PersonRecord):
            labels.update(("Person", "SupportGroup") if r.groups else ("Person",))
        elif isinstance(r, LocationRecord):
            labels.add("Location")
        elif isinstance(r, SoftwareRecord):
            labels.add("SoftwareProduct")
            rels = True
        elif isinstance(r, EntitlementRecord):
            labels.update(("Entitlement", "SoftwareProduct"))
            if r.assigned_to_people:
                labels.add("Person")
        elif isinstance(r, RelationshipRecord):
            rels = True
    return labels, rels


class Candidates:
    """Reads what a run can match from the store into its working set, once.

    Parameters
    ----------
    store : GraphStore
        The store read from (never written).
    ws : WorkSet
        Where what is read goes (as originals).
    preload_limit : int
        Up to this many CIs in the store, :meth:`load` reads every candidate up front.

    Notes
    -----
    Until :meth:`load` decides otherwise, every lookup is fetched on demand (what an API
    mutation resolving a few references needs).
    """

    def __init__(self, store: GraphStore, ws: WorkSet, *, preload_limit: int = 0) -> None:
        self.store = store
        self.ws = ws
        self.preload_limit = preload_limit
        self.preload_all = False
        self._labels: set[str] = set()
        self._all_rels = False
        self._found: set[tuple[tuple[str, str], ...]] = set()
        self._nodes_asked: set[tuple[str, str]] = set()
        self._rels_of: set[str] = set()
        self._where_asked: set[tuple[str, str, str]] = set()
        self._sources_read: set[str] = set()

    @property
    def registry(self) -> Registry:
        """The store's registry."""
        return self.store.registry

    # -- up front -------------------------------------------------------------------------
    def data_sources(self, own: DataSource) -> dict[str, DataSource]:
        """Every stored data source by name, ``own`` as given."""
        sources: dict[str, DataSource] = {}
        for n in iter_nodes(self.store, "DataSource"):
            assert isinstance(n, DataSource)
            sources[n.name] = n
        sources[own.name] = own
        return sources

    def load(self, records: Sequence[Any], source: str, *, whole_source: bool = False) -> None:
        """Read the candidates of a run's records (see the module docstring).

        Parameters
        ----------
        records : sequence of Record
            The run's records.
        source : str
            The name of the run's data source.
        whole_source : bool
            Also read every CI the source asserted (a full run, which counts their misses);
            only read beyond the preload limit, where not every CI is read anyway.
        """
        count_cis = getattr(self.store, "count_cis", None)  # the embedded store: O(1)
        n_cis = (int(count_cis()) if callable(count_cis)
                 else int(self.store.counts().get("CI", 0)))
        self.preload_all = n_cis <= self.preload_limit
        if self.preload_all:
            for ci in iter_cis(self.store, None):
                self.ws.keep_ci(ci)
            labels, rels = labels_needed(records)
            for label in sorted(labels):
                for node in iter_nodes(self.store, label):
                    self.ws.keep_node(node)
                self._labels.add(label)
            if rels:
                for rel in self.store.relationships(None):
                    self.ws.keep_rel(rel)
                self._all_rels = True
        else:
            if whole_source:
                self.source_cis(source)
            self.prefetch(wanted_identifiers(records, source))
        log.debug("import %s: loaded %d CIs (preload_all=%s)", source, len(self.ws.index),
                  self.preload_all)

    def prefetch(self, wanted: Iterable[RecordKeys]) -> None:
        """Read every CI that shares an identifier with one of ``wanted``.

        One ``find_cis_bulk`` call per identifier kind; the identifier sets are remembered, so
        :meth:`cis_for` does not ask for them again.
        """
        by_field: dict[str, set[Any]] = defaultdict(set)
        for keys in wanted:
            ids = lookup_identifiers(keys)
            if ids:
                self._found.add(_cache_key(ids))
                for field, value in ids.items():
                    by_field[field].add(value)
            if len(keys.macs) > 1:  # the index matches any of them, find_cis the first
                by_field["mac_addresses"].update(keys.macs)
            names = service_names(keys)
            if names:
                by_field["name"].update(names)
        for field, values in sorted(by_field.items()):
            for ci in self.store.find_cis_bulk(field, sorted(values, key=str)):
                self.ws.keep_ci(ci)

    # -- on demand ------------------------------------------------------------------------
    def source_cis(self, source: str) -> None:
        """Read every CI that ``source`` asserted (once; nothing when every CI was read)."""
        if self.preload_all or source in self._sources_read:
            return
        self._sources_read.add(source)
        for ci in iter_cis(self.store, CIFilter(source=source)):
            self.ws.keep_ci(ci)

    def cis_for(self, keys: RecordKeys) -> None:
        """Read the CIs that share any identifier with ``keys`` (once per identifier set)."""
        if self.preload_all:
            return
        ids = lookup_identifiers(keys)
        if not ids:
            return
        ck = _cache_key(ids)
        if ck in self._found:
            return
        self._found.add(ck)
        for ci in self.store.find_cis(ids):
            self.ws.keep_ci(ci)
        if len(keys.macs) > 1:
            for ci in self.store.find_cis_bulk("mac_addresses", keys.macs[1:]):
                self.ws.keep_ci(ci)
        names = service_names(keys)
        if names:
            for ci in self.store.find_cis_bulk("name", names):
                self.ws.keep_ci(ci)

    def ci_id_taken(self, ci_id: str) -> bool:
        """Whether a CI with this id exists (in the run or the store)."""
        if ci_id in self.ws.index:
            return True
        return not self.preload_all and bool(self.store.get_cis([ci_id]))

    def node(self, label: str, key: str) -> Node | None:
        """A node of the run, else of the store (each key asked for once)."""
        k = (label, key)
        if k in self.ws.nodes:
            return self.ws.nodes[k]
        if label in self._labels or k in self._nodes_asked:
            return None
        self._nodes_asked.add(k)
        node = self.store.get_nodes(label, [key]).get(key)
        if node is not None:
            self.ws.keep_node(node)
        return node

    def get(self, label: str, key: str) -> Node | None:
        """A CI of the run (CIs are read before they are asked for), or :meth:`node`."""
        if label == "CI":
            return self.ws.index.get(key)
        return self.node(label, key)

    def nodes_where(self, label: str, field: str, value: str) -> None:
        """Read the nodes of ``label`` whose ``field`` equals ``value`` (once per question)."""
        q = (label, field, value)
        if label in self._labels or q in self._where_asked:
            return
        self._where_asked.add(q)
        for node in iter_nodes(self.store, label, where={field: value}):
            self.ws.keep_node(node)

    def rel(self, key: RelKey) -> Relationship | None:
        """A relationship of the run, else of the store."""
        if key in self.ws.rels:
            return self.ws.rels[key]
        if self._all_rels:
            return None
        self.rels_of(key[1])
        return self.ws.rels.get(key)

    def rels_of(self, ci_id: str) -> None:
        """Read every relationship touching ``ci_id`` (once)."""
        if self._all_rels or ci_id in self._rels_of:
            return
        self._rels_of.add(ci_id)
        for rel in self.store.relationships(ci_id):
            self.ws.keep_rel(rel)
