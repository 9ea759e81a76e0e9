"""What changed in the estate between two points of the change feed: created, changed,
retired and deleted CIs, and added, changed and removed relationships (:func:`estate_diff`),
folded from the records between them (see :mod:`cmdb_graph.service.history` for how a time
becomes a feed position)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmdb_graph.errors import HistoryUnavailableError
from cmdb_graph.feed import NodeChange, NodeOp, RelChange, RelOp
from cmdb_graph.service.history import FieldChange, names_of, position_at, records_between
from cmdb_graph.store.base import GraphStore
from cmdb_graph.store.rows import CI_LABEL

__all__ = ["CIDiff", "EstateDiff", "RelDiff", "SEEN_FIELDS", "diff_between", "estate_diff"]


# -- diff -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CIDiff:
    """How one CI changed between two points.

    Attributes
    ----------
    ci_id : str
    name : str or None
        Its name at the later point (at the earlier one when it was deleted).
    ci_class : str or None
    status : str
        ``created``, ``retired``, ``deleted`` or ``changed``.
    changes : tuple of FieldChange
        The attributes whose values differ between the two points.
    """

    ci_id: str
    name: str | None
    ci_class: str | None
    status: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class RelDiff:
    """How one CI-to-CI relationship changed: ``added``, ``removed`` or ``changed``."""

    rel_type: str
    source: str
    target: str
    status: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class EstateDiff:
    """What changed in the estate between two feed positions.

    Attributes
    ----------
    since, until : int
        The positions (records ``since < seq <= until`` were folded).
    records : int
        How many records were folded (after the ``source`` filter).
    cis, relationships : tuple
        The CIs and relationships that differ, sorted by key; those whose only difference is
        that a source saw them again (:data:`SEEN_FIELDS`) are left out and counted in
        ``seen``.
    seen : int
        CIs and relationships only seen again.
    """

    since: int
    until: int
    records: int
    cis: tuple[CIDiff, ...] = field(default=())
    relationships: tuple[RelDiff, ...] = field(default=())
    seen: int = 0


#: Fields that change each time a source reports a CI or relationship again: a difference in
#: these alone is not a change of the estate (``diff`` counts it as seen again).
SEEN_FIELDS = frozenset({"last_seen"})


def _fold(changes: list[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, bool, bool]]
          ) -> tuple[bool, bool, dict[str, Any], dict[str, Any]]:
    """``(existed before, exists after, old values, new values)`` of one key's changes,
    given each as ``(old, new, is_creation, is_deletion)``."""
    existed = not changes[0][2]
    exists = not changes[-1][3]
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for old, new, created, deleted in changes:
        if created:
            after = dict(new or {})
            continue
        if deleted:
            for name, value in (old or {}).items():
                before.setdefault(name, value)
            after = {}
            continue
        for name, value in (old or {}).items():
            before.setdefault(name, value)
        for name, value in (new or {}).items():
            after[name] = value
    return existed, exists, before, after


def _differ(before: Mapping[str, Any], after: Mapping[str, Any], existed: bool, exists: bool
            ) -> tuple[FieldChange, ...]:
    names = sorted(set(before) | set(after))
    out = []
    for name in names:
        if name == "lineage":
            continue
        old = before.get(name) if existed else None
        new = after.get(name) if exists else None
        if old != new:
            out.append(FieldChange(name, old, new))
    return tuple(out)


def estate_diff(
    store: GraphStore, since: int, until: int, *, source: str | None = None
) -> EstateDiff:
    """What changed between feed positions ``since`` and ``until``.

    Parameters
    ----------
    store : GraphStore
    since, until : int
        Positions (see :func:`position_at`); the records in between are folded, so a CI
        created and retired in between is ``created`` with its later values.
    source : str, optional
        Only the writes of import runs of this data source.

    Raises
    ------
    HistoryUnavailableError
        Records between the two were pruned, or the store was cleared in between.
    """
    records = records_between(store, since, until)
    if any(r.reset for r in records):
        reset = next(r for r in records if r.reset)
        raise HistoryUnavailableError(
            f"the store was cleared at {reset.at.isoformat()} (change record {reset.seq}): "
            "a diff cannot span a clear")
    if source is not None:
        records = [r for r in records if r.actor.source == source]
    nodes: dict[str, list[NodeChange]] = {}
    rels: dict[tuple[str, str, str], list[RelChange]] = {}
    for record in records:
        for c in record.nodes:
            if c.label == CI_LABEL:
                nodes.setdefault(c.key, []).append(c)
        for r in record.relationships:
            if (r.source_label, r.target_label) == (CI_LABEL, CI_LABEL):
                rels.setdefault(r.key, []).append(r)
    current = store.get_cis(sorted(nodes))
    seen = 0
    ci_out: list[CIDiff] = []
    for key in sorted(nodes):
        existed, exists, before, after = _fold(
            [(c.old, c.new, c.op is NodeOp.CREATED, c.op is NodeOp.DELETED)
             for c in nodes[key]])
        if not existed and not exists:
            continue
        changes = _differ(before, after, existed, exists)
        if not changes:
            continue
        if existed and exists and SEEN_FIELDS.issuperset(c.name for c in changes):
            seen += 1
            continue
        now = current.get(key)
        name = now.name if now is not None else (after.get("name") or before.get("name"))
        cls = now.ci_class if now is not None else (after.get("ci_class")
                                                    or before.get("ci_class"))
        if not existed:
            status = "created"
        elif not exists:
            status = "deleted"
        elif after.get("operational_status") == "retired" != before.get("operational_status"):
            status = "retired"
        else:
            status = "changed"
        ci_out.append(CIDiff(key, name, cls, status, changes))
    rel_out: list[RelDiff] = []
    for rkey in sorted(rels):
        existed, exists, before, after = _fold(
            [(r.old, r.new, r.op is RelOp.ADDED, r.op is RelOp.REMOVED) for r in rels[rkey]])
        if not existed and not exists:
            continue
        changes = _differ(before, after, existed, exists)
        status = "added" if not existed else "removed" if not exists else "changed"
        if status == "changed" and not changes:
            continue
        if status == "changed" and SEEN_FIELDS.issuperset(c.name for c in changes):
            seen += 1
            continue
        rel_out.append(RelDiff(*rkey, status, changes))
    return EstateDiff(since, until, len(records), tuple(ci_out), tuple(rel_out), seen)


def diff_between(
    store: GraphStore, since: datetime, until: datetime | None, source: str | None
) -> tuple[EstateDiff, dict[str, str]]:
    """The estate's diff between two times and the names of the CIs it mentions."""
    head = store.feed_head()
    after = position_at(store, since, head=head)
    last = head if until is None else position_at(store, until, head=head)
    found = estate_diff(store, after, max(after, last), source=source)
    ids = {r.source for r in found.relationships} | {r.target for r in found.relationships}
    known = {c.ci_id: c.name for c in found.cis if c.name}
    return found, names_of(store, ids, known)
