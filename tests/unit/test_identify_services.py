"""One CI per service across sources: the ``name_system`` identification rule matches the same
service of one application from a compose file, Kubernetes manifests (Online Boutique, from
``../shared/realdata``) and Backstage descriptors; ``cmdb-graph explain`` shows which rule
matched which CI; the same service name in another system is a duplicate candidate, not a
merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.ingest.identify import CIIndex, RecordKeys, match_rule
from cmdb_graph.model import ConfigurationItem, Identifiers, Registry

_register()

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
BOUTIQUE = REALDATA / "k8s" / "online-boutique-kubernetes-manifests.yaml"

pytestmark = [
    pytest.mark.usefixtures("wide_tables"),
    pytest.mark.skipif(not BOUTIQUE.is_file(), reason="../shared/realdata is not there"),
]

BACKSTAGE = """\
apiVersion: backstage.io/v1alpha1
kind: System
metadata: {name: online-boutique}
spec: {owner: team-shop}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: cartservice}
spec: {type: service, owner: team-shop, lifecycle: production, system: online-boutique,
       dependsOn: ["resource:redis-cart"]}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: redis-cart}
spec: {type: database, owner: team-shop, system: online-boutique}
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def compose_of_boutique() -> str:
    """A compose file of the same application, written from the manifests' Deployments (same
    services, images and environment; the frontend publishes its port)."""
    services = {}
    for doc in yaml.safe_load_all(BOUTIQUE.read_text()):
        if doc and doc["kind"] == "Deployment":
            c = doc["spec"]["template"]["spec"]["containers"][0]
            spec = {"image": c["image"],
                    "environment": {e["name"]: e["value"] for e in c.get("env", [])
                                    if "value" in e}}
            if doc["metadata"]["name"] == "frontend":
                spec["ports"] = ["8080:8080"]
            services[doc["metadata"]["name"]] = spec
    return yaml.safe_dump({"name": "online-boutique", "services": services})


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Online Boutique from compose, then its manifests (namespace online-boutique), then
    Backstage, all through the CLI into one database."""
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    db = tmp_path / "estate.db"
    compose = tmp_path / "compose.yml"
    compose.write_text(compose_of_boutique())
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text(BACKSTAGE)
    for args in (("compose", str(compose), "--source", "compose"),
                 ("kubernetes", str(BOUTIQUE), "--source", "k8s",
                  "--option", "default_namespace=online-boutique"),
                 ("backstage", str(catalog), "--source", "backstage")):
        code, _, err = invoke("import", *args, "--db", str(db))
        assert code == 0, err
    return db


def cis_by_name(db: Path) -> dict[str, list[dict[str, object]]]:
    code, out, err = invoke("export", "--format", "json", "--db", str(db))
    assert code == 0, err
    found: dict[str, list[dict[str, object]]] = {}
    for node in json.loads(out)["nodes"]:
        found.setdefault(str(node["name"]), []).append(node)
    return found


def test_compose_kubernetes_and_backstage_give_one_ci_per_service(estate: Path) -> None:
    # Act
    cis = cis_by_name(estate)
    code, out, err = invoke("export", "--format", "json", "--db", str(estate))

    # Assert: the 12 services of the compose file are 12 CIs, each seen by compose and k8s
    assert code == 0, err
    services = ["adservice", "cartservice", "checkoutservice", "currencyservice",
                "emailservice", "frontend", "loadgenerator", "paymentservice",
                "productcatalogservice", "recommendationservice", "redis-cart",
                "shippingservice"]
    for name in services:
        assert len(cis[name]) == 1, (name, cis[name])
        keys = cis[name][0]["native_keys"]
        assert f"compose:online-boutique/{name}" in keys
        assert f"k8s:online-boutique/deployment/{name}" in keys
    assert not [n for n in cis if n.startswith("online-boutique/")]  # no k8s-named twin
    # Backstage's component and resource are the same CIs, the system the application service
    assert "backstage:component:default/cartservice" in cis["cartservice"][0]["native_keys"]
    assert "backstage:resource:default/redis-cart" in cis["redis-cart"][0]["native_keys"]
    app_services = [n for n, v in cis.items() if v[0]["ci_class"] == "ApplicationService"]
    assert app_services == ["online-boutique"]
    assert set(cis["online-boutique"][0]["native_keys"]) >= {
        "compose:online-boutique", "k8s:namespace/online-boutique",
        "backstage:system:default/online-boutique"}


def test_explain_shows_the_rule_that_matched_each_source(estate: Path) -> None:
    # Act
    code, out, err = invoke("explain", "redis-cart", "--db", str(estate))
    data = json.loads(invoke("explain", "redis-cart", "--json", "--db", str(estate))[1])

    # Assert
    assert code == 0, err
    assert "redis-cart [Container]" in out
    assert "service 'redis-cart' in system 'online-boutique'" in out
    by_source = {s["source"]: s["identified_by"] for s in data["sources"]}
    assert by_source["compose"] == "created it"
    assert by_source["k8s"].startswith(
        f"name_system 'redis-cart@online-boutique' matched {data['ci_id']} 'redis-cart'")
    assert "seen by compose, k8s" in by_source["backstage"]
    assert "name_system 'redis-cart@online-boutique' matched" in out
    assert data["duplicate_candidates"] == []


def test_same_service_in_another_system_is_a_duplicate_candidate(estate: Path) -> None:
    # Act: the manifests again from another source, without the namespace option (default)
    code, out, err = invoke("import", "kubernetes", str(BOUTIQUE), "--source", "k8s-default",
                            "--db", str(estate))
    cis = cis_by_name(estate)
    data = json.loads(invoke("explain", "cartservice", "--json", "--db", str(estate))[1])
    report = json.loads(invoke("orphans", "duplicate_candidates", "--json",
                               "--db", str(estate))[1])

    # Assert: not merged, reported by the run, by explain and by the quality report
    assert code == 0, err
    assert len(cis["cartservice"]) == 1 and len(cis["default/cartservice"]) == 1
    other = cis["default/cartservice"][0]["ci_id"]
    assert ("duplicate candidate: Container 'default/cartservice'" in out
            and "system 'default' here and 'online-boutique'" in out)
    assert [c["ci_ids"] for c in data["duplicate_candidates"]] == [[other]]
    assert "same service name 'cartservice' in different systems" in (
        data["duplicate_candidates"][0]["evidence"])
    details = [f["detail"] for f in report["duplicate_candidates"]["findings"]]
    assert sum("same service name" in d for d in details) == 12


def test_name_system_matches_within_the_class_group_only() -> None:
    # Arrange: a container and a server that carry the same service and system
    reg = Registry()
    ix = CIIndex()
    attrs = {"service_name": "db", "system": "Shop"}
    ix.put_all([ConfigurationItem(ci_id="c1", name="shop/db", ci_class="Container",
                                  attributes=attrs),
                ConfigurationItem(ci_id="s1", name="db", ci_class="Server", attributes=attrs)])
    keys = RecordKeys.of(Identifiers(name="db", service="DB", system="shop"), "src")

    # Act
    as_app = match_rule(ix, reg, "name_system", keys, ci_class="Database")
    as_other_system = match_rule(
        ix, reg, "name_system",
        RecordKeys.of(Identifiers(name="db", system="billing"), "src"), ci_class="Database")

    # Assert: the container (case and slug insensitive), never the server; no other system
    assert [c.ci_id for c in as_app] == ["c1"]
    assert as_other_system == []


def test_services_of_a_later_run_join_their_workloads(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: Online Boutique split by kind: the Deployments in one run, the Services later
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    docs = [d for d in yaml.safe_load_all(BOUTIQUE.read_text()) if d]
    deployments, services = tmp_path / "deployments.yaml", tmp_path / "services.yaml"
    deployments.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] == "Deployment"]))
    storefront = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "storefront"},
                  "spec": {"type": "LoadBalancer", "selector": {"app": "frontend"},
                           "ports": [{"port": 80, "targetPort": 8080}]}}
    services.write_text(yaml.safe_dump_all(
        [d for d in docs if d["kind"] == "Service"] + [storefront]))
    db = tmp_path / "estate.db"
    code, _, err = invoke("import", "kubernetes", str(deployments), "--source", "k8s",
                          "--db", str(db))
    assert code == 0, err

    # Act: the Services' run, twice (a re-run changes nothing)
    code, _, err = invoke("import", "kubernetes", str(services), "--source", "k8s",
                          "--db", str(db))
    cis = cis_by_name(db)
    again, out, _ = invoke("import", "kubernetes", str(services), "--source", "k8s",
                           "--db", str(db), "--json")

    # Assert: no Service is a CI of its own; each workload (still a Container) carries its
    # Services' keys, the frontend also storefront's (selector app=frontend)
    assert code == 0, err
    assert not [n for n, v in cis.items() if v[0]["ci_class"] == "Application"]
    assert len(cis["default/cartservice"]) == 1
    assert "k8s:default/service/cartservice" in cis["default/cartservice"][0]["native_keys"]
    assert {"k8s:default/service/frontend", "k8s:default/service/storefront"} <= set(
        cis["default/frontend"][0]["native_keys"])
    assert len([n for n in cis if n.startswith("default/")]) == 12
    assert {v[0]["ci_class"] for n, v in cis.items() if n.startswith("default/")} == {
        "Container"}
    def shape(found: dict[str, list[dict[str, object]]]) -> dict[str, object]:
        return {n: [(c["ci_id"], c["ci_class"], sorted(c["native_keys"])) for c in v]
                for n, v in found.items()}
    assert again == 0 and shape(cis_by_name(db)) == shape(cis)
    # the dependencies the Deployments' environment names (REDIS_ADDR=redis-cart:6379, ...)
    # are there although their Services came later: the same as from the single file
    whole = tmp_path / "whole.db"
    assert invoke("import", "kubernetes", str(BOUTIQUE), "--source", "k8s",
                  "--db", str(whole))[0] == 0
    assert workload_dependencies(db) == workload_dependencies(whole)
    assert ("default/cartservice", "default/redis-cart") in workload_dependencies(db)


def workload_dependencies(db: Path) -> set[tuple[str, str]]:
    """DEPENDS_ON between two Containers, by name."""
    code, out, err = invoke("export", "--format", "json", "--db", str(db))
    assert code == 0, err
    data = json.loads(out)
    names = {n["ci_id"]: n["name"] for n in data["nodes"] if n["ci_class"] == "Container"}
    return {(names[r["source"]], names[r["target"]]) for r in data["relationships"]
            if r["rel_type"] == "DEPENDS_ON" and r["source"] in names and r["target"] in names}


SAASBOM = REALDATA / "cyclonedx" / "saasbom-apigateway-microservices-datastores.bom.json"

ACME_COMPOSE = """\
name: acme-cloud-example
services:
  api-gateway:
    image: acme/gateway
    ports: ["443:8443"]
    environment: {MS1_URL: "http://microservice-1:8080"}
  microservice-1:
    image: acme/ms1
    environment: {DATABASE_URL: "postgres://postgres:5432/acme"}
  postgres:
    image: postgres:16
