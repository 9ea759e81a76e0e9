"""The request log and ``/metrics`` of a real ``cmdb-graph serve`` process.

The server runs as the command runs it (its own process, its stderr captured); its JSON log
lines are parsed and their fields checked, and ``/metrics`` is scraped and parsed with
prometheus_client's own parser, before and after more requests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cmdb_graph.api.auth import new_api_key
from cmdb_graph.store.base import GraphStore

ROOT = Path(__file__).resolve().parents[2]
UPSERT = (ROOT / "graphql/operations/DiscoveryUpsert.graphql").read_text()
FIND = (ROOT / "graphql/operations/FindCI.graphql").read_text()
IMPACT = (ROOT / "graphql/operations/ChangeImpact.graphql").read_text()
WRITER_KEY, WRITER = new_api_key("itsm-bot", "writer")
READER_KEY, READER = new_api_key("grafana", "reader")


def _upsert(*names: str) -> dict[str, Any]:
    return {"input": {"source": "disco", "cis": [
        {"name": n, "ciClass": "Server", "identifiers": {"fqdn": n}} for n in names]}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running ``cmdb-graph serve`` process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def post(self, query: str, variables: dict[str, Any] | None = None, *,
             key: str | None = None, request_id: str | None = None) -> httpx.Response:
        headers = {"connection": "close"}  # a new connection each time (spread over workers)
        if key:
            headers["authorization"] = f"Bearer {key}"
        if request_id:
            headers["x-request-id"] = request_id
        return httpx.post(f"{self.url}/graphql", json={"query": query,
                                                       "variables": variables or {}},
                          headers=headers, timeout=60)

    def scrape(self, key: str | None = READER_KEY) -> dict[tuple[str, tuple[Any, ...]], float]:
        """``/metrics`` parsed: (sample name, sorted labels without pid) -> value, summed."""
        headers = {"authorization": f"Bearer {key}"} if key else {}
        resp = httpx.get(f"{self.url}/metrics", headers=headers, timeout=60)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/plain")
        out: dict[tuple[str, tuple[Any, ...]], float] = {}
        for family in text_string_to_metric_families(resp.text):
            for s in family.samples:
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "pid"))
                out[(s.name, labels)] = out.get((s.name, labels), 0.0) + s.value
        return out

    def stop(self) -> list[dict[str, Any]]:
        """Stop the server; its JSON log lines."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@contextmanager
def _serve(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[Served]:
    port = _free_port()
    log = tmp_path / "server.log"
    cmd = [str(Path(sys.executable).parent / "cmdb-graph"), "serve", "--port", str(port), *args]
    full_env = {**os.environ, "CMDB_API_KEYS": json.dumps([WRITER.model_dump(),
                                                           READER.model_dump()]),
                "CMDB_HOST": "127.0.0.1", "CMDB_LOG_FORMAT": "json", **env}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as sink:
        process = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=full_env,
                                   cwd=tmp_path)
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start within 90 s"
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """``cmdb-graph serve`` on a fresh embedded store, with a writer and a reader key."""
    with _serve(tmp_path, {}, "--db", str(tmp_path / "estate.db")) as served:
        yield served


def _request_lines(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["request_id"]: line for line in lines if line["logger"] == "cmdb_graph.request"}


def test_one_json_line_per_request_names_the_caller_and_outcome(served: Served) -> None:
    # Act
    ok = served.post(UPSERT, _upsert("web-01.example"), key=WRITER_KEY, request_id="itsm-42")
    forbidden = served.post(UPSERT, _upsert("x.example"), key=READER_KEY, request_id="r-403")
    anonymous = served.post(FIND, {"identifiers": {"fqdn": "web-01.example"}},
                            request_id="r-401")
    broken = served.post("query Broken { nope }", key=READER_KEY, request_id="r-bad")
    replaced = served.post(FIND, {"identifiers": {"fqdn": "web-01.example"}}, key=READER_KEY,
                           request_id="two words")
    lines = served.stop()

    # Assert: the ids come back; one line per request, with its facts
    assert ok.headers["x-request-id"] == "itsm-42"
    assert ok.json()["data"]["ciUpsert"]["__typename"] == "CIUpsertPayload"
    assert forbidden.json()["data"]["ciUpsert"]["code"] == "FORBIDDEN"
    assert anonymous.status_code == 401
    assert "errors" in broken.json()
    made = replaced.headers["x-request-id"]
    assert made != "two words" and len(made) == 32
    by_id = _request_lines(lines)
    line = by_id["itsm-42"]
    assert {k: line[k] for k in ("level", "method", "path", "status", "caller", "role",
                                 "operation", "outcome", "error_kind")} == {
        "level": "INFO", "method": "POST", "path": "/graphql", "status": 200,
        "caller": "itsm-bot", "role": "writer", "operation": "DiscoveryUpsert",
        "outcome": "ok", "error_kind": None}
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["time"].endswith("+00:00")
    assert (by_id["r-403"]["caller"], by_id["r-403"]["role"], by_id["r-403"]["outcome"],
            by_id["r-403"]["error_kind"], by_id["r-403"]["error_code"]) == (
        "grafana", "reader", "error", "user_error", "FORBIDDEN")
    assert (by_id["r-401"]["status"], by_id["r-401"]["caller"], by_id["r-401"]["role"],
            by_id["r-401"]["error_kind"]) == (401, "anonymous", None, "unauthorized")
    assert (by_id["r-bad"]["operation"], by_id["r-bad"]["error_kind"]) == (
        "Broken", "invalid_request")
    assert by_id[made]["outcome"] == "ok" and by_id[made]["operation"] == "FindCI"
    # records made while a request is served carry its id (the import run's line)
    imports = [x for x in lines if x["logger"] == "cmdb_graph.ingest.run"]
    assert [x.get("request_id") for x in imports] == ["itsm-42"]


