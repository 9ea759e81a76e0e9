"""Docker Compose importer: the voting app, every depends_on form, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Record, RelationshipRecord
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_yaml_mutant

REPO = Path(__file__).resolve().parents[3]
VOTING = (
    REPO / ".." / "shared" / "realdata" / "docker-compose" / "example-voting-app.docker-compose.yml"
)
FORMS = REPO / "tests" / "fixtures" / "importers" / "compose_depends_forms.yaml"

VALID = b"""services:
  web:
    depends_on:
      db:
        condition: service_healthy
    links: ["db:database"]
    image: nginx:1.27
  db:
    image: postgres:16
    networks: [back]
networks:
  back:
"""


def _edges(records: list[Record]) -> set[tuple[str, str, str]]:
    names = {r.identifiers.native_key: r.name for r in records if isinstance(r, CIRecord)}
    return {
        (names[r.source.native_key], r.rel_type, names[r.target.native_key])
        for r in records
        if isinstance(r, RelationshipRecord)
    }


def test_voting_app_services_and_networks() -> None:
    # Arrange / Act
    records = list(get_importer("compose", project="voting").parse(VOTING))

    # Assert
    cis = {(r.ci_class, r.name) for r in records if isinstance(r, CIRecord)}
    assert cis == {
        ("Container", "votes"),
        ("Container", "result"),
        ("Container", "worker"),
        ("Container", "redis"),
        ("Container", "db"),
        ("Network", "voting_front-tier"),
        ("Network", "voting_back-tier"),
        ("ApplicationService", "voting"),
    }
    # the file declares no depends_on and no setting names another service: its graph is
    # the networks each service joins, and the project's application service, which needs
    # what publishes ports (and, optionally, what nothing needs and publishes none)
    assert _edges(records) == {
        ("voting", "DEPENDS_ON", "votes"),
        ("voting", "DEPENDS_ON", "result"),
        ("voting", "DEPENDS_ON", "redis"),
        ("voting", "DEPENDS_ON", "worker"),
        ("voting", "DEPENDS_ON", "db"),
        ("votes", "CONNECTS_TO", "voting_front-tier"),
        ("votes", "CONNECTS_TO", "voting_back-tier"),
        ("result", "CONNECTS_TO", "voting_front-tier"),
        ("result", "CONNECTS_TO", "voting_back-tier"),
        ("worker", "CONNECTS_TO", "voting_back-tier"),
        ("redis", "CONNECTS_TO", "voting_back-tier"),
        ("db", "CONNECTS_TO", "voting_back-tier"),
    }
    db = next(r for r in records if isinstance(r, CIRecord) and r.name == "db")
    assert db.attributes["image"] == "postgres:9.4"
    assert db.attributes["named_volumes"] == ["db-data"]
    assert db.identifiers.native_key == "voting/db"
    optional = {r.target.native_key for r in records
                if isinstance(r, RelationshipRecord) and r.optional}
    assert optional == {"voting/worker", "voting/db"}


def test_project_defaults_to_the_folder_name() -> None:
    # Arrange / Act
    records = list(get_importer("compose").parse(VOTING))

    # Assert
    assert {r.identifiers.native_key for r in records if isinstance(r, CIRecord)} >= {
        "docker-compose/votes",
        "docker-compose/network/back-tier",
    }


def test_every_depends_on_form() -> None:
    # Arrange / Act
    records = list(get_importer("compose").parse(FORMS))

    # Assert
    rels = {
        (r.source.native_key, r.rel_type, r.target.native_key): r
        for r in records
        if isinstance(r, RelationshipRecord)
    }
    deps = {k: (r.optional, r.properties) for k, r in rels.items()
            if k[1] == "DEPENDS_ON" and k[0] != "shop"}  # not the application service's
    assert deps == {
        ("shop/web", "DEPENDS_ON", "shop/api"): (False, {"declared_by": "depends_on"}),
        ("shop/api", "DEPENDS_ON", "shop/db"): (
            False, {"declared_by": "depends_on", "condition": "service_healthy"}),
        ("shop/api", "DEPENDS_ON", "shop/migrate"): (
            False,
            {"declared_by": "depends_on", "condition": "service_completed_successfully"},
        ),
        ("shop/api", "DEPENDS_ON", "shop/cache"): (
            True, {"declared_by": "depends_on", "condition": "service_started"}),
        ("shop/migrate", "DEPENDS_ON", "shop/db"): (False, {"declared_by": "depends_on"}),
        ("shop/sidecar", "DEPENDS_ON", "shop/api"): (False, {"declared_by": "network_mode"}),
    }
    assert not any(r.inferred for k, r in rels.items() if k[0] != "shop")
    assert {e for e in _edges(records) if e[1] == "CONNECTS_TO"} == {
        ("web", "CONNECTS_TO", "shop-frontend"),  # the network's own name
        ("api", "CONNECTS_TO", "shop-frontend"),
        ("api", "CONNECTS_TO", "shop_back"),
        ("migrate", "CONNECTS_TO", "shop_back"),
        ("db", "CONNECTS_TO", "shop_back"),
        ("cache", "CONNECTS_TO", "shop_default"),  # no networks: the default one
        # sidecar shares api's network stack: no network of its own
    }
    nets = {r.name: r.attributes for r in records
            if isinstance(r, CIRecord) and r.ci_class == "Network"}
    assert nets["shared"]["external"] is True
    api = next(r for r in records if isinstance(r, CIRecord) and r.name == "api")
    assert api.attributes["build"] == "./api"
    assert api.attributes["named_volumes"] == ["uploads"]  # ./config is a bind mount


def test_links_alone_make_a_dependency(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  a: {image: x, links: ['b:alias']}\n  b: {image: y}\n")

    # Act
    records = list(get_importer("compose", project="p").parse(path))

    # Assert
    [rel] = [r for r in records if isinstance(r, RelationshipRecord) and r.rel_type ==
             "DEPENDS_ON" and r.source.native_key != "p"]
    assert (rel.source.native_key, rel.target.native_key) == ("p/a", "p/b")
    assert rel.properties == {"declared_by": "links"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("services:\n  a: {image: x, depends_on: [nope]}\n", "depends_on"),
        ("services:\n  a: {image: x, depends_on: {b: {condition: sometimes}}}\n"
         "  b: {image: y}\n", "depends_on.b.condition"),
        ("services:\n  a: {image: x, networks: [ghost]}\n", "networks"),
        ("services:\n  a: {command: run}\n", "image"),
        ("version: '3'\n", "services"),
    ],
)
def test_bad_references_name_service_and_field(tmp_path: Path, text: str, field: str) -> None:
    # Arrange
    path = tmp_path / "compose.yaml"
    path.write_text(text)

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("compose").parse(path))

    # Assert
    assert info.value.file == str(path)
    assert info.value.field == field


def test_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("compose"),
        VALID,
        fmt="yaml",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b"    image: postgres:16\n", b""),
        required_field="image",
    )


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_gives_records_or_one_clear_error(data: st.DataObject) -> None:
    # one value of a valid file replaced by arbitrary YAML-able data
    documents = list(yaml.safe_load_all(FORMS.read_text()))
    check_yaml_mutant(get_importer("compose"), documents, data)


def test_replicas_are_kept_on_the_service(tmp_path: Path) -> None:
    # Arrange: deploy.replicas, and the legacy scale
    path = tmp_path / "compose.yaml"
    path.write_text("name: shop\nservices:\n"
                    "  web: {image: nginx, deploy: {replicas: 3}}\n"
                    "  worker: {image: example/worker, scale: 2}\n"
                    "  db: {image: postgres}\n")

    # Act
    records = list(get_importer("compose").parse(path))

    # Assert
    replicas = {r.name: r.attributes.get("replicas") for r in records
                if isinstance(r, CIRecord) and r.ci_class == "Container"}
    assert replicas == {"web": 3, "worker": 2, "db": None}


def test_replicas_that_are_no_number_name_service_and_field(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  web: {image: nginx, deploy: {replicas: many}}\n")

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("compose").parse(path))
    assert (info.value.record, info.value.field) == ("services.web", "deploy.replicas")


#: Sock Shop's services as a compose file that declares no dependency at all: only settings
#: name the others (environment list and map forms, arguments, connection strings).
SOCKS = """\
name: sockshop
services:
  front-end:
    image: weaveworksdemos/front-end
    ports: ["80:8079"]
    environment:
      - CATALOGUE_URL=http://catalogue:80
      - CARTS_URL=http://carts:80/carts
      - SESSION_REDIS=true
  catalogue:
    image: weaveworksdemos/catalogue
    command: ["/app", "-port=80", "-DSN=catalogue_user:pw@tcp(catalogue-db:3306)/socksdb"]
  catalogue-db: {image: weaveworksdemos/catalogue-db}
  carts:
    image: weaveworksdemos/carts
    environment:
      JAVA_OPTS: -Xms64m -Dspring.data.mongodb.uri=mongodb://carts-db:27017/data
  carts-db: {image: "mongo:3.4"}
  orders:
    image: weaveworksdemos/orders
    ports: ["8081:80"]
    environment:
      - SPRING_DATASOURCE_URL=jdbc:mysql://order-mysql:3306/orders?useSSL=false
      - USER_HOST=user.sockshop.local
  order-mysql: {image: "mysql:8", hostname: order-mysql}
  user:
    image: weaveworksdemos/user
    environment: [MONGO_HOST=user-db, HOSTNAME=user]
    networks: {default: {aliases: [user.sockshop.local]}}
  user-db: {image: weaveworksdemos/user-db}
  queue-master:
    image: weaveworksdemos/queue-master
    environment: {RABBITMQ_HOST: rabbitmq, LOG_LEVEL: info, PORT: 80}
  rabbitmq: {image: "rabbitmq:3.6.8"}