"""


def test_an_sboms_services_are_the_compose_services_of_its_subject(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: the real SaaSBOM (subject 'Acme Cloud Example', services 'API Gateway',
    # 'Microservice 1', 'Postgres', ...) and a compose file of that application, written here
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    db = tmp_path / "estate.db"
    compose = tmp_path / "compose.yml"
    compose.write_text(ACME_COMPOSE)
    code, _, err = invoke("import", "compose", str(compose), "--source", "compose",
                          "--db", str(db))
    assert code == 0, err

    # Act
    code, _, err = invoke("import", "cyclonedx", str(SAASBOM), "--source", "sbom",
                          "--db", str(db))
    cis = cis_by_name(db)

    # Assert: the three compose services carry the SBOM's keys; the others stay the SBOM's
    assert code == 0, err
    for name, sbom_name in (("api-gateway", "API Gateway"),
                            ("microservice-1", "Microservice 1"), ("postgres", "Postgres")):
        assert len(cis[name]) == 1
        assert any(k.startswith("sbom:") and sbom_name in k
                   for k in cis[name][0]["native_keys"]), cis[name]
        assert sbom_name not in cis
    assert "Microservice 2" in cis and "S3" in cis


def test_an_address_names_a_workload_of_an_earlier_run(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: redis-cart's Deployment in one run; cartservice's (REDIS_ADDR=redis-cart:6379)
    # in a later one, with no Service anywhere
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(BOUTIQUE.read_text())
            if d and d["kind"] == "Deployment"}
    db = tmp_path / "estate.db"
    for name in ("redis-cart", "cartservice"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(docs[name]))
        code, _, err = invoke("import", "kubernetes", str(path), "--source", "k8s",
                              "--db", str(db))
        assert code == 0, err

    # Act
    deps = workload_dependencies(db)
    code, out, err = invoke("import", "kubernetes", str(tmp_path / "cartservice.yaml"),
                            "--source", "k8s", "--db", str(db), "--json")

    # Assert: found by service name in the namespace (name_system), nothing skipped on a re-run
    assert deps == {("default/cartservice", "default/redis-cart")}
    assert code == 0, err
    assert json.loads(out)["skips"] == []
