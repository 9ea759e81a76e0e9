"""The API engine's cached graph on Neo4j sees every write, from any process.

Each test uses TWO ``Neo4jStore`` instances on the same database, as two API processes or an
API and a CLI import would: the engine answers on one, the writes go through the other (or
through raw Cypher, outside cmdb-graph).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from neo4j import Driver, GraphDatabase

from cmdb_graph.model import ConfigurationItem, Registry
from cmdb_graph.service.engine import Engine
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore, WriteBatch
from cmdb_graph.store.neo4j import Neo4jStore
from tests.contract.estate import ci, estate_batch, rel

pytestmark = pytest.mark.neo4j


def _store(**kwargs: Any) -> Neo4jStore:
    return Neo4jStore(
        os.environ["NEO4J_URI"],
        os.environ.get("NEO4J_USER", "neo4j"),
        os.environ.get("NEO4J_PASSWORD", ""),
        registry=Registry(),
        **kwargs,
    )


@pytest.fixture
def other(neo4j_store: GraphStore) -> Iterator[Neo4jStore]:
    """A second store (its own driver) on the emptied test database."""
    store = _store()
    yield store
    store.close()


@pytest.fixture
def raw(neo4j_store: GraphStore) -> Iterator[Driver]:
    """A plain driver: writes made outside cmdb-graph."""
    driver = GraphDatabase.driver(
        os.environ["NEO4J_URI"],
        auth=(os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", "")),
    )
    yield driver
    driver.close()


def impacted(engine: Engine, ci_id: str) -> set[str]:
    return {c.ci_id for c in engine.change_impact([ci_id]).impacted}


def test_a_write_through_another_store_is_seen_on_the_next_question(
    neo4j_store: GraphStore, other: Neo4jStore
) -> None:
    # Arrange: the engine has answered once, so its graph is cached
    other.apply(estate_batch())
    engine = Engine(neo4j_store)
    assert "new-app" not in impacted(engine, "vm2")

    # Act: another store (another process) adds a dependent of vm2
    other.apply(WriteBatch(nodes=[ci("new-app", "Application")],
                           relationships=[rel("RUNS_ON", "new-app", "vm2")]))

    # Assert
    assert "new-app" in impacted(engine, "vm2")
    assert engine.route_incident("new-app").ci_id == "new-app"


def test_a_delete_through_another_store_is_seen(
    neo4j_store: GraphStore, other: Neo4jStore
) -> None:
    other.apply(estate_batch())
    engine = Engine(neo4j_store)
    assert "db" in impacted(engine, "vm2")

    other.delete_relationships([("RUNS_ON", "db", "vm2")])

    assert "db" not in impacted(engine, "vm2")


def test_a_property_change_through_another_store_is_seen(
    neo4j_store: GraphStore, other: Neo4jStore
) -> None:
    other.apply(estate_batch())
    engine = Engine(neo4j_store)
    assert engine.route_incident("web").ci_id == "web"
    names = {c.ci_id: c.name for c in engine.change_impact(["vm1"]).impacted}
    assert names["web"] == "web name"

    other.upsert_nodes([other.get_ci("web").model_copy(update={"name": "renamed"})])

    names = {c.ci_id: c.name for c in engine.change_impact(["vm1"]).impacted}
    assert names["web"] == "renamed"


def test_a_clear_through_another_store_is_seen(
    neo4j_store: GraphStore, other: Neo4jStore
) -> None:
    other.apply(estate_batch())
    engine = Engine(neo4j_store)
    assert impacted(engine, "vm2")

    other.clear()
    other.apply(WriteBatch(nodes=[ci("vm2", "VirtualMachine")]))

    assert impacted(engine, "vm2") == set()


def test_a_batched_apply_is_seen(neo4j_store: GraphStore) -> None:
    # Arrange: a store whose apply runs in several transactions (over tx_limit)
    small = _store(batch_size=4, tx_limit=5)
    try:
        small.apply(estate_batch())
        engine = Engine(neo4j_store)
        assert impacted(engine, "vm2") == {"db", "app", "svc"}
        before = small.generation

        # Act
        nodes = [ci(f"n{i}", "Application") for i in range(12)]
        rels = [rel("RUNS_ON", f"n{i}", "vm2") for i in range(12)]
        small.apply(WriteBatch(nodes=list(nodes), relationships=list(rels)))

        # Assert: each transaction bumped the counter; the engine sees the whole batch
        assert small.generation >= before + 3
        assert impacted(engine, "vm2") == {"db", "app", "svc"} | {f"n{i}" for i in range(12)}
    finally:
        small.close()


def test_nodes_and_relationships_created_outside_cmdb_graph_are_seen(
    neo4j_store: GraphStore, raw: Driver
) -> None:
    # Arrange
    neo4j_store.apply(estate_batch())
    engine = Engine(neo4j_store)
    assert "ext" not in impacted(engine, "vm2")

    # Act: raw Cypher, no cmdb-graph write counter involved
    raw.execute_query(
        "MATCH (vm:CI {ci_id: 'vm2'}) "
        "CREATE (x:CI:Application {ci_id: 'ext', name: 'external', ci_class: 'Application', "
        "operational_status: 'operational'})-[:RUNS_ON]->(vm)",
        database_="neo4j",
    )

    # Assert
    assert "ext" in impacted(engine, "vm2")


def test_a_property_edit_outside_cmdb_graph_waits_for_a_rebuild(
    neo4j_store: GraphStore, raw: Driver
) -> None:
    # The documented limit: the counts do not move and the feed does not record it, so an
    # engine following the feed does not see it; an engine that (re)builds does.
    neo4j_store.apply(estate_batch())
    engine = Engine(neo4j_store)
    assert engine.route_incident("web").ci_id == "web"

    raw.execute_query("MATCH (c:CI {ci_id: 'web'}) SET c.name = 'edited outside'",
                      database_="neo4j")
    stale = {c.ci_id: c.name for c in engine.change_impact(["vm1"]).impacted}
    neo4j_store.upsert_nodes([ci("unrelated", "Server")])
    followed = {c.ci_id: c.name for c in engine.change_impact(["vm1"]).impacted}
    fresh = {c.ci_id: c.name for c in Engine(neo4j_store).change_impact(["vm1"]).impacted}

    assert stale["web"] == followed["web"] == "web name"
    assert fresh["web"] == "edited outside"


def test_a_database_wiped_outside_and_rebuilt_never_repeats_a_key(
    neo4j_store: Neo4jStore, raw: Driver
) -> None:
    wipe = "MATCH (n) DETACH DELETE n"
    raw.execute_query(wipe, database_="neo4j")
    neo4j_store.apply(estate_batch())
    first = neo4j_store.cache_key()

    raw.execute_query(wipe, database_="neo4j")
    neo4j_store.apply(estate_batch())

    assert neo4j_store.generation == first[1]  # the counter started again...
    assert neo4j_store.cache_key() != first  # ...under a new epoch


def test_without_the_cache_questions_extract_from_the_store(
    neo4j_store: GraphStore, other: Neo4jStore
) -> None:
    other.apply(estate_batch())
    cached = Engine(neo4j_store)
    direct = Engine(neo4j_store, Settings(graph_cache=False))

    assert cached.change_impact(["hv1"]) == direct.change_impact(["hv1"])
    other.apply(WriteBatch(nodes=[ci("new-app", "Application")],
                           relationships=[rel("RUNS_ON", "new-app", "vm2")]))
    assert cached.change_impact(["hv1"]) == direct.change_impact(["hv1"])
    assert "new-app" in impacted(direct, "hv1")


def test_concurrent_questions_after_a_write_agree(
    neo4j_store: GraphStore, other: Neo4jStore
) -> None:
    other.apply(estate_batch())
    engine = Engine(neo4j_store)
    engine.change_impact(["hv1"])
    other.apply(WriteBatch(nodes=[ci("new-app", "Application")],
                           relationships=[rel("RUNS_ON", "new-app", "vm2")]))

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: impacted(engine, "hv1"), range(12)))

    assert all(a == answers[0] for a in answers)
    assert "new-app" in answers[0]


def _full(g: Any) -> tuple[dict[str, Any], list[tuple[str, str, str, Any]]]:
    nodes = {k: dict(v) for k, v in g.nodes(data=True)}
    edges = sorted((s, t, k, sorted(d.items())) for s, t, k, d in g.edges(keys=True, data=True))
    return nodes, edges


@pytest.mark.parametrize("estate", ["hand-drawn", "synthetic-1000"])
def test_dependency_graph_equals_the_embedded_stores_attribute_for_attribute(
    neo4j_store: GraphStore, estate: str
) -> None:
    # Arrange: every field kind (lists, JSON dicts, datetimes with microseconds, evidence,
    # properties) on both stores
    from cmdb_graph.store.memory import MemoryStore
    from cmdb_graph.synthetic import generate_estate

    batch = estate_batch() if estate == "hand-drawn" else generate_estate(1000).to_batch()
    extra = [
        ci("full", "Server", attributes={"rack_u": 4, "tier": "gold"},
           first_seen="2024-01-01T00:00:00Z", last_seen="2024-05-06T07:08:09.123456+02:00",
           ip_addresses=["10.0.0.1"], redundancy="2", business_criticality=1,
           operational_status="retired"),
    ]
    target = next(n.key for n in batch.nodes if isinstance(n, ConfigurationItem))
    inferred = rel("DEPENDS_ON", "full", target, inferred=True,
                   evidence="netflow 2024-05", properties={"port": 443})
    batch = WriteBatch(nodes=[*batch.nodes, *extra],
                       relationships=[*batch.relationships, inferred])
    memory = MemoryStore(registry=Registry())
    memory.apply(batch)
    neo4j_store.apply(batch)

    # Act
    got = _full(neo4j_store.dependency_graph())
    want = _full(memory.dependency_graph())

    # Assert
    assert got[0] == want[0]
    assert got[1] == want[1]
    assert list(neo4j_store.dependency_graph().nodes) == sorted(want[0])
