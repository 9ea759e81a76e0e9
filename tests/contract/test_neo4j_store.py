"""What only the Neo4j store does: labels, materialised references, stubs, schema, batches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from neo4j import Driver, GraphDatabase
from neo4j.time import Date, DateTime

from cmdb_graph.errors import ConfigurationError, InvalidRecordError, StoreUnavailableError
from cmdb_graph.model import Registry, SupportGroup
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import Direction, WriteBatch
from cmdb_graph.store.neo4j import Neo4jStore
from tests.contract.estate import ci, estate_batch, rel


@pytest.fixture(scope="module")
def raw() -> Iterator[Driver]:
    """A plain driver on the test server, to look at what the store wrote."""
    uri = os.environ.get("NEO4J_URI", "")
    if not uri:
        pytest.skip("NEO4J_URI is not set")
    driver = GraphDatabase.driver(
        uri, auth=(os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", ""))
    )
    yield driver
    driver.close()


def query(driver: Driver, text: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(text, params, database_="neo4j")
    return [r.data() for r in records]


def labels_of(driver: Driver, ci_id: str) -> set[str]:
    rows = query(driver, "MATCH (n:CI {ci_id: $id}) RETURN labels(n) AS labels", id=ci_id)
    return set(rows[0]["labels"])


def supports(driver: Driver, ci_id: str) -> list[tuple[str, bool]]:
    rows = query(
        driver,
        "MATCH (g:SupportGroup)-[:SUPPORTS]->(:CI {ci_id: $id}) "
        "RETURN g.group_id AS g, g:Stub AS stub ORDER BY g",
        id=ci_id,
    )
    return [(r["g"], r["stub"]) for r in rows]


@pytest.mark.neo4j
def test_ci_labels_and_class_change(neo4j_store: Neo4jStore, raw: Driver) -> None:
    neo4j_store.apply(estate_batch())
    assert labels_of(raw, "hv1") == {"CI", "Hypervisor"}

    neo4j_store.upsert_nodes([neo4j_store.get_ci("hv1").model_copy(update={"ci_class":
                                                                          "Server"})])

    assert labels_of(raw, "hv1") == {"CI", "Server"}


@pytest.mark.neo4j
def test_reference_fields_become_relationships(neo4j_store: Neo4jStore, raw: Driver) -> None:
    neo4j_store.apply(estate_batch())

    assert supports(raw, "hv1") == [("grp-infra", False)]
    assert supports(raw, "svc") == [("grp-shop", True)]  # a stub: never written as a group
    tracks = query(raw, "MATCH (a:Asset)-[:TRACKS]->(c:CI) RETURN a.asset_id AS a, "
                        "c.ci_id AS c")
    assert tracks == [{"a": "A-1", "c": "hv1"}]

    neo4j_store.upsert_nodes([ci("hv1", support_group="grp-other")])
    assert supports(raw, "hv1") == [("grp-other", True)]
    neo4j_store.upsert_nodes([ci("hv1")])
    assert supports(raw, "hv1") == []


@pytest.mark.neo4j
def test_stub_becomes_the_real_node(neo4j_store: Neo4jStore, raw: Driver) -> None:
    neo4j_store.apply(estate_batch())

    neo4j_store.upsert_nodes([SupportGroup(group_id="grp-shop", name="Shop")])

    assert supports(raw, "svc") == [("grp-shop", False)]
    assert neo4j_store.counts()["SupportGroup"] == 2


@pytest.mark.neo4j
def test_list_references_follow_the_field(neo4j_store: Neo4jStore, raw: Driver) -> None:
    from tests.contract.test_store_contract import every_label_nodes

    neo4j_store.upsert_nodes(every_label_nodes())

    rows = query(raw, "MATCH (:Change {change_id: 'CHG1'})-[:AFFECTS]->(c:CI) "
                      "RETURN c.ci_id AS c, c:Stub AS stub ORDER BY c")
    assert rows == [{"c": "c-missing", "stub": True}, {"c": "c1", "stub": False}]
    groups = query(raw, "MATCH (:Person {person_id: 'p1'})-[:MEMBER_OF_GROUP]->(g) "
                        "RETURN g.group_id AS g ORDER BY g")
    assert groups == [{"g": "g1"}, {"g": "g2"}]


@pytest.mark.neo4j
def test_property_types(neo4j_store: Neo4jStore, raw: Driver) -> None:
    neo4j_store.apply(estate_batch())

    hv1 = query(raw, "MATCH (n:CI {ci_id: 'hv1'}) RETURN properties(n) AS p")[0]["p"]
    asset = query(raw, "MATCH (n:Asset) RETURN properties(n) AS p")[0]["p"]

    assert isinstance(hv1["lineage"], str)
    assert isinstance(asset["purchase_date"], Date)
    lineage = query(raw, "MATCH (n:CI {ci_id: 'hv1'}) RETURN n.ix_sources AS s")[0]["s"]
    assert lineage == ["vcenter"]
    neo4j_store.upsert_nodes([ci("t", "Server", first_seen="2024-01-01T00:00:00Z")])
    seen = query(raw, "MATCH (n:CI {ci_id: 't'}) RETURN n.first_seen AS f")[0]["f"]
    assert isinstance(seen, DateTime) and seen.utcoffset().total_seconds() == 0


@pytest.mark.neo4j
def test_schema_is_idempotent(neo4j_store: Neo4jStore, raw: Driver) -> None:
    neo4j_store.ensure_schema()
    neo4j_store.ensure_schema()

    names = {r["name"] for r in query(raw, "SHOW CONSTRAINTS YIELD name RETURN name")}
    indexes = {r["name"]: r["type"] for r in query(raw, "SHOW INDEXES YIELD name, type "
                                                        "RETURN name, type")}
    assert {"cmdb_ci_key", "cmdb_asset_key", "cmdb_supportgroup_key"} <= names
    assert indexes["cmdb_ci_serial_number"] == "RANGE"
    assert indexes["cmdb_ci_ix_native_keys"] == "TEXT"


def small_batch_store() -> Neo4jStore:
    return Neo4jStore(
        os.environ["NEO4J_URI"],
        os.environ.get("NEO4J_USER", "neo4j"),
        os.environ.get("NEO4J_PASSWORD", ""),
        batch_size=50,
        tx_limit=100,
    )


@pytest.mark.neo4j
def test_large_apply_runs_in_batches(neo4j_store: Neo4jStore) -> None:
    store = small_batch_store()
    try:
        n = 300
        cis = [ci(f"b{i:04d}", "Server", support_group=f"g{i % 7}") for i in range(n)]
        rels = [rel("CONNECTS_TO", f"b{i:04d}", f"b{i + 1:04d}") for i in range(n - 1)]

        store.apply(WriteBatch(nodes=cis, relationships=rels))
        store.apply(WriteBatch(nodes=cis, relationships=rels))

        counts = store.counts()
        assert counts["CI"] == n and counts["relationships"] == n - 1
        assert counts["SupportGroup"] == 0  # only stubs
        assert len(store.extract_subgraph(["b0000"], direction=Direction.DOWNSTREAM)) == n
    finally:
        store.close()


@pytest.mark.neo4j
def test_large_apply_validates_before_any_batch(neo4j_store: Neo4jStore) -> None:
    store = small_batch_store()
    try:
        cis = [ci(f"b{i:04d}", "Server") for i in range(300)]
        bad = [rel("CONNECTS_TO", "b0000", "ghost")]

        with pytest.raises(InvalidRecordError, match="ghost"):
            store.apply(WriteBatch(nodes=cis, relationships=bad))

        assert store.counts()["CI"] == 0
    finally:
        store.close()


def test_unreachable_server_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailableError):
        Neo4jStore("bolt://127.0.0.1:9", "neo4j", "x")


def test_from_settings_needs_a_uri() -> None:
    with pytest.raises(ConfigurationError, match="neo4j_uri"):
        Neo4jStore.from_settings(Settings(store="neo4j", neo4j_uri=None), registry=Registry())


def test_class_names_must_not_collide_with_labels() -> None:
    reg = Registry()
    reg.extend({"ci_classes": [{"name": "Person", "parent": "ConfigurationItem"}]})

    with pytest.raises(ConfigurationError, match="Person"):
        Neo4jStore("bolt://127.0.0.1:9", "neo4j", "x", registry=reg)
