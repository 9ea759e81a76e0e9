"""Import runs: records in, one atomic write out.

:func:`run_import` works in two phases.

Phase 1 (no writes)
    Materialise every record (so an ``InvalidRecordError`` of the importer surfaces before
    anything is written), validate (unknown CI class or relationship type, bad values: an error
    naming the record's origin), load the candidate CIs and nodes, identify, reconcile, count
    misses and retirements, check the circuit breaker, and build the complete plan.
Phase 2
    Apply the plan with a single ``store.apply(WriteBatch)`` call: atomic in the embedded store;
    one transaction in Neo4j up to its configured size. The batch holds the ``ImportRun`` and the
    ``DataSource`` too, so a run is recorded exactly when its data is.

Candidates are loaded in bulk, never one store round trip per record: when the store holds at
most ``preload_limit`` CIs, every CI and every asset, person, group, location, software product
and entitlement is loaded in pages; beyond that, the source's own CIs are loaded in pages and
other candidates are fetched with one ``find_cis_bulk`` call per identifier kind.

Retirement (full runs only, and only when the whole input was read and planned): each CI the
source asserted before but did not assert in this run gets ``missed_full_runs + 1`` for that
source. It is retired (``operational_status=retired``, never deleted) when that count reaches
``retire_after`` and every *other* source that asserted it has either missed it as many full
runs or let it go stale (its ``last_seen`` older than its ``stale_after_days``). A CI seen again
resets the count, and a CI that retirement (not a source) retired becomes operational again.
The circuit breaker refuses a run that would retire more than ``breaker_share`` of the source's
active CIs, unless forced.
"""

from __future__ import annotations

import gc
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cmdb_graph.errors import (
    ConfigurationError,
    ImportAbortedError,
    InvalidRecordError,
    NotFoundError,
    UnknownCIClassError,
    UnknownRelationshipTypeError,
)
from cmdb_graph.ingest.identify import (
    CIIndex,
    RecordKeys,
    cis_conflict,
    class_group,
    match_rule,
    norm_serial,
    norm_text,
    short_hash,
    slug,
)
from cmdb_graph.ingest.plan import ImportPlan, ImportResult, Merge, PlannedChange, Retirement, Skip
from cmdb_graph.ingest.reconcile import (
    ReconciliationPolicy,
    SourceRanker,
    fast_lineage,
    fast_seen,
    is_empty,
    reconcile_values,
)
from cmdb_graph.model import (
    NODE_SPECS,
    AssetRecord,
    AttributeSource,
    CIRecord,
    ConfigurationItem,
    DataSource,
    EntitlementRecord,
    GroupRecord,
    Identifiers,
    ImportRun,
    Lineage,
    LocationRecord,
    Node,
    OperationalStatus,
    Origin,
    PersonRecord,
    Relationship,
    RelationshipRecord,
    RunMode,
    RunStatus,
    SoftwareRecord,
    SourceSeen,
    utcnow,
)
from cmdb_graph.store.base import MAX_PAGE_SIZE, CIFilter, GraphStore, WriteBatch

__all__ = ["run_import", "DEFAULT_RETIRE_AFTER", "DEFAULT_BREAKER_SHARE", "DEFAULT_PRELOAD_LIMIT"]

log = logging.getLogger(__name__)

#: Consecutive missed full runs after which a CI is retired.
DEFAULT_RETIRE_AFTER = 3
#: Largest share of a source's CIs one run may retire without ``force``.
DEFAULT_BREAKER_SHARE = 0.2
#: Up to this many CIs in the store, a run loads every CI and node up front.
DEFAULT_PRELOAD_LIMIT = 50_000

#: Prefix of the lineage source that marks a status set by retirement (not by a source).
RETIREMENT_PREFIX = "retirement:"

#: Record attribute keys that ingestion owns; a source's value is kept as ``source_<key>``.
RESERVED_FIELDS = frozenset(
    {
        "ci_id",
        "asset_id",
        "group_id",
        "person_id",
        "location_id",
        "product_id",
        "entitlement_id",
        "native_keys",
        "lineage",
        "first_seen",
        "last_seen",
        "duplicate_of",
        "attributes",
        "host_id",
        "ci_class",
        "name",
    }
)

#: Reference fields of other nodes that only ingestion sets (from resolved references).
_REF_FIELDS = frozenset({"ci_id", "holder", "product_id", "assigned_ci_ids",
                         "assigned_person_ids", "groups", "parent_id"})


def _extra(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A record's free attributes, with keys that ingestion owns renamed ``source_<key>``."""
    return {(f"source_{k}" if k in RESERVED_FIELDS or k in _REF_FIELDS else k): v
            for k, v in attributes.items()}


def _values(explicit: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Free attributes overlaid by the record's explicit, non-empty fields."""
    out = _extra(attributes)
    out.update({k: v for k, v in explicit.items() if not is_empty(v)})
    return out


#: CI fields an importer may put in ``attributes`` that are identifiers.
_ID_ATTRS = ("serial_number", "asset_tag", "cloud_id", "fqdn", "hostname", "domain")

_REF_RULES = (
    "native_key",
    "serial_number",
    "asset_tag",
    "cloud_id",
    "fqdn",
    "hostname_domain",
    "name_host",
    "name",
)

N = TypeVar("N", bound=BaseModel)
EntityKey = tuple[str, str]


def _where(origin: Origin | None) -> dict[str, Any]:
    if origin is None:
        return {}
    return {"file": origin.file, "line": origin.line, "record": origin.record}


def _validation_error(exc: ValidationError, origin: Origin | None, what: str) -> InvalidRecordError:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ())) or None
    return InvalidRecordError(f"{what}: invalid value: {err.get('msg')}", field=loc,
                              **_where(origin))


def _json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return getattr(value, "value", value)


def _diff(
    old: BaseModel | None, new: BaseModel, ignore: frozenset[str]
) -> dict[str, tuple[Any, Any]]:
    """Value changes between two versions of a node or relationship (JSON values)."""
    out: dict[str, tuple[Any, Any]] = {}
    for k in type(new).model_fields:
        if k in ignore:
            continue
        a = getattr(old, k) if old is not None else None
        b = getattr(new, k)
        if a == b:
            continue
        if k == "attributes":
            av, bv = a or {}, b or {}
            for ak in sorted(set(av) | set(bv)):
                if av.get(ak) != bv.get(ak):
                    out[f"attributes.{ak}"] = (_json(av.get(ak)), _json(bv.get(ak)))
            continue
        out[k] = (_json(a), _json(b))
    return out


_IGNORE = frozenset({"lineage", "first_seen", "last_seen"})


def _build(
    model: type[N], cur: N | None, updates: Mapping[str, Any], origin: Origin | None, what: str
) -> N:
    """A new model from ``updates`` (validated), or a copy of ``cur`` with the changed fields
    assigned (each assignment validated), which keeps re-runs cheap.

    Raises
    ------
    InvalidRecordError
        A value is invalid; the error names the origin and the field.
    """
    try:
        if cur is None:
            return model.model_validate(updates)
        new = cur.model_copy()
        for f, v in updates.items():
            if getattr(new, f) != v:
                setattr(new, f, v)
        return new
    except ValidationError as exc:
        raise _validation_error(exc, origin, what) from exc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The lineage of a node before any source asserted it (shared: lineages are never mutated).
