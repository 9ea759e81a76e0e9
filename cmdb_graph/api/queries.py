"""Query fields over the stored entities: CIs, assets, services, support groups, lineage."""

from __future__ import annotations

from typing import Annotated

import strawberry

from cmdb_graph.api.context import Context
from cmdb_graph.api.errors import PublicError
from cmdb_graph.api.types import (
    AssetType,
    CIConnection,
    ConfigurationItemType,
    Connection,
    Edge,
    LineageType,
    OperationalStatus,
    PageInfo,
    RelationshipType,
    SupportGroupType,
    asset_type,
    ci_type,
    encode_cursor,
    group_type,
    lineage_type,
    rel_type,
)
from cmdb_graph.errors import CmdbError, TraversalLimitError
from cmdb_graph.model import Asset, ConfigurationItem, SupportGroup
from cmdb_graph.model import LifecycleStage as LifecycleStageModel
from cmdb_graph.store.base import CIFilter, Page

__all__ = ["EntityQuery", "CIFilterInput", "IdentifierInput"]

Info = strawberry.Info[Context, None]


@strawberry.input(description="Filter for configuration items; every set field must match.")
class CIFilterInput:
    ci_class: str | None = strawberry.field(
        default=None, description="CI class; its subclasses match too."
    )
    operational_status: OperationalStatus | None = strawberry.field(
        default=None, description="Operational status."
    )
    environment: str | None = strawberry.field(default=None, description="Environment.")
    support_group: str | None = strawberry.field(default=None, description="Support group key.")
    name_contains: str | None = strawberry.field(
        default=None, description="Case-insensitive part of the name."
    )
    source: str | None = strawberry.field(default=None, description="Asserted by this source.")


@strawberry.input(description="Identifiers to look a CI up by; any one that matches counts.")
class IdentifierInput:
    serial_number: str | None = strawberry.field(default=None, description="Serial number.")
    asset_tag: str | None = strawberry.field(default=None, description="Asset tag.")
    fqdn: str | None = strawberry.field(default=None, description="FQDN (case-insensitive).")
    hostname: str | None = strawberry.field(default=None, description="Host name.")
    cloud_id: str | None = strawberry.field(default=None, description="Cloud resource id.")
    mac_address: str | None = strawberry.field(default=None, description="MAC address.")
    native_key: str | None = strawberry.field(
        default=None, description="A source's key as 'source:key'."
    )
    name: str | None = strawberry.field(default=None, description="Exact name.")


def _check_page(info: Info, first: int) -> None:
    cap = info.context.app.settings.max_page_size
    if first < 1 or first > cap:
        raise PublicError(
            TraversalLimitError(f"first must be between 1 and {cap} (got {first})")
        )


def _ci_connection(page: Page[ConfigurationItem]) -> CIConnection:
    return Connection(
        edges=[Edge(cursor=encode_cursor(ci.ci_id), node=ci_type(ci)) for ci in page.items],
        page_info=PageInfo(has_next_page=page.next_cursor is not None,
                           end_cursor=page.next_cursor),
        total_count=page.total,
    )


@strawberry.type
class EntityQuery:
    """Lookups and listings of stored entities."""

    @strawberry.field(description="One configuration item by ci_id, or null.")
    async def ci(self, info: Info, ci_id: strawberry.ID) -> ConfigurationItemType | None:
        found = await info.context.ci_loader.load(str(ci_id))
        return ci_type(found) if found else None

    @strawberry.field(description="CIs matching any of the given identifiers.")
    async def cis_by_identifier(
        self, info: Info, identifiers: IdentifierInput
    ) -> list[ConfigurationItemType]:
        lookup: dict[str, str] = {}
        for field, key in (
            ("serial_number", "serial_number"),
            ("asset_tag", "asset_tag"),
            ("fqdn", "fqdn"),
            ("hostname", "hostname"),
            ("cloud_id", "cloud_id"),
            ("mac_address", "mac_addresses"),
            ("native_key", "native_keys"),
            ("name", "name"),
        ):
            value = getattr(identifiers, field)
            if value:
                lookup[key] = value
        if not lookup:
            return []
        found = await info.context.call(info.context.store.find_cis, lookup)
        return [ci_type(ci) for ci in found]

    @strawberry.field(description="Configuration items, filtered and paged (sorted by ci_id).")
    async def cis(
        self,
        info: Info,
        filter: CIFilterInput | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> CIConnection:
        _check_page(info, first)
        f = filter or CIFilterInput()
        flt = CIFilter(
            ci_class=f.ci_class,
            operational_status=f.operational_status,
            environment=f.environment,
            support_group=f.support_group,
            name_contains=f.name_contains,
            source=f.source,
        )
        try:
            page = await info.context.call(
                info.context.store.list_cis, flt, after=after, limit=first
            )
        except CmdbError as exc:
            raise PublicError(exc) from exc
        return _ci_connection(page)

    @strawberry.field(description="Business and application services, paged.")
    async def services(
        self,
        info: Info,
        kind: Annotated[
            str,
            strawberry.argument(
                description="Service (both), BusinessService or ApplicationService."
            ),
        ] = "Service",
        first: int = 50,
        after: str | None = None,
    ) -> CIConnection:
        _check_page(info, first)
        if kind not in ("Service", "BusinessService", "ApplicationService"):
            raise PublicError(
                CmdbError(f"kind must be Service, BusinessService or ApplicationService: {kind}")
            )
        page = await info.context.call(
            info.context.store.list_cis, CIFilter(ci_class=kind), after=after, limit=first
        )
        return _ci_connection(page)

    @strawberry.field(description="Asset records, paged (sorted by asset_id).")
    async def assets(
        self,
        info: Info,
        lifecycle_stage: LifecycleStageModel | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[AssetType]:
        _check_page(info, first)
        where = {"lifecycle_stage": lifecycle_stage.value} if lifecycle_stage else None
        page = await info.context.call(
            info.context.store.list_nodes, "Asset", where=where, after=after, limit=first
        )
        items = [a for a in page.items if isinstance(a, Asset)]
        return Connection(
            edges=[Edge(cursor=encode_cursor(a.asset_id), node=asset_type(a)) for a in items],
            page_info=PageInfo(has_next_page=page.next_cursor is not None,
                               end_cursor=page.next_cursor),
            total_count=page.total,
        )

    @strawberry.field(description="Support groups, paged.")
    async def support_groups(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> Connection[SupportGroupType]:
        _check_page(info, first)
        page = await info.context.call(
            info.context.store.list_nodes, "SupportGroup", after=after, limit=first
        )
        items = [g for g in page.items if isinstance(g, SupportGroup)]
        return Connection(
            edges=[Edge(cursor=encode_cursor(g.group_id), node=group_type(g)) for g in items],
            page_info=PageInfo(has_next_page=page.next_cursor is not None,
                               end_cursor=page.next_cursor),
            total_count=page.total,
        )

    @strawberry.field(description="Lineage of a CI: which sources asserted it and each value.")
    async def lineage(self, info: Info, ci_id: strawberry.ID) -> LineageType | None:
        found = await info.context.ci_loader.load(str(ci_id))
        return lineage_type(found.lineage) if found else None

    @strawberry.field(description="Relationships touching a CI (either end).")
    async def relationships(
        self, info: Info, ci_id: strawberry.ID, rel_types: list[str] | None = None
    ) -> list[RelationshipType]:
        rels = await info.context.call(
            info.context.store.relationships, str(ci_id), rel_types=rel_types
        )
        return [rel_type(r) for r in rels]
