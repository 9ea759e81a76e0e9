"""Outbound events over real HTTP: the GraphQL ``events`` subscription over WebSocket
(graphql-transport-ws) with its Host and API-key checks, the webhook administration, and
webhooks that survive a receiver down for 30 s and a restart of ``cmdb-graph serve``."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from cmdb_graph.events import Outbox, events_of, new_secret
from cmdb_graph.settings import ApiKey, Settings, hash_api_key
from cmdb_graph.store.base import GraphStore
from cmdb_graph.store.memory import MemoryStore
from tests.e2e.conftest import LiveServer, serve
from tests.helpers.receiver import Receiver

KEYS = [ApiKey(name="ops", role="admin", sha256=hash_api_key("admin-key")),
        ApiKey(name="bot", role="writer", sha256=hash_api_key("writer-key")),
        ApiKey(name="dash", role="reader", sha256=hash_api_key("reader-key"))]

UPSERT = """mutation($input: CIUpsertInput!) { ciUpsert(input: $input) { __typename
  ... on UserError { code message } } }"""
SCHEDULE = """mutation($input: ChangeInput!) { changeSchedule(input: $input) { __typename
  ... on UserError { code message } } }"""
SUBSCRIBE = """subscription($types: [EventType!]) { events(types: $types) {
  id type seq index subject at data } }"""


def _upsert(name: str, ci_class: str = "Application", **extra: Any) -> dict[str, Any]:
    return {"input": {"source": "discovery", "cis": [
        {"ciClass": ci_class, "name": name, "identifiers": {"nativeKey": name}, **extra}]}}


def _wait(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def keyed(store: GraphStore) -> Iterator[LiveServer]:
    """The API with API keys, polling the feed often."""
    yield from serve(store, Settings(api_keys=KEYS, events_poll_interval=0.05,
                                     events_path=None, webhook_backoff_initial=0.05,
                                     webhook_backoff_max=0.2, webhook_retry_timeout=1))


def _ws(live: LiveServer, key: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return connect(live.url.replace("http://", "ws://") + "/graphql",
                   subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                   additional_headers=headers, open_timeout=10)


def _next(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=30))
    assert message["type"] == "next", message
    return dict(message["payload"]["data"]["events"])


def test_live_events_over_websocket(keyed: LiveServer) -> None:
    with _ws(keyed, "reader-key") as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "connection_ack"}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": SUBSCRIBE,
            "variables": {"types": ["CI_CREATED", "CI_CHANGED", "CHANGE_CONFLICTS"]}}}))
        time.sleep(0.5)  # the subscription starts at the feed head it reads first
        body = keyed.gql(UPSERT, _upsert("pay-api"), key="writer-key")
        assert body["data"]["ciUpsert"]["__typename"] == "CIUpsertPayload", body
        created = _next(ws)
        assert created["type"] == "CI_CREATED"
        assert created["data"]["ci"]["name"] == "pay-api"
        assert created["id"] == f"cmdb-{created['seq']}-{created['index']}"
        keyed.gql(UPSERT, _upsert("pay-api", environment="prod"), key="writer-key")
        changed = _next(ws)
        assert changed["type"] == "CI_CHANGED"
        assert changed["subject"] == created["subject"]
        assert changed["data"]["ci"]["name"] == "pay-api"  # the change itself names no CI
        assert changed["data"]["new"]["environment"] == "prod"
        assert changed["seq"] > created["seq"]
        # a second change on the same CI in an overlapping window conflicts with the first
        for number, start in (("CHG1", "2030-01-01T22:00:00Z"), ("CHG2", "2030-01-01T23:00:00Z")):
            body = keyed.gql(SCHEDULE, {"input": {
                "changeId": number, "windowStart": start, "windowEnd": "2030-01-02T02:00:00Z",
                "cis": [{"ciId": created["subject"]}]}}, key="writer-key")
            assert body["data"]["changeSchedule"]["__typename"] == "ChangeSchedulePayload", body
        # conflicts are assessed when the event is derived: CHG1's record may already see CHG2
        conflict = _next(ws)
        if conflict["subject"] == "CHG1":
            assert {c["other_change_id"] for c in conflict["data"]["conflicts"]} == {"CHG2"}
            conflict = _next(ws)
        assert (conflict["type"], conflict["subject"]) == ("CHANGE_CONFLICTS", "CHG2")
        kinds = {c["kind"] for c in conflict["data"]["conflicts"]}
        assert "same_ci" in kinds, conflict
        assert {c["other_change_id"] for c in conflict["data"]["conflicts"]} == {"CHG1"}
        ws.send(json.dumps({"id": "1", "type": "complete"}))


def _handshake(url: str, host: str, key: str | None) -> str:
    """The status line a raw WebSocket handshake with this Host header gets."""
    port = int(url.rsplit(":", 1)[1])
    request = ("GET /graphql HTTP/1.1\r\n" f"Host: {host}\r\n" "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n"
               + (f"Authorization: Bearer {key}\r\n" if key else "") + "\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        return s.recv(4096).decode("latin-1").split("\r\n", 1)[0]


@pytest.mark.parametrize("store", ["memory"], indirect=True)
def test_websocket_needs_a_key_and_an_allowed_host(keyed: LiveServer, store: GraphStore
                                                   ) -> None:
    assert " 101 " in _handshake(keyed.url, "127.0.0.1", "reader-key")
    assert " 403 " in _handshake(keyed.url, "127.0.0.1", None)
    assert " 403 " in _handshake(keyed.url, "127.0.0.1", "not-a-key")
    local = serve(store, Settings(events_poll_interval=0.05))  # local mode: loopback only
    live = next(local)
    try:
        assert " 101 " in _handshake(live.url, "localhost", None)
        assert " 403 " in _handshake(live.url, "rebound.example.com", None)
    finally:
        local.close()


ADMIN = """
mutation($input: WebhookSubscribeInput!) { webhookSubscribe(input: $input) { __typename
  ... on WebhookSubscribePayload { secret subscription { name url events origin position } }
  ... on UserError { code message field } } }"""
LETTERS = """{ deadLetters { id subscription eventId type subject error attempts body }
  webhookSubscriptions { name deadLetters } }"""
REPLAY = """mutation($ids: [ID!]!) { deadLetterReplay(ids: $ids) { __typename
  ... on DeadLetterReplayPayload { replayed failed { id error } }
  ... on UserError { code message } } }"""


def test_webhook_admin_dead_letters_and_replay(keyed: LiveServer, tmp_path: Path) -> None:
    events = keyed.app.state.cmdb.events
    events.path = tmp_path / "events.db"
    receiver = Receiver("whsec_" + base64.b64encode(b"x" * 32).decode())
    receiver.status = 410
    receiver.start()
    try:
        variables = {"input": {"name": "itsm", "url": receiver.url,
                               "events": ["CI_CREATED", "RELATIONSHIP_ADDED"]}}
        refused = keyed.gql(ADMIN, variables, key="writer-key")["data"]["webhookSubscribe"]
        assert refused["__typename"] == "UserError" and refused["code"] == "FORBIDDEN"
        bad = keyed.gql(ADMIN, {"input": {"name": "x", "url": "ftp://nope"}}, key="admin-key")
        assert bad["data"]["webhookSubscribe"]["field"] == "url"
        weak = keyed.gql(ADMIN, {"input": {"name": "x", "url": receiver.url,
                                           "secret": "whsec_c2hvcnQ="}}, key="admin-key")
        assert weak["data"]["webhookSubscribe"]["field"] == "secret"
        made = keyed.gql(ADMIN, variables, key="admin-key")["data"]["webhookSubscribe"]
        assert made["subscription"]["events"] == ["CI_CREATED", "RELATIONSHIP_ADDED"]
        assert made["secret"].startswith("whsec_")
        receiver.secret = made["secret"]
        keyed.gql(UPSERT, _upsert("pay-db", "Database"), key="writer-key")

        def letters() -> dict[str, Any]:
            return keyed.gql(LETTERS, key="admin-key")["data"]  # type: ignore[no-any-return]

        _wait(lambda: len(letters()["deadLetters"]) == 1)
        found = letters()
        [letter] = found["deadLetters"]
        assert (letter["type"], letter["error"], letter["attempts"]) == (
            "ci.created", "HTTP 410", 1)
        assert letter["body"]["data"]["ci"]["name"] == "pay-db"
        assert found["webhookSubscriptions"] == [{"name": "itsm", "deadLetters": 1}]
        assert "errors" in keyed.gql(LETTERS, key="reader-key")  # admin only

        receiver.status = 204
        done = keyed.gql(REPLAY, {"ids": [letter["id"], "999"]},
                         key="admin-key")["data"]["deadLetterReplay"]
        assert done["replayed"] == [letter["id"]]
        assert done["failed"][0]["id"] == "999"
        assert receiver.ids() == [letter["eventId"]]
        assert letters()["deadLetters"] == []
    finally:
        events.stop()
        receiver.stop()


# -- a real server process, a receiver down for 30 s, a restart ----------------------------
def _env(tmp_path: Path, receiver: Receiver) -> dict[str, str]:
    (tmp_path / "secret").write_text(receiver.secret)
    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text(f"webhooks:\n  itsm:\n    url: {receiver.url}\n"
                     f"    secret: file:{tmp_path / 'secret'}\n")
    return {"CMDB_DATABASE_PATH": str(tmp_path / "estate.db"),
            "CMDB_WEBHOOKS_FILE": str(hooks), "CMDB_EVENTS_POLL_INTERVAL": "0.1",
            "CMDB_WEBHOOK_BACKOFF_INITIAL": "0.2", "CMDB_WEBHOOK_BACKOFF_MAX": "2",
            "CMDB_WEBHOOK_RETRY_TIMEOUT": "600", "CMDB_API_KEYS": "[]",
            "CMDB_STORE": "memory"}


def _writes(url: str, names: list[str], **extra: Any) -> None:
    with httpx.Client(timeout=60) as client:
        for name in names:
            body = client.post(f"{url}/graphql", json={
                "query": UPSERT, "variables": _upsert(name, **extra)}).json()
            assert body["data"]["ciUpsert"]["__typename"] == "CIUpsertPayload", body


@pytest.mark.slow
def test_webhooks_survive_30_s_down_and_a_server_restart(tmp_path: Path) -> None:
    from bench.live import ServeProcess

    receiver = Receiver(new_secret())
    env = _env(tmp_path, receiver)
    outbox_path = tmp_path / "estate.events.db"
    first = ServeProcess(env, tmp_path / "serve1.log", timeout=120)
    try:
        _wait(lambda: outbox_path.exists()
              and Outbox(outbox_path).cursor("itsm") is not None)  # dispatching
        down_since = time.monotonic()
        _writes(first.url, [f"app-{i}" for i in range(6)])
        _writes(first.url, ["app-1", "app-2"], environment="prod")
        time.sleep(5)  # retried against a closed port
    finally:
        first.stop()  # SIGTERM: the events are still pending
    assert Outbox(outbox_path).dead_letters() == []
    second = ServeProcess(env, tmp_path / "serve2.log", timeout=120)
    try:
        _writes(second.url, ["app-1"], operationalStatus="RETIRED")
        _writes(second.url, ["app-6"])
        time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
        assert receiver.requests == 0
        receiver.start()  # up after 30 s down
        store = MemoryStore(database_path=tmp_path / "estate.db")
        expected = events_of(store.feed_since(0, limit=10_000))
        store.close()
        _wait(lambda: len(receiver.handled) == len(expected), seconds=120)
        time.sleep(1)  # nothing more arrives
    finally:
        second.stop()
        receiver.stop()
    assert receiver.bad_signatures == 0
    assert receiver.ids() == [e.id for e in expected]  # every event, in feed order
    types = receiver.types()
    assert types.count("ci.created") == 7 and types.count("ci.retired") == 1
    assert types.count("ci.changed") == 2 and types.count("import.finished") == 10
    # at least once: only the event in flight at the restart may come twice
    assert receiver.duplicates <= 1
    assert Outbox(outbox_path).dead_letters() == []
