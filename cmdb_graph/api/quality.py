"""Data quality: the orphan and data-quality reports (:data:`impact.REPORTS`) and the quality
flags (badges) of the CIs on a map (:mod:`cmdb_graph.service.mapview`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

import impact
from cmdb_graph.api.common import AsOf, Info, check_first, guarded, utc, when
from cmdb_graph.api.derive import answers, derived, ids, of
from cmdb_graph.api.errors import UserError
from cmdb_graph.api.exploration import NodeRef
from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.service import mapview
from cmdb_graph.settings import Role

__all__ = ["CoverageReport", "QualityFlagsQuery", "QualityQuery"]


@derived(impact.QualityFinding, description="One finding of a data-quality report.", fields={
    "subject": "A ci_id, asset_id, entitlement_id or 'REL_TYPE:source->target'.",
    "subject_kind": "ci, asset, entitlement or relationship.",
    "ci_id": ids("The CI concerned, if any."),
    "related": "Other ids involved (duplicates, services resting on it, ...).",
    "detail": "What is wrong.",
})
class QualityFinding:
    pass


@derived(impact.QualityReport, description="A named orphan or data-quality report.", fields={
    "name": "Report name.",
    "definition": "What the report finds.",
    "count": "Findings in total.",
    "findings": "Findings (at most `first`), sorted by subject kind and subject.",
})
class QualityReport:
    truncated: bool = strawberry.field(description="More findings than returned.")


QualityReportResult = Annotated[
    QualityReport | UserError,
    strawberry.union("QualityReportResult", description="The report, or why not."),
]


@strawberry.type(name="Coverage", description="Coverage of the dependency map: where it is "
                 "thin, and how much of it importers inferred rather than sources declared.")
class CoverageReport:
    services_without_dependencies: list[NodeRef] = strawberry.field(
        description="Business and application services (not retired) that need nothing.")
    containers_without_dependents: list[NodeRef] = strawberry.field(
        description="Containers (not retired) that nothing needs.")
    relationships: int = strawberry.field(
        description="CI-to-CI relationships that carry impact.")
    inferred_relationships: int = strawberry.field(
        description="Those of them an importer inferred (environment values, arguments, "
                    "connection strings, application grouping).")
    inferred_share: float = strawberry.field(
        description="inferredRelationships / relationships (0 with none).")


CoverageResult = Annotated[
    CoverageReport | UserError,
    strawberry.union("CoverageResult", description="The coverage, or why not."),
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


@derived(mapview.QualityFlag,
         description="One data-quality finding about a CI, shown as a badge.", fields={
             "badge": "orphan, stale, duplicate, past_warranty, unowned, retired_in_use or "
                      "unmanaged.",
             "report": "The report that found it (see `reports`).",
             "detail": "What is wrong.",
         })
class QualityFlag:
    pass


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


@strawberry.type
class QualityFlagsQuery:
    """The badges of the CIs on a map."""

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
            check_first(info, len(ci_ids))
            wanted = [str(c) for c in ci_ids]
            with engine.reading():  # one version of the graph for every report
                data = engine.quality_input(now=utc(now) if now else None)
                found = mapview.quality_flags(data, wanted, reports=reports)
            return QualityFlags(cis=[
                CIQualityFlags(ci_id=strawberry.ID(c), flags=answers(QualityFlag, found[c]))
                for c in dict.fromkeys(wanted)
            ])

        return await guarded(info, Role.READER, work)


@strawberry.type
class QualityQuery:
    """The orphan and data-quality reports."""

    @strawberry.field(description="The orphan and data-quality reports that can be run.")
    def reports(self) -> list[ReportDefinition]:
        return [
            ReportDefinition(name=name, definition=_first_paragraph(fn.__doc__ or ""))
            for name, fn in impact.REPORTS.items()
        ]

    @strawberry.field(description="Coverage of the dependency map: services that need "
                                  "nothing, containers nothing needs, share of inferred "
                                  "relationships.")
    async def coverage(self, info: Info) -> CoverageResult:
        return await _coverage(info)

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
        as_of: AsOf = None,
    ) -> QualityReportResult:
        engine = info.context.app.engine
        opts = options or QualityOptionsInput()

        def work() -> QualityReport:
            check_first(info, first)
            if opts.unseen_days < 0 or opts.stale_days < 0:
                raise InvalidRecordError("day thresholds must be >= 0", field="options")
            past = when(as_of)
            with engine.as_of(past):  # the reference time is then asOf, unless options.now
                r = engine.report(
                    name, now=utc(opts.now) if opts.now else past,
                    options=impact.QualityOptions(unseen_days=opts.unseen_days,
                                                  stale_days=opts.stale_days),
                )
            return of(QualityReport, r, findings=r.findings[:first], truncated=r.count > first)

        return await guarded(info, Role.READER, work)


async def _coverage(info: Info) -> CoverageResult:
    engine = info.context.app.engine

    def work() -> CoverageReport:
        found = engine.coverage()
        graph = engine.whole_graph()

        def refs(ci_ids: tuple[str, ...]) -> list[NodeRef]:
            return [of(NodeRef, impact.NodeRef(ci_id=c, name=graph.name(c),
                                               ci_class=graph.ci_class(c))) for c in ci_ids]

        return CoverageReport(
            services_without_dependencies=refs(found.services_without_dependencies),
            containers_without_dependents=refs(found.containers_without_dependents),
            relationships=found.relationships,
            inferred_relationships=found.inferred_relationships,
            inferred_share=found.inferred_share)

    return await guarded(info, Role.READER, work)


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())
