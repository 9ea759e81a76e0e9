"""Events derived from the change feed: what a webhook receives and a GraphQL subscription sees.

Every :class:`~cmdb_graph.feed.ChangeRecord` gives zero or more :class:`Event` s, in the
record's own order (its node changes, then its relationship changes). An event's id is
``cmdb-<seq>-<index>`` (``index``: the position of the change in the record), so the same
change always has the same id: it is the idempotency key a receiver deduplicates on (the
``webhook-id`` header).

==========================  ================================================================
type                        from
==========================  ================================================================
``ci.created``              a CI node created
``ci.changed``              a CI's attributes updated (``old``/``new``: the changed fields)
``ci.retired``              an update that set ``operational_status`` to ``retired``
``ci.merged``               an update that set ``duplicate_of`` (``merged_into``)
``ci.deleted``              a CI node deleted (tests and ``clear`` only: CIs are retired)
``relationship.added``      a relationship created (any types, CI-to-CI or not)
``relationship.removed``    a relationship deleted
``import.finished``         an ``ImportRun`` written with a final status (succeeded, failed,
                            aborted)
``change.conflicts``        a change request (``Change``) written, and it now conflicts with
                            other changes or windows (derived when the event is delivered, on
                            the store's state then; see ``docs/events.md``)
==========================  ================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from cmdb_graph.feed import ChangeRecord, NodeChange, NodeOp, RelChange, RelOp

__all__ = [
    "ConflictCheck",
    "Event",
    "EventType",
    "NameLookup",
    "events_of",
    "parse_event_types",
]


class EventType(StrEnum):
    """The kinds of events (see the module docstring)."""

    CI_CREATED = "ci.created"
    CI_CHANGED = "ci.changed"
    CI_RETIRED = "ci.retired"
    CI_MERGED = "ci.merged"
    CI_DELETED = "ci.deleted"
    RELATIONSHIP_ADDED = "relationship.added"
    RELATIONSHIP_REMOVED = "relationship.removed"
    IMPORT_FINISHED = "import.finished"
    CHANGE_CONFLICTS = "change.conflicts"


_CI_TYPES = {
    NodeOp.CREATED: EventType.CI_CREATED,
    NodeOp.UPDATED: EventType.CI_CHANGED,
    NodeOp.RETIRED: EventType.CI_RETIRED,
    NodeOp.MERGED: EventType.CI_MERGED,
    NodeOp.DELETED: EventType.CI_DELETED,
}
_REL_TYPES = {RelOp.ADDED: EventType.RELATIONSHIP_ADDED,
              RelOp.REMOVED: EventType.RELATIONSHIP_REMOVED}
_FINAL_RUN = frozenset({"succeeded", "failed", "aborted"})

#: ``ci_ids -> {ci_id: (name, ci_class)}`` for the CIs that exist (one store call).
NameLookup = Callable[[Sequence[str]], Mapping[str, tuple[str, str]]]
#: ``(change_id, seq) -> its conflicts as JSON objects`` (empty: none, or the change is gone);
#: ``seq`` is the change record that wrote it (the same answer for every subscriber).
ConflictCheck = Callable[[str, int], list[dict[str, Any]]]


def parse_event_types(names: Iterable[str]) -> frozenset[EventType]:
    """Event types by name (``*`` or nothing: all).

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones).
    """
    wanted = [n.strip() for n in names if n.strip()]
    if not wanted or "*" in wanted:
        return frozenset(EventType)
    known = {t.value: t for t in EventType}
    bad = [n for n in wanted if n not in known]
    if bad:
        raise ValueError(f"unknown event type(s) {', '.join(bad)}; known: "
                         + ", ".join(known))
    return frozenset(known[n] for n in wanted)


@dataclass(frozen=True)
class Event:
    """One outbound event.

    Attributes
    ----------
    seq, index : int
        The change record's sequence number and the change's position in it: events are
        ordered by ``(seq, index)``.
    type : EventType
    subject : str
        What the event is about: a ``ci_id`` (CI events, and the source CI of a relationship),
        a ``run_id`` or a ``change_id``. Events of one subject are delivered in order.
    at : str
        When the write committed (ISO 8601, UTC).
    data : dict
        The event's JSON payload ``data`` (see ``docs/events.md``).
    """

    seq: int
    index: int
    type: EventType
    subject: str
    at: str
    data: dict[str, Any] = field(hash=False, compare=False)

    @property
    def id(self) -> str:
        """The idempotency key: ``cmdb-<seq>-<index>``."""
        return f"cmdb-{self.seq}-{self.index}"

    @property
    def position(self) -> tuple[int, int]:
        """``(seq, index)``."""
        return (self.seq, self.index)

    def body(self) -> dict[str, Any]:
        """The webhook's JSON body: ``{"type", "timestamp", "data"}`` (Standard Webhooks'
        recommended shape; ``data.id`` is the event id)."""
        return {"type": str(self.type), "timestamp": self.at,
                "data": {"id": self.id, "seq": self.seq, "index": self.index, **self.data}}

    def encode(self) -> bytes:
        """The body as the exact bytes that are signed and sent."""
        return orjson.dumps(self.body())


def _class_of(change: NodeChange) -> str | None:
    for row in (change.new, change.old):
        if row and isinstance(row.get("ci_class"), str):
            return str(row["ci_class"])
    return None


def _ci_event(record: ChangeRecord, index: int, change: NodeChange,
              names: Mapping[str, tuple[str, str]]) -> Event:
    etype = _CI_TYPES[change.op]
    stored = names.get(change.key)
    ci: dict[str, Any] = {
        "ci_id": change.key,
        "name": change.name or (stored[0] if stored else change.key),
        "ci_class": _class_of(change) or (stored[1] if stored else None)}
    data: dict[str, Any] = {"actor": record.actor.to_json(), "ci": ci,
                            "old": change.old, "new": change.new}
    if change.merged_into is not None:
        into = names.get(change.merged_into)
        data["merged_into"] = {"ci_id": change.merged_into,
                               "name": into[0] if into else change.merged_into}
    return Event(record.seq, index, etype, change.key, record.at.isoformat(), data)


def _rel_event(record: ChangeRecord, index: int, change: RelChange,
               names: Mapping[str, tuple[str, str]]) -> Event:
    source, target = names.get(change.source), names.get(change.target)
    rel = {"rel_type": change.rel_type,
           "source": change.source, "source_label": change.source_label,
           "source_name": source[0] if source else change.source,
           "target": change.target, "target_label": change.target_label,
           "target_name": target[0] if target else change.target}
    data = {"actor": record.actor.to_json(), "relationship": rel,
            "old": change.old, "new": change.new}
    return Event(record.seq, index, _REL_TYPES[change.op], change.source,
                 record.at.isoformat(), data)


def _needs_names(records: Sequence[ChangeRecord]) -> list[str]:
    wanted: set[str] = set()
    for record in records:
        for c in record.nodes:
            if c.label == "CI" and (c.name is None or _class_of(c) is None):
                wanted.add(c.key)
            if c.label == "CI" and c.merged_into is not None:
                wanted.add(c.merged_into)
        for r in record.relationships:
            if r.op in _REL_TYPES:
                if r.source_label == "CI":
                    wanted.add(r.source)
                if r.target_label == "CI":
                    wanted.add(r.target)
    return sorted(wanted)


def events_of(
    records: Sequence[ChangeRecord],
    *,
    names: NameLookup | None = None,
    conflicts: ConflictCheck | None = None,
    types: frozenset[EventType] | None = None,
) -> list[Event]:
    """The events of ``records``, in feed order.

    Parameters
    ----------
    records : sequence of ChangeRecord
        Consecutive feed records.
    names : callable, optional
        Names of CIs the changes do not name themselves (updates, relationships); without
        it, or for a CI that no longer exists, the ``ci_id`` stands for the name.
    conflicts : callable, optional
        Conflicts of a written change request; without it no ``change.conflicts`` event is
        derived.
    types : frozenset of EventType, optional
        Only these types (default: all). Names are looked up only when needed.
    """
    wanted = types if types is not None else frozenset(EventType)
    ci_types = {t for t in _CI_TYPES.values() if t in wanted}
    rel_types = {t for t in _REL_TYPES.values() if t in wanted}
    known: Mapping[str, tuple[str, str]] = {}
    if names is not None and (ci_types or rel_types):
        missing = _needs_names(records)
        if missing:
            known = names(missing)
    out: list[Event] = []
    for record in records:
        for i, c in enumerate(record.nodes):
            if c.label == "CI":
                if _CI_TYPES[c.op] in ci_types:
                    out.append(_ci_event(record, i, c, known))
            elif c.label == "ImportRun" and EventType.IMPORT_FINISHED in wanted:
                status = (c.new or {}).get("status")
                if status in _FINAL_RUN and (c.old or {}).get("status") != status:
                    row = dict(c.old or {}) if c.op is not NodeOp.CREATED else {}
                    row.update(c.new or {})
                    out.append(Event(record.seq, i, EventType.IMPORT_FINISHED, c.key,
                                     record.at.isoformat(),
                                     {"actor": record.actor.to_json(),
                                      "import_run": {"run_id": c.key, **row}}))
            elif (c.label == "Change" and conflicts is not None and c.op is not NodeOp.DELETED
                  and EventType.CHANGE_CONFLICTS in wanted):
                found = conflicts(c.key, record.seq)
                if found:
                    out.append(Event(record.seq, i, EventType.CHANGE_CONFLICTS, c.key,
                                     record.at.isoformat(),
                                     {"actor": record.actor.to_json(),
                                      "change": {"change_id": c.key,
                                                 "title": (c.new or {}).get("title")},
                                      "conflicts": found}))
        base = len(record.nodes)
        for j, r in enumerate(record.relationships):
            etype = _REL_TYPES.get(r.op)
            if etype is not None and etype in rel_types:
                out.append(_rel_event(record, base + j, r, known))
    return out
