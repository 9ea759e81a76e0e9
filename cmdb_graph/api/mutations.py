"""Mutations: writes that ITSM tools and discovery tools send.

CIs and relationships are written only through :func:`cmdb_graph.ingest.run_import`: the
input becomes importer records (:mod:`cmdb_graph.model.records`) of the caller's data source,
so identification, reconciliation by source priority and lineage apply exactly as for a file
import. Changes, windows and incidents are ITSM references, not reconciled CIs: the CIs they
name are *identified* (by ``ciId`` or by identifiers, with the ingest identification rules)
and the record is then stored as it was sent.

Roles: ``writer`` for ``ciUpsert``, ``relationshipAdd``, ``changeSchedule``, ``windowUpsert``
and ``incidentRecord``; ``admin`` for ``ciRetire`` and ``importRun``. Every mutation returns a
union of its payload and :class:`~cmdb_graph.api.errors.UserError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from pydantic import ValidationError
from strawberry.scalars import JSON

from cmdb_graph.api.analysis import (
    ChangeRequest,
    ChangeStateEnum,
    Routing,
    change_request,
    routing_type,
)
from cmdb_graph.api.auth import require_role
from cmdb_graph.api.context import Context
from cmdb_graph.api.errors import UserError, user_error
from cmdb_graph.api.import_worker import read_import
from cmdb_graph.api.types import (
    ConfigurationItemType,
    OperationalStatus,
    RelationshipType,
    ci_type,
    rel_type,
)
from cmdb_graph.errors import (
    CmdbError,
    InvalidRecordError,
    NotFoundError,
    ReconciliationConflict,
)
from cmdb_graph.ingest import ImportResult, run_import
from cmdb_graph.ingest.candidates import Candidates
from cmdb_graph.ingest.references import identifiers_for, lookup, require_ci
from cmdb_graph.model import (
    Change,
    ChangeState,
    CIRecord,
    DataSource,
    Identifiers,
    Incident,
    IncidentState,
    Origin,
    RelationshipRecord,
    RunMode,
    Window,
    WindowKind,
)
from cmdb_graph.settings import Role
from cmdb_graph.store.base import GraphStore, WriteBatch

__all__ = ["Mutation", "ADMIN_SOURCE"]

Info = strawberry.Info[Context, None]
T = TypeVar("T")

#: The data source of administrative overrides (ciRetire); it outranks discovery sources.
ADMIN_SOURCE = DataSource(name="cmdb-admin", kind="manual", priority=1000,
                          stale_after_days=None)

ImportMode = strawberry.enum(RunMode, name="ImportMode",
                             description="delta: create and update; full: also retire.")
WindowKindEnum = strawberry.enum(WindowKind, name="WindowKind",
                                 description="maintenance or blackout.")
IncidentStateEnum = strawberry.enum(IncidentState, name="IncidentState",
                                    description="State of an incident.")


# -- inputs -------------------------------------------------------------------------------


@strawberry.input(description="Identifiers of a CI as the sending source knows it.")
class IdentifiersInput:
    native_key: str | None = strawberry.field(
        default=None, description="The sending source's own key for the CI."
    )
    serial_number: str | None = strawberry.field(default=None, description="Serial number.")
    asset_tag: str | None = strawberry.field(default=None, description="Asset tag.")
    cloud_id: str | None = strawberry.field(default=None, description="Cloud resource id.")
    fqdn: str | None = strawberry.field(default=None, description="Fully qualified name.")
    hostname: str | None = strawberry.field(default=None, description="Host name.")
    domain: str | None = strawberry.field(default=None, description="DNS domain.")
    mac_addresses: list[str] = strawberry.field(
        default_factory=list, description="MAC addresses (never enough alone)."
    )
    name: str | None = strawberry.field(default=None, description="Name (logical CIs).")
    ci_class: str | None = strawberry.field(
        default=None, description="CI class, when a name needs it to be unambiguous."
    )

    def to_model(self) -> Identifiers:
        """The record identifiers."""
        return Identifiers(
            native_key=self.native_key, serial_number=self.serial_number,
            asset_tag=self.asset_tag, cloud_id=self.cloud_id, fqdn=self.fqdn,
            hostname=self.hostname, domain=self.domain,
            mac_addresses=tuple(self.mac_addresses), name=self.name, ci_class=self.ci_class,
        )


@strawberry.input(description="A reference to an existing CI: its ciId, or identifiers.")
class CIRefInput:
    ci_id: strawberry.ID | None = strawberry.field(default=None, description="The CI's key.")
    identifiers: IdentifiersInput | None = strawberry.field(
        default=None, description="Identifiers, resolved with the identification rules."
    )
    source: str | None = strawberry.field(
        default=None,
        description="Data source whose key `identifiers.nativeKey` is (default: itsm, the "
        "sending ITSM tool), e.g. itop for a CI imported from iTop.",
    )


@strawberry.input(description="A configuration item as the sending source sees it.")
class CIInput:
    ci_class: str = strawberry.field(description="CI class from the registry.")
    name: str = strawberry.field(description="Name.")
    identifiers: IdentifiersInput = strawberry.field(description="How to identify it.")
    operational_status: OperationalStatus | None = strawberry.field(
        default=None, description="Operational status."
    )
    environment: str | None = strawberry.field(default=None, description="Environment.")
    business_criticality: int | None = strawberry.field(default=None, description="1..4.")
    description: str | None = strawberry.field(default=None, description="Free text.")
    ip_addresses: list[str] | None = strawberry.field(default=None, description="IPs.")
    redundancy: str | None = strawberry.field(default=None, description="all, k or k%.")
    host: IdentifiersInput | None = strawberry.field(
        default=None, description="Host of a dependent CI (application, database)."
    )
    support_group: str | None = strawberry.field(
        default=None, description="Support group name (created on first sight)."
    )
    owner: str | None = strawberry.field(default=None, description="Owner (name or e-mail).")
    location: str | None = strawberry.field(default=None, description="Location name.")
    attributes: JSON | None = strawberry.field(
        default=None, description="Further attributes: a JSON object of scalar values."
    )


@strawberry.input(description="A relationship between two CIs, dependent -> what it needs.")
class RelationshipInput:
    rel_type: str = strawberry.field(description="Relationship type, e.g. DEPENDS_ON.")
    source: CIRefInput = strawberry.field(description="The dependent CI.")
    target: CIRefInput = strawberry.field(description="The CI it needs.")
    optional: bool = strawberry.field(default=False, description="Only degrades on failure.")
    inferred: bool = strawberry.field(default=False, description="Deduced, not observed.")
    evidence: str | None = strawberry.field(default=None, description="What it rests on.")


@strawberry.input(description="CIs (and relationships among them) sent by one data source.")
class CIUpsertInput:
    source: str = strawberry.field(description="Data source name, e.g. 'snow' or 'nmap'.")
    priority: int | None = strawberry.field(
        default=None, description="Source priority (higher wins reconciliation); stored."
    )
    cis: list[CIInput] = strawberry.field(description="The CIs.")
    relationships: list[RelationshipInput] = strawberry.field(
        default_factory=list, description="Relationships (ends may be CIs of this input)."
    )
    dry_run: bool = strawberry.field(default=False, description="Plan only, write nothing.")


@strawberry.input(description="Relationships sent by one data source.")
class RelationshipAddInput:
    source: str = strawberry.field(description="Data source name.")
    priority: int | None = strawberry.field(default=None, description="Source priority.")
    relationships: list[RelationshipInput] = strawberry.field(description="Relationships.")
    dry_run: bool = strawberry.field(default=False, description="Plan only, write nothing.")


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


@strawberry.input(description="An import of files by a registered importer (admin).")
class ImportRunInput:
    kind: str = strawberry.field(description="Importer kind, e.g. glpi, netbox, nmap.")
    source: str = strawberry.field(description="Data source name.")
    priority: int | None = strawberry.field(default=None, description="Source priority.")
    paths: list[str] = strawberry.field(
        default_factory=list,
        description="Files in the server's import folder (CMDB_IMPORT_FOLDER), read in order.")
    content: str | None = strawberry.field(default=None,
                                           description="Or the file content itself.")
    filename: str = strawberry.field(
        default="upload", description="Name for inline content (its suffix picks a parser)."
    )
    mode: ImportMode = strawberry.field(default=RunMode.DELTA, description="delta or full.")
    dry_run: bool = strawberry.field(default=False, description="Plan only.")
    force: bool = strawberry.field(default=False,
                                   description="Let a full run through the breaker.")


# -- payloads -----------------------------------------------------------------------------


@strawberry.type(description="Counters of an import run.")
class ImportCounts:
    created: int = strawberry.field(description="Nodes and relationships created.")
    updated: int = strawberry.field(description="Updated (value changes).")
    unchanged: int = strawberry.field(description="Seen again, unchanged.")
    merged: int = strawberry.field(description="Duplicate CIs merged.")
    retired: int = strawberry.field(description="CIs retired.")
    skipped: int = strawberry.field(description="Records skipped.")


@strawberry.type(description="A record (or part) not applied, and why.")
class ImportSkip:
    record_type: str = strawberry.field(description="ci, relationship, asset, ...")
    reason: str = strawberry.field(description="Why.")
    where: str | None = strawberry.field(description="File and line / record.")


@strawberry.type(name="ImportRun", description="One identification and reconciliation run.")
class ImportRunType:
    run_id: str = strawberry.field(description="Run id.")
    source: str = strawberry.field(description="Data source.")
    importer: str = strawberry.field(description="Importer kind, or 'api'.")
    mode: ImportMode = strawberry.field(description="delta or full.")
    status: str = strawberry.field(description="succeeded, dry_run, ...")
    dry_run: bool = strawberry.field(description="Nothing was written.")
    counts: ImportCounts = strawberry.field(description="Counters.")
    skips: list[ImportSkip] = strawberry.field(description="Skipped records.")
    warnings: list[ImportSkip] = strawberry.field(description="Records applied in part.")


def _run_type(r: ImportResult) -> ImportRunType:
    c = r.counts

    def skip(s: Any) -> ImportSkip:
        return ImportSkip(record_type=s.record_type, reason=s.reason,
                          where=str(s.origin) if s.origin else None)

    return ImportRunType(
        run_id=r.run.run_id, source=r.run.source, importer=r.run.importer, mode=r.run.mode,
        status=str(r.run.status), dry_run=r.dry_run,
        counts=ImportCounts(**{k: c.get(k, 0) for k in
                               ("created", "updated", "unchanged", "merged", "retired",
                                "skipped")}),
        skips=[skip(s) for s in r.plan.skips[:200]],
        warnings=[skip(s) for s in r.plan.warnings[:200]],
    )


@strawberry.type(description="CIs upserted through identification and reconciliation.")
class CIUpsertPayload:
    run: ImportRunType = strawberry.field(description="The import run.")
    cis: list[ConfigurationItemType] = strawberry.field(
        description="The stored CI of each input CI, in input order (absent in a dry run)."
    )


@strawberry.type(description="Relationships upserted through identification.")
class RelationshipAddPayload:
    run: ImportRunType = strawberry.field(description="The import run.")
    relationships: list[RelationshipType] = strawberry.field(
        description="The stored relationships, in input order (absent when skipped)."
    )


@strawberry.type(description="A CI retired by an administrator.")
class CIRetirePayload:
    ci: ConfigurationItemType = strawberry.field(description="The retired CI.")
    run: ImportRunType = strawberry.field(description="The run that retired it.")


@strawberry.type(description="A scheduled change.")
class ChangeSchedulePayload:
    change: ChangeRequest = strawberry.field(description="The change as stored.")


@strawberry.type(name="MaintenanceWindow", description="A maintenance or blackout window.")
class WindowType:
    window_id: str = strawberry.field(description="Key.")
    name: str | None = strawberry.field(description="Name.")
    kind: WindowKindEnum = strawberry.field(description="maintenance or blackout.")
    start: datetime = strawberry.field(description="Start (UTC).")
    end: datetime = strawberry.field(description="End (UTC).")
    recurrence: str | None = strawberry.field(description="RRULE.")
    ci_ids: list[strawberry.ID] = strawberry.field(description="CIs (none: whole estate).")


@strawberry.type(description="A stored window.")
class WindowUpsertPayload:
    window: WindowType = strawberry.field(description="The window as stored.")


@strawberry.type(name="Incident", description="An incident and the CIs it is reported on.")
class IncidentType:
    incident_id: str = strawberry.field(description="Incident number.")
    title: str | None = strawberry.field(description="Short description.")
    state: IncidentStateEnum = strawberry.field(description="State.")
    priority: int | None = strawberry.field(description="Priority.")
    opened_at: datetime = strawberry.field(description="Opened (UTC).")
    ci_ids: list[strawberry.ID] = strawberry.field(description="Affected CIs.")


@strawberry.type(description="A recorded incident and where it should go.")
class IncidentRecordPayload:
    incident: IncidentType = strawberry.field(description="The incident as stored.")
    routing: Routing | None = strawberry.field(
        description="Routing for its first CI (null without a group assigned)."
    )


@strawberry.type(description="A finished import run.")
class ImportRunPayload:
    run: ImportRunType = strawberry.field(description="The run.")


CIUpsertResult = Annotated[CIUpsertPayload | UserError, strawberry.union("CIUpsertResult")]
RelationshipAddResult = Annotated[
    RelationshipAddPayload | UserError, strawberry.union("RelationshipAddResult")
]
CIRetireResult = Annotated[CIRetirePayload | UserError, strawberry.union("CIRetireResult")]
ChangeScheduleResult = Annotated[
    ChangeSchedulePayload | UserError, strawberry.union("ChangeScheduleResult")
]
WindowUpsertResult = Annotated[
    WindowUpsertPayload | UserError, strawberry.union("WindowUpsertResult")
]
IncidentRecordResult = Annotated[
    IncidentRecordPayload | UserError, strawberry.union("IncidentRecordResult")
]
ImportRunResult = Annotated[ImportRunPayload | UserError, strawberry.union("ImportRunResult")]


# -- identification helpers ---------------------------------------------------------------


def _source(store: GraphStore, name: str, priority: int | None) -> DataSource | str:
    try:
        if priority is None:
            return DataSource(name=name).name
        try:
            found = store.get_node("DataSource", name)
        except NotFoundError:
            return DataSource(name=name, kind="api", priority=priority)
        assert isinstance(found, DataSource)
        return found.model_copy(update={"priority": priority})
    except ValidationError as exc:
        raise InvalidRecordError(
            f"invalid data source name {name!r}: use letters, digits, '_', '.', '-'",
            field="source",
        ) from exc


def _ci_id(refs: Candidates, ref: CIRefInput, source: str, field: str) -> str:
    """The ``ci_id`` a reference names: its ``ciId``, or the one CI its identifiers resolve to
    (:func:`cmdb_graph.ingest.references.require_ci`; a ``nativeKey`` is one of ``ref.source``,
    else of ``source``)."""
    if ref.ci_id is not None:
        return refs.store.get_ci(str(ref.ci_id)).ci_id
    if ref.identifiers is None:
        raise InvalidRecordError("give ciId or identifiers", field=field)
    return require_ci(refs, ref.identifiers.to_model(), ref.source or source, field)


def _ids_for(refs: Candidates, ref: CIRefInput, source: str, field: str) -> Identifiers:
    """What an import record of ``source`` carries for a reference: its identifiers, or for a
    ``ciId`` identifiers unique to that CI."""
    if ref.ci_id is not None:
        return identifiers_for(refs, refs.store.get_ci(str(ref.ci_id)), source)
    if ref.identifiers is None:
        raise InvalidRecordError("give ciId or identifiers", field=field)
    return ref.identifiers.to_model()


def _ci_record(c: CIInput, i: int, op: str) -> CIRecord:
    attrs: dict[str, Any] = {}
    if c.attributes is not None:
        if not isinstance(c.attributes, dict):
            raise InvalidRecordError("attributes must be a JSON object", record=i,
                                     field="attributes")
        for k, v in c.attributes.items():
            if not (v is None or isinstance(v, str | int | float | bool)):
                raise InvalidRecordError(f"attribute {k!r} must be a scalar", record=i,
                                         field=f"attributes.{k}")
            attrs[str(k)] = v
    for name, value in (("operational_status", c.operational_status),
                        ("environment", c.environment),
                        ("business_criticality", c.business_criticality),
                        ("description", c.description), ("ip_addresses", c.ip_addresses),
                        ("redundancy", c.redundancy)):
        if value is not None:
            attrs[name] = str(value) if name == "operational_status" else value
    ids = c.identifiers.to_model()
    if c.host is not None:
        ids = ids.model_copy(update={"host": c.host.to_model()})
    try:
        return CIRecord(ci_class=c.ci_class, name=c.name, identifiers=ids, attributes=attrs,
                        support_group=c.support_group, owner=c.owner, location=c.location,
                        origin=Origin(file=f"graphql:{op}", record=i))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidRecordError(err["msg"], record=i,
                                 field=".".join(str(x) for x in err["loc"])) from exc


def _rel_record(refs: Candidates, r: RelationshipInput, i: int, op: str,
                source: str) -> RelationshipRecord:
    return RelationshipRecord(
        rel_type=r.rel_type,
        source=_ids_for(refs, r.source, source, f"relationships[{i}].source"),
        target=_ids_for(refs, r.target, source, f"relationships[{i}].target"),
        optional=r.optional, inferred=r.inferred, evidence=r.evidence,
        origin=Origin(file=f"graphql:{op}", record=f"relationships/{i}"),
    )


async def _write(info: Info, role: Role, fn: Callable[[], T]) -> T | UserError:
    """Check the role, run ``fn`` in a worker thread under the write lock, type errors."""
    try:
        require_role(info.context.principal, role)
        async with info.context.app.write_lock:
            result: T = await info.context.call(fn)
    except CmdbError as exc:
        return user_error(exc)
    return result


def _validated(model: type[T], **values: Any) -> T:
    try:
        return model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidRecordError(err["msg"],
                                 field=".".join(str(x) for x in err["loc"]) or None) from exc


def _resolve_all(store: GraphStore, refs: Sequence[CIRefInput], source: str) -> list[str]:
    """The ``ci_id`` of each reference (each resolved once), in input order."""
    found = lookup(store)
    return [_ci_id(found, r, source, f"cis[{i}]") for i, r in enumerate(refs)]


# -- the mutation type --------------------------------------------------------------------


@strawberry.type
class Mutation:
    """Writes: through identification and reconciliation, never around them."""

    @strawberry.mutation(description="Upsert CIs (and relationships among them) as one import "
                                      "run of the given data source (writer).")
    async def ci_upsert(self, info: Info, input: CIUpsertInput) -> CIUpsertResult:
        store = info.context.store

        def work() -> CIUpsertPayload:
            if not input.cis and not input.relationships:
                raise InvalidRecordError("nothing to upsert", field="cis")
            if len(input.cis) + len(input.relationships) > info.context.app.settings.max_results:
                raise InvalidRecordError("too many records in one call", field="cis")
            src = _source(store, input.source, input.priority)
            name = src if isinstance(src, str) else src.name
            refs = lookup(store)
            records: list[Any] = [_ci_record(c, i, "ciUpsert") for i, c in enumerate(input.cis)]
            records += [_rel_record(refs, r, i, "ciUpsert", name)
                        for i, r in enumerate(input.relationships)]
            result = run_import(store, records, source=src, importer="api",
                                dry_run=input.dry_run, actor=info.context.actor)
            cis: list[ConfigurationItemType] = []
            if not input.dry_run:
                # the CI records come first: each one's ci_id is what identification found
                ci_ids = [result.plan.ci_id_of(i) for i in range(len(input.cis))]
                stored = store.get_cis(sorted({c for c in ci_ids if c is not None}))
                cis = [ci_type(stored[c]) for c in ci_ids if c is not None and c in stored]
            return CIUpsertPayload(run=_run_type(result), cis=cis)

        return await _write(info, Role.WRITER, work)

    @strawberry.mutation(description="Upsert relationships between CIs as one import run "
                                      "(writer).")
    async def relationship_add(
        self, info: Info, input: RelationshipAddInput
    ) -> RelationshipAddResult:
        store = info.context.store

        def work() -> RelationshipAddPayload:
            if not input.relationships:
                raise InvalidRecordError("no relationship given", field="relationships")
            src = _source(store, input.source, input.priority)
            name = src if isinstance(src, str) else src.name
            refs = lookup(store)
            records = [_rel_record(refs, r, i, "relationshipAdd", name)
                       for i, r in enumerate(input.relationships)]
            result = run_import(store, records, source=src, importer="api",
                                dry_run=input.dry_run, actor=info.context.actor)
            rels: list[RelationshipType] = []
            if not input.dry_run:
                for i in range(len(records)):
                    key = result.plan.relationship_of(i)  # what identification found
                    if key is None:
                        continue
                    t, s, tgt = key
                    rels.extend(rel_type(x) for x in store.relationships(s, rel_types=[t])
                                if x.source == s and x.target == tgt)
            return RelationshipAddPayload(run=_run_type(result), relationships=rels)

        return await _write(info, Role.WRITER, work)

    @strawberry.mutation(description="Retire a CI (admin): an override by the cmdb-admin data "
                                      "source, which outranks discovery; never a deletion.")
    async def ci_retire(
        self, info: Info, ci_id: strawberry.ID, reason: str | None = None
    ) -> CIRetireResult:
        store = info.context.store

        def work() -> CIRetirePayload:
            ci = store.get_ci(str(ci_id))
            ids = identifiers_for(lookup(store), ci, ADMIN_SOURCE.name)
            attrs: dict[str, Any] = {"operational_status": "retired"}
            if reason:
                attrs["retired_reason"] = reason
            rec = CIRecord(ci_class=ci.ci_class, name=ci.name, identifiers=ids,
                           attributes=attrs, origin=Origin(file="graphql:ciRetire", record=1))
            plan = run_import(store, [rec], source=ADMIN_SOURCE, importer="api", dry_run=True)
            if plan.plan.merges or any(c.label == "CI" for c in plan.plan.creates):
                raise InvalidRecordError(
                    f"CI {ci.ci_id} is not identified unambiguously; nothing was retired",
                    field="ciId",
                )
            result = run_import(store, [rec], source=ADMIN_SOURCE, importer="api",
                                  actor=info.context.actor)
            after = store.get_ci(ci.ci_id)
            if str(after.operational_status) != "retired":
                raise ReconciliationConflict(
                    f"CI {ci.ci_id} stays {after.operational_status}: a source of higher "
                    "priority asserts its status"
                )
            return CIRetirePayload(ci=ci_type(after), run=_run_type(result))

        return await _write(info, Role.ADMIN, work)

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
                ci_ids=sorted(set(_resolve_all(store, input.cis, "itsm"))), risk=input.risk,
                support_group=input.support_group, requested_by=input.requested_by,
            )
            if change.window_end <= change.window_start:
                raise InvalidRecordError("the change window must end after it starts",
                                         field="windowEnd")
            store.apply(WriteBatch(nodes=[change], actor=info.context.actor))
            return ChangeSchedulePayload(change=change_request(change))

        return await _write(info, Role.WRITER, work)

    @strawberry.mutation(description="Record or update a maintenance or blackout window "
                                      "(writer).")
    async def window_upsert(self, info: Info, input: WindowInput) -> WindowUpsertResult:
        store = info.context.store

        def work() -> WindowUpsertPayload:
            window = _validated(
                Window, window_id=input.window_id, name=input.name, kind=input.kind,
                start=input.start, end=input.end, recurrence=input.recurrence,
                ci_ids=sorted(set(_resolve_all(store, input.cis, "itsm"))),
            )
            if window.end <= window.start:
                raise InvalidRecordError("the window must end after it starts", field="end")
            if window.recurrence:
                from impact import window_overlaps

                window_overlaps(window, window.start, window.end)  # validates the RRULE
            store.apply(WriteBatch(nodes=[window], actor=info.context.actor))
            return WindowUpsertPayload(window=WindowType(
                window_id=window.window_id, name=window.name, kind=window.kind,
                start=window.start, end=window.end, recurrence=window.recurrence,
                ci_ids=[strawberry.ID(c) for c in window.ci_ids],
            ))

        return await _write(info, Role.WRITER, work)

    @strawberry.mutation(description="Record or update an incident and route it (writer).")
    async def incident_record(self, info: Info, input: IncidentInput) -> IncidentRecordResult:
        store = info.context.store
        engine = info.context.app.engine

        def work() -> IncidentRecordPayload:
            if not input.cis:
                raise InvalidRecordError("an incident needs at least one CI", field="cis")
            ci_ids = _resolve_all(store, input.cis, "itsm")
            incident = _validated(
                Incident, incident_id=input.incident_id, title=input.title, state=input.state,
                priority=input.priority, opened_at=input.opened_at,
                resolved_at=input.resolved_at, ci_ids=sorted(set(ci_ids)),
                support_group=input.support_group,
            )
            store.apply(WriteBatch(nodes=[incident], actor=info.context.actor))
            routing = routing_type(engine.route_incident(ci_ids[0]))
            return IncidentRecordPayload(
                incident=IncidentType(
                    incident_id=incident.incident_id, title=incident.title,
                    state=incident.state, priority=incident.priority,
                    opened_at=incident.opened_at,
                    ci_ids=[strawberry.ID(c) for c in incident.ci_ids],
                ),
                routing=routing,
            )

        return await _write(info, Role.WRITER, work)

    @strawberry.mutation(description="Run a registered importer over files on the server or "
                                      "inline content (admin).")
    async def import_run(self, info: Info, input: ImportRunInput) -> ImportRunResult:
        store = info.context.store
        try:  # files only from the import folder, parsed in a worker process under limits
            require_role(info.context.principal, Role.ADMIN)
            parsed = await read_import(info.context.app.settings, input.kind, paths=input.paths,
                                       content=input.content, filename=input.filename)
        except CmdbError as exc:
            return user_error(exc)

        def work() -> ImportRunPayload:
            src = _source(store, input.source, input.priority)
            result = run_import(store, parsed.records, source=src, importer=input.kind,
                                mode=input.mode, dry_run=input.dry_run, force=input.force,
                                files=parsed.files, actor=info.context.actor)
            return ImportRunPayload(run=_run_type(result))

        return await _write(info, Role.ADMIN, work)