_NO_LINEAGE = Lineage()


def _oldest(cis: Sequence[ConfigurationItem]) -> ConfigurationItem:
    return min(cis, key=lambda c: (c.first_seen or _EPOCH, c.ci_id))


class _Planner:
    """Phase 1 of one import run: builds the :class:`ImportPlan` without writing."""

    def __init__(
        self,
        store: GraphStore,
        source: DataSource,
        *,
        mode: RunMode,
        retire_after: int,
        breaker_share: float,
        force: bool,
        now: datetime,
        policy: ReconciliationPolicy,
        preload_limit: int,
    ) -> None:
        self.store = store
        self.registry = store.registry
        self.source = source
        self.src = source.name
        self.mode = mode
        self.retire_after = retire_after
        self.breaker_share = breaker_share
        self.force = force
        self.now = now
        self.policy = policy
        self.preload_limit = preload_limit
        self.plan = ImportPlan()
        self.index = CIIndex()
        self.orig_cis: dict[str, ConfigurationItem] = {}
        self.nodes: dict[EntityKey, Node] = {}
        self.orig_nodes: dict[EntityKey, Node] = {}
        self.rels: dict[tuple[str, str, str], Relationship] = {}
        self.orig_rels: dict[tuple[str, str, str], Relationship] = {}
        self.created: set[EntityKey] = set()
        self.touched: dict[EntityKey, Origin | None] = {}
        self.changes: dict[EntityKey, dict[str, tuple[Any, Any]]] = {}
        self.seen_cis: set[str] = set()
        self.losers: set[str] = set()
        self.person_alias: dict[str, str] = {}
        self.asset_keys: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.preload_all = True
        self.preloaded_labels: set[str] = set()
        self.rels_preloaded = False
        self._found_cache: set[tuple[tuple[str, str], ...]] = set()
        self._node_cache: set[EntityKey] = set()
        self._rels_loaded_for: set[str] = set()
        self.ranker: SourceRanker

    # == loading ==========================================================================
    def _pages_nodes(self, label: str, where: Mapping[str, Any] | None = None) -> list[Node]:
        out: list[Node] = []
        after: str | None = None
        while True:
            page = self.store.list_nodes(label, where=where, after=after, limit=MAX_PAGE_SIZE)
            out.extend(page.items)
            if page.next_cursor is None:
                return out
            after = page.next_cursor

    def _pages_cis(self, flt: CIFilter | None) -> list[ConfigurationItem]:
        out: list[ConfigurationItem] = []
        after: str | None = None
        while True:
            page = self.store.list_cis(flt, after=after, limit=MAX_PAGE_SIZE)
            out.extend(page.items)
            if page.next_cursor is None:
                return out
            after = page.next_cursor

    def _keep_ci(self, ci: ConfigurationItem) -> None:
        if ci.ci_id not in self.orig_cis and ci.ci_id not in self.index:
            self.orig_cis[ci.ci_id] = ci
            self.index.put(ci)

    def _keep_node(self, node: Node) -> None:
        k = (node.LABEL, node.key)
        if k in self.nodes:
            return
        self.orig_nodes[k] = node
        self.nodes[k] = node
        if node.LABEL == "Asset":
            self._index_asset(node)
        elif node.LABEL == "Person":
            self._alias_person(node)

    def _keep_rel(self, rel: Relationship) -> None:
        if rel.key not in self.rels:
            self.orig_rels[rel.key] = rel
            self.rels[rel.key] = rel

    def load(self, records: Sequence[Any]) -> None:
        """Load data sources and, up to ``preload_limit`` CIs, every candidate up front.

        Only the node labels (and relationships) that the records can touch are loaded.
        """
        sources: dict[str, DataSource] = {}
        for n in self._pages_nodes("DataSource"):
            assert isinstance(n, DataSource)
            sources[n.name] = n
        sources[self.src] = self.source
        self.ranker = SourceRanker(sources, self.policy, self.registry)
        n_cis = int(self.store.counts().get("CI", 0))
        self.preload_all = n_cis <= self.preload_limit
        if self.preload_all:
            for ci in self._pages_cis(None):
                self._keep_ci(ci)
            labels, rels = _needs(records)
            for label in sorted(labels):
                for node in self._pages_nodes(label):
                    self._keep_node(node)
                self.preloaded_labels.add(label)
            if rels:
                for rel in self.store.relationships(None):
                    self._keep_rel(rel)
                self.rels_preloaded = True
        else:
            for ci in self._pages_cis(CIFilter(source=self.src)):
                self._keep_ci(ci)
            self._prefetch_candidates(records)
        log.debug("import %s: loaded %d CIs (preload_all=%s)", self.src, len(self.index),
                  self.preload_all)

    def _prefetch_candidates(self, records: Sequence[Any]) -> None:
        """Large stores: fetch every CI that shares an identifier with a record or reference.

        One ``find_cis_bulk`` call per identifier kind (instead of one ``find_cis`` per
        identifier set); the identifier sets are then known, so :meth:`_ensure_candidates`
        does not ask again.
        """
        wanted: dict[str, set[Any]] = defaultdict(set)

        def add(ids: Identifiers | None) -> None:
            while ids is not None:
                self._want(RecordKeys.of(ids, self.src), wanted)
                ids = ids.host

        for rec in records:
            if isinstance(rec, CIRecord):
                add(self._effective_ids(rec))
            elif isinstance(rec, RelationshipRecord):
                add(rec.source)
                add(rec.target)
            elif isinstance(rec, AssetRecord):
                add(rec.tracks)
                serial = norm_serial(rec.serial_number)
                if rec.tracks is None and serial:
                    self._want(RecordKeys(serial=serial), wanted)
            elif isinstance(rec, SoftwareRecord):
                add(rec.installed_on)
            elif isinstance(rec, EntitlementRecord):
                for ids in rec.assigned_to_cis:
                    add(ids)
        for field, values in sorted(wanted.items()):
            for ci in self.store.find_cis_bulk(field, sorted(values, key=str)):
                self._keep_ci(ci)

    def _want(self, keys: RecordKeys, wanted: dict[str, set[Any]]) -> None:
        ids = self._lookup_ids(keys)
        if ids:
            self._found_cache.add(tuple(sorted((k, str(v)) for k, v in ids.items())))
            for field, value in ids.items():
                wanted[field].add(value)

    @staticmethod
    def _lookup_ids(keys: RecordKeys) -> dict[str, Any]:
        """The ``find_cis`` identifiers of a record's keys."""
        ids: dict[str, Any] = {}
        if keys.native_key:
            ids["native_keys"] = keys.native_key
        if keys.serial:
            ids["serial_number"] = keys.serial
        if keys.asset_tag:
            ids["asset_tag"] = keys.asset_tag
        if keys.cloud_id:
            ids["cloud_id"] = keys.cloud_id
        if keys.fqdn:
            ids["fqdn"] = keys.fqdn
        if keys.hostname:
            ids["hostname"] = keys.hostname
        if keys.macs:
            ids["mac_addresses"] = keys.macs[0]
        if keys.name:
            ids["name"] = keys.name
        return ids

    def _ensure_candidates(self, keys: RecordKeys) -> None:
        """Large stores: fetch the CIs that share any identifier with ``keys`` (cached)."""
        if self.preload_all:
            return
        ids = self._lookup_ids(keys)
        if not ids:
            return
        ck = tuple(sorted((k, str(v)) for k, v in ids.items()))
        if ck in self._found_cache:
            return
        self._found_cache.add(ck)
        for ci in self.store.find_cis(ids):
            self._keep_ci(ci)

    def _get_node(self, label: str, key: str) -> Node | None:
        k = (label, key)
        if k in self.nodes:
            return self.nodes[k]
        if label in self.preloaded_labels or k in self._node_cache:
            return None
        self._node_cache.add(k)
        found = self.store.get_nodes(label, [key])
        node = found.get(key)
        if node is not None:
            self._keep_node(node)
        return node

    def _get_rel(self, key: tuple[str, str, str]) -> Relationship | None:
        if key in self.rels:
            return self.rels[key]
        if self.rels_preloaded:
            return None
        self._load_rels_of(key[1])
        return self.rels.get(key)

    def _load_rels_of(self, ci_id: str) -> None:
        if self.rels_preloaded or ci_id in self._rels_loaded_for:
            return
        self._rels_loaded_for.add(ci_id)
        for rel in self.store.relationships(ci_id):
            self._keep_rel(rel)

    # == bookkeeping ======================================================================
    def _touch(self, k: EntityKey, origin: Origin | None, changes: Mapping[str, Any]) -> None:
        self.touched.setdefault(k, origin)
        if changes:
            acc = self.changes.setdefault(k, {})
            for attr, (old, new) in changes.items():
                first = acc[attr][0] if attr in acc else old
                if first == new:
                    acc.pop(attr, None)  # changed back within the run
                else:
                    acc[attr] = (first, new)

    def _skip(self, kind: str, reason: str, origin: Origin | None) -> None:
        self.plan.skips.append(Skip(kind, reason, origin))

    def _warn(self, kind: str, reason: str, origin: Origin | None) -> None:
        self.plan.warnings.append(Skip(kind, reason, origin))

    def _seen(self, lineage: Lineage, native_key: str | None) -> Lineage:
        prev = lineage.sources.get(self.src)
        if prev is None:
            seen = fast_seen(self.now, self.now, native_key or None, 0)
        else:
            seen = fast_seen(min(prev.first_seen, self.now), max(prev.last_seen, self.now),
                             native_key or prev.native_key, 0)
            if prev == seen:
                return lineage
        sources = dict(lineage.sources)
        sources[self.src] = seen
        return fast_lineage(sources, lineage.attributes)

    # == validation =======================================================================
    def validate(self, records: Sequence[Any]) -> None:
        """Raise ``InvalidRecordError`` (naming the origin) for the first invalid record."""
        for rec in records:
            origin = getattr(rec, "origin", None)
            if isinstance(rec, CIRecord):
                self._check_class(rec.ci_class, origin, "ci_class")
                self._check_ids(rec.identifiers, origin, "identifiers")
            elif isinstance(rec, RelationshipRecord):
                try:
                    rt = self.registry.get_relationship_type(rec.rel_type)
                except UnknownRelationshipTypeError as exc:
                    raise UnknownRelationshipTypeError(exc.reason, field="rel_type",
                                                       **_where(origin)) from None
                if not rt.ci_to_ci:
                    raise InvalidRecordError(
                        f"relationship type {rec.rel_type!r} does not link two CIs",
                        field="rel_type", **_where(origin))
                self._check_ids(rec.source, origin, "source")
                self._check_ids(rec.target, origin, "target")
            elif isinstance(rec, AssetRecord):
                if rec.tracks is not None:
                    self._check_ids(rec.tracks, origin, "tracks")
            elif isinstance(rec, SoftwareRecord):
                self._check_ids(rec.installed_on, origin, "installed_on")
            elif isinstance(rec, EntitlementRecord):
                for i, ids in enumerate(rec.assigned_to_cis):
                    self._check_ids(ids, origin, f"assigned_to_cis[{i}]")
            elif not isinstance(rec, GroupRecord | PersonRecord | LocationRecord):
                raise InvalidRecordError(f"not an import record: {type(rec).__name__}")

    def _check_class(self, name: str, origin: Origin | None, field: str) -> None:
        try:
            self.registry.get_class(name)
        except UnknownCIClassError as exc:
            raise UnknownCIClassError(exc.reason, field=field, **_where(origin)) from None

    def _check_ids(self, ids: Identifiers, origin: Origin | None, field: str) -> None:
        cur: Identifiers | None = ids
        while cur is not None:
            if cur.ci_class is not None:
                self._check_class(cur.ci_class, origin, f"{field}.ci_class")
            cur = cur.host

    # == references ========================================================================
    def resolve_ref(self, ids: Identifiers, origin: Origin | None) -> tuple[str | None, str]:
        """The ``ci_id`` a reference identifies, or ``(None, reason)``."""
        keys = RecordKeys.of(ids, self.src)
        self._ensure_candidates(keys)
        host_id: str | None = None
        if ids.host is not None:
            host_id, why = self.resolve_ref(ids.host, origin)
            if host_id is None:
                return None, f"host not found ({why})"
        if ids.is_empty():
            return None, "no identifiers"
        for rule in _REF_RULES:
            found = match_rule(self.index, self.registry, rule, keys, ci_class=keys.ci_class,
                               host_id=host_id)
            if rule == "name" and host_id is not None:
                found = [c for c in found if c.host_id == host_id]
            if len(found) == 1:
                return found[0].ci_id, ""
            if len(found) > 1:
                ids_txt = ", ".join(c.ci_id for c in found[:5])
                return None, f"ambiguous: {rule} matches {len(found)} CIs ({ids_txt})"
        return None, f"no CI matches {keys.describe()}"

    def group_ref(self, name: str | None, origin: Origin | None) -> str | None:
        """``group_id`` of a support group by name; created on first sight."""
        name = norm_text(name)
        if name is None:
            return None
        gid = f"grp-{slug(name)}"
        if self._get_node("SupportGroup", gid) is None:
            self.upsert_node("SupportGroup", gid, {"name": name}, origin)
        return gid

    def location_ref(self, name: str | None, origin: Origin | None) -> str | None:
        """``location_id`` of a location by name; created on first sight."""
        name = norm_text(name)
        if name is None:
            return None
        lid = f"loc-{slug(name)}"
        if self._get_node("Location", lid) is None:
            self.upsert_node("Location", lid, {"name": name}, origin)
        return lid

    def person_ref(self, ref: str | None, origin: Origin | None) -> str | None:
        """``person_id`` of a person named by name, username or e-mail; created on first sight."""
        ref = norm_text(ref)
        if ref is None:
            return None
        pid = self.person_alias.get(slug(ref))
        if pid is not None:
            return pid
        pid = f"per-{slug(ref)}"
        if self._get_node("Person", pid) is None:
            self.upsert_node("Person", pid, {"name": ref}, origin)
        return pid

    def product_ref(self, name: str, vendor: str | None, origin: Origin | None) -> str:
        """``product_id`` of a software product; created on first sight."""
        vendor = norm_text(vendor)
        pid = f"sw-{slug(f'{vendor} {name}' if vendor else name)}"
        node = self._get_node("SoftwareProduct", pid)
        if node is None or (vendor and getattr(node, "vendor", None) is None):
            self.upsert_node("SoftwareProduct", pid, {"name": name.strip(), "vendor": vendor},
                             origin)
        return pid

    def _alias_person(self, node: Node) -> None:
        for v in (getattr(node, "username", None), getattr(node, "email", None),
                  getattr(node, "name", None), node.key.removeprefix("per-")):
            if v:
                self.person_alias.setdefault(slug(str(v)), node.key)

    # == generic upserts ==================================================================
    def upsert_node(
        self,
        label: str,
        key: str,
        values: Mapping[str, Any],
        origin: Origin | None,
        *,
        native_key: str | None = None,
        scope: str | None = None,
    ) -> Node:
        """Reconcile ``values`` from this source into node ``(label, key)``; create it if new."""
        spec = NODE_SPECS[label]
        model = spec.model
        fields = model.model_fields
        cur = self._get_node(label, key)
        k = (label, key)
        data: dict[str, Any] = {}
        if cur is None:
            data[spec.key] = key
            if "first_seen" in fields:
                data["first_seen"] = self.now
                data["last_seen"] = self.now
            lineage = _NO_LINEAGE
            current: dict[str, Any] = {}
            old_attrs: dict[str, Any] = {}
            old_keys: list[str] = []
            self.created.add(k)
        else:
            lineage = getattr(cur, "lineage", Lineage())
            current = {f: getattr(cur, f) for f in fields}
            old_attrs = dict(getattr(cur, "attributes", {}) or {})
            current.update(old_attrs)
            old_keys = list(getattr(cur, "native_keys", []))
            if "last_seen" in fields:
                prev = getattr(cur, "last_seen", None)
                data["last_seen"] = max(prev, self.now) if prev else self.now
        taken, lineage = reconcile_values(
            current, lineage, values, source=self.src, asserted_at=self.now,
            scope=scope or label, ranker=self.ranker, now=self.now)
        lineage = self._seen(lineage, native_key)
        attrs = dict(old_attrs)
        for attr, value in taken.items():
            if attr in fields:
                data[attr] = value
            else:
                attrs[attr] = value
        if "attributes" in fields:
            data["attributes"] = attrs
        if "lineage" in fields:
            data["lineage"] = lineage
        if "native_keys" in fields and native_key and native_key not in old_keys:
            data["native_keys"] = sorted({*old_keys, native_key})
        if cur is None and "name" in fields and not data.get("name"):
            data["name"] = key
        node = _build(model, cur, data, origin, f"{label} {key}")
        self.nodes[k] = node
        if label == "Asset":
            self._index_asset(node)
        elif label == "Person":
            self._alias_person(node)
        self._touch(k, origin, _diff(cur, node, _IGNORE) if cur is not None else {})
        return node

    def upsert_rel(
        self,
        rel_type: str,
        source: str,
        target: str,
        values: Mapping[str, Any],
        origin: Origin | None,
        *,
        source_label: str = "CI",
        target_label: str = "CI",
    ) -> Relationship:
        """Reconcile a relationship asserted by this source; create it if new."""
        key = (rel_type, source, target)
        cur = self._get_rel(key)
        k = ("Relationship", f"{rel_type}:{source}->{target}")
        if cur is None:
            data: dict[str, Any] = {
                "rel_type": rel_type, "source": source, "target": target,
                "source_label": source_label, "target_label": target_label,
                "first_seen": self.now, "last_seen": self.now,
            }
            lineage = _NO_LINEAGE
            current: dict[str, Any] = {}
            self.created.add(k)
        else:
            data = {"last_seen": max(cur.last_seen, self.now) if cur.last_seen else self.now}
            lineage = cur.lineage
            current = {f: getattr(cur, f) for f in ("optional", "inferred", "evidence",
                                                     "properties")}
        taken, lineage = reconcile_values(
            current, lineage, values, source=self.src, asserted_at=self.now,
            scope="Relationship", ranker=self.ranker, now=self.now)
        data.update(taken)
        data["lineage"] = self._seen(lineage, None)
        rel = _build(Relationship, cur, data, origin, f"relationship {rel_type}")
        self.rels[key] = rel
        self._touch(k, origin, _diff(cur, rel, _IGNORE) if cur is not None else {})
        return rel

    # == CIs ==============================================================================
    def _effective_ids(self, rec: CIRecord) -> Identifiers:
        ids = rec.identifiers
        update: dict[str, Any] = {}
        for f in _ID_ATTRS:
            v = rec.attributes.get(f)
            if getattr(ids, f) is None and isinstance(v, str) and v.strip():
                update[f] = v
        macs = rec.attributes.get("mac_addresses")
        if not ids.mac_addresses and isinstance(macs, list):
            update["mac_addresses"] = tuple(macs)
        if ids.name is None:
            update["name"] = rec.name
        if ids.ci_class is None:
            update["ci_class"] = rec.ci_class
        return ids.model_copy(update=update) if update else ids

    def _ci_values(self, rec: CIRecord, keys: RecordKeys, host_id: str | None) -> dict[str, Any]:
        o = rec.origin
        values: dict[str, Any] = {
            "name": rec.name.strip(),
            "ci_class": rec.ci_class,
            "serial_number": keys.serial,
            "asset_tag": keys.asset_tag,
            "cloud_id": keys.cloud_id,
            "fqdn": keys.fqdn,
            "hostname": keys.hostname,
            "domain": keys.domain,
            "mac_addresses": list(keys.macs),
            "host_id": host_id,
        }
        refs = {"support_group": rec.support_group, "owner": rec.owner,
                "location_id": rec.location}
        fields = ConfigurationItem.model_fields
        for attr, value in rec.attributes.items():
            if attr in _ID_ATTRS or attr == "mac_addresses":
                continue
            ref = "location_id" if attr == "location" else attr
            if ref in refs:  # a name, resolved like the record's own field
                if refs[ref] is None and isinstance(value, str):
                    refs[ref] = value
                continue
            if attr in RESERVED_FIELDS:
                attr = f"source_{attr}"
            if attr in fields:
                values[attr] = list(value) if isinstance(value, list | tuple) else value
            else:
                values[attr] = ", ".join(map(str, value)) if isinstance(value, list) else value
        values["support_group"] = self.group_ref(refs["support_group"], o)
        values["owner"] = self.person_ref(refs["owner"], o)
        values["location_id"] = self.location_ref(refs["location_id"], o)
        return values

    def ingest_ci(self, rec: CIRecord) -> None:
        """Identify one CI record, merge duplicates, reconcile its values."""
        o = rec.origin
        ids = self._effective_ids(rec)
        keys = RecordKeys.of(ids, self.src)
        self._ensure_candidates(keys)
        host_id: str | None = None
        host_why = ""
        if ids.host is not None:
            host_id, host_why = self.resolve_ref(ids.host, o)
        rules = self.registry.get_class(rec.ci_class).identification
        usable = [r for r in rules if r != "mac_address"
                  and keys.rule_value(r, host_id) is not None]
        if not usable:
            if ids.host is not None and host_id is None:
                self._skip("ci", f"{rec.ci_class} {rec.name!r}: host {host_why}", o)
            else:
                self._skip(
                    "ci",
                    f"{rec.ci_class} {rec.name!r} cannot be identified: the class is identified "
                    f"by {', '.join(rules)} and the record has none of them "
                    f"({keys.describe()})",
                    o,
                )
            return
        found: list[ConfigurationItem] = []
        rule = ""
        for rule in rules:
            found = match_rule(self.index, self.registry, rule, keys, ci_class=rec.ci_class,
                               host_id=host_id)
            if found:
                break
        if found:
            survivor = _oldest(found)
            for other in found:
                field = cis_conflict(survivor, other) if other is not survivor else None
                if field is not None:
                    self._skip(
                        "ci",
                        f"{rec.ci_class} {rec.name!r}: ambiguous, rule {rule} matches "
                        f"{survivor.ci_id} and {other.ci_id}, which differ in {field}",
                        o,
                    )
                    return
            for other in sorted(found, key=lambda c: c.ci_id):
                if other.ci_id != survivor.ci_id:
                    self.merge(survivor.ci_id, other.ci_id, rule, o)
            ci_id = survivor.ci_id
        else:
            ci_id = self._new_ci_id(rec.ci_class, usable[0],
                                    keys.rule_value(usable[0], host_id) or "")
        self.seen_cis.add(ci_id)
        self._apply_ci(ci_id, rec, self._ci_values(rec, keys, host_id), keys.native_key)

    def host_known(self, rec: CIRecord) -> bool:
        """Whether the host of a dependent CI record resolves to a CI already."""
        host = rec.identifiers.host
        return host is None or self.resolve_ref(host, rec.origin)[0] is not None

    def _new_ci_id(self, ci_class: str, rule: str, value: str) -> str:
        base = "ci-" + short_hash(class_group(self.registry, ci_class), rule, value, length=16)
        cand, n = base, 1
        while cand in self.index or (not self.preload_all and self.store.get_cis([cand])):
            n += 1
            cand = f"{base}-{n}"
        return cand

    def _apply_ci(
        self, ci_id: str, rec: CIRecord, values: dict[str, Any], native_key: str | None
    ) -> None:
        o = rec.origin
        cur = self.index.get(ci_id)
        k = ("CI", ci_id)
        fields = ConfigurationItem.model_fields
        if cur is None:
            self.created.add(k)
            data: dict[str, Any] = {"ci_id": ci_id, "name": values["name"],
                                    "ci_class": rec.ci_class, "first_seen": self.now,
                                    "last_seen": self.now}
            lineage = _NO_LINEAGE
            current: dict[str, Any] = {}
            old_attrs: dict[str, Any] = {}
            old_keys: list[str] = []
        else:
            lineage = cur.lineage
            current = {f: getattr(cur, f) for f in fields}
            old_attrs = dict(cur.attributes)
            current.update(old_attrs)
            old_keys = cur.native_keys
            data = {"last_seen": max(cur.last_seen, self.now) if cur.last_seen else self.now}
            held = lineage.attributes.get("operational_status")
            if (cur.operational_status is OperationalStatus.RETIRED and held is not None
                    and held.source.startswith(RETIREMENT_PREFIX)):
                current["operational_status"] = None
                attrs = dict(lineage.attributes)
                del attrs["operational_status"]
                lineage = Lineage.model_construct(sources=lineage.sources, attributes=attrs)
                values.setdefault("operational_status", OperationalStatus.OPERATIONAL.value)
        taken, lineage = reconcile_values(
            current, lineage, values, source=self.src, asserted_at=self.now,
            scope=cur.ci_class if cur is not None else rec.ci_class, ranker=self.ranker,
            now=self.now)
        attrs_extra = dict(old_attrs)
        for attr, value in taken.items():
            if attr in fields:
                data[attr] = value
            else:
                attrs_extra[attr] = value
        data["attributes"] = attrs_extra
        data["lineage"] = self._seen(lineage, native_key)
        if native_key and native_key not in old_keys:
            data["native_keys"] = sorted({*old_keys, native_key})
        ci = _build(ConfigurationItem, cur, data, o, f"{rec.ci_class} {rec.name!r}")
        if cur is None or ci != cur:
            self.index.put(ci)
        self._touch(k, o, _diff(cur, ci, _IGNORE) if cur is not None else {})

    # == merges ===========================================================================
    def merge(self, survivor_id: str, dup_id: str, rule: str, origin: Origin | None) -> None:
        """Merge CI ``dup_id`` into ``survivor_id`` (values by priority, lineage, links)."""
        surv = self.index.get(survivor_id)
        dup = self.index.get(dup_id)
        assert surv is not None and dup is not None
        fields = ConfigurationItem.model_fields
        current: dict[str, Any] = {f: getattr(surv, f) for f in fields}
        current.update(surv.attributes)
        lineage = surv.lineage
        dup_values: dict[str, Any] = {f: getattr(dup, f) for f in fields}
        dup_values.update(dup.attributes)
        skip = {"ci_id", "native_keys", "lineage", "first_seen", "last_seen", "duplicate_of",
                "attributes"}
        for attr, value in sorted(dup_values.items()):
            if attr in skip or is_empty(value):
                continue
            held = dup.lineage.attributes.get(attr)
            src = held.source if held is not None else f"merge:{dup_id}"
            at = held.asserted_at if held is not None else (dup.last_seen or self.now)
            taken, lineage = reconcile_values(
                current, lineage, {attr: value}, source=src, asserted_at=at,
                scope=surv.ci_class, ranker=self.ranker, now=self.now)
            current.update(taken)
        sources = dict(lineage.sources)
        for name, seen in dup.lineage.sources.items():
            mine = sources.get(name)
            if mine is None:
                sources[name] = seen
            else:
                sources[name] = SourceSeen(
                    first_seen=min(mine.first_seen, seen.first_seen),
                    last_seen=max(mine.last_seen, seen.last_seen),
                    native_key=mine.native_key or seen.native_key,
                    missed_full_runs=min(mine.missed_full_runs, seen.missed_full_runs),
                )
        data = surv.model_dump()
        extras = dict(surv.attributes)
        for attr, value in current.items():
            if attr in fields:
                if attr not in skip:
                    data[attr] = value
            else:
                extras[attr] = value
        data["attributes"] = extras
        data["lineage"] = Lineage(sources=sources, attributes=dict(lineage.attributes))
        data["native_keys"] = sorted({*surv.native_keys, *dup.native_keys})
        firsts = [t for t in (surv.first_seen, dup.first_seen) if t is not None]
        lasts = [t for t in (surv.last_seen, dup.last_seen) if t is not None]
        data["first_seen"] = min(firsts) if firsts else None
        data["last_seen"] = max(lasts) if lasts else None
        try:
            new_surv = ConfigurationItem.model_validate(data)
        except ValidationError as exc:
            raise _validation_error(exc, origin, f"merge of {dup_id} into {survivor_id}") from exc
        new_dup = dup.model_copy(update={"duplicate_of": survivor_id})
        self.index.put(new_surv)
        self.index.put(new_dup)
        self.losers.add(dup_id)
        self._touch(("CI", survivor_id), origin, _diff(surv, new_surv, _IGNORE))
        self.plan.merges.append(Merge(survivor_id, dup_id, rule, origin))
        # dependents hosted on the duplicate
        for ci in self.index.values():
            if ci.host_id == dup_id:
                moved = ci.model_copy(update={"host_id": survivor_id})
                self.index.put(moved)
                self._touch(("CI", ci.ci_id), origin, _diff(ci, moved, _IGNORE))
        # assets tracking the duplicate
        if "Asset" not in self.preloaded_labels:
            for node in self._pages_nodes("Asset", where={"ci_id": dup_id}):
                self._keep_node(node)
        for k, node in list(self.nodes.items()):
            if k[0] == "Asset" and getattr(node, "ci_id", None) == dup_id:
                moved_node = node.model_copy(update={"ci_id": survivor_id})
                self.nodes[k] = moved_node
                self._touch(k, origin, _diff(node, moved_node, _IGNORE))
        # relationships of the duplicate move to the survivor
        self._load_rels_of(dup_id)
        for key, rel in list(self.rels.items()):
            if dup_id not in (rel.source, rel.target):
                continue
            s = survivor_id if rel.source == dup_id and rel.source_label == "CI" else rel.source
            t = survivor_id if rel.target == dup_id and rel.target_label == "CI" else rel.target
            if (s, t) == (rel.source, rel.target):
                continue
            del self.rels[key]
            if key in self.orig_rels:
                self.plan.deletes.append(key)
            if s == t:
                continue
            new_key = (rel.rel_type, s, t)
            existing = self._get_rel(new_key)
            moved_rel = rel.model_copy(update={"source": s, "target": t})
            if existing is not None:
                srcs = dict(moved_rel.lineage.sources)
                srcs.update(existing.lineage.sources)
                moved_rel = existing.model_copy(update={"lineage": Lineage(
                    sources=srcs, attributes=dict(existing.lineage.attributes))})
            self.rels[new_key] = moved_rel
            nk = ("Relationship", f"{rel.rel_type}:{s}->{t}")
            if existing is None:
                self.created.add(nk)
            self._touch(nk, origin, {})

    # == other records ====================================================================
    def ingest_group(self, rec: GroupRecord) -> None:
        """A support group by name."""
        values = _values({"name": rec.name.strip(), "email": rec.email,
                          "manager": rec.manager}, rec.attributes)
        self.upsert_node("SupportGroup", f"grp-{slug(rec.name)}", values, rec.origin)

    def ingest_person(self, rec: PersonRecord) -> None:
        """A person; the key comes from the username, else the e-mail, else the name."""
        pid = None
        for v in (rec.username, rec.email, rec.name):
            if v and slug(v) in self.person_alias:
                pid = self.person_alias[slug(v)]
                break
        if pid is None:
            pid = f"per-{slug(rec.username or rec.email or rec.name)}"
        groups = sorted({g for g in (self.group_ref(x, rec.origin) for x in rec.groups) if g})
        values = _values({"name": rec.name.strip(), "email": rec.email,
                          "username": rec.username, "groups": groups}, rec.attributes)
        self.upsert_node("Person", pid, values, rec.origin)

    def ingest_location(self, rec: LocationRecord) -> None:
        """A location; its parent (by name) is created on first sight."""
        parent = self.location_ref(rec.parent, rec.origin)
        values = _values({"name": rec.name.strip(), "kind": rec.kind, "parent_id": parent},
                         rec.attributes)
        self.upsert_node("Location", f"loc-{slug(rec.name)}", values, rec.origin)

    def _index_asset(self, node: Node) -> None:
        for nk in getattr(node, "native_keys", []):
            self.asset_keys[("native_key", nk)].add(node.key)
        tag = getattr(node, "asset_tag", None)
        if tag:
            self.asset_keys[("asset_tag", tag.strip().upper())].add(node.key)
        serial = norm_serial(getattr(node, "serial_number", None))
        if serial:
            self.asset_keys[("serial_number", serial.upper())].add(node.key)

    def _find_asset(self, nk: str | None, tag: str | None, serial: str | None) -> str | None:
        probes = [("native_key", nk), ("asset_tag", tag.upper() if tag else None),
                  ("serial_number", serial.upper() if serial else None)]
        if "Asset" not in self.preloaded_labels:
            where = {"asset_tag": tag, "serial_number": serial}
            for f, v in where.items():
                if v:
                    for node in self._pages_nodes("Asset", where={f: v}):
                        self._keep_node(node)
            if nk:
                self._get_node("Asset", f"ast-{short_hash('native_key', nk, length=16)}")
        for probe in probes:
            if probe[1] is None:
                continue
            ids = self.asset_keys.get((probe[0], probe[1]))
            if ids:
                return sorted(ids)[0]
        return None

    def ingest_asset(self, rec: AssetRecord) -> None:
        """An ITAM asset, identified by native key, asset tag or serial; linked to its CI."""
        o = rec.origin
        nk = f"{self.src}:{rec.native_key.strip()}" if rec.native_key and rec.native_key.strip() \
            else None
        tag = norm_text(rec.asset_tag)
        serial = norm_serial(rec.serial_number)
        if not (nk or tag or serial):
            self._skip("asset", "asset record has no native key, asset tag or serial number", o)
            return
        asset_id = self._find_asset(nk, tag, serial)
        if asset_id is None:
            if nk:
                asset_id = f"ast-{short_hash('native_key', nk, length=16)}"
            elif tag:
                asset_id = f"ast-{short_hash('asset_tag', tag.upper(), length=16)}"
            else:
                assert serial is not None
                asset_id = f"ast-{short_hash('serial_number', serial.upper(), length=16)}"
        ci_id: str | None = None
        if rec.tracks is not None:
            ci_id, why = self.resolve_ref(rec.tracks, o)
            if ci_id is None:
                self._warn("asset", f"asset {asset_id} is linked to no CI: {why}", o)
        elif serial:
            ci_id = self._ci_by_serial(serial)
        values = _values({
            "name": norm_text(rec.name),
            "asset_tag": tag,
            "serial_number": serial,
            "lifecycle_stage": rec.lifecycle_stage,
            "ci_id": ci_id,
            "holder": self.person_ref(rec.holder, o),
            "location_id": self.location_ref(rec.location, o),
        }, rec.attributes)
        self.upsert_node("Asset", asset_id, values, o, native_key=nk)

    def _ci_by_serial(self, serial: str) -> str | None:
        self._ensure_candidates(RecordKeys(serial=serial))
        found = self.index.lookup("serial_number", serial.upper())
        return _oldest(found).ci_id if found else None

    def link_assets_by_serial(self) -> None:
        """Assets without a CI link to a CI this run saw with the same serial number."""
        for k, node in sorted(self.nodes.items()):
            if k[0] != "Asset" or getattr(node, "ci_id", None) is not None:
                continue
            serial = norm_serial(getattr(node, "serial_number", None))
            if not serial:
                continue
            found = [c for c in self.index.lookup("serial_number", serial.upper())
                     if c.ci_id in self.seen_cis]
            if found:
                ci_id = _oldest(found).ci_id
                self.upsert_node("Asset", k[1], {"ci_id": ci_id}, self.touched.get(k))

    def ingest_software(self, rec: SoftwareRecord) -> None:
        """A software installation: a product node and ``HAS_INSTALLED {version}``."""
        o = rec.origin
        ci_id, why = self.resolve_ref(rec.installed_on, o)
        if ci_id is None:
            self._skip("software", f"{rec.product!r}: installed_on: {why}", o)
            return
        pid = self.product_ref(rec.product, rec.vendor, o)
        props: dict[str, Any] = _extra(rec.attributes)
        if rec.version:
            props["version"] = rec.version
        if rec.installed_at is not None:
            props["installed_at"] = rec.installed_at.isoformat()
        self.upsert_rel("HAS_INSTALLED", ci_id, pid, {"properties": props}, o,
                        target_label="SoftwareProduct")

    def ingest_entitlement(self, rec: EntitlementRecord) -> None:
        """A licence entitlement with its product and the CIs and people it is assigned to."""
        o = rec.origin
        nk = f"{self.src}:{rec.native_key.strip()}" if rec.native_key and rec.native_key.strip() \
            else None
        eid = f"ent-{slug(f'{self.src}-{rec.native_key}')}" if nk else f"ent-{slug(rec.name)}"
        pid = self.product_ref(rec.product, rec.vendor, o)
        cis: set[str] = set()
        for ids in rec.assigned_to_cis:
            ci_id, why = self.resolve_ref(ids, o)
            if ci_id is None:
                self._warn("entitlement", f"{rec.name!r}: assignment not applied: {why}", o)
            else:
                cis.add(ci_id)
        people = {p for p in (self.person_ref(x, o) for x in rec.assigned_to_people) if p}
        values = _values({
            "name": rec.name.strip(), "product_id": pid, "seats": rec.seats,
            "expires": rec.expires, "purchase_date": rec.purchase_date, "cost": rec.cost,
            "licensed_to": rec.licensed_to, "assigned_ci_ids": sorted(cis),
            "assigned_person_ids": sorted(people),
        }, rec.attributes)
        self.upsert_node("Entitlement", eid, values, o, native_key=nk)

    def ingest_relationship(self, rec: RelationshipRecord) -> None:
        """A CI-to-CI relationship; skipped when an end cannot be identified."""
        o = rec.origin
        s, why_s = self.resolve_ref(rec.source, o)
        t, why_t = self.resolve_ref(rec.target, o)
        if s is None or t is None:
            end = "source" if s is None else "target"
            self._skip("relationship", f"{rec.rel_type}: {end} end: {why_s or why_t}", o)
            return
        if s == t:
            self._skip("relationship", f"{rec.rel_type}: both ends are {s}", o)
            return
        values: dict[str, Any] = {"optional": rec.optional, "inferred": rec.inferred,
                                  "evidence": rec.evidence, "properties": dict(rec.properties)}
        self.upsert_rel(rec.rel_type, s, t, values, o)

    # == retirement =======================================================================
    def _others_gone(self, ci: ConfigurationItem) -> bool:
        for name, seen in ci.lineage.sources.items():
            if name == self.src:
                continue
            if seen.missed_full_runs >= self.retire_after:
                continue
            ds = self.ranker.sources.get(name)
            if ds is not None and ds.stale_after_days is not None and \
                    seen.last_seen < self.now - timedelta(days=ds.stale_after_days):
                continue
            return False
        return True

    def retire(self) -> None:
        """Count misses of this full run and plan retirements; trip the breaker if needed."""
        active = 0
        for ci in self.index.values():
            seen = ci.lineage.sources.get(self.src)
            if seen is None or ci.duplicate_of is not None:
                continue
            if ci.operational_status is OperationalStatus.RETIRED:
                continue
            active += 1
            if ci.ci_id in self.seen_cis:
                continue
            missed = seen.missed_full_runs + 1
            sources = dict(ci.lineage.sources)
            sources[self.src] = seen.model_copy(update={"missed_full_runs": missed})
            attrs = dict(ci.lineage.attributes)
            update: dict[str, Any] = {}
            self.plan.misses[ci.ci_id] = missed
            if missed >= self.retire_after and self._others_gone(ci):
                update["operational_status"] = OperationalStatus.RETIRED
                attrs["operational_status"] = AttributeSource(
                    source=f"{RETIREMENT_PREFIX}{self.src}", asserted_at=self.now)
                self.plan.retirements.append(Retirement(ci.ci_id, ci.name, missed))
            update["lineage"] = Lineage(sources=sources, attributes=attrs)
            self.index.put(ci.model_copy(update=update))
        self.plan.active = active
        share = len(self.plan.retirements) / active if active else 0.0
        if self.plan.retirements and share > self.breaker_share:
            self.plan.breaker_tripped = True

    # == result ===========================================================================
    def finish(self) -> ImportPlan:
        """Build the write batch, the planned changes and the counters."""
        plan = self.plan
        batch = WriteBatch()
        for ci in self.index.values():
            orig = self.orig_cis.get(ci.ci_id)
            if orig is None or ci != orig:
                batch.nodes.append(ci)
        for k in sorted(self.nodes):
            node = self.nodes[k]
            if self.orig_nodes.get(k) is None or node != self.orig_nodes[k]:
                batch.nodes.append(node)
        for key in sorted(self.rels):
            rel = self.rels[key]
            if self.orig_rels.get(key) is None or rel != self.orig_rels[key]:
                batch.relationships.append(rel)
        plan.batch = batch
        retired = {r.ci_id for r in plan.retirements}
        by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        for k, origin in self.touched.items():
            label = k[0]
            if label == "CI" and k[1] in self.losers:
                continue
            name = self._name_of(k)
            if k in self.created:
                by_kind[label]["created"] += 1
                plan.creates.append(PlannedChange(label, k[1], name, {}, origin))
            elif self.changes.get(k):
                by_kind[label]["updated"] += 1
                plan.updates.append(PlannedChange(label, k[1], name, self.changes[k], origin))
            elif not (label == "CI" and k[1] in retired):
                by_kind[label]["unchanged"] += 1
        for r in plan.retirements:
            by_kind["CI"]["retired"] += 1
            before = self.orig_cis.get(r.ci_id)
            old = before.operational_status.value if before is not None else None
            plan.updates.append(PlannedChange(
                "CI", r.ci_id, r.name, {"operational_status": (old, "retired")}, None))
        by_kind["CI"]["merged"] = len(plan.merges)
        for s in plan.skips:
            by_kind[_SKIP_KIND.get(s.record_type, s.record_type)]["skipped"] += 1
        plan.by_kind = dict(by_kind)
        return plan

    def _name_of(self, k: EntityKey) -> str | None:
        if k[0] == "CI":
            ci = self.index.get(k[1])
            return ci.name if ci is not None else None
        node = self.nodes.get(k)
        return getattr(node, "name", None) if node is not None else None


