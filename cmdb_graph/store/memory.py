"""The embedded store: a networkx graph in memory, persisted to a snapshot file.

Layout
------
* CIs are the nodes of one ``networkx.MultiDiGraph`` (node id ``ci_id``); the node's attribute
  dict *is* the CI's lean row (see :mod:`cmdb_graph.store._common`: JSON values, defaults left
  out), so that a CI costs little memory. CI-to-CI relationships are its edges (edge key = the
  relationship type, attributes = the relationship's lean row).
* Nodes of the other labels (Asset, SupportGroup, ...) are dicts ``key -> row`` per label;
  other explicit relationships (e.g. ``HAS_INSTALLED``) are a dict keyed by
  ``(rel_type, source, target)``, indexed by their ends.
* Identifier indexes map each normalised identifier value (lower-cased fqdn and hostname) to
  the CI holding it, or to a set of CIs when several do; they are updated on every upsert.

Reference fields (``support_group``, ``Asset.ci_id``, ...) stay plain fields here; only the
Neo4j store materialises them as relationships.

Persistence
-----------
The snapshot is a pickle (protocol 5) of our own plain data only: dicts, lists, tuples, sets,
strings, numbers, booleans and ``None``. It is read with an unpickler that refuses every global,
so a crafted snapshot cannot make the loader import or call anything. It is written to a
temporary file in the same folder, flushed and fsync'ed, then renamed over the old snapshot with
``os.replace`` and the folder is fsync'ed: a crash mid-write leaves the previous snapshot intact.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from cmdb_graph.errors import CINotFoundError, NotFoundError, StoreError
from cmdb_graph.model import NODE_SPECS, Asset, ConfigurationItem, Node, Registry, Relationship
from cmdb_graph.model.entities import Scalar
from cmdb_graph.store._common import (
    CASELESS_IDENTIFIERS,
    CI_LABEL,
    LIST_IDENTIFIERS,
    PreparedBatch,
    check_depth,
    check_limit,
    check_where,
    class_filter,
    decode_cursor,
    edge_attrs,
    encode_cursor,
    expand_ci,
    field_kinds,
    identifier_value,
    node_from_row,
    prepare_batch,
    rel_from_row,
    traversal_types,
)
from cmdb_graph.store.base import (
    IDENTIFIER_FIELDS,
    CIFilter,
    Direction,
    Page,
    WriteBatch,
)

__all__ = ["MemoryStore", "write_snapshot", "read_snapshot", "SNAPSHOT_FORMAT"]

log = logging.getLogger(__name__)

#: Format tag and version written into every snapshot.
SNAPSHOT_FORMAT = ("cmdb-graph-snapshot", 1)

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

RelKey = tuple[str, str, str]
IndexEntry = str | set[str]


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler of plain data only: any global (class, function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"snapshot refers to {module}.{name}; only plain data allowed")


def write_snapshot(path: Path, payload: Any) -> None:
    """Write ``payload`` to ``path`` atomically (temp file, fsync, ``os.replace``, fsync dir).

    Parameters
    ----------
    path : Path
        The snapshot file; its folder is created when missing.
    payload : object
        Plain data (see the module docstring).

    Raises
    ------
    StoreError
        The file cannot be written; the previous snapshot is left as it was.
    """
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StoreError(f"{path}: cannot write snapshot: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(payload, fh, protocol=5)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        if isinstance(exc, OSError | pickle.PicklingError):
            raise StoreError(f"{path}: cannot write snapshot: {exc}") from exc
        raise


def read_snapshot(path: Path) -> dict[str, Any]:
    """Read a snapshot written by :func:`write_snapshot`.

    Raises
    ------
    StoreError
        The file cannot be read, is truncated or corrupt, or is no cmdb-graph snapshot.
    """
    try:
        with open(path, "rb") as fh:
            data = _PlainUnpickler(io.BufferedReader(fh)).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise StoreError(f"{path}: cannot read snapshot: {exc}") from exc
    if not isinstance(data, dict) or tuple(data.get("format", ())) != SNAPSHOT_FORMAT:
        raise StoreError(f"{path}: not a cmdb-graph snapshot (format {SNAPSHOT_FORMAT[1]})")
    return data


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


class MemoryStore:
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
    ) -> None:
        self.registry = registry if registry is not None else Registry()
        self.snapshot_path = Path(snapshot_path) if snapshot_path is not None else None
        self.autosave = autosave
        self.max_depth = max_depth
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

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Write the snapshot (when there is a snapshot path)."""
        self.save()

    def ping(self) -> None:
        """Always succeeds: the embedded store is in this process."""

    def clear(self) -> None:
        """Delete everything (the snapshot file is rewritten on the next save)."""
        with self._lock:
            self._reset()

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
            self._write(prepared)
            if self.autosave:
                self.save()

    def _write(self, prepared: PreparedBatch) -> None:
        self._version += 1
        g = self._g
        memo: dict[int, tuple[Any, Any]] = {}
        self.generation += 1
        for node in prepared.nodes:
            if node.label == CI_LABEL:
                if node.key in g:
                    attrs = g.nodes[node.key]
                    self._unindex(node.key, attrs)
                    attrs.clear()
                else:
                    g.add_node(node.key)
                    attrs = g.nodes[node.key]
                attrs.update(self._compact(node.row, memo))
                self._index(node.key, node.row)
            else:
                self._nodes[node.label][node.key] = self._compact(node.row, memo)
        for rel in prepared.relationships:
            if rel.source_label == CI_LABEL and rel.target_label == CI_LABEL and (
                self.registry.relationship_types[rel.rel_type].ci_to_ci
            ):
                row = self._compact(rel.row, memo)
                if g.has_edge(rel.source, rel.target, key=rel.rel_type):
                    data = g.edges[rel.source, rel.target, rel.rel_type]
                    data.clear()
                    data.update(row)
                else:
                    g.add_edge(rel.source, rel.target, key=rel.rel_type, **row)
            else:
                if rel.key in self._rels:
                    self._drop_rel(rel.key)
                self._put_rel(rel.key, rel.source_label, rel.target_label,
                              self._compact(rel.row, memo))

    def upsert_nodes(self, nodes: Sequence[Node]) -> None:
        """Shorthand for ``apply(WriteBatch(nodes=list(nodes)))``."""
        self.apply(WriteBatch(nodes=list(nodes)))

    def upsert_relationships(self, relationships: Sequence[Relationship]) -> None:
        """Shorthand for ``apply(WriteBatch(relationships=list(relationships)))``."""
        self.apply(WriteBatch(relationships=list(relationships)))

    def delete_relationships(self, keys: Iterable[tuple[str, str, str]]) -> int:
        """Delete relationships by ``(rel_type, source, target)``; returns how many existed.

        Raises
        ------
        UnknownRelationshipTypeError
            A key names an unknown relationship type.
        """
        wanted = [tuple(k) for k in keys]
        for rel_type, _, _ in wanted:
            self.registry.get_relationship_type(rel_type)
        deleted = 0
        with self._lock:
            self.generation += 1
            for rel_type, source, target in dict.fromkeys(wanted):
                if self._g.has_edge(source, target, key=rel_type):
                    self._g.remove_edge(source, target, key=rel_type)
                    deleted += 1
                elif (rel_type, source, target) in self._rels:
                    self._drop_rel((rel_type, source, target))
                    deleted += 1
        return deleted

    # -- reads ----------------------------------------------------------------------------
    def get_ci(self, ci_id: str) -> ConfigurationItem:
        """The CI; ``CINotFoundError`` when absent."""
        with self._lock:
            if ci_id not in self._g:
                raise CINotFoundError(f"no CI with ci_id {ci_id!r}")
            return self._ci(ci_id)

    def _ci(self, ci_id: str) -> ConfigurationItem:
        ci = node_from_row(CI_LABEL, ci_id, self._g.nodes[ci_id])
        assert isinstance(ci, ConfigurationItem)
        return ci

    def get_cis(self, ci_ids: Sequence[str]) -> dict[str, ConfigurationItem]:
        """The CIs that exist among ``ci_ids``, by id."""
        with self._lock:
            return {i: self._ci(i) for i in dict.fromkeys(ci_ids) if i in self._g}

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
        with self._lock:
            if label == CI_LABEL:
                return dict(self.get_cis(keys))
            rows = self._nodes[label]
            return {k: node_from_row(label, k, rows[k]) for k in dict.fromkeys(keys) if k in rows}

    def find_cis(self, identifiers: Mapping[str, Scalar]) -> list[ConfigurationItem]:
        """CIs matching ANY of the given identifier fields, sorted by ``ci_id``."""
        with self._lock:
            return self._found(identifiers.items())

    def find_cis_bulk(self, field: str, values: Sequence[Scalar]) -> list[ConfigurationItem]:
        """CIs whose identifier ``field`` matches any of ``values``, sorted by ``ci_id``.

        Raises
        ------
        InvalidRecordError
            ``field`` is not one of ``IDENTIFIER_FIELDS``.
        """
        identifier_value(field, None)  # validates the field name
        with self._lock:
            return self._found((field, value) for value in values)

    def _found(self, pairs: Iterable[tuple[str, Scalar]]) -> list[ConfigurationItem]:
        """CIs matching any ``(identifier field, value)`` pair, sorted by ``ci_id`` (locked)."""
        found: set[str] = set()
        for name, value in pairs:
            norm = identifier_value(name, value)
            if norm is None:
                continue
            if name == "ci_id":
                if norm in self._g:
                    found.add(norm)
            else:
                found |= _index_get(self._ix[name], norm)
        return [self._ci(i) for i in sorted(found)]

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
        classes = class_filter(flt, self.registry)
        with self._lock:
            if flt is None:
                ids = self._sorted_ids()
            else:
                ids = sorted(n for n, row in self._g.nodes(data=True)
                             if self._matches(row, flt, classes))
            return self._page(ids, start, limit, self._ci)

    def _sorted_ids(self) -> list[str]:
        """Every ``ci_id``, sorted; cached until the next write (paging a large estate)."""
        if self._sorted is None or self._sorted[0] != self._version:
            self._sorted = (self._version, sorted(self._g))
        return self._sorted[1]

    @staticmethod
    def _page(keys: list[str], start: str | None, limit: int, load: Any) -> Page[Any]:
        import bisect

        pos = 0 if start is None else bisect.bisect_right(keys, start)
        chunk = keys[pos : pos + limit]
        more = pos + limit < len(keys)
        return Page(
            items=[load(k) for k in chunk],
            next_cursor=encode_cursor(chunk[-1]) if more and chunk else None,
            total=len(keys),
        )

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
        defaults = field_kinds(NODE_SPECS[label].model).defaults
        with self._lock:
            if label == CI_LABEL:
                rows: Mapping[str, Mapping[str, Any]] = self._g.nodes
                load: Any = self._ci
            else:
                rows = self._nodes[label]

                def load(k: str) -> Node:
                    return node_from_row(label, k, rows[k])

            keys = sorted(
                k for k in rows
                if all(rows[k].get(f, defaults.get(f)) == v for f, v in filters.items())
            )
            return self._page(keys, start, limit, load)

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
        types = None if rel_types is None else set(rel_types)
        for name in types or ():
            self.registry.get_relationship_type(name)
        check_where(label, None)
        out: list[Relationship] = []
        with self._lock:
            g = self._g
            if ci_id is None:
                edges: Iterable[tuple[str, str, str, dict[str, Any]]] = g.edges(
                    keys=True, data=True
                )
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
                    out.append(rel_from_row(k, s, t, d))
            for key in others:
                if types is None or key[0] in types:
                    sl, tl, row = self._rels[key]
                    out.append(rel_from_row(*key, row, source_label=sl, target_label=tl))
        out.sort(key=lambda r: (r.rel_type, r.source, r.target, r.source_label, r.target_label))
        return out

    def assets_tracking(self, ci_ids: Sequence[str]) -> dict[str, list[Asset]]:
        """The asset records that TRACK each of ``ci_ids``, sorted by ``asset_id`` (one call).

        See :meth:`cmdb_graph.store.base.GraphStore.assets_tracking`; unknown CIs map to an
        empty list.
        """
        out: dict[str, list[Asset]] = {c: [] for c in ci_ids}
        with self._lock:
            rows = self._nodes.get("Asset", {})
            # TRACKS is derived from Asset.ci_id (a reference field): one pass over the assets
            for asset_id in sorted(k for k, row in rows.items() if row.get("ci_id") in out):
                asset = node_from_row("Asset", asset_id, rows[asset_id])
                if isinstance(asset, Asset) and asset.ci_id is not None:
                    out[asset.ci_id].append(asset)
        return out

    # -- graphs ---------------------------------------------------------------------------
    def _reach(
        self,
        seeds: Sequence[str],
        direction: Direction,
        rel_types: Sequence[str] | None,
        depth: int | None,
    ) -> tuple[set[str], set[str]]:
        forward, reverse = traversal_types(self.registry, direction, rel_types)
        fwd, rev = set(forward), set(reverse)
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
        return seen, fwd | rev

    def _subgraph(self, nodes: set[str], types: set[str]) -> nx.MultiDiGraph:
        g = self._g
        out = nx.MultiDiGraph()
        for n in sorted(nodes):
            out.add_node(n, **expand_ci(n, g.nodes[n]))
        for n in sorted(nodes):
            for _, t, k, d in g.out_edges(n, keys=True, data=True):
                if k in types and t in nodes:
                    out.add_edge(n, t, key=k, **edge_attrs(k, d))
        return out

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

        See :meth:`cmdb_graph.store.base.GraphStore.extract_subgraph`; ``both`` follows every
        type in either orientation at each hop.

        Raises
        ------
        CINotFoundError
            An id does not exist.
        TraversalLimitError
            ``depth`` is negative or over ``max_depth``.
        """
        check_depth(depth, self.max_depth)
        with self._lock:
            missing = [i for i in ci_ids if i not in self._g]
            if missing:
                raise CINotFoundError(f"no CI with ci_id {missing[0]!r}")
            nodes, types = self._reach(list(dict.fromkeys(ci_ids)), direction, rel_types, depth)
            return self._subgraph(nodes, types)

    def dependency_graph(self) -> nx.MultiDiGraph:
        """The whole CI graph in the shape of :mod:`cmdb_graph.store.base`."""
        with self._lock:
            return self._subgraph(set(self._g), set(self.registry.ci_relationship_types()))

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
