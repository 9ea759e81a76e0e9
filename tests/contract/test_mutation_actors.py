"""Every GraphQL mutation records its caller in the change feed, on both stores.

Each mutation of the schema (read by introspection: a new mutation without a case here fails
:func:`test_every_mutation_has_a_case`) is sent through the application (httpx on the ASGI
app, with API keys and an ``X-Request-ID``); every change record it wrote must name the calling
key, its role and the request id, and the writes of an import run (``ciUpsert``,
``relationshipAdd``, ``ciRetire``, ``importRun``, merges) also the run and its data source.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cmdb_graph.api.app import create_app
from cmdb_graph.api.auth import new_api_key
from cmdb_graph.feed import ActorKind, ChangeRecord, NodeOp
from cmdb_graph.model import ConfigurationItem
from cmdb_graph.settings import Settings
from cmdb_graph.store import iter_nodes
from cmdb_graph.store.base import GraphStore

WRITER_KEY, WRITER = new_api_key("itsm-bot", "writer")
ADMIN_KEY, ADMIN = new_api_key("ops-admin", "admin")
KEYS = {"writer": WRITER_KEY, "admin": ADMIN_KEY}
NAMES = {"writer": "itsm-bot", "admin": "ops-admin"}
START = datetime.now(UTC) + timedelta(days=3)


def _iso(t: datetime) -> str:
    return t.isoformat()


def _ci(name: str, **ids: Any) -> dict[str, Any]:
    return {"name": name, "ciClass": "Server", "identifiers": {"fqdn": name, **ids}}


@dataclass
class Case:
    """One mutation call and what its records must show."""

    query: str
    variables: dict[str, Any]
    role: str
    #: (label, op) every one of which some record of the call holds
    expect: set[tuple[str, NodeOp]]
    #: the writes are an import run's (run id and data source recorded)
    run_source: str | None = None


def _payload(field_name: str, args: str) -> str:
    return (f"mutation M($input: {args}) {{ {field_name}(input: $input) "
            "{ __typename ... on UserError { code message } } }")


CASES: dict[str, Case] = {
    "ciUpsert": Case(
        _payload("ciUpsert", "CIUpsertInput!"),
        {"input": {"source": "disco", "cis": [_ci("web-01.example"), _ci("db-01.example")],
                   "relationships": [{"relType": "DEPENDS_ON",
                                      "source": {"identifiers": {"fqdn": "web-01.example"}},
                                      "target": {"identifiers": {"fqdn": "db-01.example"}}}]}},
        "writer", {("CI", NodeOp.CREATED), ("ImportRun", NodeOp.CREATED)}, run_source="disco"),
    "relationshipAdd": Case(
        _payload("relationshipAdd", "RelationshipAddInput!"),
        {"input": {"source": "disco", "relationships": [
            {"relType": "RUNS_ON", "source": {"ciId": "ci-app"}, "target": {"ciId": "ci-host"}}]}},
        "writer", {("ImportRun", NodeOp.CREATED)}, run_source="disco"),
    "ciRetire": Case(
        'mutation M($id: ID!) { ciRetire(ciId: $id, reason: "sold") { __typename '
        "... on UserError { code message } } }",
        {"id": "web-01.example"}, "admin", {("CI", NodeOp.RETIRED)}, run_source="cmdb-admin"),
    "changeSchedule": Case(
        _payload("changeSchedule", "ChangeInput!"),
        {"input": {"changeId": "CHG1", "windowStart": _iso(START),
                   "windowEnd": _iso(START + timedelta(hours=2)), "cis": [{"ciId": "ci-app"}]}},
        "writer", {("Change", NodeOp.CREATED)}),
    "windowUpsert": Case(
        _payload("windowUpsert", "WindowInput!"),
        {"input": {"windowId": "W1", "kind": "MAINTENANCE", "start": _iso(START),
                   "end": _iso(START + timedelta(hours=4)), "cis": [{"ciId": "ci-app"}]}},
        "writer", {("Window", NodeOp.CREATED)}),
    "incidentRecord": Case(
        _payload("incidentRecord", "IncidentInput!"),
        {"input": {"incidentId": "INC1", "openedAt": _iso(datetime.now(UTC)),
                   "cis": [{"ciId": "ci-app"}]}},
        "writer", {("Incident", NodeOp.CREATED)}),
    "importRun": Case(
        _payload("importRun", "ImportRunInput!"),
        {"input": {"kind": "nmap", "source": "scan", "filename": "scan.xml", "content": (
            '<?xml version="1.0"?><nmaprun><host><status state="up"/>'
            '<address addr="10.0.0.9" addrtype="ipv4"/>'
            '<hostnames><hostname name="scan-09.example" type="PTR"/></hostnames>'
            "</host></nmaprun>")}},
        "admin", {("CI", NodeOp.CREATED), ("ImportRun", NodeOp.CREATED)}, run_source="scan"),
}

#: Mutations that change the webhook outbox (subscriptions, dead letters), not the estate: they
#: write no change record (the request log names their caller, see tests/e2e/test_observability.py).
OUTBOX_ONLY = frozenset({"webhookSubscribe", "webhookUnsubscribe", "deadLetterReplay"})

#: A merge made through ciUpsert: the serial number names two CIs, the younger is merged.
MERGE = Case(
    _payload("ciUpsert", "CIUpsertInput!"),
    {"input": {"source": "disco", "cis": [_ci("twin.example", serialNumber="SN-TWIN")]}},
    "writer", {("CI", NodeOp.MERGED)}, run_source="disco")


def _seed(store: GraphStore) -> None:
    now = datetime.now(UTC)
    store.upsert_nodes([
        ConfigurationItem(ci_id="ci-app", name="billing", ci_class="Application",
                          first_seen=now, last_seen=now),
        ConfigurationItem(ci_id="ci-host", name="host-1", ci_class="Server",
                          first_seen=now, last_seen=now),
        ConfigurationItem(ci_id="ci-spare", name="spare-1", ci_class="Server",
                          first_seen=now, last_seen=now),
        ConfigurationItem(ci_id="ci-twin-old", name="twin", ci_class="Server",
                          serial_number="SN-TWIN", first_seen=now - timedelta(days=9),
                          last_seen=now - timedelta(days=9)),
        ConfigurationItem(ci_id="ci-twin-new", name="twin (2)", ci_class="Server",
                          serial_number="SN-TWIN", first_seen=now - timedelta(days=1),
                          last_seen=now - timedelta(days=1)),
    ])


def _post(store: GraphStore, query: str, variables: dict[str, Any], *, key: str | None,
          request_id: str) -> dict[str, Any]:
    settings = Settings(api_keys=[WRITER, ADMIN])
    app = create_app(settings, store)  # no lifespan: the test keeps its store open

    async def send() -> httpx.Response:
        headers = {"x-request-id": request_id}
        if key:
            headers["authorization"] = f"Bearer {key}"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as client:
            return await client.post("/graphql", json={"query": query, "variables": variables},
                                     headers=headers)

    resp = asyncio.run(send())
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-request-id"] == request_id
    body: dict[str, Any] = resp.json()
    return body


def _call(store: GraphStore, name: str, case: Case) -> list[ChangeRecord]:
    variables = dict(case.variables)
    if "id" in variables:  # a CI named by its name: its ci_id
        (variables["id"],) = [c.ci_id for c in iter_nodes(store, "CI")
                              if c.name == variables["id"]]
    head = store.feed_head()
    body = _post(store, case.query, variables, key=KEYS[case.role],
                 request_id=f"req-{name}")
    assert "errors" not in body, body
    result = next(iter(body["data"].values()))
    assert result["__typename"] != "UserError", result
    return store.feed_since(head)


def _assert_caller(name: str, case: Case, records: list[ChangeRecord]) -> None:
    assert records, f"{name} wrote no change record"
    for record in records:
        actor = record.actor
        assert actor.kind is ActorKind.API, (name, actor)
        assert (actor.name, actor.role) == (NAMES[case.role], case.role), (name, actor)
        assert actor.request_id == f"req-{name}", (name, actor)
        if case.run_source is not None:
            assert actor.run_id and actor.run_id.startswith("run-"), (name, actor)
            assert actor.source == case.run_source, (name, actor)
    seen = {(c.label, c.op) for r in records for c in r.nodes}
    assert case.expect <= seen, (name, seen)


def test_every_mutation_has_a_case(memory_store: GraphStore) -> None:
    body = _post(memory_store, "{ __schema { mutationType { fields { name } } } }", {},
                 key=ADMIN_KEY, request_id="introspect")

    names = {f["name"] for f in body["data"]["__schema"]["mutationType"]["fields"]}

    assert names == set(CASES) | OUTBOX_ONLY, \
        "a mutation without a case in CASES or OUTBOX_ONLY (or a case too many)"


def test_every_mutation_records_its_caller(store: GraphStore) -> None:
    # Arrange
    _seed(store)

    for name, case in CASES.items():
        # Act
        records = _call(store, name, case)

        # Assert
        _assert_caller(name, case, records)


def test_a_merge_through_the_api_records_its_caller(store: GraphStore) -> None:
    # Arrange
    _seed(store)

    # Act
    records = _call(store, "merge", MERGE)

    # Assert
    _assert_caller("merge", MERGE, records)
    merged = [c for r in records for c in r.nodes if c.op is NodeOp.MERGED]
    assert [(c.key, c.merged_into) for c in merged] == [("ci-twin-new", "ci-twin-old")]


def test_a_refused_write_records_nothing(store: GraphStore) -> None:
    # Arrange: the writer key may not retire
    _seed(store)
    head = store.feed_head()

    # Act
    body = _post(store, CASES["ciRetire"].query, {"id": "ci-spare"}, key=WRITER_KEY,
                 request_id="req-refused")

    # Assert
    assert body["data"]["ciRetire"]["code"] == "FORBIDDEN"
    assert store.feed_since(head) == []
    assert store.get_ci("ci-spare").operational_status.value != "retired"


@pytest.mark.parametrize("sent", ["bad id with spaces", "x" * 129, "-starts-with-dash"])
def test_an_implausible_request_id_is_replaced(memory_store: GraphStore, sent: str) -> None:
    # Arrange
    _seed(memory_store)
    head = memory_store.feed_head()
    settings = Settings(api_keys=[WRITER, ADMIN])
    app = create_app(settings, memory_store)

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as client:
            case = CASES["changeSchedule"]
            return await client.post(
                "/graphql", json={"query": case.query, "variables": case.variables},
                headers={"x-request-id": sent, "authorization": f"Bearer {WRITER_KEY}"})

    # Act
    resp = asyncio.run(send())

    # Assert: a new id, in the header and the change record
    made = resp.headers["x-request-id"]
    assert made != sent and len(made) == 32 and int(made, 16) >= 0
    (record,) = memory_store.feed_since(head)
    assert record.actor.request_id == made
