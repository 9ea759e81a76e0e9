"""Every documented operation in ``graphql/operations/`` executed over real HTTP, with
variables, against both stores seeded with the synthetic estate (1000 CIs).

Expected data comes from two places: facts planted by the estate generator (the 2-of-3
payments cluster, the overlapping kernel changes, the blackout window on the two most critical
services) and the pure impact functions run over the whole dependency graph of an independent
reference store. The API extracts only the subgraph each question needs (Neo4j) or a cached
topology (memory), so agreement with the whole-graph answer checks that composition.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import impact
from cmdb_graph.model import Change, Registry
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import Estate, generate_estate
from tests.e2e.conftest import LiveServer, serve

OPERATIONS = Path(__file__).resolve().parents[2] / "graphql" / "operations"
IMPORT_FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "importers"
NOW = "2026-01-01T00:00:00Z"
NOW_DT = datetime(2026, 1, 1, tzinfo=UTC)
PAYMENTS = "ci-0000039"  # business service, criticality 1, in the blackout window
PAY_DB = "ci-0000041"  # database under the payments services
PAY_CLUSTER = "ci-0000046"  # redundancy "2" of members ci-0000047/48/49

def op(name: str) -> str:
    """The text of one operation file."""
    return (OPERATIONS / f"{name}.graphql").read_text(encoding="utf-8")


@cache
def estate() -> Estate:
    return generate_estate(1000)


@cache
def reference() -> impact.ImpactGraph:
    """The whole dependency graph of the estate, from a store of its own."""
    ref = MemoryStore(registry=Registry())
    ref.apply(estate().to_batch())
    return impact.ImpactGraph(ref.dependency_graph(), ref.registry)


@pytest.fixture
def api(store: GraphStore) -> Iterator[LiveServer]:
    """The API over a store of each kind seeded with the estate, for a test that writes."""
    store.apply(estate().to_batch())
    yield from serve(store, Settings(import_folder=IMPORT_FOLDER))


@pytest.fixture(scope="module",
                params=["memory", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def _seeded_once(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GraphStore, LiveServer, int]]:
    """One store of each kind seeded with the estate and served, shared by the tests that
    only read (seeding 1,000 CIs for every test was most of this module's time); with the
    store's feed head right after seeding."""
    store: GraphStore
    if request.param == "memory":
        store = MemoryStore(registry=Registry(),
                            database_path=tmp_path_factory.mktemp("operations") / "estate.db")
    else:
        store = request.getfixturevalue("_neo4j_session_store")
        store.registry = Registry()
        store.clear()
    store.apply(estate().to_batch())
    try:
        for server in serve(store, Settings(import_folder=IMPORT_FOLDER)):
            yield store, server, store.feed_head()
    finally:
        if isinstance(store, MemoryStore):
            store.close()


@pytest.fixture
def read_api(_seeded_once: tuple[GraphStore, LiveServer, int]) -> Iterator[LiveServer]:
    """The API over the shared seeded store of each kind, for a test that only reads: the
    store must hold exactly the estate before the test and write nothing during it."""
    store, server, head = _seeded_once
    assert store.feed_head() == head, "the shared estate was written to before this test"
    yield server
    assert store.feed_head() == head, "a read-only operation wrote to the store"


def data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body.get("errors")
    out: dict[str, Any] = body["data"]
    return out


def test_change_impact_of_a_database_reaches_the_payments_services(
    read_api: LiveServer,
) -> None:
    # Arrange
    graph = reference()
    expected = impact.change_impact(graph, [PAY_DB], services_only=True)

    # Act
    result = data(read_api.gql(op("ChangeImpact"), {"ciIds": [PAY_DB], "servicesOnly": True}))

    # Assert
    ci = result["changeImpact"]
    assert ci["__typename"] == "ChangeImpact"
    got = [(c["ciId"], c["status"].lower(), c["depth"], [tuple(p) for p in c["paths"]])
           for c in ci["impacted"]]
    assert got == [(c.ci_id, c.status.value, c.depth, list(c.paths)) for c in expected.impacted]
    payments = next(c for c in ci["impacted"] if c["ciId"] == PAYMENTS)
    assert payments["status"] == "DOWN"
    assert payments["paths"][0][0] == PAY_DB and payments["paths"][0][-1] == PAYMENTS
    assert payments["ci"]["supportGroup"]["groupId"] == "grp-pay"
    assert ci["summary"]["mostCriticalService"] == PAYMENTS
    assert all(c["kind"] in ("business_service", "application_service") for c in ci["impacted"])


def test_change_impact_of_one_cluster_member_only_degrades(read_api: LiveServer) -> None:
    # Arrange: CHG0001002 takes down one member of the 2-of-3 payments cluster; the other two
    # members are not reached by the change, but the rule needs them (the downstream fringe)

    # Act
    result = data(read_api.gql(op("ChangeImpact"), {"changeId": "CHG0001002"}))

    # Assert
    ci = result["changeImpact"]
    assert ci["changed"] == ["ci-0000047"]
    assert {c["status"] for c in ci["impacted"]} == {"DEGRADED"}
    assert [{k: v for k, v in g.items() if k != "name"} for g in ci["redundancy"]] == [{
        "ciId": PAY_CLUSTER, "rule": "2", "requiredInputs": 3, "inputsDown": 1,
        "threshold": 2, "headroom": 0, "status": "DEGRADED",
    }]


def test_change_impact_of_an_unknown_ci_is_a_typed_error(read_api: LiveServer) -> None:
    result = data(read_api.gql(op("ChangeImpact"), {"ciIds": ["ci-nope"]}))

    assert result["changeImpact"]["__typename"] == "UserError"
    assert result["changeImpact"]["code"] == "CI_NOT_FOUND"


def test_change_conflicts_find_the_combined_redundancy_loss(read_api: LiveServer) -> None:
    result = data(read_api.gql(op("ChangeConflicts"), {"changeId": "CHG0001002"}))

    found = result["changeConflicts"]
    assert found["hasConflicts"] is True
    kinds = {(c["kind"], c["otherChangeId"], tuple(c["ciIds"])) for c in found["conflicts"]}
    assert ("REDUNDANCY_COMBINED", "CHG0001003", (PAY_CLUSTER,)) in kinds
    combined = next(c for c in found["conflicts"] if c["kind"] == "REDUNDANCY_COMBINED")
    assert combined["otherChangeIds"] == ["CHG0001003"]


def test_conflicts_of_a_proposed_change_in_the_blackout(read_api: LiveServer) -> None:
    # Arrange
    proposed = {"ciIds": [PAY_DB], "windowStart": "2026-01-27T00:00:00Z",
                "windowEnd": "2026-01-27T02:00:00Z", "changeId": "RFC-1"}

    graph = reference()
    expected = impact.change_conflicts(
        graph, Change(change_id="RFC-1", ci_ids=[PAY_DB],
                      window_start=datetime(2026, 1, 27, tzinfo=UTC),
                      window_end=datetime(2026, 1, 27, 2, tzinfo=UTC)),
        changes=estate().changes, windows=estate().windows)

    # Act
    result = data(read_api.gql(op("ChangeConflicts"), {"proposed": proposed}))

    # Assert
    conflicts = result["changeConflicts"]["conflicts"]
    assert [(c["kind"].lower(), c["windowId"], c["ciIds"]) for c in conflicts] == [
        (c.kind.value, c.window_id, list(c.ci_ids)) for c in expected
    ]
    blackout = [c for c in conflicts if c["kind"] == "BLACKOUT"]
    assert [c["windowId"] for c in blackout] == ["WIN0003"]
    assert PAYMENTS in blackout[0]["ciIds"]
    assert {c["changeId"] for c in conflicts} == {"RFC-1"}
    assert any(c["kind"] == "OUTSIDE_MAINTENANCE" and c["ciIds"] == [PAY_DB] for c in conflicts)


def test_route_incident_on_a_ci_without_group_follows_its_dependencies(
    read_api: LiveServer,
) -> None:
    # Arrange
    graph = reference()
    orphans = [c.ci_id for c in estate().cis if not c.support_group]
    expected = {c: impact.route_incident(graph, c) for c in orphans}

    # Act
    got = {c: data(read_api.gql(op("RouteIncident"), {"ciId": c}))["routeIncident"]
           for c in orphans}

    # Assert
    for ci_id, routing in got.items():
        want = expected[ci_id]
        assert routing["routedVia"] == want.routed_via
        assert routing["path"] == list(want.path)
        assert (routing["supportGroup"] or {}).get("groupId") == want.support_group
    assert any(r["routedVia"] not in (None, c) for c, r in got.items())


def test_probable_cause_ranks_the_shared_hypervisor_first(read_api: LiveServer) -> None:
    # Arrange
    affected = ["ci-0000040", "ci-0000072", "ci-0000091"]
    graph = reference()
    expected = impact.probable_cause(graph, affected, now=NOW_DT,
                                     changes=estate().changes, incidents=estate().incidents,
                                     max_candidates=5)

    # Act
    result = data(read_api.gql(op("ProbableCause"), {"ciIds": affected, "now": NOW}))

    # Assert
    cands = result["probableCause"]["candidates"]
    assert [c["ciId"] for c in cands] == [c.ci_id for c in expected.candidates]
    assert cands[0]["explains"] == affected
    assert cands[0]["supportGroup"]["groupId"] == expected.candidates[0].support_group


def test_orphan_report_matches_the_quality_reports(read_api: LiveServer) -> None:
    # Arrange
    graph = reference()
    qi = impact.QualityInput(graph=graph, now=NOW_DT, assets=estate().assets)

    # Act
    result = data(read_api.gql(op("OrphanReport"), {"options": {"now": NOW}, "first": 1000}))

    # Assert
    assert set(result) == {"retiredAssetsInUse", "unmanagedCIs", "assetsUnseen",
                           "withoutSupport", "entitlementsOnRetired"}
    for report in result.values():
        want = impact.run_report(report["name"], qi)
        assert report["count"] == want.count
        assert [f["subject"] for f in report["findings"]] == [f.subject for f in want.findings]
    assert result["retiredAssetsInUse"]["count"] >= 1
    assert result["unmanagedCIs"]["count"] >= 1


def test_dependency_map_and_single_points_of_failure(read_api: LiveServer) -> None:
    # Arrange
    graph = reference()
    smap = impact.service_map(graph, PAYMENTS, depth_limit=4)
    spof = impact.single_points_of_failure(graph, PAYMENTS)

    # Act
    result = data(read_api.gql(op("DependencyMap"), {"service": PAYMENTS, "depth": 4}))

    # Assert
    got_map = result["serviceMap"]
    assert [(n["ciId"], n["distance"]) for n in got_map["nodes"]] == [
        (n.ci_id, n.distance) for n in smap.nodes
    ]
    assert len(got_map["edges"]) == len(smap.edges)
    points = [p["ciId"] for p in result["singlePointsOfFailure"]["points"]]
    assert points == [p.ci_id for p in spof]
    assert PAY_DB in points
    assert "ci-0000047" not in points  # a member of a 2-of-3 cluster is not one


DISCOVERED = {
    "source": "netscan",
    "priority": 40,
    "cis": [
        {"ciClass": "Server", "name": "web-01",
         "identifiers": {"nativeKey": "10.9.0.5", "serialNumber": "SN-WEB-0001",
                         "fqdn": "web-01.shop.example.com"},
         "supportGroup": "Web Operations", "environment": "production"},
        {"ciClass": "Application", "name": "nginx",
         "identifiers": {"nativeKey": "10.9.0.5:443"}, "host": {"nativeKey": "10.9.0.5"}},
    ],
    "relationships": [
        {"relType": "RUNS_ON", "source": {"identifiers": {"nativeKey": "10.9.0.5:443"}},
         "target": {"identifiers": {"nativeKey": "10.9.0.5"}}},
        {"relType": "CONNECTS_TO", "source": {"identifiers": {"nativeKey": "10.9.0.5"}},
         "target": {"ciId": "ci-0000005"}},
    ],
}


def test_discovery_upsert_identifies_on_the_second_run(api: LiveServer) -> None:
    # Arrange
    first = data(api.gql(op("DiscoveryUpsert"), {"input": DISCOVERED}))["ciUpsert"]

    # Act
    second = data(api.gql(op("DiscoveryUpsert"), {"input": DISCOVERED}))["ciUpsert"]

    # Assert
    assert first["__typename"] == "CIUpsertPayload"
    assert first["run"]["counts"]["created"] >= 4 and first["run"]["skips"] == []
    assert second["run"]["counts"]["created"] == 0
    assert [c["ciId"] for c in second["cis"]] == [c["ciId"] for c in first["cis"]]
    server = first["cis"][0]
    assert server["serialNumber"] == "SN-WEB-0001"
    assert server["supportGroup"]["name"] == "Web Operations"
    assert server["lineage"]["sources"] == [{"source": "netscan", "nativeKey": "netscan:10.9.0.5"}]
    # the switch it connects to now has it upstream: its failure reaches the new server
    impacted = data(api.gql(op("ChangeImpact"), {"ciIds": ["ci-0000005"]}))
    assert server["ciId"] in {c["ciId"] for c in impacted["changeImpact"]["impacted"]}


def test_history_of_a_discovered_server_and_impact_as_of_before_it(
    api: LiveServer, store: GraphStore
) -> None:
    # Arrange: the time before the discovery run, then the run
    before = store.feed_since(store.feed_head() - 1)[0].at.isoformat()
    first = data(api.gql(op("DiscoveryUpsert"), {"input": DISCOVERED}))["ciUpsert"]
    server = first["cis"][0]["ciId"]

    # Act: its history one change per page; the switch's impact now and before the run
    pages = [data(api.gql(op("CIHistory"), {"ciId": server, "first": 1}))["history"]]
    while pages[-1]["pageInfo"]["hasNextPage"]:
        pages.append(data(api.gql(op("CIHistory"), {
            "ciId": server, "first": 1, "after": pages[-1]["pageInfo"]["endCursor"]}))["history"])
    now = data(api.gql(op("ChangeImpact"), {"ciIds": ["ci-0000005"]}))["changeImpact"]
    then = data(api.gql(op("ChangeImpact"), {"ciIds": ["ci-0000005"], "asOf": before}
                        ))["changeImpact"]

    # Assert: created, then its two relationships, each on a page of its own, with names
    nodes = [e["node"] for p in pages for e in p["edges"]]
    assert [p["totalCount"] for p in pages] == [3, 3, 3]
    assert [n["op"] for n in nodes] == ["created", "added", "added"]
    assert {n["ciName"] for n in nodes} == {"web-01"}
    assert {(n["relType"], n["sourceName"]) for n in nodes[1:]} == {
        ("RUNS_ON", "nginx"), ("CONNECTS_TO", "web-01")}
    assert {"name": "name", "old": None, "new": "web-01"} in nodes[0]["changes"]
    assert server in {c["ciId"] for c in now["impacted"]}
    assert server not in {c["ciId"] for c in then["impacted"]}
    assert then["__typename"] == "ChangeImpact"


TWO_NGINX = {
    "source": "netscan",
    "cis": [
        {"ciClass": "Server", "name": "web-11", "identifiers": {"fqdn": "web-11.shop.example.com"}},
        {"ciClass": "Server", "name": "web-12", "identifiers": {"fqdn": "web-12.shop.example.com"}},
        {"ciClass": "Application", "name": "nginx", "identifiers": {"name": "nginx"},
         "host": {"fqdn": "web-11.shop.example.com"}},
        {"ciClass": "Application", "name": "nginx", "identifiers": {"name": "nginx"},
         "host": {"fqdn": "web-12.shop.example.com"}},
    ],
}


def test_upsert_tells_two_same_named_applications_apart_by_their_host(
    api: LiveServer, store: GraphStore
) -> None:
    # Arrange: two servers, each running an application named nginx (no keys: name + host)
    first = data(api.gql(op("DiscoveryUpsert"), {"input": TWO_NGINX}))["ciUpsert"]

    # Act
    second = data(api.gql(op("DiscoveryUpsert"), {"input": TWO_NGINX}))["ciUpsert"]

    # Assert: each nginx is found again by name + host, and the payload names all four CIs
    ids = [c["ciId"] for c in second["cis"]]
    assert first["run"]["counts"]["created"] == 4 and second["run"]["counts"]["created"] == 0
    assert ids == [c["ciId"] for c in first["cis"]] and len(set(ids)) == 4
    assert [store.get_ci(i).host_id for i in ids[2:]] == ids[:2]


def test_scheduled_change_conflicts_with_the_kernel_update(api: LiveServer) -> None:
    # Arrange: the third member of the payments cluster, during CHG0001002
    change = {"changeId": "CHG7777", "title": "Third node", "windowStart": "2026-01-06T20:30:00Z",
              "windowEnd": "2026-01-06T21:30:00Z",
              "cis": [{"identifiers": {"name": "vm-fra1-pay-003", "ciClass": "VirtualMachine"}}]}

    # Act
    scheduled = data(api.gql(op("ScheduleChange"), {"input": change}))["changeSchedule"]
    conflicts = data(api.gql(op("ChangeConflicts"), {"changeId": "CHG7777"}))

    # Assert
    assert scheduled["change"]["ciIds"] == ["ci-0000049"]
    kinds = {(c["kind"], c["otherChangeId"]) for c in conflicts["changeConflicts"]["conflicts"]}
    assert ("REDUNDANCY_COMBINED", "CHG0001002") in kinds


def test_recorded_incident_is_routed_and_found_by_identifier(api: LiveServer) -> None:
    # Arrange
    incident = {"incidentId": "INC9001", "openedAt": NOW,
                "cis": [{"identifiers": {"name": "vm-fra1-pay-001",
                                         "ciClass": "VirtualMachine"}}]}

    # Act
    recorded = data(api.gql(op("RecordIncident"), {"input": incident}))["incidentRecord"]
    found = data(api.gql(op("FindCI"), {"identifiers": {"name": "Payments"}}))

    # Assert
    assert recorded["incident"]["ciIds"] == ["ci-0000047"]
    assert recorded["routing"]["supportGroup"]["groupId"] == "grp-pay"
    assert [c["ciId"] for c in found["cisByIdentifier"]] == [PAYMENTS]
    assert found["cisByIdentifier"][0]["supportGroup"]["groupId"] == "grp-pay"


def test_every_operation_file_is_exercised() -> None:
    # Arrange
    files = {p.stem for p in OPERATIONS.glob("*.graphql")}
    source = Path(__file__).read_text(encoding="utf-8")

    # Act
    untested = {f for f in files if f'op("{f}")' not in source}

    # Assert
    assert files, "no operations"
    assert not untested, f"operations without a test: {sorted(untested)}"


NMAP = IMPORT_FOLDER / "nmap_scan_nmap7.xml"


def test_import_run_from_inline_content_and_from_the_import_folder(api: LiveServer) -> None:
    # Arrange
    inline = {"kind": "nmap", "source": "nmap", "content": NMAP.read_text(encoding="utf-8"),
              "filename": "scan.xml"}

    # Act
    first = data(api.gql(op("ImportRun"), {"input": inline}))["importRun"]
    again = data(api.gql(op("ImportRun"), {"input": {"kind": "nmap", "source": "nmap",
                                                      "paths": [NMAP.name]}}))["importRun"]
    missing = data(api.gql(op("ImportRun"), {"input": {"kind": "nmap", "source": "nmap",
                                                        "paths": ["nonexistent/scan.xml"]}}))

    # Assert
    assert first["run"]["status"] == "succeeded" and first["run"]["importer"] == "nmap"
    assert first["run"]["counts"]["created"] > 0
    assert again["run"]["counts"]["created"] == 0  # identified by the nmap source's keys
    assert again["run"]["counts"]["unchanged"] > 0
    assert missing["importRun"]["__typename"] == "UserError"
    assert missing["importRun"]["message"] == (
        "'nonexistent/scan.xml': no such file in the import folder")
