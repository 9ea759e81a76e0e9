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
- A product that needs no licence is ``not_required`` (no shortfall, in neither list), with
  the reason (:func:`no_licence_reason`): its product record's ``licence_type`` /
  ``license_type`` attribute or ``category`` is a free type (freeware, free, open source,
  public domain), or an installation of it says it is free or an update: an SBOM's licence
  (CycloneDX ``licenses``, SPDX ``license_concluded`` / ``license_declared``) made of SPDX
  licence ids only, an inventory's ``release_type`` / ``system_category`` naming an update,
  hotfix or service pack (the GLPI agent's Windows updates), or a name that is a Windows
  update's (``KB4019215``, ``Update for Microsoft Office 2010 (KB2553140)``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import Entitlement, Relationship, SoftwareProduct

__all__ = ["LicenceStatus", "ProductLicencePosition", "LicencePosition", "licence_position",
           "no_licence_reason"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LicenceStatus(StrEnum):
    """Licence position of one product."""

    COMPLIANT = "compliant"
    OVER_LICENSED = "over_licensed"
    UNDER_LICENSED = "under_licensed"
    NOT_REQUIRED = "not_required"


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
        Over-, under-licensed, compliant, or not required (the product needs no licence).
    no_licence_reason : str or None
        Why the product needs no licence (``not_required``): the data that says so.
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
    no_licence_reason: str | None = None
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
    records = {p.product_id: p for p in products}
    names: dict[str, tuple[str, str | None]] = {
        pid: (p.name, p.vendor) for pid, p in records.items()
    }
    installed: dict[str, set[str]] = defaultdict(set)
    install_props: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for i, rel in enumerate(installations):
        if rel.rel_type != "HAS_INSTALLED":
            raise InvalidRecordError(
                f"expected a HAS_INSTALLED relationship, got {rel.rel_type}",
                record=f"installations[{i}] ({rel.source} -> {rel.target})", field="rel_type",
            )
        installed[rel.target].add(rel.source)
        install_props[rel.target].append(rel.properties)
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
                  in_force.get(pid, []), expired.get(pid, []),
                  no_licence_reason(records.get(pid), install_props.get(pid, [])))
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


#: Licence types (product ``licence_type`` / ``license_type`` / ``category``) that need none.
_FREE_TYPES = frozenset({"freeware", "free", "free software", "open source", "open-source",
                         "opensource", "oss", "foss", "public domain"})
#: Words of an installation's ``release_type`` / ``system_category`` that mark an update.
_UPDATE_WORDS = re.compile(r"\b(update|updates|hotfix|hotfixes|service pack|patch)\b", re.I)
#: A Windows update recorded by its number only (Win32_QuickFixEngineering ``HotFixID``).
_KB_NUMBER = re.compile(r"^KB\d{5,8}$", re.I)
#: ... or named after it (``Update for Microsoft Office 2010 (KB2553140) 64-Bit Edition``).
_KB_IN_NAME = re.compile(r"\bKB\d{5,8}\b")
#: Tokens of an SPDX licence expression that are no licence id.
_SPDX_OPERATORS = frozenset({"and", "or", "with"})
_SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*\+?$")
_NOT_FREE = ("licenseref-", "noassertion", "none", "proprietary", "commercial", "unlicensed")


def _spdx_free(expression: str) -> bool:
    """Whether an SPDX licence expression (or a list joined by commas) names SPDX licence ids
    only: the SPDX list's licences are free or open-source ones."""
    tokens = [t for t in re.split(r"[\s(),]+", expression) if t]
    ids = [t for t in tokens if t.casefold() not in _SPDX_OPERATORS]
    return bool(ids) and all(
        _SPDX_ID.match(t) and not t.casefold().startswith(_NOT_FREE) for t in ids)


def no_licence_reason(product: SoftwareProduct | None,
                      installations: Iterable[Mapping[str, Any]] = ()) -> str | None:
    """Why a software product needs no licence, or None when it may need one.

    Parameters
    ----------
    product : SoftwareProduct or None
        The product record: its ``licence_type`` / ``license_type`` attribute or its
        ``category`` may name a free type (freeware, free, open source, public domain); its
        name may be a Windows update's: a bare update number (``KB4019215``), or an update,
        hotfix or patch named with its number (``Update for ... (KB2553140)``).
    installations : iterable of mapping
        The properties of its ``HAS_INSTALLED`` relationships, as the importers record them:
        ``licenses`` (CycloneDX) or ``license_concluded`` / ``license_declared`` (SPDX) made of
        SPDX licence ids only; ``release_type`` / ``system_category`` naming an update, hotfix,
        patch or service pack (GLPI agent / FusionInventory).

    Returns
    -------
    str or None
        The reason, naming the data that gave it.

    Examples
    --------
    >>> no_licence_reason(SoftwareProduct(product_id="p", name="7-Zip",
    ...                                   attributes={"licence_type": "Freeware"}))
    'licence type Freeware'
    >>> no_licence_reason(None, [{"release_type": "Security Update"}])
    'an update (release type Security Update)'
    >>> no_licence_reason(None, [{"licenses": "MIT, Apache-2.0"}])
    'open-source licence MIT, Apache-2.0'
    >>> no_licence_reason(None, [{"licenses": "LicenseRef-Acme-EULA"}]) is None
    True
    """
    if product is not None:
        for key in ("licence_type", "license_type"):
            value = product.attributes.get(key)
            if isinstance(value, str) and value.strip().casefold() in _FREE_TYPES:
                return f"licence type {value.strip()}"
        if product.category and product.category.strip().casefold() in _FREE_TYPES:
            return f"category {product.category.strip()}"
        name = product.name.strip()
        if _KB_NUMBER.match(name) or (_KB_IN_NAME.search(name) and _UPDATE_WORDS.search(name)):
            return f"a Windows update ({name})"
    for props in installations:
        for key, label in (("release_type", "release type"),
                           ("system_category", "system category")):
            value = props.get(key)
            if isinstance(value, str) and _UPDATE_WORDS.search(value):
                return f"an update ({label} {value.strip()})"
        for key in ("licenses", "license_concluded", "license_declared"):
            value = props.get(key)
            if isinstance(value, str) and _spdx_free(value):
                return f"open-source licence {value.strip()}"
    return None


def _position(pid: str, name_vendor: tuple[str, str | None], installed_on: set[str],
              ents: list[Entitlement], expired: list[str],
              free: str | None = None) -> ProductLicencePosition:
    """The position of one product from its installations and entitlements; ``free`` is why
    it needs no licence (then it is ``not_required``)."""
    name, vendor = name_vendor
    seats = sum(e.seats or 0 for e in ents)
    count = len(installed_on)
    if free is not None:
        status = LicenceStatus.NOT_REQUIRED
    elif count > seats:
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
        shortfall=0 if free is not None else max(count - seats, 0),
        status=status,
        no_licence_reason=free,
        installed_on=tuple(sorted(installed_on)),
        entitlements=tuple(sorted(e.entitlement_id for e in ents)),
        expired_entitlements=tuple(sorted(expired)),
        entitlements_without_seats=tuple(sorted(e.entitlement_id for e in ents if e.seats is None)),
    )
