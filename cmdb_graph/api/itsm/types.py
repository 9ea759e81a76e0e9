"""GraphQL types of the ITSM records, derived from :mod:`cmdb_graph.model` (the resolvers
return the stored models themselves)."""

from __future__ import annotations

import strawberry

from cmdb_graph.api.derive import derived, ids
from cmdb_graph.model import (
    Change,
    ChangeState,
    Incident,
    IncidentState,
    Window,
    WindowKind,
)

__all__ = [
    "ChangeRequest",
    "ChangeStateEnum",
    "IncidentStateEnum",
    "IncidentType",
    "WindowKindEnum",
    "WindowType",
]

ChangeStateEnum = strawberry.enum(ChangeState, name="ChangeState",
                                  description="State of a change request.")
WindowKindEnum = strawberry.enum(WindowKind, name="WindowKind",
                                 description="maintenance or blackout.")
IncidentStateEnum = strawberry.enum(IncidentState, name="IncidentState",
                                    description="State of an incident.")


@derived(Change, description="A change request and the CIs it affects.", fields={
    "change_id": "Change number from the ITSM tool.",
    "title": "Short description.",
    "state": "State.",
    "window_start": "Start of the change window (UTC).",
    "window_end": "End of the change window (UTC).",
    "ci_ids": ids("CIs under change."),
    "risk": "Risk as the ITSM tool rates it.",
    "support_group": "Implementing group.",
})
class ChangeRequest:
    pass


@derived(Window, name="MaintenanceWindow", description="A maintenance or blackout window.",
         fields={
             "window_id": "Key.",
             "name": "Name.",
             "kind": "maintenance or blackout.",
             "start": "Start (UTC).",
             "end": "End (UTC).",
             "recurrence": "RRULE.",
             "ci_ids": ids("CIs (none: whole estate)."),
         })
class WindowType:
    pass


@derived(Incident, name="Incident", description="An incident and the CIs it is reported on.",
         fields={
             "incident_id": "Incident number.",
             "title": "Short description.",
             "state": "State.",
             "priority": "Priority.",
             "opened_at": "Opened (UTC).",
             "ci_ids": ids("Affected CIs."),
         })
class IncidentType:
    pass
