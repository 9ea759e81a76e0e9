"""Kubernetes manifests importer: Online Boutique service graph, List/namespaces, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

    # Assert: the 12 Deployments are the CIs; every Service folds into its workload; the
    # namespace is the application service (the manifests carry no part-of label)
    cis = {r.name: r for r in records if isinstance(r, CIRecord)}
    assert set(cis) == {
        f"default/{n}"
        for n in (
            "emailservice", "checkoutservice", "recommendationservice", "frontend",
            "paymentservice", "productcatalogservice", "cartservice", "loadgenerator",
            "currencyservice", "shippingservice", "redis-cart", "adservice",
        )
    } | {"namespace default"}
    assert {r.name for r in cis.values() if r.ci_class != "Container"} == {"namespace default"}
    assert cis["namespace default"].ci_class == "ApplicationService"
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
        # the application: its entry point, and the load generator (optional: a client)
        ("namespace default", "DEPENDS_ON", "default/frontend"),
        ("namespace default", "DEPENDS_ON", "default/loadgenerator"),
    }
    optional = {r.target.native_key for r in records
                if isinstance(r, RelationshipRecord) and r.optional}
    assert optional == {"default/deployment/loadgenerator"}


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
    assert cart_redis.properties == {
        "via_service": "default/redis-cart", "port": 6379, "evidence_key": "env REDIS_ADDR",
        "evidence_value": "redis-cart:6379"}
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

    # Assert: redis-cart -> cartservice -> checkout and frontend -> loadgenerator, and the
    # application service through its entry point, the frontend
    names = {graph.nodes[n]["name"] for n in status.down}
    assert names == {
        "default/cartservice", "default/checkoutservice", "default/frontend",
        "default/loadgenerator", "namespace default",
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
        # an application service per namespace (no app.kubernetes.io/part-of label)
        ("namespace/shop", "ApplicationService"),
        ("namespace/platform", "ApplicationService"),
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
        # the namespaces' application services: what a Service exposes and no exposed
        # workload needs (required), what nothing needs and no Service exposes (optional)
        ("namespace shop", "DEPENDS_ON", "shop/orders-db"),
        ("namespace shop", "DEPENDS_ON", "shop/cache"),
        ("namespace shop", "DEPENDS_ON", "shop/api"),
        ("namespace shop", "DEPENDS_ON", "shop/debug"),
        ("namespace platform", "DEPENDS_ON", "platform/audit-compactor"),
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
    assert all(r.name.startswith("prod/") for r in records
               if isinstance(r, CIRecord) and r.ci_class == "Container")
    assert "namespace prod" in {r.name for r in records if isinstance(r, CIRecord)}
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
    assert {r.name for r in records if isinstance(r, CIRecord)
            and r.ci_class == "Container"} == {"default/web", "default/debug"}


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


def _graph(records: list[Any]) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The CIs and relationships of records, without where they were read."""
    def frozen(value: Any) -> Any:
        return tuple(sorted((k, frozen(v)) for k, v in value.items())) if isinstance(
            value, dict) else tuple(value) if isinstance(value, list) else value

    cis = {(r.ci_class, r.name, r.identifiers, frozen(r.attributes))
           for r in records if isinstance(r, CIRecord)}
    rels = {(r.rel_type, r.source, r.target, r.optional, r.inferred, r.evidence,
             frozen(r.properties)) for r in records if isinstance(r, RelationshipRecord)}
    return cis, rels


@pytest.mark.skipif(not BOUTIQUE.exists(), reason="../shared/realdata is not there")
def test_boutique_split_one_object_per_file_gives_the_same_graph(tmp_path: Path) -> None:
    # Arrange: every object in a file of its own, Deployments and Services in two folders
    # (the usual layout of a repository), plus a file that is no manifest
    objects = [d for d in yaml.safe_load_all(BOUTIQUE.read_text()) if d]
    for i, obj in enumerate(objects):
        folder = tmp_path / "manifests" / obj["kind"].lower()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:02d}-{obj['metadata']['name']}.yaml").write_text(yaml.safe_dump(obj))
    (tmp_path / "manifests" / "README.md").write_text("not read\n")
    whole = list(get_importer("kubernetes").parse(BOUTIQUE))

    # Act
    split = list(get_importer("kubernetes").parse_files([tmp_path / "manifests"]))

    # Assert: the same CIs and relationships; each record names its own file
    assert _graph(split) == _graph(whole)
    assert len(objects) == 23
    cart = next(r for r in split if isinstance(r, CIRecord) and r.name == "default/cartservice")
    assert cart.origin.file.endswith("deployment/12-cartservice.yaml")
    assert cart.origin.record == "document 1 (Deployment default/cartservice)"


