"""Impact questions: change impact and conflicts, incident routing, probable cause.

Every field computes its answer with :class:`cmdb_graph.service.engine.Engine` (one store
extraction per request, or the cached topology) and returns a union of its result (the
engine's result model, typed by :mod:`cmdb_graph.api.impact.types`) and
:class:`~cmdb_graph.api.errors.UserError` for expected failures (unknown CI, over a server
cap, bad input).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import strawberry

from cmdb_graph.api.common import AsOf, Info, guarded, selects, str_ids, utc, when
from cmdb_graph.api.context import CI_LABEL
from cmdb_graph.api.derive import answer, answers
from cmdb_graph.api.impact.types import (
    ChangeConflict,
    ChangeConflicts,
    ChangeConflictsResult,
    ChangeImpact,
    ChangeImpactResult,
    ProbableCauseResult,
    ProbableCauses,
    ProposedChangeInput,
    Routing,
    RoutingResult,
)
from cmdb_graph.api.itsm.types import ChangeRequest
from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model import Change, ConfigurationItem
from cmdb_graph.service.engine import ProposedChange
from cmdb_graph.settings import Role

__all__ = ["ImpactQuery"]


@strawberry.type
class ImpactQuery:
    """Change impact and conflicts, incident routing, probable cause."""

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
        as_of: AsOf = None,
        inferred: Annotated[bool | None, strawberry.argument(
            description="Follow relationships an importer inferred (default: the server's "
                        "CMDB_IMPACT_INFERRED, on); false: only declared and discovered ones."
        )] = None,
    ) -> ChangeImpactResult:
        engine = info.context.app.engine
        ctx = info.context
        # look ahead: fetch the CIs (and their support groups) the selection will ask for in
        # the same worker thread, one store call each, instead of one DataLoader round per
        # level
        want_ci = selects(info, "impacted", "ci")
        want_group = want_ci and selects(info, "impacted", "ci", "supportGroup")

        def work() -> ChangeImpact:
            ids = str_ids(ci_ids or [])
            if change_id is not None:
                ids = sorted(set(ids) | set(engine.change(change_id).ci_ids))
            with engine.as_of(when(as_of)):
                r = engine.change_impact(
                    ids, depth=depth, services_only=services_only, paths_per_ci=paths_per_ci,
                    inferred=inferred)
            if want_ci and r.impacted:
                cis = ctx.prefetch(CI_LABEL, r.impacted_ids())
                if want_group:
                    ctx.prefetch("SupportGroup", (
                        ci.support_group for ci in cis.values()
                        if isinstance(ci, ConfigurationItem) and ci.support_group
                    ))
            return answer(ChangeImpact, r)

        return await guarded(info, Role.READER, work)

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
                    ci_ids=tuple(str_ids(proposed.ci_ids)),
                    window_start=utc(proposed.window_start),
                    window_end=utc(proposed.window_end), change_id=proposed.change_id,
                )
            else:
                subject = engine.change(str(change_id))
            assessed, found = engine.change_conflicts(subject)
            return ChangeConflicts(change=answer(ChangeRequest, assessed),
                                   conflicts=answers(ChangeConflict, found),
                                   has_conflicts=bool(found))

        return await guarded(info, Role.READER, work)

    @strawberry.field(description="The support group an incident on a CI goes to: its own, or "
                                  "that of the nearest CI it depends on, with the path.")
    async def route_incident(self, info: Info, ci_id: strawberry.ID) -> RoutingResult:
        engine = info.context.app.engine
        return await guarded(
            info, Role.READER, lambda: answer(Routing, engine.route_incident(str(ci_id)))
        )

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
            return answer(ProbableCauses, engine.probable_cause(
                str_ids(ci_ids), now=utc(now) if now else None,
                lookback=timedelta(hours=lookback_hours), max_candidates=max_candidates,
            ))

        return await guarded(info, Role.READER, work)
