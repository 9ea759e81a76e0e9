"""Security over real HTTP: API keys and roles, query limits, server caps, injection-shaped
values, and the loopback-only rule without keys."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from cmdb_graph.api.auth import check_bind_address
from cmdb_graph.errors import ConfigurationError
from cmdb_graph.model import CIRecord, Identifiers, Origin, RelationshipRecord
from cmdb_graph.settings import ApiKey, Settings, hash_api_key
from cmdb_graph.store.base import GraphStore
from tests.e2e.conftest import LiveServer, serve

KEYS = {"reader": "k-reader-0123456789", "writer": "k-writer-0123456789",
        "admin": "k-admin-0123456789"}
SETTINGS = Settings(api_keys=[ApiKey(name=f"{r}-key", role=r, sha256=hash_api_key(k))
                              for r, k in KEYS.items()])

UPSERT = """
mutation Upsert($input: CIUpsertInput!) {
  ciUpsert(input: $input) {
    __typename
    ... on CIUpsertPayload { cis { ciId name attributes } run { counts { created } } }
    ... on UserError { code message }
  }
}
"""

ONE_CI = {"source": "scanner", "cis": [{"ciClass": "Server", "name": "srv-1",
                                        "identifiers": {"serialNumber": "SN-1"}}]}


def _seed(store: GraphStore) -> None:
    from cmdb_graph.ingest import run_import

    o = Origin(file="seed")
    run_import(store, [
        CIRecord(ci_class="BusinessService", name="Shop", identifiers=Identifiers(native_key="s"),
                 origin=o),
        CIRecord(ci_class="Server", name="db-host", identifiers=Identifiers(native_key="h",
                                                                            serial_number="H1"),
                 origin=o),
        RelationshipRecord(rel_type="DEPENDS_ON", source=Identifiers(native_key="s"),
                           target=Identifiers(native_key="h"), origin=o),
    ], source="seed", importer="test")


@pytest.fixture
def keyed(store: GraphStore) -> Iterator[LiveServer]:
    _seed(store)
    yield from serve(store, SETTINGS)


@pytest.fixture
def open_server(store: GraphStore) -> Iterator[LiveServer]:
    _seed(store)
    yield from serve(store)


def test_no_key_is_refused_for_reads_and_writes(keyed: LiveServer) -> None:
    # Act
    read = keyed.client.post(f"{keyed.url}/graphql", json={"query": "{ reports { name } }"})
    write = keyed.client.post(f"{keyed.url}/graphql",
                              json={"query": UPSERT, "variables": {"input": ONE_CI}})
    bad_key = keyed.client.post(f"{keyed.url}/graphql", json={"query": "{ reports { name } }"},
                                headers={"Authorization": "Bearer not-a-key"})

    # Assert
    assert read.status_code == write.status_code == bad_key.status_code == 401
    assert "API key is required" in write.json()["detail"]


def test_graphiql_page_loads_without_a_key(keyed: LiveServer) -> None:
    page = keyed.client.get(f"{keyed.url}/graphql", headers={"Accept": "text/html"})

    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def test_reader_can_read_but_not_mutate(keyed: LiveServer) -> None:
    # Act
    read = keyed.gql("{ cis(first: 10) { totalCount } }", key=KEYS["reader"])
    write = keyed.gql(UPSERT, {"input": ONE_CI}, key=KEYS["reader"])

    # Assert
    assert read["data"]["cis"]["totalCount"] == 2
    assert write["data"]["ciUpsert"]["__typename"] == "UserError"
    assert write["data"]["ciUpsert"]["code"] == "FORBIDDEN"
    after = keyed.gql("{ cis(first: 10) { totalCount } }", key=KEYS["reader"])
    assert after["data"]["cis"]["totalCount"] == 2


def test_writer_upserts_but_may_not_retire_or_import(keyed: LiveServer) -> None:
    # Act
    write = keyed.gql(UPSERT, {"input": ONE_CI}, key=KEYS["writer"])
    ci_id = write["data"]["ciUpsert"]["cis"][0]["ciId"]
    retire = keyed.gql(
        'mutation($id: ID!) { ciRetire(ciId: $id) { __typename ... on UserError { code } } }',
        {"id": ci_id}, key=KEYS["writer"])
    imp = keyed.gql(
        'mutation { importRun(input: {kind: "nmap", source: "x", content: "<x/>"}) '
        '{ __typename ... on UserError { code } } }', key=KEYS["writer"])

    # Assert
    assert write["data"]["ciUpsert"]["run"]["counts"]["created"] == 1
    assert retire["data"]["ciRetire"] == {"__typename": "UserError", "code": "FORBIDDEN"}
    assert imp["data"]["importRun"] == {"__typename": "UserError", "code": "FORBIDDEN"}


def test_admin_retires(keyed: LiveServer) -> None:
    # Arrange
    ci_id = keyed.gql(UPSERT, {"input": ONE_CI}, key=KEYS["admin"])["data"]["ciUpsert"]["cis"][0][
        "ciId"]

    # Act
    retire = keyed.gql(
        'mutation($id: ID!) { ciRetire(ciId: $id, reason: "sold") { __typename '
        '... on CIRetirePayload { ci { operationalStatus } } } }',
        {"id": ci_id}, key=KEYS["admin"])

    # Assert
    assert retire["data"]["ciRetire"]["ci"]["operationalStatus"] == "RETIRED"


def test_over_deep_query_is_refused(open_server: LiveServer) -> None:
    # Arrange: ci -> assets -> ci -> assets ... deeper than max_query_depth (12)
    inner = "ciId"
    for _ in range(8):
        inner = f"ciId assets {{ assetId ci {{ {inner} }} }}"
    query = f'{{ ci(ciId: "x") {{ {inner} }} }}'

    # Act
    body = open_server.gql(query)

    # Assert
    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


def test_alias_flood_is_refused(open_server: LiveServer) -> None:
    query = "{ " + " ".join(f"a{i}: reports {{ name }}" for i in range(50)) + " }"

    body = open_server.gql(query)

    assert body.get("data") is None
    assert "aliases found" in body["errors"][0]["message"].lower()


def test_token_flood_is_refused(open_server: LiveServer) -> None:
    query = "{ reports { " + " ".join(["name"] * 4000) + " } }"

    body = open_server.gql(query)

    assert body.get("data") is None
    assert "token" in body["errors"][0]["message"].lower()


def test_huge_page_and_deep_traversal_are_refused(open_server: LiveServer) -> None:
    # Act
    page = open_server.gql("{ cis(first: 1000000) { totalCount } }")
    deep = open_server.gql(
        '{ changeImpact(ciIds: ["x"], depth: 10000) { __typename ... on UserError { code '
        "message } } }")

    # Assert
    assert page["errors"][0]["message"] == "first must be between 1 and 1000 (got 1000000)"
    assert page["errors"][0]["extensions"]["code"] == "TRAVERSAL_LIMIT"
    assert deep["data"]["changeImpact"]["code"] == "TRAVERSAL_LIMIT"
    assert "exceeds the server maximum" in deep["data"]["changeImpact"]["message"]


def test_cypher_shaped_values_are_stored_as_plain_data(open_server: LiveServer) -> None:
    # Arrange
    evil_name = "x'}) MATCH (n) DETACH DELETE n //"
    evil_note = '"}]->() WITH 1 AS x CALL db.labels() YIELD label RETURN label //'
    ci = {"source": "scanner", "cis": [{
        "ciClass": "Server", "name": evil_name,
        "identifiers": {"serialNumber": "SN-`DROP`", "nativeKey": "') RETURN 1 //"},
        "attributes": {"note": evil_note}}]}

    # Act
    body = open_server.gql(UPSERT, {"input": ci})
    found = open_server.gql(
        "query($n: String!) { cisByIdentifier(identifiers: {name: $n}) { name attributes } "
        "cis(first: 10) { totalCount } }", {"n": evil_name})

    # Assert
    stored = body["data"]["ciUpsert"]["cis"][0]
    assert stored["name"] == evil_name
    assert stored["attributes"]["note"] == evil_note
    assert found["data"]["cisByIdentifier"] == [{"name": evil_name,
                                                 "attributes": {"note": evil_note}}]
    assert found["data"]["cis"]["totalCount"] == 3  # nothing deleted


def test_no_keys_binds_loopback_only() -> None:
    # Arrange
    settings = Settings()

    # Act / Assert
    check_bind_address(settings, "127.0.0.1")
    check_bind_address(settings, "::1")
    with pytest.raises(ConfigurationError, match="no API keys are configured"):
        check_bind_address(settings, "0.0.0.0")
    check_bind_address(SETTINGS, "0.0.0.0")


def test_serve_command_refuses_a_public_address_without_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange
    from cmdb_graph.cli import _register, app

    _register()
    monkeypatch.delenv("CMDB_API_KEYS", raising=False)

    # Act
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0"])

    # Assert
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output


def test_health_endpoints_need_no_key(keyed: LiveServer) -> None:
    assert httpx.get(f"{keyed.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{keyed.url}/readyz").json() == {"status": "ready"}
