"""Errors through the GraphQL schema: an unexpected error inside a resolver is masked as
"Unexpected error." (no library message, no code), while our own ``CmdbError`` comes through
with its message and code, on real failures of real stores (nothing of ours is mocked).

Real failures used:

* a lone UTF-16 surrogate in a string argument, which no UTF-8 encoder takes: the Neo4j
  driver's packer raises ``UnicodeEncodeError`` when it sends the parameter, and the embedded
  path raises it when ``importRun`` writes inline content to a file;
* a Neo4j store whose driver was closed: the store wraps the driver's error as
  ``StoreError`` (code ``STORE_ERROR``);
* an embedded store whose database another connection keeps locked for writing: the write
  fails with ``StoreError`` naming the file.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.model import Registry
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.base import GraphStore
from cmdb_graph.store.memory import MemoryStore

LONE_SURROGATE = "\ud800"
MASKED = "Unexpected error."


def execute(store: GraphStore, query: str, variables: dict[str, Any],
            role: Role = Role.READER) -> Any:
    state = AppState(settings=Settings(), registry=store.registry, store=store)
    ctx = Context(state, Principal("test", role))
    return asyncio.run(build_schema().execute(query, variable_values=variables,
                                              context_value=ctx))


def neo4j_settings() -> Settings:
    return Settings(
        store="neo4j",
        neo4j_uri=os.environ["NEO4J_URI"],
        neo4j_user=os.environ.get("NEO4J_USER", "neo4j"),
        neo4j_password=SecretStr(os.environ.get("NEO4J_PASSWORD", "")),
        neo4j_database=os.environ.get("NEO4J_DATABASE", "neo4j"),
    )


def assert_masked(result: Any) -> None:
    assert result.errors is not None and len(result.errors) == 1
    error = result.errors[0]
    assert error.message == MASKED
    assert not (error.extensions or {}).get("code")
    assert "surrogate" not in str(error.formatted)


# -- unexpected errors: masked ------------------------------------------------------------


@pytest.mark.neo4j
def test_unexpected_driver_error_in_a_query_is_masked(neo4j_store: GraphStore) -> None:
    # Act: the driver cannot encode the parameter (not a Neo4j or driver error)
    result = execute(neo4j_store, "query($id: ID!) { ci(ciId: $id) { ciId } }",
                     {"id": LONE_SURROGATE})

    # Assert
    assert_masked(result)


def test_unexpected_error_in_a_mutation_is_masked(memory_store: MemoryStore) -> None:
    # Act: writing the inline content to a temporary file fails to encode it
    result = execute(
        memory_store,
        "mutation($in: ImportRunInput!) { importRun(input: $in) { __typename } }",
        {"in": {"kind": "nmap", "source": "nmap", "content": LONE_SURROGATE,
                "filename": "scan.xml"}},
        role=Role.ADMIN,
    )

    # Assert
    assert_masked(result)


# -- our own errors: message and code -----------------------------------------------------


@pytest.mark.neo4j
def test_store_error_of_a_closed_driver_comes_through_with_its_code(
    neo4j_store: GraphStore,
) -> None:
    # Arrange: a second store on the same server, its driver closed
    from cmdb_graph.store.neo4j import Neo4jStore

    closed = Neo4jStore.from_settings(neo4j_settings(), registry=Registry())
    closed.close()

    # Act
    listing = execute(closed, "{ cis(first: 5) { edges { node { ciId } } } }", {})
    lookup = execute(closed, '{ ci(ciId: "x") { ciId } }', {})
    analysis = execute(closed, '{ routeIncident(ciId: "x") { __typename '
                               "... on UserError { code message } } }", {})

    # Assert: errors raised in resolvers carry the code; analysis answers with a typed result
    for result in (listing, lookup):
        assert result.errors is not None and len(result.errors) == 1
        error = result.errors[0]
        assert error.message.startswith("Neo4j error: Driver closed")
        assert (error.extensions or {}).get("code") == "STORE_ERROR"
    assert analysis.errors is None
    assert analysis.data["routeIncident"]["code"] == "STORE_ERROR"
    assert "Driver closed" in analysis.data["routeIncident"]["message"]


def test_store_error_of_a_failed_write_is_a_typed_result(tmp_path: Path) -> None:
    # Arrange: another connection holds the database's write lock past the store's timeout
    path = tmp_path / "estate.db"
    store = MemoryStore(database_path=path, lock_timeout=0.1)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")

    # Act
    try:
        result = execute(
            store,
            "mutation($in: CIUpsertInput!) { ciUpsert(input: $in) { __typename "
            "... on UserError { code message } } }",
            {"in": {"source": "api", "cis": [{"ciClass": "Server", "name": "srv-1",
                                              "identifiers": {"serialNumber": "SN-1"}}]}},
            role=Role.WRITER,
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    # Assert
    assert result.errors is None
    payload = result.data["ciUpsert"]
    assert payload["__typename"] == "UserError"
    assert payload["code"] == "STORE_ERROR"
    assert "another process is writing" in payload["message"] and str(path) in payload["message"]


def test_a_masked_error_is_logged_as_internal_under_the_request_id(
    memory_store: MemoryStore, caplog: pytest.LogCaptureFixture,
) -> None:
    # Arrange: the same failure, through the application (local mode: an admin)
    import json

    import httpx

    from cmdb_graph.api.app import create_app
    from cmdb_graph.logs import RequestIdFilter

    app = create_app(Settings(), memory_store)
    body = {"query": "mutation Up($in: ImportRunInput!) { importRun(input: $in) { __typename } }",
            "variables": {"in": {"kind": "nmap", "source": "nmap", "content": LONE_SURROGATE,
                                 "filename": "scan.xml"}}}

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as client:
            # json.dumps escapes the lone surrogate (\ud800), as a client's encoder may
            return await client.post("/graphql", content=json.dumps(body),
                                     headers={"x-request-id": "tkt-7",
                                              "content-type": "application/json"})

    # Act: the server's handler filter adds the request id to every record
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level("INFO"):
        resp = asyncio.run(send())

    # Assert: the client sees the mask; the log has the request as internal, and the detail
    # under the same request id
    assert resp.json()["errors"][0]["message"] == MASKED
    (line,) = [r for r in caplog.records if r.name == "cmdb_graph.request"]
    facts = {k: getattr(line, k) for k in ("request_id", "caller", "role", "operation",
                                           "outcome", "error_kind")}
    assert facts == {"request_id": "tkt-7", "caller": "local", "role": "admin",
                     "operation": "Up", "outcome": "error", "error_kind": "internal"}
    detail = [r for r in caplog.records if r.name == "strawberry.execution"]
    assert detail and "surrogate" in detail[0].getMessage() + str(detail[0].exc_info)
    assert all(getattr(r, "request_id", None) == "tkt-7" for r in detail)