def test_a_service_in_its_own_file_joins_its_workload(tmp_path: Path) -> None:
    # Arrange: the VALID manifests, one object per file, given as files (not a folder)
    paths = []
    for i, doc in enumerate(VALID.split(b"---\n")):
        paths.append(tmp_path / f"{i}.yaml")
        paths[-1].write_bytes(doc)

    # Act
    records = list(get_importer("kubernetes").parse_files(paths))

    # Assert: one CI for db (its Service folded in), web depends on it
    assert {r.name for r in records if isinstance(r, CIRecord)} == {
        "default/web", "default/db", "namespace default"}
    assert ("default/web", "DEPENDS_ON", "default/db") in _edges(records)


def test_a_folder_without_manifests_is_one_located_error(tmp_path: Path) -> None:
    # Arrange
    (tmp_path / "notes.txt").write_text("nothing\n")

    # Act / Assert
    with pytest.raises(InvalidRecordError, match="holds no") as info:
        list(get_importer("kubernetes").parse_files([tmp_path]))
    assert info.value.file == str(tmp_path)


STORAGE = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: orders-db
  namespace: shop
  labels: {app.kubernetes.io/part-of: webshop}
spec:
  replicas: 3
  template:
    metadata: {labels: {app: orders-db}}
    spec:
      containers: [{name: db, image: "postgres:16"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: fast
      resources: {requests: {storage: 20Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
  labels: {app.kubernetes.io/part-of: webshop}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: example/api:1
        args: ["--db-url=jdbc:postgresql://orders-db:5432/orders"]
      volumes:
      - name: uploads
        persistentVolumeClaim: {claimName: uploads}
---
apiVersion: v1
kind: Service
metadata: {name: orders-db, namespace: shop}
spec: {selector: {app: orders-db}, ports: [{port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}, ports: [{port: 80}]}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: uploads, namespace: shop}
spec:
  accessModes: [ReadWriteMany]
  resources: {requests: {storage: 5Gi}}
  volumeName: nfs-uploads
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: nfs-uploads}
spec:
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  nfs: {server: nas-01.example.com, path: /exports/uploads}
  claimRef: {namespace: shop, name: uploads}
"""


def test_claims_and_volumes_are_storage_cis_the_workloads_depend_on(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "shop.yaml"
    path.write_text(STORAGE)

    # Act
    records = list(get_importer("kubernetes").parse(path))

    # Assert: the claim, the StatefulSet's claim template and the volume are CIs
    cis = {r.name: r for r in records if isinstance(r, CIRecord)}
    assert {n: r.ci_class for n, r in cis.items() if r.ci_class != "Container"} == {
        "shop/pvc/uploads": "StorageVolume", "shop/pvc/data-orders-db": "StorageVolume",
        "pv/nfs-uploads": "StorageVolume", "webshop": "ApplicationService"}
    assert cis["shop/pvc/data-orders-db"].attributes == {
        "namespace": "shop", "per_replica": True, "k8s_kind": "PersistentVolumeClaim",
        "storage_class": "fast", "access_modes": ["ReadWriteOnce"], "capacity": "20Gi"}
    assert cis["pv/nfs-uploads"].attributes["nfs"] == "nas-01.example.com:/exports/uploads"
    assert cis["shop/orders-db"].attributes["replicas"] == 3
    assert _edges(records) == {
        ("shop/api", "DEPENDS_ON", "shop/pvc/uploads"),
        ("shop/orders-db", "DEPENDS_ON", "shop/pvc/data-orders-db"),
        ("shop/pvc/uploads", "DEPENDS_ON", "pv/nfs-uploads"),
        ("shop/api", "DEPENDS_ON", "shop/orders-db"),  # from the JDBC URL in an argument
        ("webshop", "DEPENDS_ON", "shop/api"),  # the entry point of the part-of label
    }
    declared = {r.target.native_key: r for r in records
                if isinstance(r, RelationshipRecord) and not r.inferred}
    assert declared["shop/persistentvolumeclaim/uploads"].properties == {
        "declared_by": "spec.volumes.uploads"}
    jdbc = next(r for r in records if isinstance(r, RelationshipRecord)
                and r.target.native_key == "shop/statefulset/orders-db" and r.inferred)
    assert jdbc.evidence == (
        "arg db-url=jdbc:postgresql://orders-db:5432/orders in deployment/api (container api) "
        "-> service shop/orders-db selects app=orders-db")


def test_storage_ingested_a_volume_failure_reaches_the_application(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "shop.yaml"
    path.write_text(STORAGE)
    store = MemoryStore()
    result = run_import(store, list(get_importer("kubernetes").parse(path)), source="k8s",
                        importer="kubernetes")
    assert not result.plan.skips
    graph = store.dependency_graph()
    ci_id = {data["name"]: node for node, data in graph.nodes(data=True)}

    # Act
    status = propagate_status(ImpactGraph(graph), [ci_id["pv/nfs-uploads"]])

    # Assert
    assert {graph.nodes[n]["name"] for n in status.down} == {
        "shop/pvc/uploads", "shop/api", "webshop"}
