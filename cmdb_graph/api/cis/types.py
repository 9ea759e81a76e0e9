"""GraphQL object types of the stored entities (CIs, assets, relationships, support groups,
people, lineage), and the loaders that resolve a key to one of them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from cmdb_graph.api.connections import Connection
from cmdb_graph.api.context import Context
from cmdb_graph.model import (
    Asset,
    ConfigurationItem,
    Lineage,
    Person,
    Relationship,
    SupportGroup,
)
from cmdb_graph.model import (
    LifecycleStage as LifecycleStageModel,
)
from cmdb_graph.model import (
    OperationalStatus as OperationalStatusModel,
)

__all__ = [
    "AssetType",
    "CIConnection",
    "ConfigurationItemType",
    "LineageType",
    "OperationalStatus",
    "LifecycleStage",
    "PersonType",
    "RelationshipType",
    "SupportGroupType",
    "ci_type",
    "asset_type",
    "group_type",
    "load_ci",
    "load_group",
    "person_type",
    "rel_type",
]

Info = strawberry.Info[Context, None]

OperationalStatus = strawberry.enum(
    OperationalStatusModel,
    name="OperationalStatus",
    description="Operational status of a configuration item.",
)
LifecycleStage = strawberry.enum(
    LifecycleStageModel,
    name="LifecycleStage",
    description="ITAM lifecycle stage of an asset record.",
)


@strawberry.type(name="SourceSeen", description="When one data source asserted a record.")
class SourceSeenType:
    source: str = strawberry.field(description="Data source name.")
    first_seen: datetime = strawberry.field(description="First assertion (UTC).")
    last_seen: datetime = strawberry.field(description="Latest assertion (UTC).")
    native_key: str | None = strawberry.field(description="The source's own key.")
    missed_full_runs: int = strawberry.field(
        description="Consecutive finished full runs of this source that did not see it."
    )


@strawberry.type(name="AttributeSource", description="Which source gave an attribute its value.")
class AttributeSourceType:
    attribute: str = strawberry.field(description="Attribute name.")
    source: str = strawberry.field(description="Data source whose value is kept.")
    asserted_at: datetime = strawberry.field(description="When that source asserted it (UTC).")


@strawberry.type(name="Lineage", description="Provenance of a CI, asset or relationship.")
class LineageType:
    sources: list[SourceSeenType] = strawberry.field(description="Every asserting source.")
    attributes: list[AttributeSourceType] = strawberry.field(
        description="Per attribute, the source of its current value."
    )


def lineage_type(lin: Lineage) -> LineageType:
    """Convert a model lineage into its GraphQL type (sorted by source / attribute)."""
    return LineageType(
        sources=[
            SourceSeenType(
                source=name,
                first_seen=s.first_seen,
                last_seen=s.last_seen,
                native_key=s.native_key,
                missed_full_runs=s.missed_full_runs,
            )
            for name, s in sorted(lin.sources.items())
        ],
        attributes=[
            AttributeSourceType(attribute=a, source=s.source, asserted_at=s.asserted_at)
            for a, s in sorted(lin.attributes.items())
        ],
    )


@strawberry.type(name="SupportGroup", description="A support group that owns CIs operationally.")
class SupportGroupType:
    group_id: strawberry.ID = strawberry.field(description="Key of the support group.")
    name: str = strawberry.field(description="Display name.")
    email: str | None = strawberry.field(description="Contact address.")
    manager: str | None = strawberry.field(description="Manager (person id or name).")


@strawberry.type(name="Person", description="A CI owner, asset holder or group member.")
class PersonType:
    person_id: strawberry.ID = strawberry.field(description="Key of the person.")
    name: str = strawberry.field(description="Full name.")
    email: str | None = strawberry.field(description="E-mail address.")


def group_type(g: SupportGroup) -> SupportGroupType:
    """Convert a model support group."""
    return SupportGroupType(group_id=strawberry.ID(g.group_id), name=g.name, email=g.email,
                            manager=g.manager)


def _group_or_none(g: object) -> SupportGroupType | None:
    return group_type(g) if isinstance(g, SupportGroup) else None


def person_type(p: Person) -> PersonType:
    """Convert a model person."""
    return PersonType(person_id=strawberry.ID(p.person_id), name=p.name, email=p.email)


@strawberry.type(name="Asset", description="An ITAM asset record; it TRACKS a CI.")
class AssetType:
    asset_id: strawberry.ID = strawberry.field(description="Key of the asset record.")
    name: str | None = strawberry.field(description="Name.")
    asset_tag: str | None = strawberry.field(description="Asset tag.")
    serial_number: str | None = strawberry.field(description="Serial number.")
    model: str | None = strawberry.field(description="Model.")
    manufacturer: str | None = strawberry.field(description="Manufacturer.")
    lifecycle_stage: LifecycleStage = strawberry.field(description="Lifecycle stage.")
    purchase_date: date | None = strawberry.field(description="Purchase date.")
    warranty_end: date | None = strawberry.field(description="End of warranty.")
    end_of_life: date | None = strawberry.field(description="Vendor end of life.")
    cost: float | None = strawberry.field(description="Purchase cost, in `currency`.")
    currency: str | None = strawberry.field(description="ISO 4217 currency of `cost`.")
    ci_id: strawberry.ID | None = strawberry.field(description="ci_id of the tracked CI.")

    @strawberry.field(description="The configuration item this asset tracks.")
    async def ci(self, info: Info) -> Annotated[
        ConfigurationItemType, strawberry.lazy("cmdb_graph.api.cis.types")
    ] | None:
        if self.ci_id is None:
            return None
        found = await info.context.ci_loader.load(str(self.ci_id))
        return ci_type(found) if found else None


def asset_type(a: Asset) -> AssetType:
    """Convert a model asset."""
    return AssetType(
        asset_id=strawberry.ID(a.asset_id),
        name=a.name,
        asset_tag=a.asset_tag,
        serial_number=a.serial_number,
        model=a.model,
        manufacturer=a.manufacturer,
        lifecycle_stage=a.lifecycle_stage,
        purchase_date=a.purchase_date,
        warranty_end=a.warranty_end,
        end_of_life=a.end_of_life,
        cost=a.cost,
        currency=a.currency,
        ci_id=strawberry.ID(a.ci_id) if a.ci_id else None,
    )


@strawberry.type(
    name="Relationship",
    description="A typed relationship between two CIs, dependent -> what it needs.",
)
class RelationshipType:
    rel_type: str = strawberry.field(description="Relationship type, e.g. DEPENDS_ON.")
    source_id: strawberry.ID = strawberry.field(description="ci_id of the start (dependent).")
    target_id: strawberry.ID = strawberry.field(description="ci_id of the end.")
    optional: bool = strawberry.field(description="An optional dependency only degrades.")
    inferred: bool = strawberry.field(description="Deduced by an importer, see evidence.")
    evidence: str | None = strawberry.field(description="What an inference rests on.")


def rel_type(r: Relationship) -> RelationshipType:
    """Convert a model relationship."""
    return RelationshipType(
        rel_type=r.rel_type,
        source_id=strawberry.ID(r.source),
        target_id=strawberry.ID(r.target),
        optional=r.optional,
        inferred=r.inferred,
        evidence=r.evidence,
    )


@strawberry.type(name="ConfigurationItem", description="A configuration item (CI).")
class ConfigurationItemType:
    ci_id: strawberry.ID = strawberry.field(description="Stable key; survives merges.")
    name: str = strawberry.field(description="Name.")
    ci_class: str = strawberry.field(description="CI class from the registry.")
    operational_status: OperationalStatus = strawberry.field(
        description="Operational status."
    )
    environment: str | None = strawberry.field(description="production, test, ...")
    business_criticality: int | None = strawberry.field(description="1 (most) .. 4.")
    description: str | None = strawberry.field(description="Free text.")
    fqdn: str | None = strawberry.field(description="Fully qualified domain name.")
    hostname: str | None = strawberry.field(description="Host name.")
    serial_number: str | None = strawberry.field(description="Serial number.")
    asset_tag: str | None = strawberry.field(description="Asset tag.")
    cloud_id: str | None = strawberry.field(description="Cloud instance / resource id.")
    ip_addresses: list[str] = strawberry.field(description="IP addresses.")
    mac_addresses: list[str] = strawberry.field(description="MAC addresses.")
    redundancy: str | None = strawberry.field(description="Redundancy rule: all, k or k%.")
    support_group_id: strawberry.ID | None = strawberry.field(description="Support group key.")
    owner_id: strawberry.ID | None = strawberry.field(description="Owner's person key.")
    duplicate_of: strawberry.ID | None = strawberry.field(
        description="Survivor CI when identification merged this one."
    )
    first_seen: datetime | None = strawberry.field(description="First seen by any source.")
    last_seen: datetime | None = strawberry.field(description="Last seen by any source.")
    attributes: JSON = strawberry.field(description="Further attributes (JSON object).")
    lineage: LineageType = strawberry.field(description="Which sources asserted what, and when.")

    @strawberry.field(description="The support group that owns this CI.",
                      graphql_type=SupportGroupType | None)
    def support_group(self, info: Info) -> Any:
        # synchronous when a resolver above prefetched the group (no DataLoader round trip)
        if self.support_group_id is None:
            return None
        key = ("SupportGroup", str(self.support_group_id))
        if key in info.context.prefetched:
            return _group_or_none(info.context.prefetched[key])
        return self._support_group(info)

    async def _support_group(self, info: Info) -> SupportGroupType | None:
        g = await info.context.group_loader.load(str(self.support_group_id))
        return _group_or_none(g)

    @strawberry.field(description="The person who owns this CI.")
    async def owner(self, info: Info) -> PersonType | None:
        if self.owner_id is None:
            return None
        p = await info.context.person_loader.load(str(self.owner_id))
        return person_type(p) if isinstance(p, Person) else None

    @strawberry.field(description="Asset records that track this CI.")
    async def assets(self, info: Info) -> list[AssetType]:
        return [asset_type(a) for a in await info.context.assets_by_ci_loader.load(str(self.ci_id))]


def ci_type(ci: ConfigurationItem) -> ConfigurationItemType:
    """Convert a model CI."""
    return ConfigurationItemType(
        ci_id=strawberry.ID(ci.ci_id),
        name=ci.name,
        ci_class=ci.ci_class,
        operational_status=ci.operational_status,
        environment=ci.environment,
        business_criticality=ci.business_criticality,
        description=ci.description,
        fqdn=ci.fqdn,
        hostname=ci.hostname,
        serial_number=ci.serial_number,
        asset_tag=ci.asset_tag,
        cloud_id=ci.cloud_id,
        ip_addresses=list(ci.ip_addresses),
        mac_addresses=list(ci.mac_addresses),
        redundancy=ci.redundancy,
        support_group_id=strawberry.ID(ci.support_group) if ci.support_group else None,
        owner_id=strawberry.ID(ci.owner) if ci.owner else None,
        duplicate_of=strawberry.ID(ci.duplicate_of) if ci.duplicate_of else None,
        first_seen=ci.first_seen,
        last_seen=ci.last_seen,
        attributes=dict(ci.attributes),  # type: ignore[arg-type]
        lineage=lineage_type(ci.lineage),
    )


CIConnection = Connection[ConfigurationItemType]


async def load_ci(info: Info, ci_id: str) -> ConfigurationItemType | None:
    """The CI of ``ci_id`` through the request's DataLoader, or None."""
    found = await info.context.ci_loader.load(ci_id)
    return ci_type(found) if found else None


async def load_group(info: Info, group_id: str | None) -> SupportGroupType | None:
    """The support group of ``group_id`` through the request's DataLoader, or None."""
    if not group_id:
        return None
    return _group_or_none(await info.context.group_loader.load(group_id))
