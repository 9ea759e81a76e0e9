"""Licence position: entitled seats against installations per software product."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.ingest import run_import
from cmdb_graph.model.entities import Entitlement, Relationship, SoftwareProduct
from cmdb_graph.model.records import (
    CIRecord,
    EntitlementRecord,
    Identifiers,
    Origin,
    SoftwareRecord,
)
from cmdb_graph.store.memory import MemoryStore
from impact.licences import LicenceStatus, licence_position
from importers import get_importer

REPO = Path(__file__).resolve().parents[2]
MOCK = REPO / ".." / "shared" / "realdata" / "snipeit" / "MOCK_LICENSES.csv"


def _installed(product_id: str, *ci_ids: str) -> list[Relationship]:
    return [
        Relationship(rel_type="HAS_INSTALLED", source=ci, target=product_id,
                     target_label="SoftwareProduct", properties={"version": "1"})
        for ci in ci_ids
    ]


PRODUCTS = [
    SoftwareProduct(product_id="editor", name="Editor", vendor="Acme"),
    SoftwareProduct(product_id="viewer", name="Viewer", vendor="Acme"),
    SoftwareProduct(product_id="cad", name="CAD Pro", vendor="Draw Inc"),
    SoftwareProduct(product_id="db", name="Database", vendor="Data Co"),
    SoftwareProduct(product_id="unused", name="Shelfware", vendor="Acme"),
]


def test_hand_made_over_under_and_compliant() -> None:
    # Arrange
    installs = [
        *_installed("editor", "pc1", "pc2", "pc3", "pc4", "pc5"),
        *_installed("editor", "pc1"),  # a second version on pc1 needs no second seat
        *_installed("viewer", "pc1", "pc2"),
        *_installed("cad", "ws1", "ws2", "ws3"),
        *_installed("db", "srv1", "srv2"),
        *_installed("pirated", "pc9"),  # a product nobody listed and nobody licensed
    ]
    entitlements = [
        Entitlement(entitlement_id="E-ed-1", name="Editor 3", product_id="editor", seats=3),
        Entitlement(entitlement_id="E-vw-1", name="Viewer 10", product_id="viewer", seats=10),
        Entitlement(entitlement_id="E-cad-1", name="CAD 2", product_id="cad", seats=2),
        Entitlement(entitlement_id="E-cad-2", name="CAD 1", product_id="cad", seats=1),
        Entitlement(entitlement_id="E-db-1", name="DB site", product_id="db", seats=None),
        Entitlement(entitlement_id="E-db-2", name="DB 2", product_id="db", seats=2),
        Entitlement(entitlement_id="E-shelf", name="Shelf 4", product_id="unused", seats=4),
        Entitlement(entitlement_id="E-none", name="Orphan", product_id=None, seats=9),
    ]

    # Act
    pos = licence_position(installs, entitlements, PRODUCTS)

    # Assert
    table = {p.product_id: (p.entitled_seats, p.installations, p.status) for p in pos.products}
    assert table == {
        "editor": (3, 5, LicenceStatus.UNDER_LICENSED),
        "viewer": (10, 2, LicenceStatus.OVER_LICENSED),
        "cad": (3, 3, LicenceStatus.COMPLIANT),
        "db": (2, 2, LicenceStatus.COMPLIANT),
        "unused": (4, 0, LicenceStatus.OVER_LICENSED),
        "pirated": (0, 1, LicenceStatus.UNDER_LICENSED),
    }
    # over-licensed: most unused seats first; under-licensed: largest shortfall first
    assert [(p.product_id, p.unused_seats) for p in pos.over_licensed] == [
        ("viewer", 8), ("unused", 4)]
    assert [(p.product_id, p.shortfall) for p in pos.under_licensed] == [
        ("editor", 2), ("pirated", 1)]
    editor = next(p for p in pos.products if p.product_id == "editor")
    assert editor.installed_on == ("pc1", "pc2", "pc3", "pc4", "pc5")
    assert (editor.name, editor.vendor) == ("Editor", "Acme")
    db = next(p for p in pos.products if p.product_id == "db")
    assert db.entitlements_without_seats == ("E-db-1",)
    assert pos.unattributed_entitlements == ("E-none",)
    # products sorted by name: CAD Pro, Database, Editor, Shelfware, Viewer, then "pirated"
    assert [p.product_id for p in pos.products] == [
        "cad", "db", "editor", "unused", "viewer", "pirated"]


def test_expired_entitlements_stop_counting_as_of_a_day() -> None:
    # Arrange
    installs = _installed("editor", "pc1", "pc2")
    entitlements = [
        Entitlement(entitlement_id="old", name="Editor 2015", product_id="editor", seats=5,
                    expires=date(2025, 12, 31)),
        Entitlement(entitlement_id="new", name="Editor 2026", product_id="editor", seats=1,
                    expires=date(2026, 12, 31)),
    ]

    # Act
    ignoring = licence_position(installs, entitlements, PRODUCTS[:1])
    today = licence_position(installs, entitlements, PRODUCTS[:1], as_of=date(2026, 6, 1))

    # Assert
    assert ignoring.products[0].status is LicenceStatus.OVER_LICENSED
    [editor] = today.products
    assert (editor.entitled_seats, editor.status, editor.shortfall) == (
        1, LicenceStatus.UNDER_LICENSED, 1)
    assert editor.expired_entitlements == ("old",)
    assert editor.entitlements == ("new",)


def test_results_are_frozen_and_deterministic() -> None:
    # Arrange
    installs = _installed("editor", "b", "a")

    # Act
    one = licence_position(installs, [], PRODUCTS)
    two = licence_position(list(reversed(installs)), [], list(reversed(PRODUCTS)))

    # Assert
    assert one == two
    with pytest.raises(ValueError):
        one.products[0].__setattr__("installations", 99)


def test_other_relationship_types_are_refused() -> None:
    # Arrange
    bad = [Relationship(rel_type="DEPENDS_ON", source="a", target="b")]

    # Act
    with pytest.raises(InvalidRecordError) as info:
        licence_position(bad, [], [])

    # Assert
    assert info.value.field == "rel_type"
    assert "installations[0]" in str(info.value.record)


def test_snipeit_licences_with_hand_made_installations() -> None:
    # Arrange: the Snipe-IT entitlements, products keyed "vendor|name" as ingestion would
    records = [r for r in get_importer("snipeit-licenses").parse(MOCK)
               if isinstance(r, EntitlementRecord)]

    def pid(name: str, vendor: str | None) -> str:
        return f"{vendor or ''}|{name}"

    products = {pid(r.product, r.vendor): SoftwareProduct(
        product_id=pid(r.product, r.vendor), name=r.product, vendor=r.vendor) for r in records}
    entitlements = [
        Entitlement(entitlement_id=str(r.native_key), name=r.name,
                    product_id=pid(r.product, r.vendor), seats=r.seats, expires=r.expires)
        for r in records
    ]
    promethazine = pid("Promethazine Hydrochloride", "Moen Group")  # 1 seat
    hydralazine = pid("Hydralazine Hydrochloride", "Marvin Inc")  # 5 seats
    fluoride = pid("sodium fluoride", None)  # 32 seats
    carvedilol = pid("Carvedilol", "Hane, Bernier and Volkman")  # 24 seats
    installs = [
        *_installed(promethazine, "pc1", "pc2", "pc3"),
        *_installed(hydralazine, *(f"pc{i}" for i in range(1, 6))),
        *_installed(fluoride, "pc1", "pc2"),
        *_installed(carvedilol, *(f"ws{i}" for i in range(30))),
    ]

    # Act
    pos = licence_position(installs, entitlements, products.values())

    # Assert
    by_id = {p.product_id: p for p in pos.products}
    assert len(by_id) == 50  # Carvedilol twice: two vendors, two products
    assert [(p.name, p.shortfall) for p in pos.under_licensed] == [
        ("Carvedilol", 6), ("Promethazine Hydrochloride", 2)]
    assert by_id[hydralazine].status is LicenceStatus.COMPLIANT
    assert by_id[fluoride].unused_seats == 30
    # the other Carvedilol (63 seats, another vendor) is unused and so over-licensed
    assert by_id[pid("Carvedilol", "Gusikowski-Hettinger")].unused_seats == 63
    # every product without installations is over-licensed by all its seats
    assert len(pos.over_licensed) == 50 - 3
    assert sum(p.unused_seats for p in pos.over_licensed) == 2784 - 1 - 5 - 24 - 2
    # as of 2016-07-01 most Snipe-IT mock licences have expired (they end in 2016)
    later = licence_position(installs, entitlements, products.values(), as_of=date(2016, 7, 1))
    assert by_id[hydralazine].entitled_seats == 5
    assert {p.product_id: p for p in later.products}[hydralazine].expired_entitlements == ()
    expired = {r.native_key for r in records if r.expires and r.expires < date(2016, 7, 1)}
    assert len(expired) == 25  # counted in the CSV by hand (python csv + strptime)
    assert {e for p in later.products for e in p.expired_entitlements} == expired


def test_position_from_the_store_after_ingesting_snipeit_and_installations() -> None:
    # Arrange: the Snipe-IT licences and three PCs with Promethazine (1 seat) installed,
    # ingested as two data sources; the inputs of licence_position read back from the store
    store = MemoryStore()
    run_import(store, list(get_importer("snipeit-licenses").parse(MOCK)), source="snipeit",
               importer="snipeit-licenses")
    origin = Origin(file="hand-made")
    pcs = [CIRecord(ci_class="Computer", name=f"pc{i}",
                    identifiers=Identifiers(native_key=f"pc{i}", hostname=f"pc{i}"),
                    origin=origin) for i in (1, 2, 3)]
    installs = [SoftwareRecord(installed_on=Identifiers(native_key=f"pc{i}"),
                               product="Promethazine Hydrochloride", vendor="Moen Group",
                               version="6.25", origin=origin) for i in (1, 2, 3)]
    run_import(store, [*pcs, *installs], source="inventory", importer="hand-made")

    # Act
    pos = licence_position(
        store.relationships(None, rel_types=["HAS_INSTALLED"]),
        store.list_nodes("Entitlement", limit=100).items,  # type: ignore[arg-type]
        store.list_nodes("SoftwareProduct", limit=100).items,  # type: ignore[arg-type]
    )

    # Assert
    assert [(p.name, p.vendor, p.installations, p.shortfall) for p in pos.under_licensed] == [
        ("Promethazine Hydrochloride", "Moen Group", 3, 2)]
    assert len(pos.products) == 50
    assert len(pos.over_licensed) == 49


def test_products_that_need_no_licence_are_not_short_of_seats() -> None:
    # Arrange: freeware by its licence type, an open-source library (SBOM licences), an update
    # by its release type, and a paid product with a proprietary SBOM licence
    products = [
        SoftwareProduct(product_id="zip", name="7-Zip", attributes={"licence_type": "Freeware"}),
        SoftwareProduct(product_id="oss", name="left-pad", category="Open Source"),
        SoftwareProduct(product_id="lib", name="requests"),
        SoftwareProduct(product_id="kb", name="Servicing Stack"),
        SoftwareProduct(product_id="paid", name="CAD Pro"),
    ]
    installs = [
        *_installed("zip", "pc1", "pc2"), *_installed("oss", "pc1"),
        Relationship(rel_type="HAS_INSTALLED", source="app1", target="lib",
                     target_label="SoftwareProduct",
                     properties={"license_concluded": "Apache-2.0 OR MIT"}),
        Relationship(rel_type="HAS_INSTALLED", source="pc1", target="kb",
                     target_label="SoftwareProduct", properties={"system_category": "Hotfix"}),
        Relationship(rel_type="HAS_INSTALLED", source="pc1", target="paid",
                     target_label="SoftwareProduct",
                     properties={"licenses": "LicenseRef-Draw-EULA"}),
    ]

    # Act
    pos = licence_position(installs, [], products)

    # Assert
    by_id = {p.product_id: p for p in pos.products}
    assert [p.product_id for p in pos.under_licensed] == ["paid"]
    assert pos.over_licensed == ()
    assert {pid: (p.status, p.shortfall, p.no_licence_reason) for pid, p in by_id.items()
            if pid != "paid"} == {
        "zip": (LicenceStatus.NOT_REQUIRED, 0, "licence type Freeware"),
        "oss": (LicenceStatus.NOT_REQUIRED, 0, "category Open Source"),
        "lib": (LicenceStatus.NOT_REQUIRED, 0, "open-source licence Apache-2.0 OR MIT"),
        "kb": (LicenceStatus.NOT_REQUIRED, 0, "an update (system category Hotfix)"),
    }
    assert by_id["paid"].no_licence_reason is None and by_id["paid"].shortfall == 1
