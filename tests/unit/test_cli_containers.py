"""Container estates from the command line: replicas in ``map``, the application service of
a Kubernetes or compose import answering ``impact --services-only``, inferred hops on paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app

_register()

pytestmark = pytest.mark.usefixtures("wide_tables")

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app.kubernetes.io/part-of: webshop}}
spec:
  replicas: 3
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: example/web, env: [{name: DB_HOST, value: db}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop, labels: {app.kubernetes.io/part-of: webshop}}
spec:
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "postgres:16"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {selector: {app: db}}
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database holding the manifests above, imported through the CLI."""
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    path = tmp_path / "shop.yaml"
    path.write_text(MANIFESTS)
    snapshot = tmp_path / "shop.db"
    code, _, err = invoke("import", "kubernetes", str(path), "--source", "k8s",
                          "--db", str(snapshot))
    assert code == 0, err
    return snapshot


def test_map_shows_the_replicas_of_workloads(shop: Path) -> None:
    # Act
    code, out, err = invoke("map", "webshop", "--db", str(shop))
    data = json.loads(invoke("map", "webshop", "--json", "--db", str(shop))[1])

    # Assert: the application service, its entry point with 3 replicas, the database
    assert code == 0, err
    assert "Service map of webshop [ApplicationService]" in out
    assert "shop/web [Container, 3 replicas]" in out
    assert "shop/db [Container]" in out
    names = {n["ci_id"]: n["name"] for n in data["service_map"]["nodes"]}
    assert {names[c]: n for c, n in data["replicas"].items()} == {"shop/web": 3}


REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
BOUTIQUE = REALDATA / "k8s" / "online-boutique-kubernetes-manifests.yaml"


@pytest.mark.skipif(not BOUTIQUE.exists(), reason="../shared/realdata is not there")
def test_boutique_redis_cart_by_name_reaches_the_application_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: the Online Boutique manifests imported through the CLI
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    snapshot = tmp_path / "boutique.db"
    code, _, err = invoke("import", "kubernetes", str(BOUTIQUE), "--source", "k8s",
                          "--db", str(snapshot))
    assert code == 0, err

    # Act
    code, out, err = invoke("impact", "redis-cart", "--services-only", "--db",
                            str(snapshot))
    data = json.loads(invoke("impact", "redis-cart", "--services-only", "--json",
                             "--db", str(snapshot))[1])

    # Assert: the namespace's application service is down, through inferred hops whose
    # evidence is printed
    assert code == 0, err
    assert "Impact of default/redis-cart: 1 CI(s), 1 service(s)" in out
    assert ("default/redis-cart ~> default/cartservice ~> default/frontend ~> "
            "namespace default") in out
    assert ("default/cartservice -[DEPENDS_ON]-> default/redis-cart, confidence 0.90: env "
            "REDIS_ADDR=redis-cart:6379 in deployment/cartservice (container server) -> "
            f"service default/redis-cart selects app=redis-cart ({BOUTIQUE})") in out
    [service] = data["impacted"]
    assert (service["name"], service["ci_class"], service["status"]) == (
        "namespace default", "ApplicationService", "down")
    # --json carries each hop's relationship: basis, confidence, evidence and its file
    [hops] = service["links"]
    assert [(h["rel_type"], h["basis"]) for h in hops] == [("DEPENDS_ON", "inferred")] * 3
    assert hops[0]["evidence"].startswith("env REDIS_ADDR=redis-cart:6379")
    assert hops[0]["evidence_file"] == str(BOUTIQUE)
    assert [h["confidence"] for h in hops] == [0.9, 0.9, 0.7]
    assert service["confidence"] == round(0.9 * 0.9 * 0.7, 6)


SOCKS = """\
name: sockshop
services:
  orders:
    image: weaveworksdemos/orders
    ports: ["8081:80"]
    environment: [USER_URL=http://user:80, DB_URL=jdbc:mysql://order-mysql:3306/orders]
  order-mysql: {image: "mysql:8"}
  user:
    image: weaveworksdemos/user
    environment: [MONGO_HOST=user-db]
  user-db: {image: weaveworksdemos/user-db}
"""


def test_compose_without_depends_on_answers_services_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: a compose file that declares no dependency
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    path = tmp_path / "docker-compose.yml"
    path.write_text(SOCKS)
    snapshot = tmp_path / "socks.db"
    code, _, err = invoke("import", "compose", str(path), "--source", "compose",
                          "--db", str(snapshot))
    assert code == 0, err

    # Act
    code, out, err = invoke("impact", "user-db", "--services-only", "--db",
                            str(snapshot))

    # Assert
    assert code == 0, err
    assert "Impact of user-db: 1 CI(s), 1 service(s)" in out
    assert "user-db ~> user ~> orders ~> sockshop" in out
    # a bare word under an address-like key: inferred, with confidence 0.7
    assert ("user -[DEPENDS_ON]-> user-db, confidence 0.70: environment.MONGO_HOST=user-db "
            f"in services.user names service user-db ({path})") in out
