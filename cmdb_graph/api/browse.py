"""Queries the web UI needs besides the impact questions: search over names and identifiers,
data-quality flags for the CIs on a map, and the recorded changes, incidents and windows to
pick from.

Search and flags are computed by :mod:`cmdb_graph.service.search` and
:mod:`cmdb_graph.service.mapview`; the listings page through the store like ``assets``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry

from cmdb_graph.api.analysis import ChangeRequest, _run, _utc, change_request
from cmdb_graph.api.auth import require_role
from cmdb_graph.api.context import Context
from cmdb_graph.api.errors import PublicError, UserError
from cmdb_graph.api.mutations import IncidentStateEnum, IncidentType, WindowType
from cmdb_graph.api.types import (
    ConfigurationItemType,
    Connection,
    Edge,
    OperationalStatus,
    PageInfo,
    ci_type,
    encode_cursor,
)
from cmdb_graph.errors import CmdbError, TraversalLimitError
from cmdb_graph.model import Change, Incident, Node, Window
from cmdb_graph.service.mapview import quality_flags
from cmdb_graph.service.search import search
from cmdb_graph.settings import Role

__all__ = ["BrowseQuery"]

N = TypeVar("N", bound=Node)
T = TypeVar("T")

Info = strawberry.Info[Context, None]


@strawberry.type(description="A CI found by `search`, and why it matched.")
class SearchHit:
    ci: ConfigurationItemType = strawberry.field(description="The CI.")
    matched_on: str = strawberry.field(
        description="What matched: name, ci_id, fqdn, hostname, serial_number, asset_tag, "
                    "cloud_id, mac_addresses, native_keys or ip_addresses."
    )
    value: str = strawberry.field(description="The stored value that matched.")


@strawberry.type(description="CIs found by name or identifier, best first.")
class SearchResults:
    hits: list[SearchHit] = strawberry.field(
        description="Identifier matches first, then names equal to the text, starting with "
                    "it, containing it; ties by name."
    )
    truncated: bool = strawberry.field(description="More CIs matched than returned.")


SearchResult = Annotated[
    SearchResults | UserError,
    strawberry.union("SearchResult", description="The hits, or why not."),
]


@strawberry.type(description="One data-quality finding about a CI, shown as a badge.")
class QualityFlag:
    badge: str = strawberry.field(
        description="orphan, stale, duplicate, past_warranty, unowned, retired_in_use or "
                    "unmanaged."
    )
    report: str = strawberry.field(description="The report that found it (see `reports`).")
    detail: str = strawberry.field(description="What is wrong.")


@strawberry.type(description="The data-quality findings about one CI.")
class CIQualityFlags:
    ci_id: strawberry.ID = strawberry.field(description="The CI.")
    flags: list[QualityFlag] = strawberry.field(description="Its findings (empty: none).")


@strawberry.type(description="Data-quality flags of the CIs asked for.")
class QualityFlags:
    cis: list[CIQualityFlags] = strawberry.field(description="One entry per CI asked for.")


QualityFlagsResult = Annotated[
    QualityFlags | UserError,
    strawberry.union("QualityFlagsResult", description="The flags, or why not."),
]


def _page_of(info: Info, first: int) -> None:
    cap = info.context.app.settings.max_page_size
    if first < 1 or first > cap:
        raise TraversalLimitError(f"first must be between 1 and {cap} (got {first})")


def _window_type(w: Window) -> WindowType:
    return WindowType(window_id=w.window_id, name=w.name, kind=w.kind, start=w.start,
                      end=w.end, recurrence=w.recurrence,
                      ci_ids=[strawberry.ID(c) for c in w.ci_ids])


def _incident_type(i: Incident) -> IncidentType:
    return IncidentType(incident_id=i.incident_id, title=i.title, state=i.state,
                        priority=i.priority, opened_at=i.opened_at,
                        ci_ids=[strawberry.ID(c) for c in i.ci_ids])


@strawberry.type
class BrowseQuery:
    """Search, data-quality flags and the ITSM records, for people exploring the estate."""

    @strawberry.field(description="CIs by a part of their name or by any identifier: ci_id, "
                                  "FQDN, host name, serial number, asset tag, cloud id, MAC, "
                                  "native key (source:key) or IP address (a prefix when the "
                                  "text ends with '.' or ':').")
    async def search(
        self,
        info: Info,
        text: str,
        ci_class: Annotated[str | None, strawberry.argument(
            description="Only this CI class and its subclasses."
        )] = None,
        status: Annotated[OperationalStatus | None, strawberry.argument(
            description="Only this operational status."
        )] = None,
        first: Annotated[int, strawberry.argument(description="At most this many hits.")] = 20,
    ) -> SearchResult:
        ctx = info.context

        def work() -> SearchResults:
            _page_of(info, first)
            with ctx.app.engine.reading():  # the graph holds still while it is searched
                found = search(
                    ctx.store, text, ci_class=ci_class,
                    status=status, limit=first,
                    graph=lambda: ctx.app.engine.whole_graph().graph,
                )
            return SearchResults(
                hits=[SearchHit(ci=ci_type(h.ci), matched_on=h.matched_on, value=h.value)
                      for h in found.hits],
                truncated=found.truncated,
            )

        return await _run(info, work)

    @strawberry.field(description="The data-quality findings about each of the given CIs "
                                  "(the badges of a map): orphan (no service rests on it), "
                                  "stale, duplicate candidate, past warranty or end of life, "
                                  "no support group or owner, retired asset in use, unmanaged.")
    async def quality_flags(
        self,
        info: Info,
        ci_ids: list[strawberry.ID],
        now: Annotated[datetime | None, strawberry.argument(
            description="Reference time (UTC); default now."
        )] = None,
        reports: Annotated[list[str] | None, strawberry.argument(
            description="Only these reports (default: every report that flags CIs)."
        )] = None,
    ) -> QualityFlagsResult:
        engine = info.context.app.engine

        def work() -> QualityFlags:
            _page_of(info, len(ci_ids))
            ids = [str(c) for c in ci_ids]
            with engine.reading():  # one version of the graph for every report
                data = engine.quality_input(now=_utc(now) if now else None)
                found = quality_flags(data, ids, reports=reports)
            return QualityFlags(cis=[
                CIQualityFlags(ci_id=strawberry.ID(c), flags=[
                    QualityFlag(badge=f.badge, report=f.report, detail=f.detail)
                    for f in found[c]
                ])
                for c in dict.fromkeys(ids)
            ])

        return await _run(info, work)

    @strawberry.field(description="Recorded change requests, paged (sorted by changeId).")
    async def changes(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[ChangeRequest]:
        return await _listing(info, Change, change_request, first, after)

    @strawberry.field(description="Recorded incidents, paged (sorted by incidentId).")
    async def incidents(
        self,
        info: Info,
        state: IncidentStateEnum | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[IncidentType]:
        where = {"state": str(state)} if state else None
        return await _listing(info, Incident, _incident_type, first, after, where)

    @strawberry.field(description="Maintenance and blackout windows, paged (sorted by "
                                  "windowId).")
    async def windows(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[WindowType]:
        return await _listing(info, Window, _window_type, first, after)


async def _listing(
    info: Info, model: type[N], convert: Callable[[N], T], first: int, after: str | None,
    where: dict[str, str] | None = None,
) -> Connection[T]:
    """One page of the stored nodes of ``model`` as a connection of their GraphQL type
    (reader role; page size within the server cap)."""
    try:
        require_role(info.context.principal, Role.READER)
        _page_of(info, first)
        page = await info.context.call(
            info.context.store.list_nodes, model.LABEL, where=where, after=after, limit=first
        )
    except CmdbError as exc:
        raise PublicError(exc) from exc
    return Connection(
        edges=[Edge(cursor=encode_cursor(getattr(n, model.KEY)), node=convert(n))
               for n in page.items if isinstance(n, model)],
        page_info=PageInfo(has_next_page=page.next_cursor is not None,
                           end_cursor=page.next_cursor),
        total_count=page.total,
    )
