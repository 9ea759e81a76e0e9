"""Orphaned assets and data-quality reports."""

from __future__ import annotations

from datetime import UTC, date, datetime

import networkx as nx
import pytest

from cmdb_graph.errors import ConfigurationError
from cmdb_graph.model import Asset, Entitlement, LifecycleStage, OperationalStatus
from impact import REPORTS, ImpactGraph, QualityInput, QualityOptions, run_all, run_report
from impact.quality import (
    assets_unseen_by_discovery,
    cis_without_support_or_owner,
    duplicate_candidates,
    entitlements_on_retired,
    hardware_past_warranty_or_eol,
    infrastructure_unreachable_from_services,
    relationships_to_retired,
    retired_assets_in_use,
    services_without_infrastructure,
    stale_cis,
    unmanaged_cis,
)
from tests.unit.impact.estates import ci, graph, shop

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def subjects(report: object) -> list[str]:
    return [f.subject for f in report.findings]  # type: ignore[attr-defined]


def test_retired_asset_whose_ci_is_operational_or_depended_upon() -> None:
    # Arrange
    g = shop()
    g.nodes["srv2"]["operational_status"] = str(OperationalStatus.RETIRED)
    assets = [
        Asset(asset_id="A1", ci_id="srv1", lifecycle_stage=LifecycleStage.DISPOSED),
        Asset(asset_id="A2", ci_id="srv2", lifecycle_stage=LifecycleStage.RETIRED),
        Asset(asset_id="A3", ci_id="srv3", lifecycle_stage=LifecycleStage.IN_USE),
        Asset(asset_id="A4", ci_id="dc2", lifecycle_stage=LifecycleStage.RETIRED),
    ]
    g.nodes["dc2"]["operational_status"] = str(OperationalStatus.RETIRED)

    # Act
    report = retired_assets_in_use(ImpactGraph(g), now=NOW, assets=assets)

    # Assert: srv1 operational; srv2 retired but cl_web still needs it; dc2 hv1 depends on it
    assert subjects(report) == ["A1", "A2", "A4"]
    assert report.findings[1].related == ("cl_web",)
    assert report.findings[2].related == ("hv1",)


def test_unmanaged_cis_only_for_classes_expecting_an_asset() -> None:
    assets = [Asset(asset_id="A1", ci_id="srv1"),
              Asset(asset_id="A9", serial_number="sn2")]

    report = unmanaged_cis(ImpactGraph(shop()), now=NOW, assets=assets)

    assert subjects(report) == ["hv1", "srv2", "srv3", "sw1"]
    assert report.findings[1].related == ("A9",)


def test_assets_in_use_not_seen_by_discovery() -> None:
    # Arrange
    g = shop()
    g.nodes["srv1"]["last_seen"] = "2026-02-28T00:00:00+00:00"
    g.nodes["srv2"]["last_seen"] = "2025-12-01T00:00:00+00:00"
    assets = [
        Asset(asset_id="A1", ci_id="srv1"),
        Asset(asset_id="A2", ci_id="srv2"),
        Asset(asset_id="A3", ci_id="srv3"),
        Asset(asset_id="A4"),
        Asset(asset_id="A5", ci_id="srv2", lifecycle_stage=LifecycleStage.IN_STOCK),
    ]

    # Act
    report = assets_unseen_by_discovery(ImpactGraph(g), now=NOW, assets=assets,
                                        options=QualityOptions(unseen_days=30))

    # Assert
    assert subjects(report) == ["A2", "A3", "A4"]


def test_cis_without_support_group_or_owner() -> None:
    g = graph([ci("a", "Server", support_group="g", owner="o"), ci("b", "Server", owner="o"),
               ci("c", "Server"), ci("d", "Server", operational_status="retired")], [])

    report = cis_without_support_or_owner(ImpactGraph(g), now=NOW)

    assert [(f.subject, f.detail) for f in report.findings] == [
        ("b", "no support_group"), ("c", "no support_group and no owner")
    ]


def test_infrastructure_not_reachable_from_any_service() -> None:
    g = shop()
    g.add_node("srv_lonely", **g.nodes["srv1"] | {"ci_id": "srv_lonely"})
    g.add_node("app_lonely", **g.nodes["app_web"] | {"ci_id": "app_lonely"})

    report = infrastructure_unreachable_from_services(ImpactGraph(g), now=NOW)

    assert subjects(report) == ["srv_lonely"]


def test_services_with_no_infrastructure_beneath() -> None:
    g = shop()
    extra = graph([ci("bs_empty", "BusinessService"), ci("as_thin", "ApplicationService"),
                   ci("app_x", "Application")],
                  [("bs_empty", "DEPENDS_ON", "as_thin"), ("as_thin", "DEPENDS_ON", "app_x")])
    g = nx.compose(g, extra)

    report = services_without_infrastructure(ImpactGraph(g), now=NOW)

    assert subjects(report) == ["as_thin", "bs_empty"]


