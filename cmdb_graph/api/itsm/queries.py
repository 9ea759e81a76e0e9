"""Listings of the recorded ITSM records: changes, incidents, windows (paged like ``assets``)."""

from __future__ import annotations

import strawberry

from cmdb_graph.api.common import Info, listing
from cmdb_graph.api.connections import Connection
from cmdb_graph.api.itsm.types import ChangeRequest, IncidentStateEnum, IncidentType, WindowType
from cmdb_graph.model import Change, Incident, Window

__all__ = ["ITSMQuery"]


@strawberry.type
class ITSMQuery:
    """The recorded change requests, incidents and windows, to pick from."""

    @strawberry.field(description="Recorded change requests, paged (sorted by changeId).")
    async def changes(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[ChangeRequest]:
        return await listing(info, Change, first, after)

    @strawberry.field(description="Recorded incidents, paged (sorted by incidentId).")
    async def incidents(
        self,
        info: Info,
        state: IncidentStateEnum | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[IncidentType]:
        where = {"state": str(state)} if state else None
        return await listing(info, Incident, first, after, where)

    @strawberry.field(description="Maintenance and blackout windows, paged (sorted by "
                                  "windowId).")
    async def windows(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[WindowType]:
        return await listing(info, Window, first, after)
