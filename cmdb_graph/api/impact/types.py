"""GraphQL types of the impact answers, derived from the result models of :mod:`impact`
(resolvers return those models themselves; see :mod:`cmdb_graph.api.derive`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

import impact
from cmdb_graph.api.cis.types import (
    ConfigurationItemType,
    SupportGroupType,
    ci_type,
    load_ci,
    load_group,
)
from cmdb_graph.api.common import Info
from cmdb_graph.api.context import CI_LABEL
from cmdb_graph.api.derive import derived, ids
from cmdb_graph.api.errors import UserError
from cmdb_graph.api.itsm.types import ChangeRequest
from cmdb_graph.model import ConfigurationItem

__all__ = [
    "ChangeConflict",
    "ChangeConflicts",
    "ChangeConflictsResult",
    "ChangeImpact",
    "ChangeImpactResult",
    "ImpactedCI",
    "ProbableCauseResult",
    "ProposedChangeInput",
    "Routing",
    "RoutingResult",
]

ImpactStatus = strawberry.enum(
    impact.ImpactStatus, name="ImpactStatus",
    description="Status of a CI under a change or failure: operational, degraded or down.",
)
ConflictKind = strawberry.enum(
    impact.ConflictKind, name="ConflictKind",
    description=(
        "same_ci: another overlapping change on the same CI; impact_overlap: a CI of one change "
        "is in the other's impact closure; blackout: a blackout window covers a changed or "
        "impacted CI; outside_maintenance: changed CIs whose maintenance windows do not cover "
        "the change; redundancy_combined: two overlapping changes together push a redundancy "
        "group below its threshold."
    ),
)


# -- change impact ------------------------------------------------------------------------


def _impacted_ci(root: impact.ImpactedCI, info: Info) -> Any:
    # synchronous when changeImpact prefetched the CIs (no DataLoader round trip)
    key = (CI_LABEL, root.ci_id)
    if key in info.context.prefetched:
        found = info.context.prefetched[key]
        return ci_type(found) if isinstance(found, ConfigurationItem) else None
    return load_ci(info, root.ci_id)


@derived(impact.PathLink, description="The relationship that carries impact over one hop of "
                                       "an explaining path, and how sure it is.", fields={
    "source": ids("ci_id of its start (the dependent), in stored orientation.",
                  name="sourceId"),
    "target": ids("ci_id of its end.", name="targetId"),
    "rel_type": "Relationship type.",
    "basis": "Declared by the data source, discovered by a discovery tool, or inferred.",
    "confidence": "How sure, in (0, 1]: recorded, or the basis's default (declared 1, "
                  "discovered 0.9, inferred 0.5).",
    "evidence": "What an inference rests on (the setting and its value).",
    "evidence_file": "The file it was read from.",
})
class PathLink:
    pass


@derived(impact.ImpactedCI, description="A CI reached by a change or failure, and why.", fields={
    "ci_id": ids("The impacted CI."),
    "name": "Its name.",
    "ci_class": "Its CI class.",
    "kind": "business_service, application_service, application, infrastructure, ...",
    "status": "Down or degraded.",
    "depth": "Hops from the nearest changed CI.",
    "business_criticality": "1 (most critical) to 4.",
    "operational_status": "Its operational status (operational, non_operational, repair, "
                          "retired; null when not recorded).",
    "in_service": "False when the CI is not in service (non_operational, repair or "
                  "retired): still listed, but no outage and not counted in the summary's "
                  "servicesHit.",
    "paths": ids("Paths that explain the status, each from a changed CI to this one "
                 "(shortest first)."),
    "links": "For each path, the relationship of each hop: its type, basis (declared, "
             "discovered, inferred), confidence and evidence.",
    "confidence": "How sure the impact is: the highest product of hop confidences over the "
                  "paths (null when no paths were asked for).",
})
class ImpactedCI:
    ci = strawberry.field(resolver=_impacted_ci, description="The full configuration item.",
                          graphql_type=ConfigurationItemType | None)


@derived(impact.RedundancyImpact,
         description="A CI with a redundancy rule (a cluster) that lost headroom.", fields={
             "ci_id": ids("The redundancy group."),
             "name": "Its name.",
             "rule": "Its rule: all, k or k%.",
             "required_inputs": "Members counted by the rule.",
             "inputs_down": "Members in service that are down.",
             "inputs_not_in_service": "Members not in service (non_operational, repair, "
                                      "retired): they give no redundancy.",
             "threshold": "Members that must be up.",
             "headroom": "Members that may still fail before the group goes down "
                         "(negative: below).",
             "status": "The group's status.",
         })
class RedundancyImpact:
    pass


@derived(impact.ImpactSummary, description="Counts over the impacted CIs.", fields={
    "total": "Impacted CIs reported.",
    "by_status": "Per status.",
    "by_class": "Per CI class.",
    "services_hit": "Business and application services hit that are in service.",
    "not_in_service": "Impacted CIs reported that are not in service.",
    "most_critical_service": ids("The impacted service with the highest business "
                                 "criticality."),
    "most_critical_level": "Its business criticality.",
})
class ImpactSummary:
    pass


@derived(impact.ChangeImpact,
         description="What taking some CIs down (for a change) does to the estate.", fields={
             "changed": ids("The CIs under change."),
             "impacted": "Impacted CIs, by depth then ci_id (the changed CIs are not "
                         "repeated).",
             "redundancy": "Redundancy groups that lost headroom.",
             "cycles": ids("Dependency cycles met on the way (propagation terminated on "
                           "them)."),
             "summary": "Counts.",
             "depth_limit": "Depth up to which CIs are reported.",
             "truncated": "CIs beyond depthLimit were left out.",
         })
class ChangeImpact:
    pass


ChangeImpactResult = Annotated[
    ChangeImpact | UserError,
    strawberry.union("ChangeImpactResult", description="The impact, or why it was refused."),
]


# -- change conflicts ---------------------------------------------------------------------


@derived(impact.ChangeConflict,
         description="One conflict of a change with another change or a window.", fields={
             "kind": "What kind of conflict.",
             "change_id": "The change assessed.",
             "other_change_id": "The change it collides with; null for a combination of "
                                "three or more.",
             "other_change_ids": "Every other change involved (one for pairwise conflicts).",
             "window_id": "The window concerned, if any.",
             "ci_ids": ids("The CIs concerned."),
             "detail": "One sentence for people.",
         })
class ChangeConflict:
    pass


@strawberry.type(description="The conflicts of one (recorded or proposed) change.")
class ChangeConflicts:
    change: ChangeRequest = strawberry.field(description="The change assessed.")
    conflicts: list[ChangeConflict] = strawberry.field(
        description="Sorted by kind, other change, window and CIs."
    )
    has_conflicts: bool = strawberry.field(description="Whether there is any conflict.")


ChangeConflictsResult = Annotated[
    ChangeConflicts | UserError,
    strawberry.union("ChangeConflictsResult", description="The conflicts, or why not."),
]


@strawberry.input(description="A change not yet recorded: its CIs and window.")
class ProposedChangeInput:
    ci_ids: list[strawberry.ID] = strawberry.field(description="CIs to be changed.")
    window_start: datetime = strawberry.field(description="Start of the window (UTC).")
    window_end: datetime = strawberry.field(description="End of the window (UTC).")
    change_id: str = strawberry.field(default="proposed",
                                      description="A name for the proposal in the results.")


# -- routing and probable cause -----------------------------------------------------------


async def _routing_group(root: impact.Routing, info: Info) -> SupportGroupType | None:
    return await load_group(info, root.support_group)


@derived(impact.Routing, description="Where an incident on a CI goes, and why.", fields={
    "ci_id": ids("The CI the incident is on."),
    "support_group": ids("The group to route to; null when no CI within reach has one.",
                         name="supportGroupId"),
    "routed_via": ids("The CI whose group was taken (the CI itself when it has one)."),
    "path": ids("From the CI down its dependencies to routedVia."),
    "reason": "Why, in one sentence.",
})
class Routing:
    group = strawberry.field(resolver=_routing_group, name="supportGroup",
                             description="The support group to route to.")


RoutingResult = Annotated[
    Routing | UserError, strawberry.union("RoutingResult", description="Routing, or why not.")
]


async def _cause_group(root: impact.ProbableCause, info: Info) -> SupportGroupType | None:
    return await load_group(info, root.support_group)


@derived(impact.ProbableCause, description="A candidate cause shared by several affected CIs.",
         fields={
             "ci_id": ids("The candidate CI."),
             "name": "Its name.",
             "ci_class": "Its CI class.",
             "explains": ids("Affected CIs its failure reaches."),
             "distance": "Total hops to the CIs it explains.",
             "recent_changes": "Changes on it within the look-back period.",
             "open_incidents": "Its own open incidents.",
             "support_group": ids("Its support group.", name="supportGroupId"),
         })
class ProbableCause:
    group = strawberry.field(resolver=_cause_group, name="supportGroup",
                             description="Its support group.")


@derived(impact.ProbableCauses, description="Ranked candidate causes for several affected CIs.",
         fields={
             "affected": ids("The affected CIs."),
             "candidates": "Most affected CIs explained first, then recent changes, own open "
                           "incidents, nearest.",
         })
class ProbableCauses:
    pass


ProbableCauseResult = Annotated[
    ProbableCauses | UserError,
    strawberry.union("ProbableCauseResult", description="Candidates, or why not."),
]