def test_stale_cis_per_class_threshold() -> None:
    g = graph([
        ci("s1", "Server", last_seen=datetime(2026, 2, 20, tzinfo=UTC)),
        ci("s2", "Hypervisor", last_seen=datetime(2026, 2, 20, tzinfo=UTC)),
        ci("v1", "VirtualMachine", last_seen=datetime(2026, 2, 27, tzinfo=UTC)),
        ci("v2", "VirtualMachine"),
    ], [])
    opts = QualityOptions(stale_days=30, stale_days_by_class={"Server": 5,
                                                              "VirtualMachine": 1})

    report = stale_cis(ImpactGraph(g), now=NOW, options=opts)

    # Hypervisor inherits the Server threshold; v2 never seen is not stale
    assert subjects(report) == ["s1", "s2", "v1"]


def test_duplicate_candidates() -> None:
    g = graph([
        ci("a", "Server", serial_number="SN-1", fqdn="a.example.com"),
        ci("b", "Server", serial_number="sn-1 "),
        ci("c", "Server", fqdn="A.example.com"),
        ci("d", "Application", name="crm"), ci("e", "Application", name="CRM"),
        ci("f", "Database", name="crm"),
        ci("g", "Server", duplicate_of="a"),
        ci("h", "Server", serial_number="SN-1", operational_status="retired"),
    ], [])

    report = duplicate_candidates(ImpactGraph(g), now=NOW)

    found = {(f.subject, f.related) for f in report.findings}
    assert found == {("a", ("b",)), ("a", ("c",)), ("d", ("e",)), ("g", ("a",))}


def test_a_pair_two_rules_find_is_one_finding_with_both_reasons() -> None:
    # Arrange: the same serial number, FQDN and name, and the same service in two systems
    g = graph([
        ci("a", "Container", name="cart", serial_number="SN-1", fqdn="cart.example.com",
           attributes={"service_name": "cart", "system": "shop"}),
        ci("b", "Container", name="cart", serial_number="sn-1", fqdn="CART.example.com",
           attributes={"service_name": "cart", "system": "blog"}),
        ci("c", "Server", name="solo", serial_number="SN-2"),
        ci("d", "Server", name="solo"),
    ], [])

    # Act
    report = duplicate_candidates(ImpactGraph(g), now=NOW)

    # Assert: one row per pair, every reason on it
    assert [(f.subject, f.related) for f in report.findings] == [("a", ("b",)),
                                                                  ("c", ("d",))]
    assert report.findings[0].detail.split("; ") == [
        "same serial number: 'sn-1'", "same FQDN: 'cart.example.com'",
        "same name in class Container: 'cart'",
        "same service name 'cart' in different systems (a in 'shop', b in 'blog'): not merged"]
    assert report.findings[1].detail == "same name in class Server: 'solo'"


def test_relationships_whose_end_is_retired() -> None:
    g = shop()
    g.nodes["srv3"]["operational_status"] = "retired"

    report = relationships_to_retired(ImpactGraph(g), now=NOW)

    assert subjects(report) == ["CONNECTS_TO:srv3->sw1", "MEMBER_OF:srv3->cl_web"]


def test_hardware_past_warranty_or_end_of_life_with_services_on_it() -> None:
    assets = [
        Asset(asset_id="A-SW", ci_id="sw1", warranty_end=date(2025, 1, 1)),
        Asset(asset_id="A-HV", ci_id="hv1", end_of_life=date(2026, 2, 28)),
        Asset(asset_id="A-OK", ci_id="srv1", warranty_end=date(2027, 1, 1)),
        Asset(asset_id="A-GONE", ci_id="srv2", warranty_end=date(2020, 1, 1),
              lifecycle_stage=LifecycleStage.DISPOSED),
    ]

    report = hardware_past_warranty_or_eol(ImpactGraph(shop()), now=NOW, assets=assets)

    assert subjects(report) == ["A-HV", "A-SW"]
    assert report.findings[1].related == ("as_web", "bs_blog", "bs_shop")


def test_entitlements_assigned_to_retired_cis_or_assets() -> None:
    g = shop()
    g.nodes["srv3"]["operational_status"] = "retired"
    assets = [Asset(asset_id="A2", ci_id="srv2", lifecycle_stage=LifecycleStage.DISPOSED)]
    ents = [
        Entitlement(entitlement_id="E1", name="rhel", assigned_ci_ids=["srv1", "srv2", "srv3"]),
        Entitlement(entitlement_id="E2", name="rhel", assigned_ci_ids=["srv1"]),
    ]

    report = entitlements_on_retired(ImpactGraph(g), now=NOW, assets=assets, entitlements=ents)

    assert [(f.subject, f.related) for f in report.findings] == [("E1", ("srv2", "srv3"))]


def test_registry_runs_every_report_uniformly_with_definitions() -> None:
    bundle = QualityInput(graph=ImpactGraph(shop()), now=NOW,
                          assets=[Asset(asset_id="A1", ci_id="srv1")])

    reports = run_all(bundle)

    assert list(reports) == list(REPORTS)
    assert len(REPORTS) == 11
    assert all(r.definition and r.name == name for name, r in reports.items())
    assert run_report("unmanaged_cis", bundle) == reports["unmanaged_cis"]


def test_unknown_report_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="stale_cis"):
        run_report("nope", QualityInput(graph=ImpactGraph(shop()), now=NOW))
