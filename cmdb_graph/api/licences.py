"""Licence position: entitled seats against installations per software product, typed from
the result models of :mod:`impact.licences`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import strawberry

import impact.licences
from cmdb_graph.api.common import Info, guarded
from cmdb_graph.api.derive import answer, derived, ids
from cmdb_graph.api.errors import UserError
from cmdb_graph.settings import Role

__all__ = ["LicenceQuery"]

LicenceStatus = strawberry.enum(
    impact.licences.LicenceStatus, name="LicenceStatus",
    description=(
        "compliant: entitled seats equal installations; over_licensed: unused seats; "
        "under_licensed: more installations than entitled seats; not_required: the product "
        "needs no licence (freeware, an open-source licence, an OS update or hotfix)."
    ),
)


@derived(impact.licences.ProductLicencePosition,
         description="Entitled seats against installations for one software product.",
         fields={
             "product_id": ids("The software product."),
             "name": "Product name (the product id when no product record exists).",
             "vendor": "Product vendor.",
             "entitled_seats": "Seats of the entitlements in force (expired ones do not "
                               "count).",
             "installations": "Distinct CIs with the product installed (two versions on one "
                              "CI: one).",
             "unused_seats": "Entitled seats beyond installations.",
             "shortfall": "Installations beyond entitled seats.",
             "status": "Over-, under-licensed, compliant, or not required (needs no "
                       "licence).",
             "no_licence_reason": "Why the product needs no licence (status NOT_REQUIRED): "
                                  "its licence type or category, an installation's "
                                  "open-source licence, or that it is an update or hotfix.",
             "installed_on": ids("CIs with an installation, by ci_id."),
             "entitlements": "Entitlements in force, by id.",
             "expired_entitlements": "Entitlements of the product that expired before asOf, "
                                     "by id.",
             "entitlements_without_seats": "Entitlements in force with no seat count (counted "
                                           "as 0), by id.",
         })
class ProductLicencePosition:
    pass


@derived(impact.licences.LicencePosition,
         description="The licence position of every software product.", fields={
             "as_of": "The day expiry was judged against.",
             "products": "Every product (recorded, installed or entitled), by name, vendor "
                         "and id.",
             "over_licensed": "Products with unused seats, most unused seats first.",
             "under_licensed": "Products short of seats, largest shortfall first.",
             "unattributed_entitlements": "Entitlements that name no product (they count for "
                                          "nothing), by id.",
         })
class LicencePosition:
    pass


LicencePositionResult = Annotated[
    LicencePosition | UserError,
    strawberry.union("LicencePositionResult", description="The position, or why not."),
]


@strawberry.type
class LicenceQuery:
    """The licence position."""

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
        return await guarded(info, Role.READER, lambda: answer(
            LicencePosition, engine.licence_position(as_of=day)
        ))
