"""Change records: what one write changed, who made it and when, in one format for every store.

Every write to a store (an import run's batch, an API mutation, a merge, a retirement, an ITSM
record, a deletion, a clear) is recorded as ONE :class:`ChangeRecord` with a sequence number,
in the same transaction as the write itself. Sequence numbers are unique and increase in commit
order, so a follower that has applied every record up to ``seq`` holds the store's state as of
that commit.

Values are *lean rows* (see :mod:`cmdb_graph.store.rows`): JSON values only, defaults left
out, key fields left out. In a :class:`NodeChange` or :class:`RelChange`:

==========  ==========================================  ======================================
op          ``old``                                      ``new``
==========  ==========================================  ======================================
created     ``None``                                     the whole new row
added       ``None``                                     the whole new row
updated,    the OLD value of every field that changed    the NEW value of every field that
retired,    (``None``: the field was absent, i.e. at     changed (``None``: the field went
merged,     its default)                                 back to its default)
changed
deleted,    the whole old row                            ``None``
removed
==========  ==========================================  ======================================

So a record can be applied forward (replay, :func:`cmdb_graph.feed.diff.apply_node`) and undone
backward (time travel, :func:`cmdb_graph.feed.diff.undo_node`). ``retired`` is an update that
set ``operational_status`` to ``retired``; ``merged`` one that set ``duplicate_of`` (the CI was
merged into that one); both are classified from the changed fields, never told by the caller.

The wire format (:func:`encode_record` / :func:`decode_record`) is compact JSON (orjson),
zlib-compressed when it is large; both stores keep exactly these bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from cmdb_graph.errors import StoreError
from cmdb_graph.model import to_utc

__all__ = [
    "FORMAT_VERSION",
    "ActorKind",
    "Actor",
    "SYSTEM_ACTOR",
    "NodeOp",
    "RelOp",
    "NodeChange",
    "RelChange",
    "ChangeRecord",
    "encode_record",
    "decode_record",
]

#: Version of the encoded form (the ``v`` member).
FORMAT_VERSION = 1

#: Encoded bodies longer than this many bytes are zlib-compressed.
_COMPRESS_OVER = 2048
_PLAIN, _ZLIB = b"j", b"z"

Row = dict[str, Any]


class ActorKind(StrEnum):
    """What kind of caller made a write."""

    IMPORT = "import"
    """An import run of a data source (``run_id`` and ``source`` set)."""
    API = "api"
    """A GraphQL mutation (``name`` is the API key's name, ``role`` its role)."""
    SYSTEM = "system"
    """cmdb-graph itself (a CLI command, a migration, a clear)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a write.

    Attributes
    ----------
    kind : ActorKind
        Import run, API caller or the system.
    name : str
        The data source's name, the API key's name (``local`` in local mode) or the command.
    role : str, optional
        The API key's role (reader, writer, admin).
    run_id : str, optional
        The import run that made the write.
    source : str, optional
        The data source of that import run.
    request_id : str, optional
        The API request that made the write.
    """

    kind: ActorKind
    name: str
    role: str | None = None
    run_id: str | None = None
    source: str | None = None
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The actor as a JSON object (``None`` members left out)."""
        out: dict[str, Any] = {"kind": str(self.kind), "name": self.name}
        for name in ("role", "run_id", "source", "request_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        """The actor of :meth:`to_json`'s object."""
        return cls(ActorKind(data["kind"]), str(data["name"]), data.get("role"),
                   data.get("run_id"), data.get("source"), data.get("request_id"))


#: The actor of writes that name no caller.
SYSTEM_ACTOR = Actor(ActorKind.SYSTEM, "cmdb-graph")


class NodeOp(StrEnum):
    """What happened to a node."""

    CREATED = "created"
    UPDATED = "updated"
    RETIRED = "retired"
    MERGED = "merged"
    DELETED = "deleted"


class RelOp(StrEnum):
    """What happened to a relationship."""

    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class NodeChange:
    """One node's change (see the module docstring for ``old`` and ``new``).

    Attributes
    ----------
    op : NodeOp
    label : str
        Node label (``CI``, ``Asset``, ``Change``, ...).
    key : str
        The node's key (``ci_id`` for CIs).
    old, new : dict or None
        Lean-row values before and after.
    """

    op: NodeOp
    label: str
    key: str
    old: Row | None
    new: Row | None

    @property
    def name(self) -> str | None:
        """The node's name after the change (before it, for a deletion), when it has one."""
        for row in (self.new, self.old):
            if row and isinstance(row.get("name"), str):
                return str(row["name"])
        return None

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the change touched, sorted."""
        return tuple(sorted(set(self.old or ()) | set(self.new or ())))

    @property
    def merged_into(self) -> str | None:
        """The surviving CI of a merge (``None`` for other ops)."""
        if self.op is NodeOp.MERGED and self.new:
            value = self.new.get("duplicate_of")
            return str(value) if value is not None else None
        return None


@dataclass(frozen=True, slots=True)
class RelChange:
    """One relationship's change (see the module docstring for ``old`` and ``new``).

    A relationship is identified by ``(rel_type, source, target)``; ``source_label`` and
    ``target_label`` are its end labels (``CI`` for CI-to-CI types).
    """

    op: RelOp
    rel_type: str
    source: str
    target: str
    source_label: str
    target_label: str
    old: Row | None
    new: Row | None

    @property
    def key(self) -> tuple[str, str, str]:
        """``(rel_type, source, target)``."""
        return (self.rel_type, self.source, self.target)


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """Everything one write changed.

    Attributes
    ----------
    seq : int
        Sequence number, unique per store, increasing in commit order (from 1).
    at : datetime
        When the write committed (UTC).
    actor : Actor
        Who made it.
    nodes : tuple of NodeChange
        Node changes, in the order they were applied.
    relationships : tuple of RelChange
        Relationship changes, applied after the nodes.
    reset : bool
        The store was emptied first (``clear()``): a follower drops everything it holds, then
        applies the changes.
    """

    seq: int
    at: datetime
    actor: Actor
    nodes: tuple[NodeChange, ...] = ()
    relationships: tuple[RelChange, ...] = ()
    reset: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.nodes) + len(self.relationships)


def encode_record(record: ChangeRecord) -> bytes:
    """The stored bytes of a record (compact JSON, zlib-compressed when large).

    Raises
    ------
    TypeError
        A row holds a value that is not JSON (rows are lean rows: they never do).
    """
    body: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "seq": record.seq,
        "at": record.at.isoformat(),
        "actor": record.actor.to_json(),
        "n": [[str(c.op), c.label, c.key, c.old, c.new] for c in record.nodes],
        "r": [[str(c.op), c.rel_type, c.source, c.target, c.source_label, c.target_label,
               c.old, c.new] for c in record.relationships],
    }
    if record.reset:
        body["reset"] = True
    if record.meta:
        body["meta"] = record.meta
    data = orjson.dumps(body)
    if len(data) > _COMPRESS_OVER:
        return _ZLIB + zlib.compress(data, 1)
    return _PLAIN + data


def decode_record(data: bytes) -> ChangeRecord:
    """The record of :func:`encode_record`'s bytes.

    Raises
    ------
    StoreError
        The bytes are not a change record of a known format version.
    """
    try:
        kind, payload = data[:1], data[1:]
        body = orjson.loads(zlib.decompress(payload) if kind == _ZLIB else payload)
        if kind not in (_PLAIN, _ZLIB) or body.get("v") != FORMAT_VERSION:
            raise ValueError(f"unknown change record format {kind!r}/{body.get('v')!r}")
        return ChangeRecord(
            seq=int(body["seq"]),
            at=to_utc(datetime.fromisoformat(body["at"])),
            actor=Actor.from_json(body["actor"]),
            nodes=tuple(NodeChange(NodeOp(op), label, key, old, new)
                        for op, label, key, old, new in body["n"]),
            relationships=tuple(RelChange(RelOp(op), t, s, d, sl, dl, old, new)
                                for op, t, s, d, sl, dl, old, new in body["r"]),
            reset=bool(body.get("reset", False)),
            meta=dict(body.get("meta", {})),
        )
    except (ValueError, KeyError, TypeError, zlib.error, orjson.JSONDecodeError) as exc:
        raise StoreError(f"unreadable change record: {exc}") from exc
