"""CI writes that discovery and ITSM tools send: ``ciUpsert``, ``relationshipAdd``,
``ciRetire``.

CIs and relationships are written only through :func:`cmdb_graph.ingest.run_import`: the
input becomes importer records (:mod:`cmdb_graph.model.records`) of the caller's data source,
so identification, reconciliation by source priority and lineage apply exactly as for a file
import. Changes, windows and incidents are in :mod:`cmdb_graph.api.itsm.mutations`, import
runs in :mod:`cmdb_graph.api.imports`.

Roles: ``writer`` for ``ciUpsert`` and ``relationshipAdd``; ``admin`` for ``ciRetire``. Every
mutation returns a union of its payload and :class:`~cmdb_graph.api.errors.UserError`.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from pydantic import ValidationError
from strawberry.scalars import JSON

from cmdb_graph.api.cis.refs import CIRefInput, IdentifiersInput, identifiers_of
from cmdb_graph.api.cis.types import (
    ConfigurationItemType,
    OperationalStatus,
    RelationshipBasis,
    RelationshipType,
    ci_type,
    rel_type,
)
from cmdb_graph.api.common import Info, guarded
from cmdb_graph.api.errors import UserError
from cmdb_graph.api.imports import ImportRunType, data_source, run_type
from cmdb_graph.errors import InvalidRecordError, ReconciliationConflict
from cmdb_graph.ingest import run_import
from cmdb_graph.ingest.candidates import Candidates
from cmdb_graph.ingest.references import identifiers_for, lookup
from cmdb_graph.model import CIRecord, DataSource, Origin, RelationshipRecord
from cmdb_graph.settings import Role

__all__ = ["ADMIN_SOURCE", "CIMutation"]

#: The data source of administrative overrides (ciRetire); it outranks discovery sources.
ADMIN_SOURCE = DataSource(name="cmdb-admin", kind="manual", priority=1000,
                          stale_after_days=None)


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
    basis: RelationshipBasis | None = strawberry.field(
        default=None, description="Declared (the default), discovered or inferred (the same "
                                  "as inferred: true).")
    confidence: float | None = strawberry.field(
        default=None, description="How sure, in (0, 1]; default: the basis's (declared 1, "
                                  "discovered 0.9, inferred 0.5).")
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


CIUpsertResult = Annotated[CIUpsertPayload | UserError, strawberry.union("CIUpsertResult")]
RelationshipAddResult = Annotated[
    RelationshipAddPayload | UserError, strawberry.union("RelationshipAddResult")
]
CIRetireResult = Annotated[CIRetirePayload | UserError, strawberry.union("CIRetireResult")]


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
    ends = (identifiers_of(refs, r.source, source, f"relationships[{i}].source"),
            identifiers_of(refs, r.target, source, f"relationships[{i}].target"))
    try:
        return RelationshipRecord(
            rel_type=r.rel_type, source=ends[0], target=ends[1], optional=r.optional,
            inferred=r.inferred, basis=r.basis,
            confidence=r.confidence, evidence=r.evidence,
            origin=Origin(file=f"graphql:{op}", record=f"relationships/{i}"))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidRecordError(
            err["msg"], record=i,
            field=".".join([f"relationships[{i}]", *(str(x) for x in err["loc"])])) from exc


@strawberry.type
class CIMutation:
    """CI and relationship writes: through identification and reconciliation, never around
    them."""

    @strawberry.mutation(description="Upsert CIs (and relationships among them) as one import "
                                      "run of the given data source (writer).")
    async def ci_upsert(self, info: Info, input: CIUpsertInput) -> CIUpsertResult:
        store = info.context.store

        def work() -> CIUpsertPayload:
            if not input.cis and not input.relationships:
                raise InvalidRecordError("nothing to upsert", field="cis")
            if len(input.cis) + len(input.relationships) > info.context.app.settings.max_results:
                raise InvalidRecordError("too many records in one call", field="cis")
            src = data_source(store, input.source, input.priority)
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
            return CIUpsertPayload(run=run_type(result), cis=cis)

        return await guarded(info, Role.WRITER, work, write=True)

    @strawberry.mutation(description="Upsert relationships between CIs as one import run "
                                      "(writer).")
    async def relationship_add(
        self, info: Info, input: RelationshipAddInput
    ) -> RelationshipAddResult:
        store = info.context.store

        def work() -> RelationshipAddPayload:
            if not input.relationships:
                raise InvalidRecordError("no relationship given", field="relationships")
            src = data_source(store, input.source, input.priority)
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
            return RelationshipAddPayload(run=run_type(result), relationships=rels)

        return await guarded(info, Role.WRITER, work, write=True)

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
            return CIRetirePayload(ci=ci_type(after), run=run_type(result))

        return await guarded(info, Role.ADMIN, work, write=True)