def test_metrics_need_a_key_and_count_requests_errors_imports_and_lag(served: Served) -> None:
    # Arrange: a write, a question (the engine builds its graph), a refused write
    served.post(UPSERT, _upsert("a.example", "b.example"), key=WRITER_KEY)
    served.post(IMPACT, {"ciIds": ["nope"]}, key=READER_KEY)
    served.post(UPSERT, _upsert("c.example"), key=READER_KEY)

    # Act
    refused = httpx.get(f"{served.url}/metrics", timeout=30)
    wrong = httpx.get(f"{served.url}/metrics", headers={"x-api-key": "cmdb_nope"}, timeout=30)
    first = served.scrape()
    served.post(UPSERT, _upsert("c.example"), key=WRITER_KEY)  # a write no question followed
    second = served.scrape()
    served.post(IMPACT, {"ciIds": ["nope"]}, key=READER_KEY)
    third = served.scrape()

    # Assert: a key is needed; counts move; the lag is what the engine has yet to apply
    assert refused.status_code == 401 and "API key" in refused.json()["detail"]
    assert wrong.status_code == 401
    def count(metrics: dict[tuple[str, tuple[Any, ...]], float], name: str,
              **labels: str) -> float:
        return metrics.get((name, tuple(sorted(labels.items()))), 0.0)

    hist = "cmdb_request_duration_seconds_count"
    assert count(first, hist, operation="DiscoveryUpsert") == 2
    assert count(second, hist, operation="DiscoveryUpsert") == 3
    assert count(third, hist, operation="ChangeImpact") == 2
    errors = "cmdb_request_errors_total"
    assert count(first, errors, operation="DiscoveryUpsert", kind="user_error") == 1
    assert count(first, errors, operation="ChangeImpact", kind="user_error") == 1  # CI_NOT_FOUND
    runs = "cmdb_import_runs_total"
    assert count(first, runs, importer="api", status="succeeded") == 1
    assert count(second, runs, importer="api", status="succeeded") == 2
    changes = "cmdb_import_changes_total"
    assert count(first, changes, importer="api", change="created") == 2
    assert count(second, changes, importer="api", change="created") == 3
    lag = "cmdb_feed_lag_records"
    assert count(first, lag) == 0
    assert count(second, lag) >= 1
    assert count(second, "cmdb_feed_head_seq") == count(second, "cmdb_engine_feed_seq") + \
        count(second, lag)
    assert count(third, lag) == 0
    assert ("cmdb_webhook_deliveries_total", ()) not in first  # declared, no delivery yet
    served.stop()


def test_metrics_public_setting_opens_them(tmp_path: Path) -> None:
    with _serve(tmp_path, {"CMDB_METRICS_PUBLIC": "true"}, "--db",
                str(tmp_path / "estate.db")) as served:
        resp = httpx.get(f"{served.url}/metrics", timeout=30)
        assert resp.status_code == 200 and "cmdb_request_duration_seconds" in resp.text
        served.stop()


@pytest.mark.neo4j
def test_several_workers_sum_their_metrics(tmp_path: Path, neo4j_store: GraphStore) -> None:
    # Arrange: two worker processes on the test's Neo4j
    env = {"CMDB_NEO4J_URI": os.environ["NEO4J_URI"],
           "CMDB_NEO4J_USER": os.environ.get("NEO4J_USER", "neo4j"),
           "CMDB_NEO4J_PASSWORD": os.environ.get("NEO4J_PASSWORD", "")}
    with _serve(tmp_path, env, "--workers", "2") as served:
        # Act: requests on new connections, answered by either worker
        for i in range(12):
            served.post(FIND, {"identifiers": {"fqdn": f"h{i}.example"}}, key=READER_KEY)
        served.post(IMPACT, {"ciIds": ["nope"]}, key=READER_KEY)
        metrics = served.scrape()
        lines = served.stop()

    # Assert: whichever worker answered the scrape counts every worker's requests
    assert metrics[("cmdb_request_duration_seconds_count", (("operation", "FindCI"),))] == 12
    pids = {x["pid"] for x in lines if x["logger"] == "cmdb_graph.request"}
    assert pids and all(isinstance(p, int) for p in pids)
    assert ("cmdb_feed_lag_records", ()) in metrics  # the engine that answered ChangeImpact
