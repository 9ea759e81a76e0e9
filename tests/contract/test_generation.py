"""The store's ``generation``: every kind of write that changes something increases it, no read
changes it (on Neo4j it is the feed head: a write that changes nothing records nothing).

The API engine keys its cached whole graph on it (on Neo4j together with the count-store
totals, see ``test_neo4j_graph_cache.py``), so a write that did not bump it would leave
questions answered from a stale graph.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cmdb_graph.model import SupportGroup
from cmdb_graph.service.engine import Engine
from cmdb_graph.store.base import CIFilter, Direction, GraphStore, WriteBatch
from tests.contract.estate import ci, estate_batch, rel

WRITES: dict[str, Callable[[GraphStore], object]] = {
    "apply a batch": lambda s: s.apply(WriteBatch(nodes=[ci("new", "Server")],
                                                  relationships=[rel("RUNS_ON", "web", "new")])),
    "upsert a CI that exists (one field changed)": lambda s: s.upsert_nodes(
        [s.get_ci("vm1").model_copy(update={"environment": "test"})]),
    "upsert a node of another label": lambda s: s.upsert_nodes(
        [SupportGroup(group_id="grp-new", name="New")]),
    "upsert a relationship": lambda s: s.upsert_relationships(
        [rel("DEPENDS_ON", "svc", "db", optional=True)]),
    "delete a relationship": lambda s: s.delete_relationships([("RUNS_ON", "web", "vm1")]),
    "clear": lambda s: s.clear(),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_every_kind_of_write_increases_the_generation(store: GraphStore, write: str) -> None:
    # Arrange
    store.apply(estate_batch())
    before = store.generation

    # Act
    WRITES[write](store)

    # Assert
    assert store.generation > before


def test_the_first_write_increases_the_generation(store: GraphStore) -> None:
    before = store.generation

    store.apply(estate_batch())

    assert store.generation > before


def test_reads_do_not_change_the_generation(store: GraphStore) -> None:
    # Arrange
    store.apply(estate_batch())
    before = store.generation

    # Act: every read of the protocol, and questions through the engine
    store.ping()
    store.get_ci("vm1")
    store.get_cis(["vm1", "ghost"])
    store.get_node("SupportGroup", "grp-infra")
    store.get_nodes("Asset", ["A-1"])
    store.assets_tracking(["hv1"])
    store.find_cis({"serial_number": "SN-1", "hostname": "hv2"})
    store.list_cis(CIFilter(ci_class="Hypervisor"))
    store.list_nodes("Asset")
    store.relationships("vm1")
    store.relationships()
    store.neighbourhood("vm1", depth=2)
    store.extract_subgraph(["hv1"], direction=Direction.UPSTREAM)
    store.dependency_graph()
    store.counts()
    engine = Engine(store)
    engine.change_impact(["hv1"])
    engine.route_incident("web")
    engine.report("unmanaged_cis")

    # Assert
    assert store.generation == before
