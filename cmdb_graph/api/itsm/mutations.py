"""Writes of ITSM records: changes, windows and incidents. They are references, not reconciled
CIs: the CIs they name are *identified* (:mod:`cmdb_graph.api.cis.refs`) and the record is
then stored as it was sent. Role: ``writer``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from pydantic import ValidationError

from cmdb_graph.api.cis.refs import CIRefInput, resolve_all
from cmdb_graph.api.common import Info, guarded
from cmdb_graph.api.derive import answer
from cmdb_graph.api.errors import UserError
from cmdb_graph.api.impact.types import Routing
from cmdb_graph.api.itsm.types import (
    ChangeRequest,
    ChangeStateEnum,
    IncidentStateEnum,
    IncidentType,
    WindowKindEnum,
    WindowType,
)
from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model import Change, ChangeState, Incident, IncidentState, Window
from cmdb_graph.settings import Role
from cmdb_graph.store.base import WriteBatch

__all__ = ["ITSMMutation"]

T = TypeVar("T")


@strawberry.input(description="A change request scheduled in an ITSM tool.")
class ChangeInput:
    change_id: str = strawberry.field(description="Change number.")
    title: str | None = strawberry.field(default=None, description="Short description.")
    state: ChangeStateEnum = strawberry.field(default=ChangeState.SCHEDULED,
                                              description="State.")
    window_start: datetime = strawberry.field(description="Start of the window (UTC).")
    window_end: datetime = strawberry.field(description="End of the window (UTC).")
    cis: list[CIRefInput] = strawberry.field(description="CIs under change.")
    risk: str | None = strawberry.field(default=None, description="Risk rating.")
    support_group: str | None = strawberry.field(default=None, description="Implementing group.")
    requested_by: str | None = strawberry.field(default=None, description="Requester.")


@strawberry.input(description="A maintenance or blackout window.")
class WindowInput:
    window_id: str = strawberry.field(description="Key of the window.")
    name: str | None = strawberry.field(default=None, description="Name.")
    kind: WindowKindEnum = strawberry.field(description="maintenance or blackout.")
    start: datetime = strawberry.field(description="Start of the first occurrence (UTC).")
    end: datetime = strawberry.field(description="End of the first occurrence (UTC).")
    recurrence: str | None = strawberry.field(default=None,
                                              description="RFC 5545 RRULE, e.g. FREQ=WEEKLY.")
    cis: list[CIRefInput] = strawberry.field(
        default_factory=list, description="CIs it applies to (none: the whole estate)."
    )


@strawberry.input(description="An incident recorded in an ITSM tool.")
class IncidentInput:
    incident_id: str = strawberry.field(description="Incident number.")
    title: str | None = strawberry.field(default=None, description="Short description.")
    state: IncidentStateEnum = strawberry.field(default=IncidentState.NEW,
                                                description="State.")
    priority: int | None = strawberry.field(default=None, description="1 (highest) .. 5.")
    opened_at: datetime = strawberry.field(description="When it was opened (UTC).")
    resolved_at: datetime | None = strawberry.field(default=None, description="Resolved (UTC).")
    cis: list[CIRefInput] = strawberry.field(description="Affected CIs.")
    support_group: str | None = strawberry.field(default=None, description="Assigned group.")


@strawberry.type(description="A scheduled change.")
class ChangeSchedulePayload:
    change: ChangeRequest = strawberry.field(description="The change as stored.")


@strawberry.type(description="A stored window.")
class WindowUpsertPayload:
    window: WindowType = strawberry.field(description="The window as stored.")


@strawberry.type(description="A recorded incident and where it should go.")
class IncidentRecordPayload:
    incident: IncidentType = strawberry.field(description="The incident as stored.")
    routing: Routing | None = strawberry.field(
        description="Routing for its first CI (null without a group assigned)."
    )


ChangeScheduleResult = Annotated[
    ChangeSchedulePayload | UserError, strawberry.union("ChangeScheduleResult")
]
WindowUpsertResult = Annotated[
    WindowUpsertPayload | UserError, strawberry.union("WindowUpsertResult")
]
IncidentRecordResult = Annotated[
    IncidentRecordPayload | UserError, strawberry.union("IncidentRecordResult")
]


def _validated(model: type[T], **values: Any) -> T:
    try:
        return model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidRecordError(err["msg"],
                                 field=".".join(str(x) for x in err["loc"]) or None) from exc


@strawberry.type
class ITSMMutation:
    """Changes, windows and incidents, with their CIs identified."""

    @strawberry.mutation(description="Record or update a change request and the CIs it "
                                      "affects (writer); CIs are identified first.")
    async def change_schedule(self, info: Info, input: ChangeInput) -> ChangeScheduleResult:
        store = info.context.store

        def work() -> ChangeSchedulePayload:
            if not input.cis:
                raise InvalidRecordError("a change needs at least one CI", field="cis")
            change = _validated(
                Change, change_id=input.change_id, title=input.title, state=input.state,
                window_start=input.window_start, window_end=input.window_end,
                ci_ids=sorted(set(resolve_all(store, input.cis, "itsm"))), risk=input.risk,
                support_group=input.support_group, requested_by=input.requested_by,
            )
            if change.window_end <= change.window_start:
                raise InvalidRecordError("the change window must end after it starts",
                                         field="windowEnd")
            store.apply(WriteBatch(nodes=[change], actor=info.context.actor))
            return ChangeSchedulePayload(change=answer(ChangeRequest, change))

        return await guarded(info, Role.WRITER, work, write=True)

    @strawberry.mutation(description="Record or update a maintenance or blackout window "
                                      "(writer).")
    async def window_upsert(self, info: Info, input: WindowInput) -> WindowUpsertResult:
        store = info.context.store

        def work() -> WindowUpsertPayload:
            window = _validated(
                Window, window_id=input.window_id, name=input.name, kind=input.kind,
                start=input.start, end=input.end, recurrence=input.recurrence,
                ci_ids=sorted(set(resolve_all(store, input.cis, "itsm"))),
            )
            if window.end <= window.start:
                raise InvalidRecordError("the window must end after it starts", field="end")
            if window.recurrence:
                from impact import window_overlaps

                window_overlaps(window, window.start, window.end)  # validates the RRULE
            store.apply(WriteBatch(nodes=[window], actor=info.context.actor))
            return WindowUpsertPayload(window=answer(WindowType, window))

        return await guarded(info, Role.WRITER, work, write=True)

    @strawberry.mutation(description="Record or update an incident and route it (writer).")
    async def incident_record(self, info: Info, input: IncidentInput) -> IncidentRecordResult:
        store = info.context.store
        engine = info.context.app.engine

        def work() -> IncidentRecordPayload:
            if not input.cis:
                raise InvalidRecordError("an incident needs at least one CI", field="cis")
            ci_ids = resolve_all(store, input.cis, "itsm")
            incident = _validated(
                Incident, incident_id=input.incident_id, title=input.title, state=input.state,
                priority=input.priority, opened_at=input.opened_at,
                resolved_at=input.resolved_at, ci_ids=sorted(set(ci_ids)),
                support_group=input.support_group,
            )
            store.apply(WriteBatch(nodes=[incident], actor=info.context.actor))
            routing = engine.route_incident(ci_ids[0])
            return IncidentRecordPayload(incident=answer(IncidentType, incident),
                                         routing=answer(Routing, routing))

        return await guarded(info, Role.WRITER, work, write=True)
