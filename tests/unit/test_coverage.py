"""Coverage of the dependency map (services needing nothing, containers nothing needs, share of
inferred relationships) from the CLI and GraphQL, and impact without inferred relationships
(``--no-inferred``, ``CMDB_IMPACT_INFERRED``), on the real voting-app compose file and on
records written here."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import impact
from cmdb_graph.api.app import create_app
from cmdb_graph.cli import _register, app
from cmdb_graph.ingest import run_import
from cmdb_graph.model import CIRecord, Identifiers, Origin, RelationshipRecord
from cmdb_graph.settings import Settings
from cmdb_graph.store.memory import MemoryStore

_register()

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
VOTING = REALDATA / "docker-compose" / "example-voting-app.docker-compose.yml"

pytestmark = pytest.mark.usefixtures("wide_tables")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def ci(name: str, ci_class: str) -> CIRecord:
    return CIRecord(ci_class=ci_class, name=name, identifiers=Identifiers(native_key=name),
                    origin=Origin(file="hand.json", record=name))


def depends(a: str, b: str, *, inferred: bool) -> RelationshipRecord:
    return RelationshipRecord(rel_type="DEPENDS_ON", source=Identifiers(native_key=a),
                              target=Identifiers(native_key=b), inferred=inferred,
                              evidence="env X_HOST" if inferred else None,
                              origin=Origin(file="hand.json", record=f"{a}->{b}"))


def estate(store: MemoryStore) -> None:
    """shop (service) ~> api (inferred) -> db (declared); lonely (service) needs nothing;
    cron (container) is needed by nothing."""
    run_import(store, [ci("shop", "ApplicationService"), ci("lonely", "ApplicationService"),
                       ci("api", "Container"), ci("db", "Container"), ci("cron", "Container"),
                       depends("shop", "api", inferred=True),
                       depends("api", "db", inferred=False)],
               source="hand", importer="json")


def test_coverage_finds_the_holes_and_the_inferred_share(tmp_path: Path) -> None:
    # Arrange
    store = MemoryStore(database_path=tmp_path / "c.db")
    estate(store)
    graph = impact.ImpactGraph(store.dependency_graph(), store.registry)
    names = {c: graph.name(c) for c in graph.ci_ids()}

    # Act
    found = impact.coverage(graph)

    # Assert
    assert [names[c] for c in found.services_without_dependencies] == ["lonely"]
    assert [names[c] for c in found.containers_without_dependents] == ["cron"]
    assert (found.relationships, found.inferred_relationships) == (2, 1)
    assert found.inferred_share == 0.5


def test_coverage_over_graphql(tmp_path: Path) -> None:
    # Arrange
    store = MemoryStore(database_path=tmp_path / "c.db")
    estate(store)
    api = create_app(Settings(), store)
    query = ("{ coverage { __typename ... on Coverage { relationships inferredRelationships "
             "inferredShare servicesWithoutDependencies { name ciClass } "
             "containersWithoutDependents { name } } } }")

    async def ask() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                     base_url="http://127.0.0.1") as client:
            resp = await client.post("/graphql", json={"query": query})
            return dict(resp.json())

    # Act
    data = asyncio.run(ask())

    # Assert
    assert data["data"]["coverage"] == {
        "__typename": "Coverage", "relationships": 2, "inferredRelationships": 1,
        "inferredShare": 0.5,
        "servicesWithoutDependencies": [{"name": "lonely", "ciClass": "ApplicationService"}],
        "containersWithoutDependents": [{"name": "cron"}]}


@pytest.mark.skipif(not VOTING.is_file(), reason="../shared/realdata is not there")
def test_voting_app_coverage_and_impact_without_inferred_edges(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: the real voting-app compose file declares no dependency at all
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    db = tmp_path / "v.db"
    code, _, err = invoke("import", "compose", str(VOTING), "--source", "compose",
                          "--db", str(db))
    assert code == 0, err

    # Act
    code, out, err = invoke("coverage", "--db", str(db))
    data = json.loads(invoke("coverage", "--json", "--db", str(db))[1])
    with_inferred = json.loads(invoke("impact", "redis", "--json", "--db", str(db))[1])
    without = json.loads(invoke("impact", "redis", "--no-inferred", "--json",
                                "--db", str(db))[1])
    monkeypatch.setenv("CMDB_IMPACT_INFERRED", "false")
    by_setting = json.loads(invoke("impact", "redis", "--json", "--db", str(db))[1])
    forced = json.loads(invoke("impact", "redis", "--inferred", "--json", "--db", str(db))[1])
    monkeypatch.delenv("CMDB_IMPACT_INFERRED")
    _, table, _ = invoke("impact", "redis", "--no-inferred", "--db", str(db))

    # Assert: the project's service rests on inferred edges only; without them, nothing
    assert code == 0, err
    assert data["inferred_relationships"] == 5 and data["relationships"] == 12
    assert "5 of 12 impacting relationship(s) inferred (42%)" in out
    assert [i["ci_class"] for i in with_inferred["impacted"]] == ["ApplicationService"]
    assert without["impacted"] == [] and by_setting["impacted"] == []
    assert forced["impacted"] == with_inferred["impacted"]
    # an empty answer says what leaving inferred relationships out left out
    assert ("--no-inferred left out 1 CI(s) and 1 service(s) that inferred relationships "
            "reach") in table
    # the worker and the database are needed by no workload: the project's optional
    # grouping of them (inferred) does not count as needing them
    assert sorted(n for n in out.split() if n in ("worker", "db", "vote", "result",
                                                   "redis")) == ["db", "worker"]
