"""The estate's past: a CI's history (Relay-paged) and what changed between two times
(:mod:`cmdb_graph.service.history`). Time travel itself is the ``asOf`` argument of the
questions that take it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from cmdb_graph.api.auth import require_role
from cmdb_graph.api.common import Info, check_first, guarded, utc
from cmdb_graph.api.connections import Connection, connection
from cmdb_graph.api.errors import PublicError, UserError
from cmdb_graph.errors import CmdbError
from cmdb_graph.feed import Actor
from cmdb_graph.service import diff, history
from cmdb_graph.settings import Role

__all__ = ["HistoryQuery"]


@strawberry.type(description="Who made a write.")
class ActorType:
    kind: str = strawberry.field(description="import (an import run), api (an API key) or "
                                             "system (cmdb-graph itself).")
    name: str = strawberry.field(description="The data source, the API key's name or the "
                                             "command.")
    role: str | None = strawberry.field(description="The API key's role.")
    run_id: str | None = strawberry.field(description="The import run.")
    source: str | None = strawberry.field(description="The import run's data source.")


def _actor(actor: Actor) -> ActorType:
    return ActorType(kind=str(actor.kind), name=actor.name, role=actor.role,
                     run_id=actor.run_id, source=actor.source)


@strawberry.type(description="One attribute's value before and after (null: absent).")
class FieldChangeType:
    name: str = strawberry.field(description="The attribute (a relationship's property).")
    old: JSON | None = strawberry.field(description="The value before.")
    new: JSON | None = strawberry.field(description="The value after.")


def _fields(changes: tuple[history.FieldChange, ...]) -> list[FieldChangeType]:
    return [FieldChangeType(name=c.name, old=c.old, new=c.new) for c in changes]


@strawberry.type(description="One change of a CI's attributes or of one of its "
                             "relationships.")
class HistoryEntry:
    seq: int = strawberry.field(description="The change record (the store's write) it is in.")
    at: datetime = strawberry.field(description="When the write committed (UTC).")
    actor: ActorType = strawberry.field(description="Who made it.")
    op: str = strawberry.field(description="created, updated, retired, merged, deleted (the "
                                           "CI), or added, changed, removed (a relationship).")
    ci_id: strawberry.ID = strawberry.field(description="The CI.")
    ci_name: str | None = strawberry.field(description="The CI's name now (or when it was "
                                                       "deleted).")
    changes: list[FieldChangeType] = strawberry.field(
        description="What changed, with old and new values.")
    rel_type: str | None = strawberry.field(description="The relationship's type.")
    source: strawberry.ID | None = strawberry.field(description="The relationship's source.")
    source_name: str | None = strawberry.field(description="Its name now.")
    target: strawberry.ID | None = strawberry.field(description="The relationship's target.")
    target_name: str | None = strawberry.field(description="Its name now.")


HistoryConnection = Connection[HistoryEntry]


@strawberry.type(description="How a CI changed between two times.")
class CIDiffType:
    ci_id: strawberry.ID = strawberry.field(description="The CI.")
    name: str | None = strawberry.field(description="Its name (now, or when it was deleted).")
    ci_class: str | None = strawberry.field(description="Its CI class.")
    status: str = strawberry.field(description="created, changed, retired or deleted.")
    changes: list[FieldChangeType] = strawberry.field(
        description="The attributes that differ, with the values at the two times.")


@strawberry.type(description="How a relationship between CIs changed between two times.")
class RelDiffType:
    rel_type: str = strawberry.field(description="Relationship type.")
    source: strawberry.ID = strawberry.field(description="Its source CI.")
    source_name: str | None = strawberry.field(description="The source's name.")
    target: strawberry.ID = strawberry.field(description="Its target CI.")
    target_name: str | None = strawberry.field(description="The target's name.")
    status: str = strawberry.field(description="added, changed or removed.")
    changes: list[FieldChangeType] = strawberry.field(description="Properties that differ.")


@strawberry.type(description="What changed in the estate between two times.")
class EstateDiff:
    since: int = strawberry.field(description="The change record `since` resolved to (the "
                                              "last one committed at or before it).")
    until: int = strawberry.field(description="The change record `until` resolved to.")
    records: int = strawberry.field(description="Writes folded (after the source filter).")
    cis: list[CIDiffType] = strawberry.field(description="CIs created, changed, retired, "
                                                         "deleted; by ci_id.")
    relationships: list[RelDiffType] = strawberry.field(
        description="Relationships added, changed, removed; by type, source, target.")
    seen: int = strawberry.field(description="CIs and relationships whose only difference is "
                                             "that a source saw them again (lastSeen); not "
                                             "listed.")


EstateDiffResult = Annotated[
    EstateDiff | UserError,
    strawberry.union("EstateDiffResult", description="The differences, or why not."),
]


@strawberry.type
class HistoryQuery:
    """A CI's history and the estate's diff between two times."""

    @strawberry.field(description="Every change of a CI's attributes and relationships in the "
                                  "retained change feed, oldest first: old and new values, "
                                  "the import run and data source or API key that made it, "
                                  "and when.")
    async def history(
        self,
        info: Info,
        ci_id: strawberry.ID,
        first: Annotated[int, strawberry.argument(description="Page size.")] = 100,
        after: Annotated[str | None, strawberry.argument(
            description="endCursor of the previous page.")] = None,
    ) -> HistoryConnection:
        store = info.context.store

        def work() -> HistoryConnection:
            page = history.ci_history(store, str(ci_id), first=first, after=after)
            names = history.entry_names(store, page.items)

            def node(e: history.HistoryEntry) -> HistoryEntry:
                return HistoryEntry(
                    seq=e.seq, at=e.at, actor=_actor(e.actor), op=e.op,
                    ci_id=strawberry.ID(e.ci_id), ci_name=names.get(e.ci_id),
                    changes=_fields(e.changes), rel_type=e.rel_type,
                    source=None if e.source is None else strawberry.ID(e.source),
                    source_name=names.get(e.source or ""),
                    target=None if e.target is None else strawberry.ID(e.target),
                    target_name=names.get(e.target or ""))

            return connection(page, page.items, lambda e: e.cursor_key, node)

        try:
            require_role(info.context.principal, Role.READER)
            check_first(info, first)
            result: HistoryConnection = await info.context.call(work)
        except CmdbError as exc:
            raise PublicError(exc) from exc
        return result

    @strawberry.field(description="What changed in the estate between two times (every write "
                                  "committed after `since`, up to `until`): CIs created, "
                                  "changed, retired and deleted, relationships added, changed "
                                  "and removed, with names.")
    async def diff(
        self,
        info: Info,
        since: Annotated[datetime, strawberry.argument(
            description="From this time (UTC; within the feed's retention).")],
        until: Annotated[datetime | None, strawberry.argument(
            description="Up to this time (default: now).")] = None,
        source: Annotated[str | None, strawberry.argument(
            description="Only the writes of this data source's import runs.")] = None,
    ) -> EstateDiffResult:
        store = info.context.store

        def work() -> EstateDiff:
            found, names = diff.diff_between(store, utc(since), None if until is None else
                                        utc(until), source)
            return EstateDiff(
                since=found.since, until=found.until, records=found.records,
                cis=[CIDiffType(ci_id=strawberry.ID(c.ci_id), name=c.name,
                                ci_class=c.ci_class, status=c.status,
                                changes=_fields(c.changes)) for c in found.cis],
                relationships=[RelDiffType(
                    rel_type=r.rel_type, source=strawberry.ID(r.source),
                    source_name=names.get(r.source), target=strawberry.ID(r.target),
                    target_name=names.get(r.target), status=r.status,
                    changes=_fields(r.changes)) for r in found.relationships],
                seen=found.seen)

        return await guarded(info, Role.READER, work)
