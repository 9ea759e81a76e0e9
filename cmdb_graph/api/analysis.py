"""Impact and data-quality queries: change impact and conflicts, incident routing, probable
cause, data-quality reports, licence position, neighbourhood, paths, service map, single points
of failure.

Every field computes its answer with :class:`cmdb_graph.service.engine.Engine` (one store
extraction per request, or the cached topology of the embedded store) and returns a union of
its result type and :class:`~cmdb_graph.api.errors.UserError` for expected failures (unknown
CI, over a server cap, bad input).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

import impact
import impact.licences
from cmdb_graph.api.auth import require_role
from cmdb_graph.api.context import CI_LABEL, Context
from cmdb_graph.api.errors import UserError, user_error
from cmdb_graph.api.types import (
    ConfigurationItemType,
    SupportGroupType,
    ci_type,
    group_type,
)
from cmdb_graph.errors import CmdbError, InvalidRecordError, TraversalLimitError
from cmdb_graph.model import Change, ChangeState, ConfigurationItem, SupportGroup
from cmdb_graph.service.engine import ProposedChange
from cmdb_graph.service.mapview import nearest_first
from cmdb_graph.settings import Role
from cmdb_graph.store.base import Direction

__all__ = ["AnalysisQuery"]

Info = strawberry.Info[Context, None]
R = TypeVar("R")

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
TraversalDirection = strawberry.enum(
    Direction, name="TraversalDirection",
    description=(
        "upstream: the CIs a failure reaches (dependents, the blast-radius side); downstream: "
        "the CIs it needs; both."
    ),
)
ChangeStateEnum = strawberry.enum(ChangeState, name="ChangeState",
                                  description="State of a change request.")


# -- shared pieces ------------------------------------------------------------------------


async def _ci_of(info: Info, ci_id: str) -> ConfigurationItemType | None:
    found = await info.context.ci_loader.load(ci_id)
    return ci_type(found) if found else None


async def _group_of(info: Info, group_id: str | None) -> SupportGroupType | None:
    if not group_id:
        return None
    g = await info.context.group_loader.load(group_id)
    return group_type(g) if isinstance(g, SupportGroup) else None


def _selects(info: Info, *path: str) -> bool:
    """Whether the query selects ``path`` (GraphQL field names) below the current field,
    through inline fragments and fragment spreads (``@skip``/``@include`` are not judged: a
    conditionally skipped field counts as selected, which only costs a prefetch)."""
    raw = info._raw_info  # graphql-core's resolve info: the field's AST nodes and fragments
    fragments = raw.fragments

    def walk(selection_set: SelectionSetNode | None, rest: tuple[str, ...]) -> bool:
        if not rest:
            return True
        if selection_set is None:
            return False
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                if sel.name.value == rest[0] and walk(sel.selection_set, rest[1:]):
                    return True
            elif isinstance(sel, InlineFragmentNode):
                if walk(sel.selection_set, rest):
                    return True
            elif isinstance(sel, FragmentSpreadNode):
                frag = fragments.get(sel.name.value)
                if frag is not None and walk(frag.selection_set, rest):
                    return True
        return False

    return any(walk(node.selection_set, path) for node in raw.field_nodes)


async def _run(info: Info, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R | UserError:
    """Check the reader role, run an engine call in a worker thread, type expected errors."""
    try:
        require_role(info.context.principal, Role.READER)
        result: R = await info.context.call(fn, *args, **kwargs)
    except CmdbError as exc:
        return user_error(exc)
    return result


def _page_size(info: Info, first: int) -> None:
    cap = info.context.app.settings.max_page_size
    if first < 1 or first > cap:
        raise TraversalLimitError(f"first must be between 1 and {cap} (got {first})")


@strawberry.type(description="A count per key (status, CI class, ...).")
class CountEntry:
    key: str = strawberry.field(description="What is counted.")
    count: int = strawberry.field(description="How many.")


def _counts(d: dict[str, int]) -> list[CountEntry]:
    return [CountEntry(key=k, count=v) for k, v in sorted(d.items())]


# -- change impact ------------------------------------------------------------------------


@strawberry.type(description="A CI reached by a change or failure, and why.")
class ImpactedCI:
    ci_id: strawberry.ID = strawberry.field(description="The impacted CI.")
    name: str = strawberry.field(description="Its name.")
    ci_class: str = strawberry.field(description="Its CI class.")
    kind: str = strawberry.field(
        description="business_service, application_service, application, infrastructure, ..."
    )
    status: ImpactStatus = strawberry.field(description="Down or degraded.")
    depth: int = strawberry.field(description="Hops from the nearest changed CI.")
    business_criticality: int | None = strawberry.field(description="1 (most critical) to 4.")
    paths: list[list[strawberry.ID]] = strawberry.field(
        description="Paths that explain the status, each from a changed CI to this one "
                    "(shortest first)."
    )

    @strawberry.field(description="The full configuration item.",
                      graphql_type=ConfigurationItemType | None)
    def ci(self, info: Info) -> Any:
        # synchronous when changeImpact prefetched the CIs (no DataLoader round trip)
        key = (CI_LABEL, str(self.ci_id))
        if key in info.context.prefetched:
            found = info.context.prefetched[key]
            return ci_type(found) if isinstance(found, ConfigurationItem) else None
        return _ci_of(info, str(self.ci_id))


@strawberry.type(description="A CI with a redundancy rule (a cluster) that lost headroom.")
class RedundancyImpact:
    ci_id: strawberry.ID = strawberry.field(description="The redundancy group.")
    name: str = strawberry.field(description="Its name.")
    rule: str = strawberry.field(description="Its rule: all, k or k%.")
    required_inputs: int = strawberry.field(description="Members counted by the rule.")
    inputs_down: int = strawberry.field(description="Members down.")
    threshold: int = strawberry.field(description="Members that must be up.")
    headroom: int = strawberry.field(
        description="Members that may still fail before the group goes down (negative: below)."
    )
    status: ImpactStatus = strawberry.field(description="The group's status.")


@strawberry.type(description="Counts over the impacted CIs.")
class ImpactSummary:
    total: int = strawberry.field(description="Impacted CIs reported.")
    by_status: list[CountEntry] = strawberry.field(description="Per status.")
    by_class: list[CountEntry] = strawberry.field(description="Per CI class.")
    services_hit: int = strawberry.field(description="Business and application services hit.")
    most_critical_service: strawberry.ID | None = strawberry.field(
        description="The impacted service with the highest business criticality."
    )
    most_critical_level: int | None = strawberry.field(description="Its business criticality.")


@strawberry.type(description="What taking some CIs down (for a change) does to the estate.")
class ChangeImpact:
    changed: list[strawberry.ID] = strawberry.field(description="The CIs under change.")
    impacted: list[ImpactedCI] = strawberry.field(
        description="Impacted CIs, by depth then ci_id (the changed CIs are not repeated)."
    )
    redundancy: list[RedundancyImpact] = strawberry.field(
        description="Redundancy groups that lost headroom."
    )
    cycles: list[list[strawberry.ID]] = strawberry.field(
        description="Dependency cycles met on the way (propagation terminated on them)."
    )
    summary: ImpactSummary = strawberry.field(description="Counts.")
    depth_limit: int = strawberry.field(description="Depth up to which CIs are reported.")
    truncated: bool = strawberry.field(description="CIs beyond depthLimit were left out.")


def _impacted(c: impact.ImpactedCI) -> ImpactedCI:
    return ImpactedCI(
        ci_id=strawberry.ID(c.ci_id), name=c.name, ci_class=c.ci_class, kind=c.kind,
        status=c.status, depth=c.depth, business_criticality=c.business_criticality,
        paths=[[strawberry.ID(x) for x in p] for p in c.paths],
    )


def _change_impact(r: impact.ChangeImpact) -> ChangeImpact:
    s = r.summary
    return ChangeImpact(
        changed=[strawberry.ID(c) for c in r.changed],
        impacted=[_impacted(c) for c in r.impacted],
        redundancy=[
            RedundancyImpact(
                ci_id=strawberry.ID(g.ci_id), name=g.name, rule=g.rule,
                required_inputs=g.required_inputs, inputs_down=g.inputs_down,
                threshold=g.threshold, headroom=g.headroom, status=g.status,
            )
            for g in r.redundancy
        ],
        cycles=[[strawberry.ID(x) for x in c] for c in r.cycles],
        summary=ImpactSummary(
            total=s.total, by_status=_counts(s.by_status), by_class=_counts(s.by_class),
            services_hit=s.services_hit,
            most_critical_service=(strawberry.ID(s.most_critical_service)
                                   if s.most_critical_service else None),
            most_critical_level=s.most_critical_level,
        ),
        depth_limit=r.depth_limit,
        truncated=r.truncated,
    )


ChangeImpactResult = Annotated[
    ChangeImpact | UserError,
    strawberry.union("ChangeImpactResult", description="The impact, or why it was refused."),
]


# -- change conflicts ---------------------------------------------------------------------


@strawberry.type(description="One conflict of a change with another change or a window.")
class ChangeConflict:
    kind: ConflictKind = strawberry.field(description="What kind of conflict.")
    change_id: str = strawberry.field(description="The change assessed.")
    other_change_id: str | None = strawberry.field(
        description="The change it collides with; null for a combination of three or more."
    )
    other_change_ids: list[str] = strawberry.field(
        description="Every other change involved (one for pairwise conflicts)."
    )
    window_id: str | None = strawberry.field(description="The window concerned, if any.")
    ci_ids: list[strawberry.ID] = strawberry.field(description="The CIs concerned.")
    detail: str = strawberry.field(description="One sentence for people.")


@strawberry.type(description="A change request and the CIs it affects.")
class ChangeRequest:
    change_id: str = strawberry.field(description="Change number from the ITSM tool.")
    title: str | None = strawberry.field(description="Short description.")
    state: ChangeStateEnum = strawberry.field(description="State.")
    window_start: datetime = strawberry.field(description="Start of the change window (UTC).")
    window_end: datetime = strawberry.field(description="End of the change window (UTC).")
    ci_ids: list[strawberry.ID] = strawberry.field(description="CIs under change.")
    risk: str | None = strawberry.field(description="Risk as the ITSM tool rates it.")
    support_group: str | None = strawberry.field(description="Implementing group.")


def change_request(c: Change) -> ChangeRequest:
    """Convert a model change."""
    return ChangeRequest(
        change_id=c.change_id, title=c.title, state=c.state, window_start=c.window_start,
        window_end=c.window_end, ci_ids=[strawberry.ID(x) for x in c.ci_ids], risk=c.risk,
        support_group=c.support_group,
    )


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


@strawberry.type(description="Where an incident on a CI goes, and why.")
class Routing:
    ci_id: strawberry.ID = strawberry.field(description="The CI the incident is on.")
    support_group_id: strawberry.ID | None = strawberry.field(
        description="The group to route to; null when no CI within reach has one."
    )
    routed_via: strawberry.ID | None = strawberry.field(
        description="The CI whose group was taken (the CI itself when it has one)."
    )
    path: list[strawberry.ID] = strawberry.field(
        description="From the CI down its dependencies to routedVia."
    )
    reason: str = strawberry.field(description="Why, in one sentence.")

    @strawberry.field(description="The support group to route to.")
    async def support_group(self, info: Info) -> SupportGroupType | None:
        return await _group_of(info, str(self.support_group_id) if self.support_group_id
                               else None)


def routing_type(r: impact.Routing) -> Routing:
    """Convert a routing result."""
    return Routing(
        ci_id=strawberry.ID(r.ci_id),
        support_group_id=strawberry.ID(r.support_group) if r.support_group else None,
        routed_via=strawberry.ID(r.routed_via) if r.routed_via else None,
        path=[strawberry.ID(x) for x in r.path], reason=r.reason,
    )


RoutingResult = Annotated[
    Routing | UserError, strawberry.union("RoutingResult", description="Routing, or why not.")
]


@strawberry.type(description="A candidate cause shared by several affected CIs.")
class ProbableCause:
    ci_id: strawberry.ID = strawberry.field(description="The candidate CI.")
    name: str = strawberry.field(description="Its name.")
    ci_class: str = strawberry.field(description="Its CI class.")
    explains: list[strawberry.ID] = strawberry.field(
        description="Affected CIs its failure reaches."
    )
    distance: int = strawberry.field(description="Total hops to the CIs it explains.")
    recent_changes: list[str] = strawberry.field(
        description="Changes on it within the look-back period."
    )
    open_incidents: list[str] = strawberry.field(description="Its own open incidents.")
    support_group_id: strawberry.ID | None = strawberry.field(description="Its support group.")

    @strawberry.field(description="Its support group.")
    async def support_group(self, info: Info) -> SupportGroupType | None:
        return await _group_of(info, str(self.support_group_id) if self.support_group_id
                               else None)


@strawberry.type(description="Ranked candidate causes for several affected CIs.")
class ProbableCauses:
    affected: list[strawberry.ID] = strawberry.field(description="The affected CIs.")
    candidates: list[ProbableCause] = strawberry.field(
        description="Most affected CIs explained first, then recent changes, own open "
                    "incidents, nearest."
    )


ProbableCauseResult = Annotated[
    ProbableCauses | UserError,
    strawberry.union("ProbableCauseResult", description="Candidates, or why not."),
]


# -- data quality -------------------------------------------------------------------------


@strawberry.type(description="One finding of a data-quality report.")
class QualityFinding:
    subject: str = strawberry.field(
        description="A ci_id, asset_id, entitlement_id or 'REL_TYPE:source->target'."
    )
    subject_kind: str = strawberry.field(description="ci, asset, entitlement or relationship.")
    ci_id: strawberry.ID | None = strawberry.field(description="The CI concerned, if any.")
    related: list[str] = strawberry.field(
        description="Other ids involved (duplicates, services resting on it, ...)."
    )
    detail: str = strawberry.field(description="What is wrong.")


@strawberry.type(description="A named orphan or data-quality report.")
class QualityReport:
    name: str = strawberry.field(description="Report name.")
    definition: str = strawberry.field(description="What the report finds.")
    count: int = strawberry.field(description="Findings in total.")
    findings: list[QualityFinding] = strawberry.field(
        description="Findings (at most `first`), sorted by subject kind and subject."
    )
    truncated: bool = strawberry.field(description="More findings than returned.")


QualityReportResult = Annotated[
    QualityReport | UserError,
    strawberry.union("QualityReportResult", description="The report, or why not."),
]


@strawberry.type(description="A data-quality report that can be run.")
class ReportDefinition:
    name: str = strawberry.field(description="Name to pass to `report`.")
    definition: str = strawberry.field(description="What it finds.")


@strawberry.input(description="Thresholds and reference time of the data-quality reports.")
class QualityOptionsInput:
    now: datetime | None = strawberry.field(
        default=None, description="Reference time (UTC); default: now."
    )
    unseen_days: int = strawberry.field(
        default=30, description="In-use assets not seen by discovery for this long."
    )
    stale_days: int = strawberry.field(default=30, description="CIs not seen for this long.")


# -- licence position ---------------------------------------------------------------------

LicenceStatus = strawberry.enum(
    impact.licences.LicenceStatus, name="LicenceStatus",
    description=(
        "compliant: entitled seats equal installations; over_licensed: unused seats; "
        "under_licensed: more installations than entitled seats."
    ),
)


@strawberry.type(description="Entitled seats against installations for one software product.")
class ProductLicencePosition:
    product_id: strawberry.ID = strawberry.field(description="The software product.")
    name: str = strawberry.field(
        description="Product name (the product id when no product record exists)."
    )
    vendor: str | None = strawberry.field(description="Product vendor.")
    entitled_seats: int = strawberry.field(
        description="Seats of the entitlements in force (expired ones do not count)."
    )
    installations: int = strawberry.field(
        description="Distinct CIs with the product installed (two versions on one CI: one)."
    )
    unused_seats: int = strawberry.field(description="Entitled seats beyond installations.")
    shortfall: int = strawberry.field(description="Installations beyond entitled seats.")
    status: LicenceStatus = strawberry.field(description="Over-, under-licensed or compliant.")
    installed_on: list[strawberry.ID] = strawberry.field(
        description="CIs with an installation, by ci_id."
    )
    entitlements: list[str] = strawberry.field(description="Entitlements in force, by id.")
    expired_entitlements: list[str] = strawberry.field(
        description="Entitlements of the product that expired before asOf, by id."
    )
    entitlements_without_seats: list[str] = strawberry.field(
        description="Entitlements in force with no seat count (counted as 0), by id."
    )


@strawberry.type(description="The licence position of every software product.")
class LicencePosition:
    as_of: date | None = strawberry.field(description="The day expiry was judged against.")
    products: list[ProductLicencePosition] = strawberry.field(
        description="Every product (recorded, installed or entitled), by name, vendor and id."
    )
    over_licensed: list[ProductLicencePosition] = strawberry.field(
        description="Products with unused seats, most unused seats first."
    )
    under_licensed: list[ProductLicencePosition] = strawberry.field(
        description="Products short of seats, largest shortfall first."
    )
    unattributed_entitlements: list[str] = strawberry.field(
        description="Entitlements that name no product (they count for nothing), by id."
    )


def _product_position(p: impact.licences.ProductLicencePosition) -> ProductLicencePosition:
    return ProductLicencePosition(
        product_id=strawberry.ID(p.product_id), name=p.name, vendor=p.vendor,
        entitled_seats=p.entitled_seats, installations=p.installations,
        unused_seats=p.unused_seats, shortfall=p.shortfall, status=p.status,
        installed_on=[strawberry.ID(c) for c in p.installed_on],
        entitlements=list(p.entitlements), expired_entitlements=list(p.expired_entitlements),
        entitlements_without_seats=list(p.entitlements_without_seats),
    )


def licence_position_type(r: impact.licences.LicencePosition) -> LicencePosition:
    """Convert a licence position result."""
    return LicencePosition(
        as_of=r.as_of,
        products=[_product_position(p) for p in r.products],
        over_licensed=[_product_position(p) for p in r.over_licensed],
        under_licensed=[_product_position(p) for p in r.under_licensed],
        unattributed_entitlements=list(r.unattributed_entitlements),
    )


LicencePositionResult = Annotated[
    LicencePosition | UserError,
    strawberry.union("LicencePositionResult", description="The position, or why not."),
]


# -- exploration --------------------------------------------------------------------------


@strawberry.type(description="A CI in an exploration result, with its distance.")
class NodeRef:
    ci_id: strawberry.ID = strawberry.field(description="The CI.")
    name: str = strawberry.field(description="Its name.")
    ci_class: str = strawberry.field(description="Its CI class.")
    distance: int = strawberry.field(description="Hops from the start.")

    @strawberry.field(description="The full configuration item (status, environment, ...; "
                                  "batched for all nodes).")
    async def ci(self, info: Info) -> ConfigurationItemType | None:
        return await _ci_of(info, str(self.ci_id))


@strawberry.type(description="A relationship, dependent -> what it needs.")
class EdgeRef:
    source: strawberry.ID = strawberry.field(description="The dependent CI.")
    target: strawberry.ID = strawberry.field(description="The CI it needs.")
    rel_type: str = strawberry.field(description="Relationship type.")
    optional: bool = strawberry.field(description="An optional dependency.")


def _nodes(refs: tuple[impact.NodeRef, ...]) -> list[NodeRef]:
    return [NodeRef(ci_id=strawberry.ID(n.ci_id), name=n.name, ci_class=n.ci_class,
                    distance=n.distance) for n in refs]


def _edges(refs: tuple[impact.EdgeRef, ...]) -> list[EdgeRef]:
    return [EdgeRef(source=strawberry.ID(e.source), target=strawberry.ID(e.target),
                    rel_type=e.rel_type, optional=e.optional) for e in refs]


@strawberry.type(description="CIs within some hops of a CI and the relationships among them.")
class Neighbourhood:
    center: strawberry.ID = strawberry.field(description="The start CI.")
    depth: int = strawberry.field(description="Hops explored.")
    direction: str = strawberry.field(description="upstream, downstream or both.")
    nodes: list[NodeRef] = strawberry.field(description="CIs, by distance then ci_id.")
    edges: list[EdgeRef] = strawberry.field(description="Relationships among them.")
    total_nodes: int = strawberry.field(
        description="CIs within the depth, before the maxNodes cap."
    )
    truncated: bool = strawberry.field(
        description="maxNodes left CIs out (the farthest ones, then by ci_id)."
    )


NeighbourhoodResult = Annotated[
    Neighbourhood | UserError,
    strawberry.union("NeighbourhoodResult", description="The neighbourhood, or why not."),
]


@strawberry.type(description="One path between two CIs.")
class Path:
    ci_ids: list[strawberry.ID] = strawberry.field(description="The CIs along the path.")
    rel_types: list[str] = strawberry.field(
        description="Relationship type(s) of each hop ('A|B' when several)."
    )


@strawberry.type(description="Simple paths between two CIs, shortest first.")
class Paths:
    source: strawberry.ID = strawberry.field(description="Start CI.")
    target: strawberry.ID = strawberry.field(description="End CI.")
    paths: list[Path] = strawberry.field(description="The paths found.")
    truncated: bool = strawberry.field(description="More paths exist within the bounds.")


PathsResult = Annotated[
    Paths | UserError, strawberry.union("PathsResult", description="Paths, or why not.")
]


@strawberry.type(description="The CIs at one depth below a service.")
class ServiceLayer:
    depth: int = strawberry.field(description="Hops below the service.")
    ci_ids: list[strawberry.ID] = strawberry.field(description="CIs at that depth.")


@strawberry.type(description="A service down to its infrastructure.")
class ServiceMap:
    service: strawberry.ID = strawberry.field(description="The service.")
    nodes: list[NodeRef] = strawberry.field(description="Every CI it needs, with distance.")
    edges: list[EdgeRef] = strawberry.field(description="Impact-carrying relationships.")
    layers: list[ServiceLayer] = strawberry.field(description="CIs by depth.")
    truncated: bool = strawberry.field(description="CIs lie beyond the depth asked for.")


ServiceMapResult = Annotated[
    ServiceMap | UserError,
    strawberry.union("ServiceMapResult", description="The map, or why not."),
]


@strawberry.type(description="A CI whose failure alone takes a service down.")
class SinglePointOfFailure:
    ci_id: strawberry.ID = strawberry.field(description="The CI.")
    name: str = strawberry.field(description="Its name.")
    ci_class: str = strawberry.field(description="Its CI class.")
    depth: int = strawberry.field(description="Hops below the service.")
    path: list[strawberry.ID] = strawberry.field(description="From the service down to it.")


@strawberry.type(description="The single points of failure of a service.")
class SinglePointsOfFailure:
    service: strawberry.ID = strawberry.field(description="The service.")
    points: list[SinglePointOfFailure] = strawberry.field(
        description="By depth below the service, then ci_id."
    )


SinglePointsOfFailureResult = Annotated[
    SinglePointsOfFailure | UserError,
    strawberry.union("SinglePointsOfFailureResult", description="The CIs, or why not."),
]


# -- the query type -----------------------------------------------------------------------


def _ids(values: list[strawberry.ID]) -> list[str]:
    return [str(v) for v in values]


@strawberry.type
class AnalysisQuery:
    """Impact, routing, data-quality and exploration questions."""

    @strawberry.field(description="What taking the given CIs down (for a change) impacts, with "
                                  "the paths that explain it. Give ciIds, or changeId to use "
                                  "the CIs of a recorded change.")
    async def change_impact(
        self,
        info: Info,
        ci_ids: list[strawberry.ID] | None = None,
        change_id: str | None = None,
        depth: Annotated[int | None, strawberry.argument(
            description="Report CIs up to this many hops (default and cap: server maximum)."
        )] = None,
        services_only: Annotated[bool, strawberry.argument(
            description="Report only business and application services."
        )] = False,
        paths_per_ci: Annotated[int, strawberry.argument(
            description="Explaining paths per impacted CI (0: none)."
        )] = 3,
    ) -> ChangeImpactResult:
        engine = info.context.app.engine
        ctx = info.context
        # look ahead: fetch the CIs (and their support groups) the selection will ask for in
        # the same worker thread, one store call each, instead of one DataLoader round per
        # level
        want_ci = _selects(info, "impacted", "ci")
        want_group = want_ci and _selects(info, "impacted", "ci", "supportGroup")

        def work() -> ChangeImpact:
            ids = _ids(ci_ids or [])
            if change_id is not None:
                ids = sorted(set(ids) | set(engine.change(change_id).ci_ids))
            r = engine.change_impact(
                ids, depth=depth, services_only=services_only, paths_per_ci=paths_per_ci
            )
            if want_ci and r.impacted:
                cis = ctx.prefetch(CI_LABEL, (c.ci_id for c in r.impacted))
                if want_group:
                    ctx.prefetch("SupportGroup", (
                        ci.support_group for ci in cis.values()
                        if isinstance(ci, ConfigurationItem) and ci.support_group
                    ))
            return _change_impact(r)

        return await _run(info, work)

    @strawberry.field(description="Conflicts of a recorded change (changeId), or of a proposed "
                                  "one (proposed: CIs and window), with other changes, "
                                  "blackout and maintenance windows, and redundancy groups.")
    async def change_conflicts(
        self,
        info: Info,
        change_id: str | None = None,
        proposed: ProposedChangeInput | None = None,
    ) -> ChangeConflictsResult:
        engine = info.context.app.engine

        def work() -> ChangeConflicts:
            if (change_id is None) == (proposed is None):
                raise InvalidRecordError("give either changeId or proposed", field="changeId")
            if proposed is not None:
                subject: Change | ProposedChange = ProposedChange(
                    ci_ids=tuple(_ids(proposed.ci_ids)),
                    window_start=_utc(proposed.window_start),
                    window_end=_utc(proposed.window_end), change_id=proposed.change_id,
                )
            else:
                subject = engine.change(str(change_id))
            assessed, found = engine.change_conflicts(subject)
            return ChangeConflicts(
                change=change_request(assessed),
                conflicts=[
                    ChangeConflict(
                        kind=c.kind, change_id=c.change_id, other_change_id=c.other_change_id,
                        other_change_ids=list(c.other_change_ids),
                        window_id=c.window_id, ci_ids=[strawberry.ID(x) for x in c.ci_ids],
                        detail=c.detail,
                    )
                    for c in found
                ],
                has_conflicts=bool(found),
            )

        return await _run(info, work)

    @strawberry.field(description="The support group an incident on a CI goes to: its own, or "
                                  "that of the nearest CI it depends on, with the path.")
    async def route_incident(self, info: Info, ci_id: strawberry.ID) -> RoutingResult:
        engine = info.context.app.engine
        return await _run(info, lambda: routing_type(engine.route_incident(str(ci_id))))

    @strawberry.field(description="Shared dependencies of several affected CIs ranked as "
                                  "probable causes, with recent changes and open incidents.")
    async def probable_cause(
        self,
        info: Info,
        ci_ids: list[strawberry.ID],
        now: Annotated[datetime | None, strawberry.argument(
            description="Reference time (UTC); default now."
        )] = None,
        lookback_hours: Annotated[int, strawberry.argument(
            description="How far back a change counts as recent."
        )] = 168,
        max_candidates: int = 20,
    ) -> ProbableCauseResult:
        engine = info.context.app.engine

        def work() -> ProbableCauses:
            if lookback_hours < 0:
                raise InvalidRecordError("lookbackHours must be >= 0", field="lookbackHours")
            r = engine.probable_cause(
                _ids(ci_ids), now=_utc(now) if now else None,
                lookback=timedelta(hours=lookback_hours), max_candidates=max_candidates,
            )
            return ProbableCauses(
                affected=[strawberry.ID(a) for a in r.affected],
                candidates=[
                    ProbableCause(
                        ci_id=strawberry.ID(c.ci_id), name=c.name, ci_class=c.ci_class,
                        explains=[strawberry.ID(x) for x in c.explains], distance=c.distance,
                        recent_changes=list(c.recent_changes),
                        open_incidents=list(c.open_incidents),
                        support_group_id=(strawberry.ID(c.support_group) if c.support_group
                                          else None),
                    )
                    for c in r.candidates
                ],
            )

        return await _run(info, work)

    @strawberry.field(description="The orphan and data-quality reports that can be run.")
    def reports(self) -> list[ReportDefinition]:
        return [
            ReportDefinition(name=name, definition=_first_paragraph(fn.__doc__ or ""))
            for name, fn in impact.REPORTS.items()
        ]

    @strawberry.field(description="Run one orphan or data-quality report by name (see "
                                  "`reports`).")
    async def report(
        self,
        info: Info,
        name: str,
        options: QualityOptionsInput | None = None,
        first: Annotated[int, strawberry.argument(
            description="Return at most this many findings (server page cap)."
        )] = 100,
    ) -> QualityReportResult:
        engine = info.context.app.engine
        opts = options or QualityOptionsInput()

        def work() -> QualityReport:
            _page_size(info, first)
            if opts.unseen_days < 0 or opts.stale_days < 0:
                raise InvalidRecordError("day thresholds must be >= 0", field="options")
            r = engine.report(
                name, now=_utc(opts.now) if opts.now else None,
                options=impact.QualityOptions(unseen_days=opts.unseen_days,
                                              stale_days=opts.stale_days),
            )
            return QualityReport(
                name=r.name, definition=r.definition, count=r.count,
                findings=[
                    QualityFinding(
                        subject=f.subject, subject_kind=f.subject_kind,
                        ci_id=strawberry.ID(f.ci_id) if f.ci_id else None,
                        related=list(f.related), detail=f.detail,
                    )
                    for f in r.findings[:first]
                ],
                truncated=r.count > first,
            )

        return await _run(info, work)

    @strawberry.field(description="Licence position: entitled seats against installations "
                                  "(HAS_INSTALLED) per software product, with the over- and "
                                  "under-licensed products.")
    async def licence_position(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(
            description="Entitlements that expired before this day do not count; default: "
                        "today (UTC)."
        )] = None,
    ) -> LicencePositionResult:
        engine = info.context.app.engine
        day = as_of or datetime.now(UTC).date()
        return await _run(
            info, lambda: licence_position_type(engine.licence_position(as_of=day))
        )

    @strawberry.field(description="CIs within some hops of a CI and the relationships among "
                                  "them.")
    async def neighbourhood(
        self,
        info: Info,
        ci_id: strawberry.ID,
        depth: int = 1,
        direction: TraversalDirection = Direction.BOTH,
        rel_types: list[str] | None = None,
        max_nodes: Annotated[int | None, strawberry.argument(
            description="Return at most this many CIs, nearest first, and the relationships "
                        "among them (default: all, up to the server's result cap)."
        )] = None,
    ) -> NeighbourhoodResult:
        engine = info.context.app.engine

        def work() -> Neighbourhood:
            found = engine.neighbourhood(str(ci_id), depth=depth, direction=str(direction),
                                         rel_types=rel_types)
            r, total = nearest_first(found, max_nodes)
            return Neighbourhood(center=strawberry.ID(r.center), depth=r.depth,
                                 direction=r.direction, nodes=_nodes(r.nodes),
                                 edges=_edges(r.edges), total_nodes=total,
                                 truncated=total > len(r.nodes))

        return await _run(info, work)

    @strawberry.field(description="Simple paths between two CIs, shortest first.")
    async def paths(
        self,
        info: Info,
        source: strawberry.ID,
        target: strawberry.ID,
        max_paths: int = 10,
        max_length: int | None = None,
        direction: TraversalDirection = Direction.BOTH,
        rel_types: list[str] | None = None,
    ) -> PathsResult:
        engine = info.context.app.engine

        def work() -> Paths:
            r = engine.paths(str(source), str(target), max_paths=max_paths,
                             max_length=max_length, direction=str(direction),
                             rel_types=rel_types)
            return Paths(
                source=strawberry.ID(r.source), target=strawberry.ID(r.target),
                paths=[Path(ci_ids=[strawberry.ID(x) for x in p], rel_types=list(t))
                       for p, t in zip(r.paths, r.rel_types, strict=True)],
                truncated=r.truncated,
            )

        return await _run(info, work)

    @strawberry.field(description="A service down to its infrastructure, layer by layer.")
    async def service_map(
        self, info: Info, service: strawberry.ID, depth: int | None = None
    ) -> ServiceMapResult:
        engine = info.context.app.engine

        def work() -> ServiceMap:
            r = engine.service_map(str(service), depth=depth)
            return ServiceMap(
                service=strawberry.ID(r.service), nodes=_nodes(r.nodes), edges=_edges(r.edges),
                layers=[ServiceLayer(depth=la.depth, ci_ids=[strawberry.ID(x) for x in la.ci_ids])
                        for la in r.layers],
                truncated=r.truncated,
            )

        return await _run(info, work)

    @strawberry.field(description="The CIs whose failure alone takes a service down "
                                  "(redundancy rules applied).")
    async def single_points_of_failure(
        self, info: Info, service: strawberry.ID
    ) -> SinglePointsOfFailureResult:
        engine = info.context.app.engine

        def work() -> SinglePointsOfFailure:
            found = engine.single_points_of_failure(str(service))
            return SinglePointsOfFailure(
                service=service,
                points=[
                    SinglePointOfFailure(
                        ci_id=strawberry.ID(p.ci_id), name=p.name, ci_class=p.ci_class,
                        depth=p.depth, path=[strawberry.ID(x) for x in p.path],
                    )
                    for p in found
                ],
            )

        return await _run(info, work)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())
