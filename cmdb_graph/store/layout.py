"""The embedded store's in-memory layout: a networkx graph of lean rows and its indexes.

* CIs are the nodes of one ``networkx.MultiDiGraph`` (node id ``ci_id``); the node's attribute
  dict *is* the CI's lean row (see :mod:`cmdb_graph.store.rows`: JSON values, defaults left
  out), so that a CI costs little memory. CI-to-CI relationships are its edges (edge key = the
  relationship type, attributes = the relationship's lean row).
* Nodes of the other labels (Asset, SupportGroup, ...) are dicts ``key -> row`` per label;
  other explicit relationships (e.g. ``HAS_INSTALLED``) are a dict keyed by
  ``(rel_type, source, target)``, indexed by their ends.
* Identifier indexes map each normalised identifier value (lower-cased fqdn and hostname) to
  the CI holding it, or to a set of CIs when several do; they are updated on every upsert.
  Value indexes do the same for the fields of other labels in
  :data:`~cmdb_graph.store.query.INDEXED_NODE_FIELDS` (a run's ``ImportRun.status`` lookup
  costs the runs it finds, not every run ever stored).

:class:`EstateGraph` holds the layout and its primitive changes (a row written, removed, a
change record applied); :class:`~cmdb_graph.store.memory.MemoryStore` adds the store's API,
its locking and its database.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import networkx as nx

from cmdb_graph.errors import StoreError
from cmdb_graph.feed import (
    ChangeRecord,
    NodeChange,
    RelChange,
    apply_node,
    apply_rel,
    node_change,
    rel_change,
)
from cmdb_graph.model import NODE_SPECS, Registry
from cmdb_graph.store.adjacency import drop_edge, put_edge, put_edge_dicts
from cmdb_graph.store.base import RelKey, RelRow
from cmdb_graph.store.query import (
    CASELESS_IDENTIFIERS,
    IDENTIFIER_FIELDS,
    INDEXED_NODE_FIELDS,
    LIST_IDENTIFIERS,
)
from cmdb_graph.store.rows import CI_LABEL, RowMemo, field_kinds

__all__ = ["EstateGraph", "IndexEntry", "created_change", "index_get"]

_INDEXED = tuple(f for f in IDENTIFIER_FIELDS if f != "ci_id")
_SCALAR_IX = tuple(
    (f, f in CASELESS_IDENTIFIERS) for f in _INDEXED if f not in LIST_IDENTIFIERS
)
_LIST_IX = tuple(f for f in _INDEXED if f in LIST_IDENTIFIERS)

#: Lineage values shared between rows (see ``EstateGraph._compact``); bounded.
_SHARED_LIMIT = 200_000
#: Row fields with few distinct values, interned so that all rows share one string.
_INTERNED = (
    "ci_class", "operational_status", "environment", "domain", "manufacturer", "model",
    "os_name", "os_version", "version", "support_group", "owner", "location_id",
    "first_seen", "last_seen", "lifecycle_stage", "currency", "category", "kind", "state",
)

IndexEntry = str | set[str]
#: ``field -> value -> keys`` of one label's indexed fields.
ValueIndex = dict[str, dict[Any, set[str]]]


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


def index_get(index: dict[str, IndexEntry], value: str) -> set[str]:
    """The CIs holding ``value`` in one identifier index."""
    cur = index.get(value)
    if cur is None:
        return set()
    return {cur} if isinstance(cur, str) else set(cur)


class EstateGraph:
    """The in-memory layout of the embedded store (see the module docstring).

    Not thread-safe: the store calls it under its lock. Rows are never changed in place
    (a write replaces a node's row, an edge's attributes are replaced through
    :mod:`cmdb_graph.store.adjacency`), so change records and the engine's graph
    (:meth:`~cmdb_graph.store.memory.MemoryStore.lean_dependency_graph`) may reference them.

    Attributes
    ----------
    registry : Registry
        Tells which relationship types are edges of the CI graph.
    """

    registry: Registry
    #: Sequence number of the last change record applied to the graph.
    _seq: int

    def _reset(self) -> None:
        """Empty the graph (counters carry on)."""
        self._generation: int = getattr(self, "_generation", 0) + 1
        self._g: nx.MultiDiGraph = nx.MultiDiGraph()
        self._nodes: dict[str, dict[str, dict[str, Any]]] = {
            label: {} for label in NODE_SPECS if label != CI_LABEL
        }
        self._rels: dict[RelKey, tuple[str, str, dict[str, Any]]] = {}
        self._rels_by_node: dict[tuple[str, str], set[RelKey]] = {}
        self._ix: dict[str, dict[str, IndexEntry]] = {name: {} for name in _INDEXED}
        self._vix: dict[str, ValueIndex] = {
            label: {f: {} for f in fields} for label, fields in INDEXED_NODE_FIELDS.items()
        }
        self._shared: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._version = getattr(self, "_version", 0) + 1
        self._sorted: tuple[int, list[str]] | None = None

    #: The attributes :meth:`_state` holds: everything the graph is, but caches.
    _STATE = ("_g", "_nodes", "_rels", "_rels_by_node", "_ix", "_vix")

    def _state(self) -> dict[str, Any]:
        """The graph and its indexes, as a checkpoint holds them (shared, not copied)."""
        return {name: getattr(self, name) for name in self._STATE}

    def _set_state(self, state: dict[str, Any]) -> None:
        """Take over a :meth:`_state` (counters carry on, caches start empty).

        Raises
        ------
        KeyError
            ``state`` lacks one of the attributes.
        """
        values = [state[name] for name in self._STATE]
        self._reset()
        for name, value in zip(self._STATE, values, strict=True):
            setattr(self, name, value)

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

    def _everything(self) -> tuple[list[NodeChange], list[RelChange]]:
        """Changes that create every node and relationship the graph holds."""
        nodes = [NodeChange(*created_change(label, key, row))
                 for label, rows in [(CI_LABEL, self._g.nodes), *self._nodes.items()]
                 for key, row in rows.items()]
        rels = [c for c in (rel_change((t, s, d), (sl, dl), None, row)
                            for t, s, d, sl, dl, row in self._relationship_rows(None, None, ""))
                if c is not None]
        return nodes, rels

    def _load(self, data: Mapping[str, Any], origin: object) -> None:
        """Load an old snapshot's payload (read from ``origin``) into the (empty) graph."""
        self._generation += 1
        try:
            for ci_id, row in data["cis"].items():
                self._g.add_node(ci_id)
                self._g.nodes[ci_id].update(row)
                self._index(ci_id, row)
            for s, t, k, d in data["ci_edges"]:
                put_edge(self._g, s, t, k, dict(d))
            for label, rows in data["nodes"].items():
                self._nodes.setdefault(label, {}).update(rows)
                for key, row in rows.items():
                    self._value_index(label, key, row, None)
            for key, (sl, tl, row) in data["rels"].items():
                self._put_rel(tuple(key), sl, tl, row)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{origin}: malformed snapshot: {exc}") from exc

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
        # the loops of ``_index_values``, inlined: this runs for every CI at start
        ix = self._ix
        for name, caseless in _SCALAR_IX:
            value = row.get(name)
            if value is not None:
                _index_add(ix[name], value.lower() if caseless else value, ci_id)
        for name in _LIST_IX:
            items = row.get(name)
            if items:
                index = ix[name]
                for item in items:
                    _index_add(index, item, ci_id)

    def _unindex(self, ci_id: str, row: Mapping[str, Any]) -> None:
        for name, value in self._index_values(row):
            _index_remove(self._ix[name], value, ci_id)

    def _value_index(self, label: str, key: str, new: Mapping[str, Any] | None,
                     old: Mapping[str, Any] | None) -> None:
        """Move ``key`` from its old row's values to its new row's in ``label``'s value index."""
        vix = self._vix.get(label)
        if vix is None:
            return
        defaults = field_kinds(NODE_SPECS[label].model).defaults
        for f, index in vix.items():
            was = old.get(f, defaults.get(f)) if old is not None else None
            now = new.get(f, defaults.get(f)) if new is not None else None
            if old is not None and new is not None and was == now:
                continue
            if old is not None and isinstance(was, str | int | float | bool | None):
                keys = index.get(was)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[was]
            if new is not None and isinstance(now, str | int | float | bool | None):
                index.setdefault(now, set()).add(key)

    def _indexed_keys(self, label: str, where: Mapping[str, Any]) -> set[str] | None:
        """The keys of ``label`` with one of ``where``'s values, through a value index
        (the smallest); ``None`` when no field of ``where`` is indexed."""
        vix = self._vix.get(label)
        if not vix:
            return None
        found: set[str] | None = None
        for f, v in where.items():
            index = vix.get(f)
            if index is None:
                continue
            keys = index.get(v, set())
            if found is None or len(keys) < len(found):
                found = keys
        return found

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

    def _compact(self, row: dict[str, Any], memo: dict[int, tuple[Any, Any]] | None = None,
                 *, shared: bool = False) -> dict[str, Any]:
        """Save memory: share lineage entries, intern low-cardinality strings.

        Lineage repeats the same ``{source, asserted_at}`` entries across every CI of an import
        run; one dict per distinct entry serves them all. ``shared``: the row's attribute
        entries are already shared and their names interned (rows decoded with one ``stamps``
        dict, see :func:`cmdb_graph.store.rows.decode_row`).
        """
        lineage = row.get("lineage")
        if lineage:
            out: dict[str, Any] = {}
            for part, entries in lineage.items():
                if part == "attributes" and shared:
                    out[part] = entries
                elif part == "attributes":
                    attrs: dict[str, Any] = {}
                    for n, e in entries.items():
                        # rows of one batch share entry objects: share each once (by id)
                        hit = memo.get(id(e)) if memo is not None else None
                        if hit is None or hit[0] is not e:
                            hit = (e, self._share(e))
                            if memo is not None:
                                memo[id(e)] = hit
                        attrs[sys.intern(n)] = hit[1]
                    out[part] = attrs
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

    def _existing(self, label: str, keys: set[str]) -> set[str]:
        if label == CI_LABEL:
            return {k for k in keys if k in self._g}
        rows = self._nodes.get(label, {})
        return {k for k in keys if k in rows}

    def _write_node(self, label: str, key: str, row: dict[str, Any]) -> NodeChange | None:
        """Replace one node's row; its change."""
        if label != CI_LABEL:
            rows = self._nodes[label]
            old = rows.get(key)
            rows[key] = row
            self._value_index(label, key, row, old)
            return node_change(label, key, old, row)
        g = self._g
        before = g._node.get(key)  # noqa: SLF001
        if before is not None:
            self._unindex(key, before)
        else:
            g.add_node(key)
        g._node[key] = row  # noqa: SLF001 - replaced, never changed: the engine may share it
        self._index(key, row)
        return node_change(label, key, before, row)

    def _write_rel(
        self, key: RelKey, labels: tuple[str, str], row: dict[str, Any]
    ) -> RelChange | None:
        """Replace one relationship's row; its change."""
        rel_type, source, target = key
        if self._is_edge(rel_type, labels):
            g = self._g
            before: dict[str, Any] | None = None
            if g.has_edge(source, target, key=rel_type):
                before = dict(g.edges[source, target, rel_type])
            put_edge(g, source, target, rel_type, dict(row))
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
            old = self._nodes.get(label, {}).pop(key, None)
            if old is not None:
                self._value_index(label, key, None, old)
        elif key in self._g:
            self._unindex(key, self._g.nodes[key])
            self._g.remove_node(key)

    def _delete_node(self, label: str, key: str) -> tuple[list[RelChange], NodeChange | None]:
        """Delete one node with its relationships; their changes and its own (``None``: there
        was no such node). Reference fields of other nodes naming it are left as they are."""
        old = self._current_node(label, key)
        if old is None:
            return [], None
        keys: list[RelKey] = []
        if label == CI_LABEL:
            g = self._g
            keys += [(k, s, t) for s, t, k in g.out_edges(key, keys=True)]
            keys += [(k, s, t) for s, t, k in g.in_edges(key, keys=True) if s != key]
        keys += sorted(self._rels_by_node.get((label, key), ()))
        removed = [c for c in (self._remove_rel(k) for k in keys) if c is not None]
        before = dict(old)
        self._remove_node(label, key)
        return removed, node_change(label, key, before, None)

    def _remove_rel(self, key: RelKey) -> RelChange | None:
        """Remove one relationship; its change (``None``: there was none)."""
        rel_type, source, target = key
        if self._g.has_edge(source, target, key=rel_type):
            row = dict(self._g.edges[source, target, rel_type])
            drop_edge(self._g, source, target, rel_type)
            return rel_change(key, (CI_LABEL, CI_LABEL), row, None)
        if key in self._rels:
            sl, tl, old = self._rels[key]
            self._drop_rel(key)
            return rel_change(key, (sl, tl), old, None)
        return None

    def _rows_of(self, label: str) -> Mapping[str, dict[str, Any]]:
        """Every row of ``label``, by key (the graph's node view for CIs)."""
        return self._g.nodes if label == CI_LABEL else self._nodes[label]

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

    def _load_rows(
        self,
        nodes: Iterable[tuple[str, str, dict[str, Any]]],
        rels: Iterable[tuple[str, str, str, str, str, dict[str, Any]]],
    ) -> None:
        """Add stored rows to the (empty) graph: nodes as ``(label, key, row)``, then
        relationships as ``(rel_type, source, target, source_label, target_label, row)``.

        Node rows must come from :func:`~cmdb_graph.store.rows.decode_row` with one shared
        ``stamps`` dict (their lineage entries are shared already). The graph is filled
        through networkx's own dicts (``_node``, ``_succ``, ``_pred``: the layout of every
        networkx 2.x/3.x ``MultiDiGraph``), as ``add_node``/``add_edge`` do, without their
        per-call overhead: at 1M CIs this is seconds of start-up.
        """
        g = self._g
        node, succ, pred = g._node, g._succ, g._pred
        for label, key, row in nodes:
            row = self._compact(row, None, shared=True)
            if label == CI_LABEL:
                if key in node:
                    self._unindex(key, node[key])
                else:
                    succ[key] = {}
                    pred[key] = {}
                node[key] = row
                self._index(key, row)
            else:
                rows = self._nodes.setdefault(label, {})
                self._value_index(label, key, row, rows.get(key))
                rows[key] = row
        for t, s, d, sl, dl, rrow in rels:
            if not self._is_edge(t, (sl, dl)):
                self._put_rel((t, s, d), sl, dl, rrow)
            elif s in node and d in node:
                put_edge_dicts(succ, pred, s, d, t, rrow)
            else:  # an edge whose end is missing: the end is added
                put_edge(g, s, d, t, rrow)
        nx._clear_cache(g)
        self._version += 1
        self._generation += 1


def created_change(label: str, key: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """The fields of a :class:`NodeChange` that creates a node with ``row``."""
    change = node_change(label, key, None, row)
    assert change is not None
    return (change.op, change.label, change.key, change.old, change.new)
