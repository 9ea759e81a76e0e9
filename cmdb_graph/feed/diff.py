"""Changes from rows, and rows from changes: the one diff every store records with.

A store calls :func:`node_change` / :func:`rel_change` with a node's (relationship's) row
before and after a write, in the write's transaction, and records what they return. A follower
(an engine's graph, a replay, a time-travel view) calls :func:`apply_node` / :func:`apply_rel`
to go forward and :func:`undo_node` / :func:`undo_rel` to go back. :class:`Replay` applies
whole records to plain dicts: replaying a store's feed from its first record gives the store's
rows (the contract tests check it on both stores).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cmdb_graph.feed.records import ChangeRecord, NodeChange, NodeOp, RelChange, RelOp

__all__ = [
    "CI_LABEL",
    "diff_rows",
    "node_change",
    "rel_change",
    "apply_node",
    "undo_node",
    "apply_rel",
    "undo_rel",
    "Replay",
]

CI_LABEL = "CI"
_RETIRED = "retired"

Row = dict[str, Any]
RelKey = tuple[str, str, str]


def diff_rows(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Row, Row]:
    """The fields whose values differ, as ``(old values, new values)``.

    A field absent from a row (at its default) is ``None`` on that side.

    Examples
    --------
    >>> diff_rows({"name": "a", "fqdn": "x"}, {"name": "b", "environment": "prod"})
    ({'environment': None, 'fqdn': 'x', 'name': 'a'}, {'environment': 'prod', 'fqdn': None, 'name': 'b'})
    """  # noqa: E501
    before: Row = {}
    after: Row = {}
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a != b:
            before[name] = a
            after[name] = b
    return before, after


def _row(row: Mapping[str, Any]) -> Row:
    return row if isinstance(row, dict) else dict(row)


def _classify(label: str, before: Row, after: Row) -> NodeOp:
    if label == CI_LABEL:
        if after.get("duplicate_of") is not None and before.get("duplicate_of") is None:
            return NodeOp.MERGED
        if after.get("operational_status") == _RETIRED:
            return NodeOp.RETIRED
    return NodeOp.UPDATED


def node_change(
    label: str, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> NodeChange | None:
    """The change from ``old`` to ``new`` (``None``: the node is absent on that side).

    Returns
    -------
    NodeChange or None
        ``None`` when nothing changed. Whole rows (of a creation or deletion) are referenced,
        not copied: the caller must not change them in place afterwards.
    """
    if old is None:
        return None if new is None else NodeChange(NodeOp.CREATED, label, key, None, _row(new))
    if new is None:
        return NodeChange(NodeOp.DELETED, label, key, _row(old), None)
    before, after = diff_rows(old, new)
    if not after:
        return None
    return NodeChange(_classify(label, before, after), label, key, before, after)


def rel_change(
    key: RelKey,
    labels: tuple[str, str],
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
) -> RelChange | None:
    """The change of relationship ``key`` (``(rel_type, source, target)``) with end ``labels``.

    Returns
    -------
    RelChange or None
        ``None`` when nothing changed (whole rows referenced, as in :func:`node_change`).
    """
    rel_type, source, target = key
    sl, tl = labels
    if old is None:
        if new is None:
            return None
        return RelChange(RelOp.ADDED, rel_type, source, target, sl, tl, None, _row(new))
    if new is None:
        return RelChange(RelOp.REMOVED, rel_type, source, target, sl, tl, _row(old), None)
    before, after = diff_rows(old, new)
    if not after:
        return None
    return RelChange(RelOp.CHANGED, rel_type, source, target, sl, tl, before, after)


def _patched(row: Mapping[str, Any] | None, values: Mapping[str, Any]) -> Row:
    out = dict(row or {})
    for name, value in values.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def apply_node(row: Mapping[str, Any] | None, change: NodeChange) -> Row | None:
    """The node's row after ``change`` (``None``: it no longer exists)."""
    if change.op is NodeOp.CREATED:
        return dict(change.new or {})
    if change.op is NodeOp.DELETED:
        return None
    return _patched(row, change.new or {})


def undo_node(row: Mapping[str, Any] | None, change: NodeChange) -> Row | None:
    """The node's row before ``change`` (``None``: it did not exist)."""
    if change.op is NodeOp.CREATED:
        return None
    if change.op is NodeOp.DELETED:
        return dict(change.old or {})
    return _patched(row, change.old or {})


def apply_rel(row: Mapping[str, Any] | None, change: RelChange) -> Row | None:
    """The relationship's row after ``change`` (``None``: it no longer exists)."""
    if change.op is RelOp.ADDED:
        return dict(change.new or {})
    if change.op is RelOp.REMOVED:
        return None
    return _patched(row, change.new or {})


def undo_rel(row: Mapping[str, Any] | None, change: RelChange) -> Row | None:
    """The relationship's row before ``change`` (``None``: it did not exist)."""
    if change.op is RelOp.ADDED:
        return None
    if change.op is RelOp.REMOVED:
        return dict(change.old or {})
    return _patched(row, change.old or {})


@dataclass
class Replay:
    """Rows rebuilt from change records: ``nodes[(label, key)]`` and ``rels[(type, s, t)]``.

    Relationship values are ``(source_label, target_label, row)``. ``seq`` is the sequence
    number of the last record applied.
    """

    nodes: dict[tuple[str, str], Row] = field(default_factory=dict)
    rels: dict[RelKey, tuple[str, str, Row]] = field(default_factory=dict)
    seq: int = 0

    def apply(self, records: Iterable[ChangeRecord]) -> Replay:
        """Apply ``records`` (in sequence order) forward; returns ``self``."""
        for record in records:
            if record.reset:
                self.nodes.clear()
                self.rels.clear()
            for c in record.nodes:
                row = apply_node(self.nodes.get((c.label, c.key)), c)
                if row is None:
                    self.nodes.pop((c.label, c.key), None)
                else:
                    self.nodes[(c.label, c.key)] = row
            for r in record.relationships:
                old = self.rels.get(r.key)
                rrow = apply_rel(old[2] if old else None, r)
                if rrow is None:
                    self.rels.pop(r.key, None)
                else:
                    self.rels[r.key] = (r.source_label, r.target_label, rrow)
            self.seq = record.seq
        return self