_SKIP_KIND = {"ci": "CI", "relationship": "Relationship", "asset": "Asset",
              "software": "Relationship", "entitlement": "Entitlement"}


def _resolve_source(store: GraphStore, source: DataSource | str) -> DataSource:
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


def _record_failure(store: GraphStore, run: ImportRun, exc: BaseException) -> ImportRun:
    failed = run.model_copy(update={"status": RunStatus.FAILED, "finished_at": utcnow(),
                                    "error": f"{type(exc).__name__}: {exc}"[:2000]})
    try:
        store.apply(WriteBatch(nodes=[failed]))
    except Exception:  # the original error matters more than the failure record
        log.exception("import %s: could not record failed run %s", run.source, run.run_id)
    return failed


def run_import(
    store: GraphStore,
    records: Iterable[Any],
    *,
    source: DataSource | str,
    importer: str,
    mode: RunMode = RunMode.DELTA,
    dry_run: bool = False,
    force: bool = False,
    retire_after: int = DEFAULT_RETIRE_AFTER,
    breaker_share: float = DEFAULT_BREAKER_SHARE,
    now: datetime | None = None,
    files: Sequence[str | Path] = (),
    policy: ReconciliationPolicy | None = None,
    preload_limit: int = DEFAULT_PRELOAD_LIMIT,
) -> ImportResult:
    """Identify, reconcile and apply one data source's records as one import run.

    Parameters
    ----------
    store : GraphStore
        Where the CMDB lives.
    records : iterable of Record
        What an importer yielded (``CIRecord``, ``RelationshipRecord``, ``AssetRecord``,
        ``GroupRecord``, ``PersonRecord``, ``LocationRecord``, ``SoftwareRecord``,
        ``EntitlementRecord``). Read completely before anything is written.
    source : DataSource or str
        The data source. A name loads the stored ``DataSource`` (or a default one with priority
        50); a ``DataSource`` is upserted as given (its priority and staleness take effect).
    importer : str
        Importer kind, recorded on the ``ImportRun``.
    mode : RunMode
        ``DELTA`` only creates and updates; ``FULL`` also counts misses and retires.
    dry_run : bool
        Plan only; write nothing at all (not even the ImportRun).
    force : bool
        Let a full run through the retirement circuit breaker.
    retire_after : int
        Consecutive missed full runs after which a CI is retired (>= 1).
    breaker_share : float
        Largest share (0..1) of the source's active CIs one run may retire without ``force``.
    now : datetime, optional
        The run's time (UTC); default now. Every time the run writes is this one.
    files : sequence of path
        Input files, recorded on the ``ImportRun``.
    policy : ReconciliationPolicy, optional
        Per class and attribute source orders overriding the priorities.
    preload_limit : int
        Up to this many CIs in the store, every candidate is loaded up front.

    Returns
    -------
    ImportResult
        The run, the data source and the plan with its counts (created, updated, unchanged,
        merged, retired, skipped) and skips with reason and origin.

    Raises
    ------
    InvalidRecordError
        The importer raised one while being read, or a record is invalid (unknown CI class or
        relationship type, a bad value): nothing but a failed ``ImportRun`` is written.
    ImportAbortedError
        The full run would retire more than ``breaker_share`` of the source's CIs and
        ``force`` is false: nothing is written.
    StoreError
        The store failed; the embedded store wrote nothing, Neo4j nothing beyond one
        transaction.

    Notes
    -----
    Any exception raised while reading the records is recorded as a failed run (in its own small
    write) and re-raised; a failed run retires nothing. Dry runs never write.
    """
    if retire_after < 1:
        raise ValueError("retire_after must be at least 1")
    if not 0.0 <= breaker_share <= 1.0:
        raise ValueError("breaker_share must be between 0 and 1")
    now = now or utcnow()
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    ds = _resolve_source(store, source)
    run = ImportRun(
        run_id=f"run-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
        source=ds.name,
        importer=importer,
        mode=mode,
        status=RunStatus.RUNNING,
        started_at=now,
        files=[str(f) for f in files],
    )
    # An import allocates millions of small, long-lived objects (models, rows, lineage); with
    # the cyclic collector on, each full collection walks the whole heap again (the embedded
    # store holds the estate in it). It is paused for the run and restored afterwards.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(store, records, ds=ds, run=run, mode=mode, dry_run=dry_run, force=force,
                    retire_after=retire_after, breaker_share=breaker_share, now=now,
                    policy=policy, preload_limit=preload_limit)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run(
    store: GraphStore,
    records: Iterable[Any],
    *,
    ds: DataSource,
    run: ImportRun,
    mode: RunMode,
    dry_run: bool,
    force: bool,
    retire_after: int,
    breaker_share: float,
    now: datetime,
    policy: ReconciliationPolicy | None,
    preload_limit: int,
) -> ImportResult:
    planner = _Planner(store, ds, mode=mode, retire_after=retire_after,
                       breaker_share=breaker_share, force=force, now=now,
                       policy=policy or ReconciliationPolicy(), preload_limit=preload_limit)
    try:
        recs = list(records)
        planner.validate(recs)
        plan = _plan(planner, recs)
    except ImportAbortedError:
        raise
    except Exception as exc:
        if not dry_run:
            _record_failure(store, run, exc)
        raise
    counts = plan.counts()
    if plan.breaker_tripped and not force and not dry_run:
        n = len(plan.retirements)
        raise ImportAbortedError(
            f"import of {ds.name} refused: this full run would retire {n} of the source's "
            f"{plan.active} CIs ({n / max(plan.active, 1):.0%}), more than the "
            f"{breaker_share:.0%} allowed; check the input or force the run"
        )
    if dry_run:
        done = run.model_copy(update={"status": RunStatus.DRY_RUN, "counts": counts,
                                      "finished_at": now})
        return ImportResult(run=done, source=ds, plan=plan, dry_run=True)
    done = run.model_copy(update={"status": RunStatus.SUCCEEDED, "counts": counts,
                                  "finished_at": now})
    batch = WriteBatch(nodes=[ds, *plan.batch.nodes, done],
                       relationships=list(plan.batch.relationships))
    try:
        store.apply(batch)
    except Exception as exc:
        _record_failure(store, run, exc)
        raise
    if plan.deletes:
        store.delete_relationships(plan.deletes)
    log.info("import %s run %s (%s): %s", ds.name, run.run_id, mode.value, counts)
    return ImportResult(run=done, source=ds, plan=plan, dry_run=False)


