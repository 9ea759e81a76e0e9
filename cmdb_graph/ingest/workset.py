"""The working set of one import run: every node and relationship it read or wrote, and the diff.

Candidates read from the store enter the working set as *originals*
(:meth:`WorkSet.keep_ci`, :meth:`WorkSet.keep_node`, :meth:`WorkSet.keep_rel`); the phases of the
run then replace them with new versions (:meth:`WorkSet.put_ci`, :meth:`WorkSet.put_node`,
:meth:`WorkSet.put_rel`) and note what each change did (:meth:`WorkSet.note`). Nothing here reads
or writes the store.

The diff is kept in two forms:

* per entity the original and the current version: :meth:`WorkSet.changed` lists every node and
  relationship whose current version differs from what the store holds (that is the write
  batch), and :func:`diff` gives the old and new value of each changed attribute;
* per entity the changes the phases noted (``created``, ``touched``, ``changes``), accumulated
  over the run (a value changed and changed back is no change): the plan's creates, updates and
  counters come from it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from cmdb_graph.ingest.identify import CIIndex, norm_serial, slug
from cmdb_graph.model import ConfigurationItem, Node, Origin, Relationship
from cmdb_graph.store.base import WriteBatch

__all__ = ["EntityKey", "RelKey", "WorkSet", "diff", "rel_entity", "values_of"]

#: ``(label, key)`` of a node (``("CI", ci_id)``, ``("Asset", asset_id)``, ...); a
#: relationship's is ``("Relationship", "TYPE:source->target")``.
EntityKey = tuple[str, str]
#: ``(rel_type, source, target)`` of a relationship.
RelKey = tuple[str, str, str]

#: Fields that every run refreshes: never reported as a change.
_BOOKKEEPING = frozenset({"lineage", "first_seen", "last_seen"})


def rel_entity(key: RelKey) -> EntityKey:
    """The entity key of a relationship."""
    return ("Relationship", f"{key[0]}:{key[1]}->{key[2]}")


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


def diff(
    old: BaseModel | None, new: BaseModel, ignore: frozenset[str] = _BOOKKEEPING
) -> dict[str, tuple[Any, Any]]:
    """The value changes between two versions of a node or relationship.

    Parameters
    ----------
    old : model or None
        The earlier version (``None``: every set field of ``new`` is a change).
    new : model
        The later version, of the same model.
    ignore : frozenset of str
        Fields left out (default: lineage and first/last seen).

    Returns
    -------
    dict of str to (old, new)
        Per changed field its old and new value as JSON values; a changed free attribute is
        reported as ``"attributes.<name>"``.
    """
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


class WorkSet:
    """The CIs, other nodes and relationships one run knows, as read and as planned.

    Attributes
    ----------
    index : CIIndex
        The CIs (current versions), indexed by every identifier.
    nodes : dict of EntityKey to Node
        Other nodes (current versions).
    rels : dict of RelKey to Relationship
        Relationships (current versions).
    created : set of EntityKey
        Entities the run creates.
    touched : dict of EntityKey to Origin or None
        Entities a record asserted or a merge moved, with the origin of the first record.
    changes : dict of EntityKey to dict
        Per touched entity, the accumulated ``{attribute: (old, new)}`` of the run.
    deleted : list of RelKey
        Stored relationships the run deletes (moved to a merge survivor).
    merged : set of str
        CIs merged into another in this run (duplicates).
    """

    def __init__(self) -> None:
        self.index = CIIndex()
        self.nodes: dict[EntityKey, Node] = {}
        self.rels: dict[RelKey, Relationship] = {}
        self._orig_cis: dict[str, ConfigurationItem] = {}
        self._orig_nodes: dict[EntityKey, Node] = {}
        self._orig_rels: dict[RelKey, Relationship] = {}
        self.created: set[EntityKey] = set()
        self.touched: dict[EntityKey, Origin | None] = {}
        self.changes: dict[EntityKey, dict[str, tuple[Any, Any]]] = {}
        self.deleted: list[RelKey] = []
        self.merged: set[str] = set()
        #: Assets by ``("native_key" | "asset_tag" | "serial_number", value)``.
        self.asset_keys: dict[tuple[str, str], set[str]] = defaultdict(set)
        #: ``person_id`` by the slug of a username, e-mail, name or key.
        self.person_alias: dict[str, str] = {}

    # -- originals (what the store holds) ----------------------------------------------
    def keep_ci(self, ci: ConfigurationItem) -> None:
        """Add a CI read from the store (ignored when the run knows it already)."""
        if ci.ci_id not in self._orig_cis and ci.ci_id not in self.index:
            self._orig_cis[ci.ci_id] = ci
            self.index.put(ci)

    def keep_node(self, node: Node) -> None:
        """Add a node read from the store (ignored when the run knows it already)."""
        k = (node.LABEL, node.key)
        if k in self.nodes:
            return
        self._orig_nodes[k] = node
        self._put_node(k, node)

    def keep_rel(self, rel: Relationship) -> None:
        """Add a relationship read from the store (ignored when the run knows it already)."""
        if rel.key not in self.rels:
            self._orig_rels[rel.key] = rel
            self.rels[rel.key] = rel

    def original_ci(self, ci_id: str) -> ConfigurationItem | None:
        """The CI as the store holds it (``None``: new in this run)."""
        return self._orig_cis.get(ci_id)

    # -- current versions ---------------------------------------------------------------
    def put(self, node: Node) -> None:
        """Replace (or add) the current version of a CI or node."""
        if isinstance(node, ConfigurationItem):
            self.index.put(node)
        else:
            self._put_node((node.LABEL, node.key), node)

    def put_rel(self, rel: Relationship) -> None:
        """Replace (or add) the current version of a relationship."""
        self.rels[rel.key] = rel

    def drop_rel(self, key: RelKey) -> None:
        """Remove a relationship; a stored one is deleted after the run's batch."""
        del self.rels[key]
        if key in self._orig_rels:
            self.deleted.append(key)

    def _put_node(self, k: EntityKey, node: Node) -> None:
        self.nodes[k] = node
        if k[0] == "Asset":
            self._index_asset(node)
        elif k[0] == "Person":
            self._alias_person(node)

    def _index_asset(self, node: Node) -> None:
        for nk in getattr(node, "native_keys", []):
            self.asset_keys[("native_key", nk)].add(node.key)
        tag = getattr(node, "asset_tag", None)
        if tag:
            self.asset_keys[("asset_tag", tag.strip().upper())].add(node.key)
        serial = norm_serial(getattr(node, "serial_number", None))
        if serial:
            self.asset_keys[("serial_number", serial.upper())].add(node.key)

    def _alias_person(self, node: Node) -> None:
        for v in (getattr(node, "username", None), getattr(node, "email", None),
                  getattr(node, "name", None), node.key.removeprefix("per-")):
            if v:
                self.person_alias.setdefault(slug(str(v)), node.key)

    # -- what the phases did --------------------------------------------------------------
    def note(self, k: EntityKey, origin: Origin | None, old: BaseModel | None,
             new: BaseModel) -> None:
        """Record that a record (or a merge) made ``new`` of ``old`` (``None``: created)."""
        self.touched.setdefault(k, origin)
        if old is None:
            self.created.add(k)
            return
        changes = diff(old, new)
        if changes:
            acc = self.changes.setdefault(k, {})
            for attr, (was, now) in changes.items():
                first = acc[attr][0] if attr in acc else was
                if first == now:
                    acc.pop(attr, None)  # changed back within the run
                else:
                    acc[attr] = (first, now)

    def name_of(self, k: EntityKey) -> str | None:
        """The name of a CI or node of the run (``None`` for relationships)."""
        if k[0] == "CI":
            ci = self.index.get(k[1])
            return ci.name if ci is not None else None
        node = self.nodes.get(k)
        return getattr(node, "name", None) if node is not None else None

    def changed(self) -> Iterator[tuple[Node | Relationship | None, Node | Relationship]]:
        """``(original, current)`` of every CI, node and relationship that differs from the store.

        CIs by ``ci_id``, then other nodes by label and key, then relationships by key; the
        original is ``None`` for what the run creates.
        """
        for ci in self.index.values():
            orig = self._orig_cis.get(ci.ci_id)
            if orig is None or ci != orig:
                yield orig, ci
        for k in sorted(self.nodes):
            node = self.nodes[k]
            orig_node = self._orig_nodes.get(k)
            if orig_node is None or node != orig_node:
                yield orig_node, node
        for key in sorted(self.rels):
            rel = self.rels[key]
            orig_rel = self._orig_rels.get(key)
            if orig_rel is None or rel != orig_rel:
                yield orig_rel, rel

    def batch(self) -> WriteBatch:
        """What the run writes: the current version of everything :meth:`changed` lists."""
        batch = WriteBatch()
        for _, new in self.changed():
            if isinstance(new, Relationship):
                batch.relationships.append(new)
            else:
                batch.nodes.append(new)
        return batch


def values_of(node: BaseModel) -> dict[str, Any]:
    """A node's fields and free attributes by name (what reconciliation compares against)."""
    current = {f: getattr(node, f) for f in type(node).model_fields}
    current.update(getattr(node, "attributes", None) or {})
    return current
