"""CIs not in service in impact, single points of failure and reports, on both stores.

A cluster with rule ``1`` whose second member is in stock goes down with its first member (it
would be degraded with both in service); a retired business service on it is listed, marked
not in service, and not counted as a service hit; an in-stock server nothing rests on is not
an orphan. A status change written to the store (a ``ciUpsert`` through GraphQL, or a store
write) reaches the next question through the change feed, without a rebuild.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cmdb_graph.api.app import create_app
from cmdb_graph.api.auth import new_api_key
from cmdb_graph.model import OperationalStatus
from cmdb_graph.service.engine import Engine
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore
from impact import ImpactStatus
from tests.contract.estate import ci, rel

NOW = datetime(2026, 3, 1, tzinfo=UTC)
WRITER_KEY, WRITER = new_api_key("disco-bot", "writer")


def _seed(store: GraphStore, hv2: str = "non_operational") -> None:
    """shop (crit 1) and legacy (crit 1, retired) -DEPENDS_ON-> app -RUNS_ON-> cl (rule "1");
    hv1, hv2 (``hv2``) -MEMBER_OF-> cl; spare (in stock) and idle: nothing rests on them."""
    old = NOW - timedelta(days=90)
    store.upsert_nodes([
        ci("shop", "BusinessService", business_criticality=1),
        ci("legacy", "BusinessService", business_criticality=1, operational_status="retired"),
        ci("app", "Application"),
        ci("cl", "Cluster", redundancy="1"),
        ci("hv1", "Server", fqdn="hv1.example", last_seen=NOW),
        ci("hv2", "Server", fqdn="hv2.example", operational_status=hv2, last_seen=NOW),
        ci("spare", "Server", operational_status="non_operational", last_seen=old),
        ci("idle", "Server", last_seen=old),
    ])
    store.upsert_relationships([
        rel("DEPENDS_ON", "shop", "app"),
        rel("DEPENDS_ON", "legacy", "app"),
        rel("RUNS_ON", "app", "cl"),
        rel("MEMBER_OF", "hv1", "cl"),
        rel("MEMBER_OF", "hv2", "cl"),
    ])


def test_impact_spof_and_reports_respect_cis_not_in_service(store: GraphStore) -> None:
    # Arrange
    _seed(store)
    engine = Engine(store)

    # Act
    result = engine.change_impact(["hv1"])
    spofs = engine.single_points_of_failure("shop")
    orphans = engine.report("infrastructure_unreachable_from_services", now=NOW)
    stale = engine.report("stale_cis", now=NOW)

    # Assert: the cluster goes down with its last member in service
    by_id = {c.ci_id: c for c in result.impacted}
    assert {c: i.status for c, i in by_id.items()} == dict.fromkeys(
        ("cl", "app", "shop", "legacy"), ImpactStatus.DOWN)
    assert (by_id["legacy"].in_service, by_id["legacy"].operational_status) == (False,
                                                                                "retired")
    assert all(by_id[c].in_service for c in ("cl", "app", "shop"))
    assert (result.summary.services_hit, result.summary.not_in_service,
            result.summary.most_critical_service) == (1, 1, "shop")
    (group,) = result.redundancy
    assert (group.ci_id, group.inputs_not_in_service, group.headroom) == ("cl", 1, -1)
    assert [s.ci_id for s in spofs] == ["app", "cl", "hv1"]
    assert [f.subject for f in orphans.findings] == ["idle"]
    assert [f.subject for f in stale.findings] == ["idle"]


def test_a_status_change_reaches_the_next_question_without_a_rebuild(store: GraphStore) -> None:
    # Arrange
    _seed(store)
    engine = Engine(store)
    before = engine.change_impact(["hv1"]).status_of("cl")

    # Act: hv2 goes into service, then under repair
    hv2 = store.get_ci("hv2")
    serve = {"operational_status": OperationalStatus.OPERATIONAL}
    store.upsert_nodes([hv2.model_copy(update=serve)])
    serving = engine.change_impact(["hv1"])
    spofs = [s.ci_id for s in engine.single_points_of_failure("shop")]
    store.upsert_nodes([hv2.model_copy(update={"operational_status": OperationalStatus.REPAIR})])
    repaired = engine.change_impact(["hv1"]).status_of("cl")

    # Assert
    assert before is ImpactStatus.DOWN
    assert serving.status_of("cl") is ImpactStatus.DEGRADED
    assert serving.summary.services_hit == 1  # shop, degraded; legacy is retired
    assert spofs == ["app", "cl"]
    assert repaired is ImpactStatus.DOWN
    assert engine.stats["rebuilds"] == 1


IMPACT = """query Q { changeImpact(ciIds: ["hv1"]) { __typename ... on ChangeImpact {
  impacted { ciId status operationalStatus inService }
  summary { servicesHit notInService mostCriticalService }
  redundancy { ciId inputsNotInService inputsDown headroom status } } } }"""

UPSERT = """mutation M($input: CIUpsertInput!) { ciUpsert(input: $input) {
  __typename ... on UserError { code message } } }"""


def _session(store: GraphStore, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Send ``calls`` in order to one application (one engine), as the writer."""
    app = create_app(Settings(api_keys=[WRITER]), store)  # no lifespan: the test keeps its store

    async def send() -> list[Any]:
        out = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as client:
            for query, variables in calls:
                resp = await client.post(
                    "/graphql", json={"query": query, "variables": variables},
                    headers={"authorization": f"Bearer {WRITER_KEY}"})
                assert resp.status_code == 200, resp.text
                body = resp.json()
                assert "errors" not in body, body
                out.append(next(iter(body["data"].values())))
        return out

    return asyncio.run(send())


def test_graphql_marks_cis_not_in_service_and_follows_a_ci_upsert(store: GraphStore) -> None:
    # Arrange: both members in service
    _seed(store, hv2="operational")
    stock = {"input": {"source": "disco", "cis": [
        {"name": "hv2", "ciClass": "Server", "identifiers": {"fqdn": "hv2.example"},
         "operationalStatus": "NON_OPERATIONAL"}]}}

    # Act: impact, hv2 put in stock by a ciUpsert, impact again
    before, upserted, after = _session(store, [(IMPACT, {}), (UPSERT, stock), (IMPACT, {})])

    # Assert
    assert upserted["__typename"] != "UserError", upserted
    status = {c["ciId"]: (c["status"], c["inService"]) for c in before["impacted"]}
    assert status == {"cl": ("DEGRADED", True), "app": ("DEGRADED", True),
                      "shop": ("DEGRADED", True), "legacy": ("DEGRADED", False)}
    assert before["summary"] == {"servicesHit": 1, "notInService": 1,
                                 "mostCriticalService": "shop"}
    status = {c["ciId"]: (c["status"], c["inService"]) for c in after["impacted"]}
    assert status == {"cl": ("DOWN", True), "app": ("DOWN", True), "shop": ("DOWN", True),
                      "legacy": ("DOWN", False)}
    legacy = next(c for c in after["impacted"] if c["ciId"] == "legacy")
    assert legacy["operationalStatus"] == "retired"
    assert after["redundancy"] == [{"ciId": "cl", "inputsNotInService": 1, "inputsDown": 1,
                                    "headroom": -1, "status": "DOWN"}]
