"""GraphQL object types of the stored entities (CIs, assets, relationships, support groups,
people, lineage), and the loaders that resolve a key to one of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from cmdb_graph.api.common import Info
from cmdb_graph.api.connections import Connection
from cmdb_graph.api.derive import Field, answer, derived, ids
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
from cmdb_graph.model import (
    RelationshipBasis as RelationshipBasisModel,
)

__all__ = [
    "AssetType",
    "CIConnection",
    "ConfigurationItemType",
    "LineageType",
    "OperationalStatus",
    "LifecycleStage",
    "RelationshipBasis",
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
RelationshipBasis = strawberry.enum(
    RelationshipBasisModel,
    name="RelationshipBasis",
    description="Why a relationship is believed: declared by its data source, discovered by "
                "a discovery tool, or inferred by an importer from what a file only implies.",
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
    matched_by: str | None = strawberry.field(
        description="The identification rule and value that matched this source's record to "
        "a CI another source had created (null: this source created it or its own key did)."
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
                matched_by=s.matched_by,
            )
            for name, s in sorted(lin.sources.items())
        ],
        attributes=[
            AttributeSourceType(attribute=a, source=s.source, asserted_at=s.asserted_at)
            for a, s in sorted(lin.attributes.items())
        ],
    )


@derived(SupportGroup, name="SupportGroup",
         description="A support group that owns CIs operationally.", fields={
             "group_id": ids("Key of the support group."),
             "name": "Display name.",
             "email": "Contact address.",
             "manager": "Manager (person id or name).",
         })
class SupportGroupType:
    pass


@derived(Person, name="Person", description="A CI owner, asset holder or group member.",
         fields={
             "person_id": ids("Key of the person."),
             "name": "Full name.",
             "email": "E-mail address.",
         })
class PersonType:
    pass


def group_type(g: SupportGroup) -> SupportGroupType:
    """A support group as its GraphQL type (the model itself)."""
    return answer(SupportGroupType, g)


def _group_or_none(g: object) -> SupportGroupType | None:
    return group_type(g) if isinstance(g, SupportGroup) else None


def person_type(p: Person) -> PersonType:
    """A person as its GraphQL type (the model itself)."""
    return answer(PersonType, p)


async def _asset_ci(root: Asset, info: Info) -> ConfigurationItemType | None:
    if not root.ci_id:
        return None
    return await load_ci(info, root.ci_id)


@derived(Asset, name="Asset", description="An ITAM asset record; it TRACKS a CI.", fields={
    "asset_id": ids("Key of the asset record."),
    "name": "Name.",
    "asset_tag": "Asset tag.",
    "serial_number": "Serial number.",
    "model": "Model.",
    "manufacturer": "Manufacturer.",
    "lifecycle_stage": "Lifecycle stage.",
    "purchase_date": "Purchase date.",
    "warranty_end": "End of warranty.",
    "end_of_life": "Vendor end of life.",
    "cost": "Purchase cost, in `currency`.",
    "currency": "ISO 4217 currency of `cost`.",
    "ci_id": ids("ci_id of the tracked CI."),
})
class AssetType:
    ci = strawberry.field(resolver=_asset_ci,
                          description="The configuration item this asset tracks.")


def asset_type(a: Asset) -> AssetType:
    """An asset as its GraphQL type (the model itself)."""
    return answer(AssetType, a)


@derived(Relationship, name="Relationship",
         description="A typed relationship between two CIs, dependent -> what it needs.",
         fields={
             "rel_type": "Relationship type, e.g. DEPENDS_ON.",
             "source": ids("ci_id of the start (dependent).", name="sourceId"),
             "target": ids("ci_id of the end.", name="targetId"),
             "optional": "An optional dependency only degrades.",
             "inferred": "Deduced by an importer, see evidence (basis INFERRED).",
             "basis": "Declared by the data source, discovered by a discovery tool, or "
                      "inferred by an importer.",
             "trust": Field("How sure, in (0, 1]: the confidence the importer recorded, else "
                            "the basis's default (declared 1, discovered 0.9, inferred 0.5).",
                            name="confidence"),
             "evidence": "What an inference rests on: the setting and its value.",
             "evidence_file": "The file the evidence was read from (inferred relationships).",
             "first_seen": "When a data source first saw it (the source's own time where it "
                           "gives one: a scan, an inventory, an audit), UTC.",
             "last_seen": "When a data source last saw it, UTC.",
         })
class RelationshipType:
    pass


def rel_type(r: Relationship) -> RelationshipType:
    """A relationship as its GraphQL type (the model itself)."""
    return answer(RelationshipType, r)


def _ci_attributes(root: ConfigurationItem) -> JSON:
    return dict(root.attributes)  # type: ignore[return-value]


def _ci_lineage(root: ConfigurationItem) -> LineageType:
    return lineage_type(root.lineage)


def _ci_group(root: ConfigurationItem, info: Info) -> Any:
    # synchronous when a resolver above prefetched the group (no DataLoader round trip)
    if not root.support_group:
        return None
    key = ("SupportGroup", root.support_group)
    if key in info.context.prefetched:
        return _group_or_none(info.context.prefetched[key])
    return load_group(info, root.support_group)


async def _ci_owner(root: ConfigurationItem, info: Info) -> PersonType | None:
    if not root.owner:
        return None
    p = await info.context.person_loader.load(root.owner)
    return person_type(p) if isinstance(p, Person) else None


async def _ci_assets(root: ConfigurationItem, info: Info) -> list[AssetType]:
    return [asset_type(a) for a in await info.context.assets_by_ci_loader.load(root.ci_id)]


@derived(ConfigurationItem, name="ConfigurationItem", description="A configuration item (CI).",
         fields={
             "ci_id": ids("Stable key; survives merges."),
             "name": "Name.",
             "ci_class": "CI class from the registry.",
             "operational_status": "Operational status.",
             "environment": "production, test, ...",
             "business_criticality": "1 (most) .. 4.",
             "description": "Free text.",
             "fqdn": "Fully qualified domain name.",
             "hostname": "Host name.",
             "serial_number": "Serial number.",
             "asset_tag": "Asset tag.",
             "cloud_id": "Cloud instance / resource id.",
             "ip_addresses": "IP addresses.",
             "mac_addresses": "MAC addresses.",
             "redundancy": "Redundancy rule: all, k or k%.",
             "support_group": ids("Support group key.", name="supportGroupId"),
             "owner": ids("Owner's person key.", name="ownerId"),
             "duplicate_of": ids("Survivor CI when identification merged this one."),
             "first_seen": "First seen by any source.",
             "last_seen": "Last seen by any source.",
             "attributes": Field("Further attributes (JSON object).", resolver=_ci_attributes),
             "lineage": Field("Which sources asserted what, and when.", resolver=_ci_lineage),
         })
class ConfigurationItemType:
    group = strawberry.field(resolver=_ci_group, name="supportGroup",
                             description="The support group that owns this CI.",
                             graphql_type=SupportGroupType | None)
    person = strawberry.field(resolver=_ci_owner, name="owner",
                              description="The person who owns this CI.")
    assets = strawberry.field(resolver=_ci_assets,
                              description="Asset records that track this CI.")


def ci_type(ci: ConfigurationItem) -> ConfigurationItemType:
    """A CI as its GraphQL type (the model itself)."""
    return answer(ConfigurationItemType, ci)


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
