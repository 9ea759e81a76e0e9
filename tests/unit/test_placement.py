"""Replicas in impact where placement makes them meaningful: a Kubernetes export with its Pods
(written here in the shape of ``kubectl get all -o yaml``) says which nodes run each workload;
a 3-replica Deployment spread over three nodes survives one node degraded, a single-pod
workload goes down with its node, and only that node is a single point of failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app

_register()

pytestmark = pytest.mark.usefixtures("wide_tables")


def owned(kind: str, name: str, owner_kind: str, owner: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": "shop",
                         "ownerReferences": [{"kind": owner_kind, "name": owner,
                                              "controller": True}]},
            "spec": spec}


def deployment(name: str, replicas: int, env: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": f"x/{name}",
                                                           "env": env}]}}}}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}


EXPORT = {"apiVersion": "v1", "kind": "List", "items": [
    deployment("web", 3, [{"name": "DB_HOST", "value": "db"}]),
    deployment("db", 1, []),
    service("web"), service("db"),
    owned("ReplicaSet", "web-7d4b9c", "Deployment", "web"),
    *(owned("Pod", f"web-7d4b9c-{i}", "ReplicaSet", "web-7d4b9c", nodeName=f"node-{i}")
      for i in (1, 2, 3)),
    # the db ReplicaSet is not in the export: its Pod is traced by the ReplicaSet's name
    owned("Pod", "db-5f6a7b-x", "ReplicaSet", "db-5f6a7b", nodeName="node-1"),
]}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump(EXPORT))
    db = tmp_path / "estate.db"
    code, _, err = invoke("import", "kubernetes", str(path), "--source", "k8s", "--db", str(db))
    assert code == 0, err
    return db


def impacted(db: Path, ci: str) -> dict[str, str]:
    code, out, err = invoke("impact", ci, "--json", "--db", str(db))
    assert code == 0, err
    return {i["name"]: i["status"] for i in json.loads(out)["impacted"]}


def test_a_spread_deployment_losing_one_node_is_degraded_not_down(db: Path) -> None:
    # Act
    node2 = impacted(db, "node-2")
    node1 = impacted(db, "node-1")

    # Assert: node-2 runs only a web pod: web (and its application) degraded; node-1 also runs
    # the only db pod: db down, so web (which needs db) and the application down
    assert node2 == {"shop/web pods": "degraded", "shop/web": "degraded",
                     "namespace shop": "degraded"}
    assert node1["shop/db"] == "down" and node1["shop/web"] == "down"
    assert node1["shop/web pods"] == "degraded"


def test_all_nodes_of_a_spread_deployment_down_take_it_down(db: Path) -> None:
    # Act
    code, out, err = invoke("impact", "node-2", "node-3", "--json", "--db", str(db))

    # Assert
    assert code == 0, err
    found = {i["name"]: i["status"] for i in json.loads(out)["impacted"]}
    assert found["shop/web"] == "degraded"  # node-1 still runs a web pod
    everything = {i["name"]: i["status"] for i in json.loads(invoke(
        "impact", "node-1", "node-2", "node-3", "--json", "--db", str(db))[1])["impacted"]}
    assert everything["shop/web pods"] == "down" and everything["shop/web"] == "down"


def test_only_the_node_of_a_single_pod_is_a_single_point_of_failure(db: Path) -> None:
    # Act
    code, out, err = invoke("map", "namespace shop", "--json", "--db", str(db))

    # Assert: node-1 (db's only node) is one, node-2 and node-3 are not
    assert code == 0, err
    data = json.loads(out)
    names = {n["ci_id"]: n["name"] for n in data["service_map"]["nodes"]}
    spofs = {names.get(s["ci_id"], s["ci_id"]) for s in data["single_points_of_failure"]}
    assert "node-1" in spofs
    assert not spofs & {"node-2", "node-3"}