def _needs(records: Sequence[Any]) -> tuple[set[str], bool]:
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


def _plan(planner: _Planner, recs: list[Any]) -> ImportPlan:
    planner.load(recs)
    for rec in recs:
        if isinstance(rec, GroupRecord):
            planner.ingest_group(rec)
    for rec in recs:
        if isinstance(rec, PersonRecord):
            planner.ingest_person(rec)
    for rec in recs:
        if isinstance(rec, LocationRecord):
            planner.ingest_location(rec)
    # CIs without a host first, then dependents whose host is known, pass after pass (a host
    # may itself be a dependent CI of the same run); what stays unresolved is handled last.
    pending: list[CIRecord] = []
    for rec in recs:
        if isinstance(rec, CIRecord):
            if rec.identifiers.host is None:
                planner.ingest_ci(rec)
            else:
                pending.append(rec)
    while pending:
        waiting = [r for r in pending if not planner.host_known(r)]
        if len(waiting) == len(pending):
            # stuck: hosts that are missing themselves; take those others are hosted on first
            wanted = {r.identifiers.host.native_key for r in pending
                      if r.identifiers.host is not None and r.identifiers.host.native_key}
            hosts = [r for r in pending if r.identifiers.native_key in wanted]
            for rec in hosts or pending:
                planner.ingest_ci(rec)
            if not hosts:
                break
            pending = [r for r in pending if r.identifiers.native_key not in wanted]
            continue
        for rec in pending:
            if planner.host_known(rec):
                planner.ingest_ci(rec)
        pending = waiting
    for rec in recs:
        if isinstance(rec, AssetRecord):
            planner.ingest_asset(rec)
    planner.link_assets_by_serial()
    for rec in recs:
        if isinstance(rec, SoftwareRecord):
            planner.ingest_software(rec)
        elif isinstance(rec, EntitlementRecord):
            planner.ingest_entitlement(rec)
        elif isinstance(rec, RelationshipRecord):
            planner.ingest_relationship(rec)
    if planner.mode is RunMode.FULL:
        planner.retire()
    return planner.finish()