"""


def test_settings_that_name_services_become_inferred_dependencies(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "docker-compose.yml"
    path.write_text(SOCKS)

    # Act
    records = list(get_importer("compose").parse(path))

    # Assert: one inferred DEPENDS_ON per service a setting names, with its evidence
    inferred = {(r.source.native_key, r.target.native_key): r for r in records
                if isinstance(r, RelationshipRecord) and r.inferred
                and r.source.native_key != "sockshop"}
    assert set(inferred) == {
        ("sockshop/front-end", "sockshop/catalogue"),
        ("sockshop/front-end", "sockshop/carts"),
        ("sockshop/catalogue", "sockshop/catalogue-db"),  # Go MySQL DSN in an argument
        ("sockshop/carts", "sockshop/carts-db"),  # MongoDB URI inside JAVA_OPTS
        ("sockshop/orders", "sockshop/order-mysql"),  # JDBC URL
        ("sockshop/orders", "sockshop/user"),  # a network alias
        ("sockshop/user", "sockshop/user-db"),  # a bare name under *_HOST
        ("sockshop/queue-master", "sockshop/rabbitmq"),  # environment map form
        # not: HOSTNAME=user (the service itself), SESSION_REDIS=true, PORT=80
    }
    jdbc = inferred[("sockshop/orders", "sockshop/order-mysql")]
    assert jdbc.evidence == ("environment.SPRING_DATASOURCE_URL=jdbc:mysql://order-mysql:3306/"
                             "orders?useSSL=false in services.orders names service order-mysql")
    assert jdbc.properties == {
        "evidence_key": "environment.SPRING_DATASOURCE_URL",
        "evidence_value": "jdbc:mysql://order-mysql:3306/orders?useSSL=false", "port": 3306}
    assert (jdbc.origin.file, jdbc.origin.record) == (str(path), "services.orders")
    dsn = inferred[("sockshop/catalogue", "sockshop/catalogue-db")]
    assert dsn.properties["evidence_key"] == "command.DSN"
    # the project is the application service: it needs what publishes ports and nothing
    # exposed needs, and optionally the worker nothing needs
    app = {(r.target.native_key, r.optional) for r in records
           if isinstance(r, RelationshipRecord) and r.source.native_key == "sockshop"}
    assert app == {("sockshop/front-end", False), ("sockshop/orders", False),
                   ("sockshop/queue-master", True)}
    assert ("ApplicationService", "sockshop") in {
        (r.ci_class, r.name) for r in records if isinstance(r, CIRecord)}


def test_a_declared_dependency_stays_declared(tmp_path: Path) -> None:
    # Arrange: depends_on and an environment value name the same service
    path = tmp_path / "compose.yaml"
    path.write_text("name: p\nservices:\n"
                    "  api: {image: x, depends_on: [db], environment: [DB_HOST=db]}\n"
                    "  db: {image: postgres}\n")

    # Act
    records = list(get_importer("compose").parse(path))

    # Assert
    [rel] = [r for r in records if isinstance(r, RelationshipRecord)
             and r.rel_type == "DEPENDS_ON" and r.source.native_key == "p/api"]
    assert not rel.inferred and rel.properties == {"declared_by": "depends_on"}
