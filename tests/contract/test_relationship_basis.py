"""Why a relationship is believed, on both stores: its basis (declared, discovered, inferred),
its confidence and evidence, through import runs, the change feed and impact paths.

A discovery tool (nmap) reports a service on a host it scanned at a time of its own: the
relationship is ``discovered`` and seen at the scan's time, not the import's. A compose file
that declares no dependency gives an ``inferred`` one, with its confidence, evidence and file,
shown hop by hop on the impact path. A source that declares the same relationship makes it
``declared`` whatever the priorities (and an inference, even of a higher priority, never
turns it back): the inference's confidence and evidence go with it. A re-run of either
import changes nothing. Through GraphQL, a basis and a confidence are taken and shown, and a
bad one is one ``UserError``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cmdb_graph.api.app import create_app
from cmdb_graph.api.auth import new_api_key
from cmdb_graph.ingest import run_import
from cmdb_graph.model import (
    CIRecord,
    DataSource,
    Identifiers,
    Origin,
    Relationship,
    RelationshipBasis,
    RelationshipRecord,
)
from cmdb_graph.service.engine import Engine
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore
from importers.compose import ComposeImporter
from importers.nmap import NmapImporter

NOW = datetime(2026, 3, 1, tzinfo=UTC)

SCAN = """<?xml version="1.0"?>
<nmaprun scanner="nmap" start="1368156706" version="6.25">
<host starttime="1368156706" endtime="1368156900"><status state="up"/>
<address addr="10.0.0.5" addrtype="ipv4"/>
<hostnames><hostname name="db1.example.org" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="5432"><state state="open"/>
<service name="postgresql" product="PostgreSQL DB"/></port></ports>
</host>
<runstats><finished time="1368156901"/></runstats>
</nmaprun>
"""

COMPOSE = """\
name: shop
services:
  web:
    image: shop/web
    ports: ["80:80"]
    environment:
      DATABASE_URL: postgres://db:5432/shop
  db:
    image: postgres:16
