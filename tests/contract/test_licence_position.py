"""The licence position through the GraphQL schema (``licencePosition``), on both stores: seats
of the entitlements in force against the CIs with a ``HAS_INSTALLED`` relationship."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.model import Entitlement, Node, Relationship, SoftwareProduct
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.base import GraphStore, WriteBatch
from tests.contract.estate import ci

QUERY = """
query Licences($asOf: Date) {
  licencePosition(asOf: $asOf) {
    __typename
    ... on LicencePosition {
      asOf
      products { productId name vendor status entitledSeats installations shortfall
                 unusedSeats installedOn entitlements expiredEntitlements
                 entitlementsWithoutSeats }
      overLicensed { productId unusedSeats }
      underLicensed { productId shortfall }
      unattributedEntitlements
    }
    ... on UserError { code message }
  }
}
"""


def installed(ci_id: str, product_id: str, version: str) -> Relationship:
    return Relationship(rel_type="HAS_INSTALLED", source=ci_id, target=product_id,
                        target_label="SoftwareProduct", properties={"version": version})


def seed() -> WriteBatch:
    """Four hosts; an editor short of seats, a database over-licensed once its expired
    entitlement is left out, a viewer with a seatless entitlement, an entitlement for a product
    never recorded."""
    nodes: list[Node] = [ci(f"h{i}", "Server") for i in range(1, 5)]
    nodes += [
        SoftwareProduct(product_id="editor", name="Editor", vendor="Acme"),
        SoftwareProduct(product_id="db", name="Database", vendor="Dbco"),
        SoftwareProduct(product_id="viewer", name="Viewer", vendor="Acme"),
        SoftwareProduct(product_id="idle", name="Idle tool"),
        Entitlement(entitlement_id="E-ed", name="Editor x2", product_id="editor", seats=2),
        Entitlement(entitlement_id="E-db1", name="DB x5", product_id="db", seats=5,
                    expires=date(2027, 1, 1)),
        Entitlement(entitlement_id="E-db0", name="DB old x10", product_id="db", seats=10,
                    expires=date(2025, 6, 30)),
        Entitlement(entitlement_id="E-vw", name="Viewer site", product_id="viewer"),
        Entitlement(entitlement_id="E-none", name="Unknown pack", seats=3),
        Entitlement(entitlement_id="E-gh", name="Ghost x1", product_id="ghost", seats=1),
    ]
    rels = [
        installed("h1", "editor", "4.2"), installed("h2", "editor", "4.2"),
        installed("h3", "editor", "4.1"),
        installed("h1", "db", "15"), installed("h2", "db", "15"),
        installed("h4", "viewer", "1.0"),
    ]
    return WriteBatch(nodes=nodes, relationships=rels)


def ask(store: GraphStore, variables: dict[str, Any]) -> dict[str, Any]:
    state = AppState(settings=Settings(), registry=store.registry, store=store)
    ctx = Context(state, Principal("test", Role.READER))
    result = asyncio.run(build_schema().execute(QUERY, variable_values=variables,
                                                context_value=ctx))
    assert result.errors is None, result.errors
    assert result.data is not None
    found: dict[str, Any] = result.data["licencePosition"]
    return found


def test_licence_position_counts_seats_against_installations(store: GraphStore) -> None:
    # Arrange
    store.apply(seed())

    # Act
    got = ask(store, {"asOf": "2026-01-15"})

    # Assert
    assert got["__typename"] == "LicencePosition"
    assert got["asOf"] == "2026-01-15"
    rows = {p["productId"]: (p["status"], p["entitledSeats"], p["installations"],
                             p["shortfall"], p["unusedSeats"]) for p in got["products"]}
    assert rows == {
        "db": ("OVER_LICENSED", 5, 2, 0, 3),
        "editor": ("UNDER_LICENSED", 2, 3, 1, 0),
        "idle": ("COMPLIANT", 0, 0, 0, 0),
        "ghost": ("OVER_LICENSED", 1, 0, 0, 1),
        "viewer": ("UNDER_LICENSED", 0, 1, 1, 0),
    }
    # sorted by name: products without a record are named after their id
    assert [p["name"] for p in got["products"]] == [
        "Database", "Editor", "Idle tool", "Viewer", "ghost"
    ]
    by_id = {p["productId"]: p for p in got["products"]}
    assert by_id["editor"]["installedOn"] == ["h1", "h2", "h3"]
    assert by_id["db"]["entitlements"] == ["E-db1"]
    assert by_id["db"]["expiredEntitlements"] == ["E-db0"]
    assert by_id["viewer"]["entitlementsWithoutSeats"] == ["E-vw"]
    assert by_id["ghost"]["vendor"] is None
    assert got["overLicensed"] == [  # most unused seats first
        {"productId": "db", "unusedSeats": 3}, {"productId": "ghost", "unusedSeats": 1}
    ]
    assert got["underLicensed"] == [  # largest shortfall first, then by name
        {"productId": "editor", "shortfall": 1}, {"productId": "viewer", "shortfall": 1},
    ]
    assert got["unattributedEntitlements"] == ["E-none"]


def test_an_earlier_day_still_counts_the_old_entitlement(store: GraphStore) -> None:
    # Arrange
    store.apply(seed())

    # Act
    got = ask(store, {"asOf": "2025-01-01"})

    # Assert
    db = next(p for p in got["products"] if p["productId"] == "db")
    assert (db["entitledSeats"], db["unusedSeats"], db["expiredEntitlements"]) == (15, 13, [])


def test_an_empty_estate_has_an_empty_position(store: GraphStore) -> None:
    # Act
    got = ask(store, {})

    # Assert: asOf defaults to a day; no products
    assert got["__typename"] == "LicencePosition"
    assert date.fromisoformat(got["asOf"]) >= date(2026, 1, 1)
    assert got["products"] == [] and got["underLicensed"] == []
