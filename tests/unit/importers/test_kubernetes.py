"""Kubernetes manifests importer: Online Boutique service graph, List/namespaces, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.ingest import run_import
from cmdb_graph.model.records import CIRecord, Record, RelationshipRecord
from cmdb_graph.store.memory import MemoryStore
from impact import ImpactGraph
from impact.propagation import propagate_status
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_yaml_mutant

REPO = Path(__file__).resolve().parents[3]
BOUTIQUE = (
    REPO / ".." / "shared" / "realdata" / "k8s" / "online-boutique-kubernetes-manifests.yaml"
)
LIST = REPO / "tests" / "fixtures" / "importers" / "kubernetes_list_namespaces.yaml"

VALID = b"""apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  selector: {app: db}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: example/web:1
        env:
        - name: DB_ADDR
          value: "db:5432"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: db
spec:
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres:16
"""


def _edges(records: list[Record]) -> set[tuple[str, str, str]]:
    names = {r.identifiers.native_key: r.name for r in records if isinstance(r, CIRecord)}
    return {
        (names[r.source.native_key], r.rel_type, names[r.target.native_key])
        for r in records
        if isinstance(r, RelationshipRecord)
    }


def test_online_boutique_service_graph() -> None:
    # Arrange / Act
    records = list(get_importer("kubernetes").parse(BOUTIQUE))

    # Assert: the 12 Deployments are the CIs; every Service folds into its workload
    cis = {r.name: r for r in records if isinstance(r, CIRecord)}
    assert set(cis) == {
        f"default/{n}"
        for n in (
            "emailservice", "checkoutservice", "recommendationservice", "frontend",
            "paymentservice", "productcatalogservice", "cartservice", "loadgenerator",
            "currencyservice", "shippingservice", "redis-cart", "adservice",
        )
    }
    assert {r.ci_class for r in cis.values()} == {"Container"}
    assert cis["default/cartservice"].attributes["k8s_services"] == ["cartservice"]
    assert "k8s_services" not in cis["default/loadgenerator"].attributes  # no Service

    def d(a: str, b: str) -> tuple[str, str, str]:
        return (f"default/{a}", "DEPENDS_ON", f"default/{b}")

    assert _edges(records) == {
        # frontend to its backends
        d("frontend", "productcatalogservice"),
        d("frontend", "currencyservice"),
        d("frontend", "cartservice"),
        d("frontend", "recommendationservice"),
        d("frontend", "shippingservice"),
        d("frontend", "checkoutservice"),
        d("frontend", "adservice"),
        # checkout to payment, shipping, email, currency and cart (and the catalogue)
        d("checkoutservice", "productcatalogservice"),
        d("checkoutservice", "shippingservice"),
        d("checkoutservice", "paymentservice"),
        d("checkoutservice", "emailservice"),
        d("checkoutservice", "currencyservice"),
        d("checkoutservice", "cartservice"),
        # cart to its redis store
        d("cartservice", "redis-cart"),
        d("recommendationservice", "productcatalogservice"),
        d("loadgenerator", "frontend"),
    }


def test_online_boutique_edges_are_inferred_with_evidence() -> None:
    # Arrange / Act
    records = list(get_importer("kubernetes").parse(BOUTIQUE))

    # Assert
    rels = [r for r in records if isinstance(r, RelationshipRecord)]
    assert rels and all(r.inferred for r in rels)
    cart_redis = next(r for r in rels if r.target.native_key == "default/deployment/redis-cart")
    assert cart_redis.evidence == (
        "env REDIS_ADDR=redis-cart:6379 in deployment/cartservice (container server) -> "
        "service default/redis-cart selects app=redis-cart"
    )
    assert cart_redis.properties == {"via_service": "default/redis-cart", "port": 6379}
    assert cart_redis.origin.line == 389  # the cartservice Deployment document


def test_online_boutique_ingested_redis_failure_takes_down_the_shop() -> None:
    # Arrange: the manifests ingested into the embedded store
    store = MemoryStore()
    records = list(get_importer("kubernetes").parse(BOUTIQUE))
    result = run_import(store, records, source="k8s", importer="kubernetes")
    assert not result.plan.skips
    graph = store.dependency_graph()
    ci_id = {data["name"]: node for node, data in graph.nodes(data=True)}

    # Act
    status = propagate_status(ImpactGraph(graph), [ci_id["default/redis-cart"]])

    # Assert: redis-cart -> cartservice -> checkout and frontend -> loadgenerator
    names = {graph.nodes[n]["name"] for n in status.down}
    assert names == {
        "default/cartservice", "default/checkoutservice", "default/frontend",
        "default/loadgenerator",
    }


def test_list_namespaces_and_address_forms() -> None:
    # Arrange / Act
    records = list(get_importer("kubernetes").parse(LIST))

    # Assert
    cis = {r.identifiers.native_key: r for r in records if isinstance(r, CIRecord)}
    assert {(k, r.ci_class) for k, r in cis.items()} == {
        ("shop/deployment/api", "Container"),
        ("shop/statefulset/orders-db", "Container"),
        ("shop/daemonset/cache", "Container"),
        ("platform/cronjob/audit-compactor", "Container"),
        ("shop/deployment/metrics", "Container"),
        ("shop/pod/debug", "Container"),
        # an ExternalName Service selects no workload: it stays a CI of its own
        ("platform/service/audit", "Application"),
    }
    assert cis["shop/deployment/api"].attributes["namespace"] == "shop"
    assert cis["shop/deployment/api"].attributes["replicas"] == 3
    assert _edges(records) == {
        ("shop/api", "DEPENDS_ON", "shop/cache"),  # bare name in CACHE_HOST
        ("shop/api", "DEPENDS_ON", "shop/orders-db"),  # URL in an init container
        ("shop/api", "DEPENDS_ON", "platform/audit"),  # svc.ns.svc.cluster.local
        ("platform/audit-compactor", "DEPENDS_ON", "platform/audit"),
        # values from the ConfigMap "settings": configMapKeyRef, envFrom with prefix APP_
        ("shop/cache", "DEPENDS_ON", "shop/metrics"),
        ("shop/debug", "DEPENDS_ON", "shop/cache"),
        ("shop/debug", "DEPENDS_ON", "shop/metrics"),
        # not: cache -> orders-db (WARMUP_MODE is no address), api -> payments.example.com
    }
    via_config = next(r for r in records if isinstance(r, RelationshipRecord)
                      and r.source.native_key == "shop/daemonset/cache")
    assert via_config.evidence == (
        "env METRICS_SINK=http://metrics:9090/push (from configmap settings key METRICS_URL) "
        "in daemonset/cache (container memcached) -> service shop/metrics selects app=metrics"
    )


def test_default_namespace_option() -> None:
    # Arrange
    importer = get_importer("kubernetes", default_namespace="prod")

    # Act
    records = list(importer.parse(BOUTIQUE))

    # Assert
    assert all(r.name.startswith("prod/") for r in records if isinstance(r, CIRecord))
    assert ("prod/cartservice", "DEPENDS_ON", "prod/redis-cart") in _edges(records)


def test_objects_owned_by_a_controller_are_skipped(tmp_path: Path) -> None:
    # Arrange: `kubectl get all -o yaml` lists a Deployment with its ReplicaSet and Pod
    owned = ("  ownerReferences:\n  - {{apiVersion: apps/v1, kind: {0}, name: {1}, "
             "controller: true}}\n")
    pod_spec = "spec:\n  containers:\n  - {name: web, image: nginx}\n"
    path = tmp_path / "all.yaml"
    path.write_text(
        "kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n"
        "    metadata: {labels: {app: web}}\n    spec:\n      containers:\n"
        "      - {name: web, image: nginx}\n---\n"
        "kind: ReplicaSet\nmetadata:\n  name: web-5d8\n" + owned.format("Deployment", "web")
        + "spec:\n  template:\n    " + pod_spec.replace("\n  ", "\n      ")
        + "---\nkind: Pod\nmetadata:\n  name: web-5d8-x1\n"
        + owned.format("ReplicaSet", "web-5d8") + pod_spec
        + "---\nkind: Pod\nmetadata: {name: debug}\n" + pod_spec
    )

    # Act
    records = list(get_importer("kubernetes").parse(path))

    # Assert
    assert {r.name for r in records if isinstance(r, CIRecord)} == {
        "default/web", "default/debug"}


def test_workload_without_containers_names_document_and_field(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "bad.yaml"
    path.write_text(
        "kind: ConfigMap\nmetadata: {name: x}\n---\n"
        "kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n"
        "    spec: {containers: []}\n"
    )

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("kubernetes").parse(path))

    # Assert
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), 4, "spec.containers")
    assert "document 2" in str(err.record) and "Deployment default/web" in str(err.record)


def test_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("kubernetes"),
        VALID,
        fmt="yaml",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b"  name: web\n", b""),
        required_field="name",
    )


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_gives_records_or_one_clear_error(data: st.DataObject) -> None:
    # one value of a valid file replaced by arbitrary YAML-able data
    documents = list(yaml.safe_load_all(LIST.read_text()))
    check_yaml_mutant(get_importer("kubernetes"), documents, data)
