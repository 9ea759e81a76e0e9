"""The push connector against stand-ins of ServiceNow's IRE and JSM Assets' import API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cmdb_graph.connectors.config import TargetConfig
from cmdb_graph.connectors.push import push
from cmdb_graph.ingest import run_import
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, RelationshipRecord
from cmdb_graph.store.memory import MemoryStore
from tests.helpers.standin import Reply, Request, StandIn, serve

FAST = {"attempts": 2, "timeout": 5, "wait_initial": 0, "wait_max": 0, "wait_jitter": 0,
        "max_retry_after": 0}
MAPPING = """
classes: {Server: cmdb_ci_linux_server, Application: cmdb_ci_appl}
fields: {name: name, serial_number: serial_number, operational_status: operational_status}
values: {operational_status: {operational: "1", retired: "6"}}
relationships: {RUNS_ON: "Runs on::Runs"}
"""


def _estate(store: MemoryStore, *, app_name: str = "shop") -> None:
    o = Origin(file="estate")
    run_import(store, [
        CIRecord(ci_class="Server", name="web01", identifiers=Identifiers(
            native_key="s1", serial_number="SN1"), origin=o),
        CIRecord(ci_class="Server", name="db01", identifiers=Identifiers(
            native_key="s2", serial_number="SN2"), origin=o),
        CIRecord(ci_class="Application", name=app_name,
                 identifiers=Identifiers(native_key="a1"), origin=o),
        RelationshipRecord(rel_type="RUNS_ON", source=Identifiers(native_key="a1"),
                           target=Identifiers(native_key="s1"), origin=o),
    ], source="itam", importer="test")


def _target(kind: str, url: str, tmp_path: Path, **extra: Any) -> TargetConfig:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return TargetConfig.model_validate({"kind": kind, "url": url, "mapping": mapping,
                                        "retry": FAST, **extra})


def _ire(standin: StandIn, refuse: str | None = None) -> None:
    def handler(req: Request) -> Reply:
        body = req.json()
        items = []
        for index, item in enumerate(body["items"]):
            errors = ([{"error": "MISSING_MATCHING_ATTRIBUTES",
                        "message": "In payload missing minimum set of input values for "
                                   "criterion (identifier) entries"}]
                      if item["values"].get("name") == refuse else [])
            items.append({"className": item["className"], "inputIndices": [index],
                          "operation": "NO_CHANGE" if not errors else "NO_OPERATION",
                          "sysId": "Unknown" if errors else f"sys{index}",
                          "errorCount": len(errors), "errors": errors})
        relations = [{"className": "cmdb_rel_ci", "inputIndices": [i], "operation": "INSERT"}
                     for i, _ in enumerate(body.get("relations", []))]
        return Reply(body={"result": {"items": items, "relations": relations,
                                      "additionalCommittedItems": [],
                                      "additionalCommittedRelations": []}})
    standin.route("POST", "/api/now/identifyreconcile", handler)


def test_servicenow_ire_sends_only_what_changed(tmp_path: Path,
                                                memory_store: MemoryStore) -> None:
    # Arrange
    _estate(memory_store)
    with serve(StandIn()) as standin:
        _ire(standin)
        config = _target("servicenow-ire", standin.url, tmp_path)

        # Act: first push, a second one on unchanged data, then one after a change
        first = push(memory_store, "snow", config, state_dir=tmp_path / "state")
        calls_after_first = standin.hits("/api/now/identifyreconcile")
        second = push(memory_store, "snow", config, state_dir=tmp_path / "state")
        calls_after_second = standin.hits("/api/now/identifyreconcile")
        _estate(memory_store, app_name="shop-v2")
        third = push(memory_store, "snow", config, state_dir=tmp_path / "state")
        last = standin.requests[-1].json()

    # Assert
    assert len(first.sent) == 3 and len(first.links_sent) == 1 and first.ok
    payload = next(r.json() for r in standin.requests if r.json().get("relations"))
    assert payload["relations"][0]["type"] == "Runs on::Runs"
    assert {i["className"] for i in payload["items"]} == {"cmdb_ci_appl",
                                                         "cmdb_ci_linux_server"}
    assert second.sent == [] and second.links_sent == [] and not second.full_compare
    assert calls_after_second == calls_after_first  # nothing sent at all
    assert [i["values"]["name"] for i in last["items"]] == ["shop-v2"] and len(third.sent) == 1
    assert standin.requests[0].query["sysparm_data_source"] == ["cmdb-graph"]


def test_servicenow_ire_reports_a_rejected_ci_and_sends_it_again(
        tmp_path: Path, memory_store: MemoryStore) -> None:
    # Arrange
    _estate(memory_store)
    with serve(StandIn()) as standin:
        _ire(standin, refuse="db01")
        config = _target("servicenow-ire", standin.url, tmp_path)

        # Act
        first = push(memory_store, "snow", config, state_dir=tmp_path / "state")
        _ire(standin)  # the target accepts it now
        second = push(memory_store, "snow", config, state_dir=tmp_path / "state")

    # Assert: rejected per CI with the IRE's error, and retried on the next push
    assert [(r.name, r.reason.split(":")[0]) for r in first.rejected] == [
        ("db01", "MISSING_MATCHING_ATTRIBUTES")]
    assert len(first.sent) == 2
    assert len(second.sent) == 1 and second.ok


def test_dry_run_sends_nothing_and_keeps_the_state(tmp_path: Path,
                                                   memory_store: MemoryStore) -> None:
    _estate(memory_store)
    with serve(StandIn()) as standin:
        _ire(standin)
        config = _target("servicenow-ire", standin.url, tmp_path)
        dry = push(memory_store, "snow", config, state_dir=tmp_path / "state", dry_run=True)
        real = push(memory_store, "snow", config, state_dir=tmp_path / "state")
    assert len(dry.sent) == 3 and len(real.sent) == 3
    assert standin.hits("/api/now/identifyreconcile") == 2  # both from the real push


def _jsm(standin: StandIn, refuse: bool = False) -> list[Any]:
    chunks: list[Any] = []
    base = standin.url
    standin.route("GET", "/jsm/assets/v1/imports/info", {"links": {
        "getStatus": f"{base}/jsm/assets/workspace/w1/v1/importsource/i1/configstatus",
        "start": f"{base}/jsm/assets/workspace/w1/v1/importsource/i1/executions",
        "mapping": f"{base}/jsm/assets/workspace/w1/v1/importsource/i1/mapping"}})
    standin.route("PUT", "/jsm/assets/workspace/w1/v1/importsource/i1/mapping",
                  lambda r: Reply(204, raw=b""))
    standin.route("POST", "/jsm/assets/workspace/w1/v1/importsource/i1/executions", {
        "result": "success", "links": {
            "submitProgress": f"{base}/jsm/assets/workspace/w1/v1/importsource/i1/"
                              "executions/e1/progress",
            "submitResults": f"{base}/jsm/assets/workspace/w1/v1/importsource/i1/"
                             "executions/e1/data"}})

    def data(req: Request) -> Reply:
        chunks.append(req.json())
        if refuse and req.json().get("data"):
            return Reply(400, {"errorMessages": ["objectType 'cmdb_ci_appl' is not mapped"]})
        return Reply(200, {})
    standin.route("POST", "/jsm/assets/workspace/w1/v1/importsource/i1/executions/e1/data",
                  data)
    return chunks


def test_jsm_assets_import_sends_only_what_changed(
        tmp_path: Path, memory_store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange
    monkeypatch.setenv("JSM_IMPORT_TOKEN", "container-token")
    _estate(memory_store)
    with serve(StandIn()) as standin:
        standin.auth = "Bearer container-token"
        chunks = _jsm(standin)
        config = _target("jsm-assets-import", standin.url, tmp_path, auth={
            "type": "token", "token": "env:JSM_IMPORT_TOKEN"}, params={"put_mapping": True})

        # Act
        first = push(memory_store, "jsm", config, state_dir=tmp_path / "state")
        sent_first = len(standin.requests)
        second = push(memory_store, "jsm", config, state_dir=tmp_path / "state")

    # Assert
    assert len(first.sent) == 3 and first.ok
    objects = [o for c in chunks if c.get("data") for o in c["data"]["objects"]]
    app = next(o for o in objects if o.get("Runs on::Runs"))
    assert app["objectType"] == "cmdb_ci_appl" and len(app["Runs on::Runs"]) == 1
    assert chunks[-1] == {"completed": True}
    assert second.sent == [] and len(standin.requests) == sent_first


def test_jsm_assets_import_reports_a_refused_chunk_per_ci(
        tmp_path: Path, memory_store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JSM_IMPORT_TOKEN", "container-token")
    _estate(memory_store)
    with serve(StandIn()) as standin:
        _jsm(standin, refuse=True)
        config = _target("jsm-assets-import", standin.url, tmp_path, auth={
            "type": "token", "token": "env:JSM_IMPORT_TOKEN"})
        result = push(memory_store, "jsm", config, state_dir=tmp_path / "state")
    assert sorted(r.name for r in result.rejected if not r.key.count("|")) == [
        "db01", "shop", "web01"]
    assert all("not mapped" in r.reason for r in result.rejected)
