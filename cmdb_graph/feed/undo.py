"""Undoing writes on a store: the net change of several records, and the row before it.

Time travel undoes records on a copy of the graph (:func:`cmdb_graph.feed.diff.undo_node`);
undoing an interrupted import run's writes on the store itself (``cmdb_graph.ingest.undo``)
needs two more things, which live here next to the record semantics:

* :func:`net_node_changes` / :func:`net_rel_changes` fold every change one writer made to a
  node (relationship), in sequence order, into ONE change from the state before its first to
  the state after its last (a CI created then updated is created with the final row; a field
  changed twice goes from its first old to its last new value);
* :func:`undo_checked` gives the row before such a net change from the row the store holds
  NOW, leaving alone what another writer changed since: a field is put back only where it
  still holds the value the writer gave it (three-way), and the fields left are named.
  Without other writers it is :func:`~cmdb_graph.feed.diff.undo_node` /
  :func:`~cmdb_graph.feed.diff.undo_rel` of the net change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cmdb_graph.feed.diff import RelKey, node_change, rel_change, undo_node, undo_rel
from cmdb_graph.feed.records import NodeChange, NodeOp, RelChange, RelOp

__all__ = ["net_node_changes", "net_rel_changes", "undo_checked"]

Row = dict[str, Any]

_CREATE = (NodeOp.CREATED, RelOp.ADDED)
_DELETE = (NodeOp.DELETED, RelOp.REMOVED)


@dataclass
class _Net:
    """One key's changes folded: whether it existed before the first and exists after the
    last, and the first old and last new value of every field they touched."""

    existed: bool
    exists: bool = True
    old: Row = field(default_factory=dict)
    new: Row = field(default_factory=dict)

    def add(self, op: NodeOp | RelOp, old: Mapping[str, Any] | None,
            new: Mapping[str, Any] | None) -> None:
        if op in _CREATE:
            for name in self.new.keys() - set(new or {}):
                self.new[name] = None
            for name, value in (new or {}).items():
                self.old.setdefault(name, None)
                self.new[name] = value
            self.exists = True
        elif op in _DELETE:
            for name, value in (old or {}).items():
                self.old.setdefault(name, value)
            self.new = dict.fromkeys(self.old)
            self.exists = False
        else:
            for name, value in (old or {}).items():
                self.old.setdefault(name, value)
            self.new.update(new or {})

    def rows(self) -> tuple[Row | None, Row | None]:
        """The rows before and after (``None``: absent); for a node that exists on both sides,
        only the fields that changed."""
        before = {k: v for k, v in self.old.items() if v is not None}
        after = {k: v for k, v in self.new.items() if v is not None}
        if not self.existed:
            return None, (after if self.exists else None)
        if not self.exists:
            return before, None
        changed = [k for k in self.old if self.old[k] != self.new.get(k)]
        return ({k: self.old[k] for k in changed}, {k: self.new.get(k) for k in changed})


def net_node_changes(changes: Iterable[NodeChange]) -> dict[tuple[str, str], NodeChange]:
    """Every node's changes (in sequence order) folded into one change per ``(label, key)``.

    Keys whose changes cancel out (created then deleted, a field set back) are left out.
    """
    nets: dict[tuple[str, str], _Net] = {}
    for c in changes:
        net = nets.setdefault((c.label, c.key), _Net(existed=c.op is not NodeOp.CREATED))
        net.add(c.op, c.old, c.new)
    out: dict[tuple[str, str], NodeChange] = {}
    for (label, key), net in nets.items():
        before, after = net.rows()
        if net.existed and net.exists:
            change = node_change(label, key, before or {}, after or {})
        else:
            change = node_change(label, key, before, after)
        if change is not None:
            out[(label, key)] = change
    return out


def net_rel_changes(changes: Iterable[RelChange]) -> dict[RelKey, RelChange]:
    """Every relationship's changes folded into one change per ``(rel_type, source, target)``
    (see :func:`net_node_changes`)."""
    nets: dict[RelKey, tuple[tuple[str, str], _Net]] = {}
    for c in changes:
        _, net = nets.setdefault(c.key, ((c.source_label, c.target_label),
                                         _Net(existed=c.op is not RelOp.ADDED)))
        net.add(c.op, c.old, c.new)
    out: dict[RelKey, RelChange] = {}
    for key, (labels, net) in nets.items():
        before, after = net.rows()
        if net.existed and net.exists:
            change = rel_change(key, labels, before or {}, after or {})
        else:
            change = rel_change(key, labels, before, after)
        if change is not None:
            out[key] = change
    return out


def undo_checked(
    current: Mapping[str, Any] | None, change: NodeChange | RelChange
) -> tuple[Row | None, list[str]]:
    """The row before a net ``change``, from the row held now (``None``: absent).

    Returns
    -------
    (row, kept)
        ``row``: what to write (``None``: the node or relationship must not exist). ``kept``:
        what another writer changed since and is left as it is now: field names, or
        ``"(exists)"`` (it was deleted and exists again), ``"(absent)"`` (it was changed and is
        gone now). A created one is removed whatever became of it since.
    """
    if change.op in _CREATE:
        return None, []
    if change.op in _DELETE:
        if current is not None:
            return dict(current), ["(exists)"]
        return (undo_node(None, change) if isinstance(change, NodeChange)
                else undo_rel(None, change)), []
    if current is None:
        return None, ["(absent)"]
    new = change.new or {}
    ok = {k: v for k, v in (change.old or {}).items() if current.get(k) == new.get(k)}
    kept = sorted(k for k in change.old or {} if k not in ok)
    if isinstance(change, NodeChange):
        part = NodeChange(change.op, change.label, change.key, ok, {k: new.get(k) for k in ok})
        return undo_node(current, part), kept
    rpart = RelChange(change.op, change.rel_type, change.source, change.target,
                      change.source_label, change.target_label, ok,
                      {k: new.get(k) for k in ok})
    return undo_rel(current, rpart), kept
