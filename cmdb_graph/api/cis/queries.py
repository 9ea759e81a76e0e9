"""Query fields over the stored entities: CIs, assets, services, support groups, lineage,
relationships, and search over names and identifiers (:mod:`cmdb_graph.service.search`)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from cmdb_graph.api.auth import require_role
from cmdb_graph.api.cis.types import (
    AssetType,
    CIConnection,
    ConfigurationItemType,
    LineageType,
    OperationalStatus,
    RelationshipType,
    SupportGroupType,
    asset_type,
    ci_type,
    group_type,
    lineage_type,
    rel_type,
)
from cmdb_graph.api.common import AsOf, Info, check_first, guarded, utc
from cmdb_graph.api.connections import Connection, connection
from cmdb_graph.api.derive import Field, answer, derived
from cmdb_graph.api.errors import PublicError, UserError
from cmdb_graph.errors import CINotFoundError, CmdbError
from cmdb_graph.model import Asset, ConfigurationItem, SupportGroup
from cmdb_graph.model import LifecycleStage as LifecycleStageModel
from cmdb_graph.service import search as found_by
from cmdb_graph.settings import Role
from cmdb_graph.store.base import CIFilter, Page

__all__ = ["EntityQuery", "CIFilterInput", "IdentifierInput"]


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
    try:
        check_first(info, first)
    except CmdbError as exc:
        raise PublicError(exc) from exc


def _ci_connection(page: Page[ConfigurationItem]) -> CIConnection:
    return connection(page, page.items, lambda ci: ci.ci_id, ci_type)


def _hit_ci(root: found_by.SearchHit) -> ConfigurationItemType:
    return ci_type(root.ci)


@derived(found_by.SearchHit, description="A CI found by `search`, and why it matched.", fields={
    "ci": Field("The CI.", resolver=_hit_ci),
    "matched_on": "What matched: name, ci_id, fqdn, hostname, serial_number, asset_tag, "
                  "cloud_id, mac_addresses, native_keys or ip_addresses.",
    "value": "The stored value that matched.",
})
class SearchHit:
    pass


@derived(found_by.SearchResult, name="SearchResults",
         description="CIs found by name or identifier, best first.", fields={
             "hits": "Identifier matches first, then names equal to the text, starting with "
                     "it, containing it; ties by name.",
             "truncated": "More CIs matched than returned.",
         })
class SearchResults:
    pass


SearchResult = Annotated[
    SearchResults | UserError,
    strawberry.union("SearchResult", description="The hits, or why not."),
]


@strawberry.type
class EntityQuery:
    """Lookups and listings of stored entities."""

    @strawberry.field(description="One configuration item by ci_id, or null (with asOf: as "
                                  "it was then; null when it did not exist then).")
    async def ci(
        self, info: Info, ci_id: strawberry.ID, as_of: AsOf = None
    ) -> ConfigurationItemType | None:
        if as_of is not None:
            try:
                require_role(info.context.principal, Role.READER)
                then = await info.context.call(info.context.app.engine.past_ci, str(ci_id),
                                               utc(as_of))
            except CmdbError as exc:
                raise PublicError(exc) from exc
            return ci_type(then) if then else None
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
        items = (a for a in page.items if isinstance(a, Asset))
        return connection(page, items, lambda a: a.asset_id, asset_type)

    @strawberry.field(description="Support groups, paged.")
    async def support_groups(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> Connection[SupportGroupType]:
        _check_page(info, first)
        page = await info.context.call(
            info.context.store.list_nodes, "SupportGroup", after=after, limit=first
        )
        items = (g for g in page.items if isinstance(g, SupportGroup))
        return connection(page, items, lambda g: g.group_id, group_type)

    @strawberry.field(description="Lineage of a CI: which sources asserted it and each value.")
    async def lineage(self, info: Info, ci_id: strawberry.ID) -> LineageType | None:
        found = await info.context.ci_loader.load(str(ci_id))
        return lineage_type(found.lineage) if found else None

    @strawberry.field(description="Relationships touching a CI (either end); an unknown CI is "
                                  "an error (code CI_NOT_FOUND), not an empty list.")
    async def relationships(
        self, info: Info, ci_id: strawberry.ID, rel_types: list[str] | None = None
    ) -> list[RelationshipType]:
        rels = await info.context.call(
            info.context.store.relationships, str(ci_id), rel_types=rel_types
        )
        if not rels and await info.context.ci_loader.load(str(ci_id)) is None:
            raise PublicError(CINotFoundError(f"unknown CI: {ci_id}"))
        return [rel_type(r) for r in rels]

    @strawberry.field(description="CIs by a part of their name or by any identifier: ci_id, "
                                  "FQDN, host name, serial number, asset tag, cloud id, MAC, "
                                  "native key (source:key) or IP address (a prefix when the "
                                  "text ends with '.' or ':').")
    async def search(
        self,
        info: Info,
        text: str,
        ci_class: Annotated[str | None, strawberry.argument(
            description="Only this CI class and its subclasses."
        )] = None,
        status: Annotated[OperationalStatus | None, strawberry.argument(
            description="Only this operational status."
        )] = None,
        first: Annotated[int, strawberry.argument(description="At most this many hits.")] = 20,
    ) -> SearchResult:
        ctx = info.context

        def work() -> SearchResults:
            check_first(info, first)
            with ctx.app.engine.reading():  # the graph holds still while it is searched
                return answer(SearchResults, found_by.search(
                    ctx.store, text, ci_class=ci_class, status=status, limit=first,
                    graph=lambda: ctx.app.engine.whole_graph().graph,
                ))

        return await guarded(info, Role.READER, work)
