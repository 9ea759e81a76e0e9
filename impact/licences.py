"""Licence position: entitled seats against installations, per software product.

A pure function over plain inputs (no graph): the ``HAS_INSTALLED`` relationships
``(:CI)-[:HAS_INSTALLED]->(:SoftwareProduct)``, the licence entitlements and the products.

Counting rules (the usual effective licence position of software asset management):

- Installations are counted per *distinct CI*: the same product installed twice (two versions)
  on one CI needs one seat.
- Entitled seats are the sum of ``seats`` of the product's entitlements that are in force: with
  ``as_of`` given, an entitlement whose ``expires`` is before that day no longer counts (it is
  listed as expired). An entitlement without ``seats`` counts 0 and is listed.
- Status: ``under_licensed`` when installations exceed entitled seats (the shortfall is the
  difference), ``over_licensed`` when seats exceed installations (unused seats), otherwise
  ``compliant``. A product with neither is compliant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import Entitlement, Relationship, SoftwareProduct

__all__ = ["LicenceStatus", "ProductLicencePosition", "LicencePosition", "licence_position"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LicenceStatus(StrEnum):
    """Licence position of one product."""

    COMPLIANT = "compliant"
    OVER_LICENSED = "over_licensed"
    UNDER_LICENSED = "under_licensed"


class ProductLicencePosition(_Frozen):
    """The position of one software product.

    Attributes
    ----------
    product_id : str
        Key of the product.
    name : str
        Product name (the ``product_id`` when the product is not in the products list).
    vendor : str or None
        Product vendor.
    entitled_seats : int
        Seats of the entitlements in force.
    installations : int
        Distinct CIs that have the product installed.
    unused_seats : int
        ``max(entitled_seats - installations, 0)``.
    shortfall : int
        ``max(installations - entitled_seats, 0)``.
    status : LicenceStatus
        Over-, under-licensed or compliant.
    installed_on : tuple of str
        ``ci_id`` of each CI with an installation (sorted).
    entitlements : tuple of str
        ``entitlement_id`` of the entitlements in force (sorted).
    expired_entitlements : tuple of str
        Entitlements of the product that expired before ``as_of`` (sorted).
    entitlements_without_seats : tuple of str
        Entitlements in force with no seat count (counted as 0; sorted).
    """

    product_id: str
    name: str
    vendor: str | None = None
    entitled_seats: int
    installations: int
    unused_seats: int
    shortfall: int
    status: LicenceStatus
    installed_on: tuple[str, ...] = ()
    entitlements: tuple[str, ...] = ()
    expired_entitlements: tuple[str, ...] = ()
    entitlements_without_seats: tuple[str, ...] = ()


class LicencePosition(_Frozen):
    """The licence position of every product.

    Attributes
    ----------
    products : tuple of ProductLicencePosition
        Every product (of the products list, of an installation or of an entitlement), sorted by
        ``(name, vendor, product_id)``.
    over_licensed : tuple of ProductLicencePosition
        Products with unused seats, most unused seats first (ties by name, vendor, id).
    under_licensed : tuple of ProductLicencePosition
        Products short of seats, largest shortfall first (ties by name, vendor, id).
    unattributed_entitlements : tuple of str
        Entitlements that name no product (sorted); they count for nothing.
    as_of : date or None
        The day expiry was judged against (``None``: expiry ignored).
    """

    products: tuple[ProductLicencePosition, ...]
    over_licensed: tuple[ProductLicencePosition, ...]
    under_licensed: tuple[ProductLicencePosition, ...]
    unattributed_entitlements: tuple[str, ...] = ()
    as_of: date | None = None


def licence_position(
    installations: Iterable[Relationship],
    entitlements: Iterable[Entitlement],
    products: Iterable[SoftwareProduct],
    *,
    as_of: date | None = None,
) -> LicencePosition:
    """Entitled seats against installations per software product.

    Parameters
    ----------
    installations : iterable of Relationship
        ``HAS_INSTALLED`` relationships: ``source`` is the CI's ``ci_id``, ``target`` the
        product's ``product_id``.
    entitlements : iterable of Entitlement
        Licence entitlements; ``product_id`` names the product they cover.
    products : iterable of SoftwareProduct
        Products, for names and vendors; products with no installation and no entitlement are
        reported as compliant with 0 seats.
    as_of : date, optional
        Day against which ``expires`` is judged; without it expiry is ignored.

    Returns
    -------
    LicencePosition
        Per product positions and the over- and under-licensed lists (see the model for the
        sort orders).

    Raises
    ------
    InvalidRecordError
        An installation is not a ``HAS_INSTALLED`` relationship (the error names it).

    Examples
    --------
    >>> from cmdb_graph.model import Entitlement, Relationship, SoftwareProduct
    >>> p = SoftwareProduct(product_id="p1", name="Editor", vendor="Acme")
    >>> inst = [Relationship(rel_type="HAS_INSTALLED", source=c, target="p1",
    ...                      target_label="SoftwareProduct") for c in ("ci1", "ci2", "ci3")]
    >>> ent = [Entitlement(entitlement_id="e1", name="Editor 2 seats", product_id="p1", seats=2)]
    >>> pos = licence_position(inst, ent, [p])
    >>> pos.products[0].status.value, pos.products[0].shortfall
    ('under_licensed', 1)
    """
    names: dict[str, tuple[str, str | None]] = {
        p.product_id: (p.name, p.vendor) for p in products
    }
    installed: dict[str, set[str]] = defaultdict(set)
    for i, rel in enumerate(installations):
        if rel.rel_type != "HAS_INSTALLED":
            raise InvalidRecordError(
                f"expected a HAS_INSTALLED relationship, got {rel.rel_type}",
                record=f"installations[{i}] ({rel.source} -> {rel.target})", field="rel_type",
            )
        installed[rel.target].add(rel.source)
    in_force: dict[str, list[Entitlement]] = defaultdict(list)
    expired: dict[str, list[str]] = defaultdict(list)
    unattributed: list[str] = []
    for ent in entitlements:
        if not ent.product_id:
            unattributed.append(ent.entitlement_id)
        elif as_of is not None and ent.expires is not None and ent.expires < as_of:
            expired[ent.product_id].append(ent.entitlement_id)
        else:
            in_force[ent.product_id].append(ent)

    positions = [
        _position(pid, names.get(pid, (pid, None)), installed.get(pid, set()),
                  in_force.get(pid, []), expired.get(pid, []))
        for pid in set(names) | set(installed) | set(in_force) | set(expired)
    ]

    def order(p: ProductLicencePosition) -> tuple[str, str, str]:
        return (p.name, p.vendor or "", p.product_id)

    positions.sort(key=order)
    over = sorted(
        (p for p in positions if p.status is LicenceStatus.OVER_LICENSED),
        key=lambda p: (-p.unused_seats, *order(p)),
    )
    under = sorted(
        (p for p in positions if p.status is LicenceStatus.UNDER_LICENSED),
        key=lambda p: (-p.shortfall, *order(p)),
    )
    return LicencePosition(
        products=tuple(positions),
        over_licensed=tuple(over),
        under_licensed=tuple(under),
        unattributed_entitlements=tuple(sorted(unattributed)),
        as_of=as_of,
    )


def _position(pid: str, name_vendor: tuple[str, str | None], installed_on: set[str],
              ents: list[Entitlement], expired: list[str]) -> ProductLicencePosition:
    """The position of one product from its installations and entitlements."""
    name, vendor = name_vendor
    seats = sum(e.seats or 0 for e in ents)
    count = len(installed_on)
    if count > seats:
        status = LicenceStatus.UNDER_LICENSED
    elif seats > count:
        status = LicenceStatus.OVER_LICENSED
    else:
        status = LicenceStatus.COMPLIANT
    return ProductLicencePosition(
        product_id=pid,
        name=name,
        vendor=vendor,
        entitled_seats=seats,
        installations=count,
        unused_seats=max(seats - count, 0),
        shortfall=max(count - seats, 0),
        status=status,
        installed_on=tuple(sorted(installed_on)),
        entitlements=tuple(sorted(e.entitlement_id for e in ents)),
        expired_entitlements=tuple(sorted(expired)),
        entitlements_without_seats=tuple(sorted(e.entitlement_id for e in ents if e.seats is None)),
    )
