"""Each connector against a stand-in of its API on 127.0.0.1 (a real HTTP server) replaying
real or documented answers, paged, with a 429 + Retry-After, a 500 mid-run and a wrong token.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from cmdb_graph.connectors.config import RetryPolicy, SourceConfig
from cmdb_graph.connectors.http import ConnectorError
from cmdb_graph.connectors.sync import sync_source
from cmdb_graph.model import ImportRun, RunStatus
from cmdb_graph.store import iter_cis, iter_nodes
from cmdb_graph.store.memory import MemoryStore
from tests.helpers.standin import Reply, StandIn, serve
from tests.unit.connectors.scenarios import SCENARIOS, TOKEN, Scenario

#: no real sleeping: every wait is 0, a Retry-After is cut to 0
FAST = {"attempts": 3, "timeout": 5, "wait_initial": 0, "wait_max": 0, "wait_jitter": 0,
        "max_retry_after": 0}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_TOKEN", TOKEN)
    monkeypatch.setenv("GLPI_APP", "app-token-value")
    monkeypatch.setenv("SN_USER", "svc-cmdb")


def _header(sc: Scenario) -> str | None:
    if sc.kind == "servicenow":
        return "Basic " + base64.b64encode(f"svc-cmdb:{TOKEN}".encode()).decode()
    return sc.header or None


@pytest.fixture(params=sorted(SCENARIOS))
def api(request: pytest.FixtureRequest) -> Iterator[tuple[Scenario, StandIn]]:
    sc = SCENARIOS[request.param]
    with serve(StandIn()) as standin:
        standin.auth = _header(sc)
        sc.setup(standin)
        yield sc, standin


def _config(sc: Scenario, standin: StandIn, **extra: Any) -> SourceConfig:
    return SourceConfig.model_validate({
        "kind": sc.kind, "url": standin.url + sc.url_suffix, "auth": sc.auth, "mode": "full",
        "page_size": 1 if sc.kind != "kubernetes" else 5, "retry": FAST,
        "params": sc.params, **extra})


def _runs(store: MemoryStore) -> list[ImportRun]:
    return [r for r in iter_nodes(store, "ImportRun") if isinstance(r, ImportRun)]


def _state(store: MemoryStore) -> dict[str, Any]:
    return {ci.ci_id: ci.model_dump(mode="json") for ci in iter_cis(store)}


def test_every_page_arrives_through_a_429_and_a_500(
        api: tuple[Scenario, StandIn], memory_store: MemoryStore) -> None:
    # Arrange: the first page is rate limited once, a page in the middle fails once
    sc, standin = api
    standin.fail(sc.paged, Reply(429, {"message": "Too many requests"},
                                 {"Retry-After": "7"}))
    standin.fail(sc.middle, Reply(500, {"error": {"message": "upstream timeout"}}))
    lines: list[str] = []

    # Act
    result = sync_source(memory_store, "src", _config(sc, standin),
                         progress=lambda s, m: lines.append(f"{s} {m}"))

    # Assert
    assert result.run.status is RunStatus.SUCCEEDED
    sc.check(memory_store)
    statuses = [r.path for r in standin.requests if r.path == sc.paged]
    assert len(statuses) >= 3  # the 429, its retry, and at least one more page
    assert any("page 2" in line for line in lines)  # progress per page


def test_a_page_failing_past_its_retries_fails_the_run_and_retires_nothing(
        api: tuple[Scenario, StandIn], memory_store: MemoryStore) -> None:
    # Arrange: one good full run, then the middle page answers 500 on every attempt
    sc, standin = api
    sync_source(memory_store, "src", _config(sc, standin))
    before = _state(memory_store)
    standin.fail(sc.middle, *[Reply(500, {"error": {"message": "boom"}})] * 3)

    # Act
    with pytest.raises(ConnectorError) as caught:
        sync_source(memory_store, "src", _config(sc, standin))

    # Assert: one clear line; nothing changed but one failed ImportRun
    message = str(caught.value)
    assert "\n" not in message and "500" in message and message.startswith("src: ")
    assert _state(memory_store) == before
    runs = _runs(memory_store)
    assert sorted(r.status.value for r in runs) == ["failed", "succeeded"]
    assert "ConnectorError" in next(r.error or "" for r in runs if r.status is RunStatus.FAILED)


def test_a_wrong_token_is_one_line_without_the_secret(
        api: tuple[Scenario, StandIn], memory_store: MemoryStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange
    sc, standin = api
    monkeypatch.setenv("CONNECTOR_TOKEN", "wrong-token-value")
    config = _config(sc, standin)

    # Act
    with pytest.raises(ConnectorError) as caught:
        sync_source(memory_store, "src", config)

    # Assert
    message = str(caught.value)
    assert "\n" not in message and "401" in message and "credentials" in message
    assert "wrong-token-value" not in message and TOKEN not in message
    assert list(iter_cis(memory_store)) == []


def test_a_delta_run_asks_only_for_what_changed_since_the_last_success(
        memory_store: MemoryStore) -> None:
    # Arrange
    sc = SCENARIOS["netbox"]
    with serve(StandIn()) as standin:
        standin.auth = _header(sc)
        sc.setup(standin)
        first = sync_source(memory_store, "src", _config(sc, standin, mode="delta"))
        standin.requests.clear()

        # Act
        sync_source(memory_store, "src", _config(sc, standin, mode="delta"))

    # Assert: the first run asked for everything, the second from the first run's start
    asked = {r.arg("last_updated__gte") for r in standin.requests
             if r.path == "/api/dcim/devices/"}
    assert asked == {first.run.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    import httpx

    from cmdb_graph.connectors.config import Auth
    from cmdb_graph.connectors.http import ApiClient, _Retryable, retry_after_seconds

    # Arrange
    answer = httpx.Response(429, headers={"Retry-After": "7"},
                            request=httpx.Request("GET", "http://127.0.0.1/x"))
    client = ApiClient("src", "http://127.0.0.1", auth=Auth(),
                       retry=RetryPolicy(max_retry_after=5))
    after = retry_after_seconds("7")

    # Act / Assert
    assert after == 7.0
    assert client._hook(_Retryable(answer, after)) == 5.0
    assert client._hook(_Retryable(answer, None)) is True
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    client.close()