"""


def _rels(store: GraphStore) -> dict[tuple[str, str, str], Relationship]:
    names = {c.ci_id: c.name for c in store.list_cis(limit=1000).items}
    return {(r.rel_type, names[r.source], names[r.target]): r
            for r in store.relationships(None)}


def test_a_scan_s_relationship_is_discovered_and_seen_when_the_scan_ran(
        store: GraphStore, tmp_path: Path) -> None:
    # Arrange
    scan = tmp_path / "scan.xml"
    scan.write_text(SCAN)
    records = list(NmapImporter().parse_files([scan]))

    # Act
    run_import(store, records, source="nmap", importer="nmap", now=NOW)
    again = run_import(store, records, source="nmap", importer="nmap", now=NOW)

    # Assert: discovered, confidence 0.9, seen at the scan's end (2013), not at the import
    [rel] = store.relationships(None)
    assert (rel.basis, rel.inferred, rel.trust) == (RelationshipBasis.DISCOVERED, False, 0.9)
    scanned = datetime(2013, 5, 10, 3, 35, tzinfo=UTC)
    assert rel.first_seen == rel.last_seen == scanned
    assert sum(again.counts.get(k, 0) for k in ("created", "updated")) == 0, again.counts


def test_inferred_hops_carry_confidence_and_evidence_until_a_source_declares_them(
        store: GraphStore, tmp_path: Path) -> None:
    # Arrange: a compose file whose only dependency is a connection string
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    records = list(ComposeImporter().parse_files([path]))
    run_import(store, records, source="compose", importer="compose", now=NOW)
    again = run_import(store, records, source="compose", importer="compose", now=NOW)
    engine = Engine(store)
    db = next(c.ci_id for c in store.list_cis(limit=100).items if c.name == "db")

    # Act
    inferred = _rels(store)[("DEPENDS_ON", "web", "db")]
    found = {c.name: c for c in engine.change_impact([db], paths_per_ci=1).impacted}

    # Assert: the relationship and the hop of the impact path say why, and how sure
    assert sum(again.counts.get(k, 0) for k in ("created", "updated")) == 0, again.counts
    assert (inferred.basis, inferred.trust) == (RelationshipBasis.INFERRED, 0.9)
    assert inferred.evidence_file == str(path)
    [[hop]] = found["web"].links
    assert (hop.rel_type, hop.basis, hop.confidence) == ("DEPENDS_ON",
                                                         RelationshipBasis.INFERRED, 0.9)
    assert hop.evidence is not None and "DATABASE_URL=postgres://db:5432/shop" in hop.evidence
    assert hop.evidence_file == str(path)
    assert found["web"].confidence == 0.9
    assert found["shop"].confidence == round(0.9 * 0.7, 6)  # the application's grouping

    # Act: a CMDB with a LOWER priority declares the same dependency
    cmdb = DataSource(name="cmdb", priority=10)
    ids = {n: Identifiers(native_key=f"shop/{n}") for n in ("web", "db")}
    declared = [
        RelationshipRecord(rel_type="DEPENDS_ON", source=Identifiers(name="web", system="shop"),
                           target=Identifiers(name="db", system="shop"),
                           origin=Origin(file="cmdb.json", record=1)),
    ]
    cis = [CIRecord(ci_class="Container", name=n, identifiers=Identifiers(
        service=n, system="shop"), origin=Origin(file="cmdb.json", record=0))
        for n in ids]
    run_import(store, [*cis, *declared], source=cmdb, importer="test", now=NOW)

    # Assert: a declaration beats an inference whatever the priorities: declared now, and
    # the inference's confidence, evidence and evidence properties are gone with it
    rel = _rels(store)[("DEPENDS_ON", "web", "db")]
    assert (rel.basis, rel.trust, rel.evidence, rel.evidence_file) == (
        RelationshipBasis.DECLARED, 1.0, None, None)
    assert not [k for k in rel.properties if k.startswith("evidence_")], rel.properties
    [[hop]] = {c.name: c for c in engine.change_impact([db]).impacted}["web"].links
    assert (hop.basis, hop.confidence, hop.evidence) == (RelationshipBasis.DECLARED, 1.0, None)

    # Act: the inference again, now from a source of the highest priority
    run_import(store, records, source=DataSource(name="compose", priority=100),
               importer="compose", now=NOW)

    # Assert: an inference never replaces a declaration
    assert _rels(store)[("DEPENDS_ON", "web", "db")].basis is RelationshipBasis.DECLARED


UPSERT = """mutation M($input: CIUpsertInput!) { ciUpsert(input: $input) {
  __typename ... on UserError { code message } } }"""
IMPACT = """query Q($ids: [ID!]) { changeImpact(ciIds: $ids) { ... on ChangeImpact {
  impacted { name confidence links { relType basis confidence evidence } } } } }"""
RELS = """query R($c: ID!) { relationships(ciId: $c) { relType basis confidence inferred } }"""


def test_graphql_takes_and_shows_the_basis_and_confidence(store: GraphStore) -> None:
    # Arrange: a discovery tool sends a host and what runs on it, one with a confidence
    key, writer = new_api_key("disco-bot", "writer")
    app = create_app(Settings(api_keys=[writer]), store)
    ref = {n: {"identifiers": {"nativeKey": n}, "source": "disco"} for n in ("h1", "app")}
    upsert = {"input": {"source": "disco", "cis": [
        {"ciClass": "Server", "name": "h1", "identifiers": {"nativeKey": "h1"}},
        {"ciClass": "Application", "name": "app", "identifiers": {"nativeKey": "app"}}],
        "relationships": [{"relType": "RUNS_ON", "source": ref["app"], "target": ref["h1"],
                           "basis": "DISCOVERED", "confidence": 0.6}]}}
    bad = {"input": {"source": "disco", "cis": [], "relationships": [
        {"relType": "RUNS_ON", "source": ref["app"], "target": ref["h1"], "inferred": True,
         "basis": "DISCOVERED"}]}}
    unsure = {"input": {"source": "disco", "cis": [], "relationships": [
        {"relType": "RUNS_ON", "source": ref["app"], "target": ref["h1"], "confidence": 1.5}]}}

    async def send(calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        out = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as client:
            for query, variables in calls:
                resp = await client.post("/graphql",
                                         json={"query": query, "variables": variables},
                                         headers={"authorization": f"Bearer {key}"})
                assert resp.status_code == 200, resp.text
                out.append(next(iter(resp.json()["data"].values())))
        return out

    # Act
    wrote, refused, out_of_range = asyncio.run(send([(UPSERT, upsert), (UPSERT, bad),
                                                     (UPSERT, unsure)]))
    host = next(c.ci_id for c in store.list_cis(limit=10).items if c.name == "h1")
    impact, rels = asyncio.run(send([(IMPACT, {"ids": [host]}), (RELS, {"c": host})]))

    # Assert
    assert wrote["__typename"] == "CIUpsertPayload", wrote
    assert refused["__typename"] == "UserError" and "basis" in refused["message"], refused
    assert out_of_range == {"__typename": "UserError", "code": "INVALID_RECORD",
                            "message": out_of_range["message"]}, out_of_range
    assert "relationships[0].confidence" in out_of_range["message"], out_of_range
    assert rels == [{"relType": "RUNS_ON", "basis": "DISCOVERED", "confidence": 0.6,
                     "inferred": False}]
    assert impact["impacted"] == [{"name": "app", "confidence": 0.6, "links": [[{
        "relType": "RUNS_ON", "basis": "DISCOVERED", "confidence": 0.6, "evidence": None}]]}]
