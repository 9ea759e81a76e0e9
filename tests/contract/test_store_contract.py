"""The GraphStore contract: every test runs against MemoryStore and Neo4jStore alike."""

from __future__ import annotations

from datetime import UTC, date, datetime

import networkx as nx
import pytest

from cmdb_graph.errors import (
    CINotFoundError,
    InvalidRecordError,
    NotFoundError,
    TraversalLimitError,
    UnknownCIClassError,
    UnknownRelationshipTypeError,
)
from cmdb_graph.model import (
    Asset,
    Change,
    ChangeState,
    ConfigurationItem,
    DataSource,
    Entitlement,
    ImportRun,
    Incident,
    Location,
    OperationalStatus,
    Person,
    Relationship,
    RunMode,
    RunStatus,
    SoftwareProduct,
    SupportGroup,
    Window,
    WindowKind,
)
from cmdb_graph.model.entities import dump_flat
from cmdb_graph.store.base import MAX_PAGE_SIZE, CIFilter, Direction, GraphStore, WriteBatch
from tests.contract.estate import CLASSES, EDGES, T0, T1, ci, estate_batch, lineage, rel

CI_TYPES = {"DEPENDS_ON", "RUNS_ON", "HOSTED_ON", "CONNECTS_TO", "LOCATED_IN", "MEMBER_OF",
            "CONTAINS"}


@pytest.fixture
def estate(store: GraphStore) -> GraphStore:
    """The store holding the hand-drawn estate."""
    store.apply(estate_batch())
    return store


def edge_set(g: nx.MultiDiGraph) -> set[tuple[str, str, str]]:
    return {(k, s, t) for s, t, k in g.edges(keys=True)}


# -- writes and reads ----------------------------------------------------------------------
def test_apply_then_counts(estate: GraphStore) -> None:
    counts = estate.counts()

    assert counts["CI"] == len(CLASSES)
    assert counts["CI:VirtualMachine"] == 2
    assert counts["CI:Hypervisor"] == 2
    assert counts["CI:BusinessService"] == 1
    assert "CI:Server" not in counts
    assert counts["SupportGroup"] == 1  # grp-shop is only referenced, never written
    assert counts["SoftwareProduct"] == 1
    assert counts["Asset"] == 1
    assert counts["Person"] == 0
    assert counts["relationships"] == len(EDGES)


def test_apply_same_batch_twice_is_idempotent(estate: GraphStore) -> None:
    before = estate.counts()
    rels_before = estate.relationships()
    cis_before = estate.list_cis(limit=100).items

    estate.apply(estate_batch())

    assert estate.counts() == before
    assert estate.relationships() == rels_before
    assert estate.list_cis(limit=100).items == cis_before


def test_get_ci_round_trips_every_field(store: GraphStore) -> None:
    item = ci(
        "srv-1",
        "Server",
        operational_status=OperationalStatus.REPAIR,
        environment="prod",
        business_criticality=2,
        description="db host",
        fqdn="srv-1.example.com",
        hostname="srv-1",
        domain="example.com",
        serial_number="SN1",
        asset_tag="AT1",
        mac_addresses=["aa:bb", "cc:dd"],
        ip_addresses=["10.0.0.1"],
        cloud_id=None,
        native_keys=["src:1", "other:9"],
        host_id="h",
        manufacturer="Dell",
        model="R640",
        os_name="Linux",
        os_version="6.1",
        version="x",
        redundancy="50%",
        support_group="grp",
        owner="p1",
        location_id="loc",
        duplicate_of="srv-0",
        attributes={"rack_unit": 12, "virtual": False, "weight": 1.5, "note": "x", "none": None},
        first_seen=T0,
        last_seen=T1,
        lineage=lineage(),
    )
    store.upsert_nodes([item])

    got = store.get_ci("srv-1")

    assert got == item
    assert got.first_seen == T0 and got.first_seen.tzinfo is not None


def test_upsert_replaces_fields(store: GraphStore) -> None:
    store.upsert_nodes([ci("a", "Server", environment="prod", fqdn="a.example.com")])

    store.upsert_nodes([ci("a", "Server", description="new")])

    got = store.get_ci("a")
    assert got.environment is None and got.fqdn is None and got.description == "new"
    assert store.find_cis({"fqdn": "a.example.com"}) == []


def every_label_nodes() -> list:
    return [
        ci("c1", "Server", lineage=lineage(), first_seen=T0),
        Asset(asset_id="A1", name="Laptop", asset_tag="T1", serial_number="S1", cost=10.25,
              currency="EUR", purchase_date=date(2020, 2, 29), warranty_end=date(2023, 2, 28),
              end_of_life=date(2030, 1, 1), ci_id="c1", holder="p1", location_id="l1",
              native_keys=["itam:1"], attributes={"k": "v"}, first_seen=T0, last_seen=T1,
              lineage=lineage("itam")),
        SupportGroup(group_id="g1", name="Group", email="g@example.com", manager="m",
                     on_call="oc", attributes={"tier": 2}, lineage=lineage()),
        Person(person_id="p1", name="Pat", email="p@example.com", username="pat",
               groups=["g1", "g2"], lineage=lineage()),
        Location(location_id="l1", name="Site", kind="site", parent_id="l0", address="Street 1",
                 city="Town", country="DE"),
        SoftwareProduct(product_id="sp1", name="Product", vendor="V", category="db"),
        Entitlement(entitlement_id="e1", name="Lic", product_id="sp1", seats=5,
                    expires=date(2030, 12, 31), purchase_date=date(2024, 1, 1), cost=99.0,
                    licensed_to="ACME", assigned_ci_ids=["c1"], assigned_person_ids=["p1"],
                    native_keys=["lic:1"]),
        Change(change_id="CHG1", title="Patch", state=ChangeState.AUTHORIZE, window_start=T0,
               window_end=T1, ci_ids=["c1", "c-missing"], risk="low", support_group="g1",
               requested_by="p1"),
        Window(window_id="W1", name="Sunday", kind=WindowKind.BLACKOUT, start=T0, end=T1,
               recurrence="FREQ=WEEKLY;BYDAY=SU", ci_ids=["c1"]),
        Incident(incident_id="INC1", title="Down", priority=2, opened_at=T0, resolved_at=T1,
                 ci_ids=["c1"], support_group="g1"),
        DataSource(name="itam", kind="itam", priority=90, stale_after_days=None),
        ImportRun(run_id="r1", source="itam", importer="csv", mode=RunMode.FULL,
                  status=RunStatus.SUCCEEDED, started_at=T0, finished_at=T1,
                  files=["a.csv"], counts={"created": 3, "updated": 1}, error=None),
    ]


def test_every_label_round_trips(store: GraphStore) -> None:
    nodes = every_label_nodes()
    store.upsert_nodes(nodes)

    for node in nodes:
        got = store.get_node(node.LABEL, node.key)
        assert got == node, node.LABEL
        assert store.get_nodes(node.LABEL, [node.key, "absent"]) == {node.key: node}


def test_reference_targets_never_show_as_nodes(store: GraphStore) -> None:
    store.upsert_nodes(every_label_nodes())

    counts = store.counts()

    assert counts["CI"] == 1  # c-missing (referenced by CHG1) is not a CI
    assert counts["SupportGroup"] == 1 and counts["Location"] == 1
    with pytest.raises(NotFoundError):
        store.get_node("SupportGroup", "g2")
    with pytest.raises(CINotFoundError):
        store.get_ci("c-missing")
    assert [c.ci_id for c in store.list_cis().items] == ["c1"]


def test_reference_target_written_later_is_a_full_node(store: GraphStore) -> None:
    store.upsert_nodes([ci("c1", "Server", support_group="g9")])

    store.upsert_nodes([SupportGroup(group_id="g9", name="Late")])

    assert store.get_node("SupportGroup", "g9") == SupportGroup(group_id="g9", name="Late")
    assert store.counts()["SupportGroup"] == 1


def test_get_missing_raises(store: GraphStore) -> None:
    with pytest.raises(CINotFoundError, match="nope"):
        store.get_ci("nope")
    with pytest.raises(NotFoundError, match="nope"):
        store.get_node("Asset", "nope")
    assert store.get_cis(["nope"]) == {}


def test_get_cis_returns_existing_only(estate: GraphStore) -> None:
    got = estate.get_cis(["hv1", "nope", "vm1"])

    assert set(got) == {"hv1", "vm1"}
    assert got["hv1"].serial_number == "SN-1"


# -- identifier lookups --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("ci_id", "hv2", ["hv2"]),
        ("serial_number", "SN-1", ["hv1"]),
        ("asset_tag", "AT-2", ["hv2"]),
        ("cloud_id", "i-vm1", ["vm1"]),
        ("fqdn", "hv1.example.com", ["hv1"]),
        ("fqdn", "HV1.EXAMPLE.COM", ["hv1"]),
        ("hostname", "hv2", ["hv2"]),
        ("hostname", "Hv2", ["hv2"]),
        ("native_keys", "vcenter:host-2", ["hv2"]),
        ("mac_addresses", "00:1a:2b:00:01:01", ["hv1"]),
        ("name", "db name", ["db"]),
        ("serial_number", "sn-1", []),  # only fqdn and hostname ignore case
        ("native_keys", "vcenter:host", []),  # membership, not substring
        ("mac_addresses", "00:1a:2b", []),
    ],
)
def test_find_cis_by_each_identifier(
    estate: GraphStore, field: str, value: str, expected: list[str]
) -> None:
    found = estate.find_cis({field: value})

    assert [c.ci_id for c in found] == expected


def test_find_cis_matches_any_and_sorts(estate: GraphStore) -> None:
    found = estate.find_cis({"serial_number": "SN-2", "cloud_id": "i-vm1", "name": "app name"})

    assert [c.ci_id for c in found] == ["app", "hv2", "vm1"]


def test_find_cis_shared_value_finds_all(store: GraphStore) -> None:
    store.upsert_nodes([ci("b", "Server", serial_number="S"), ci("a", "Server",
                                                                  serial_number="S")])

    assert [c.ci_id for c in store.find_cis({"serial_number": "S"})] == ["a", "b"]

    store.upsert_nodes([ci("a", "Server", serial_number="T")])
    assert [c.ci_id for c in store.find_cis({"serial_number": "S"})] == ["b"]
    assert [c.ci_id for c in store.find_cis({"serial_number": "T"})] == ["a"]


def test_find_cis_rejects_non_identifier(store: GraphStore) -> None:
    with pytest.raises(InvalidRecordError, match="environment"):
        store.find_cis({"environment": "prod"})


@pytest.mark.parametrize(
    ("field", "values", "expected"),
    [
        ("serial_number", ["SN-2", "sn-1", "nope"], ["hv2"]),
        ("fqdn", ["HV1.EXAMPLE.COM", "hv1.example.com", None], ["hv1"]),
        ("hostname", ["Hv2", "hv1"], ["hv1", "hv2"]),
        ("native_keys", ["vcenter:host-2", "vcenter:host"], ["hv2"]),
        ("mac_addresses", ["00:1a:2b:00:01:01", "00:1a:2b"], ["hv1"]),
        ("name", ["db name", "app name", "db name"], ["app", "db"]),
        ("ci_id", ["vm1", "missing", "app"], ["app", "vm1"]),
        ("cloud_id", [], []),
    ],
)
def test_find_cis_bulk_matches_any_value_like_find_cis(
    estate: GraphStore, field: str, values: list[str | None], expected: list[str]
) -> None:
    found = estate.find_cis_bulk(field, values)

    assert [c.ci_id for c in found] == expected
    one_by_one = {c.ci_id: c for v in values for c in estate.find_cis({field: v})}
    assert found == [one_by_one[k] for k in sorted(one_by_one)]


def test_find_cis_bulk_rejects_non_identifier(store: GraphStore) -> None:
    with pytest.raises(InvalidRecordError, match="environment"):
        store.find_cis_bulk("environment", ["prod"])


# -- listing -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (None, sorted(CLASSES)),
        (CIFilter(ci_class="VirtualMachine"), ["vm1", "vm2"]),
        (CIFilter(ci_class="Server"), ["hv1", "hv2"]),  # subclasses count
        (CIFilter(ci_class="Application"), ["cache", "db", "web"]),
        (CIFilter(ci_class="Service"), ["app", "svc"]),
        (CIFilter(environment="prod"), ["hv1", "hv2", "vm1", "vm2"]),
        (CIFilter(support_group="grp-infra"), ["hv1", "hv2"]),
        (CIFilter(name_contains="V1 NA"), ["hv1"]),
        (CIFilter(source="vcenter"), ["hv1", "hv2"]),
        (CIFilter(source="discovery", environment="prod"), ["vm1", "vm2"]),
        (CIFilter(operational_status=OperationalStatus.OPERATIONAL), sorted(CLASSES)),
        (CIFilter(operational_status=OperationalStatus.RETIRED), []),
        (CIFilter(ci_class="Hardware", environment="dev"), []),
    ],
)
def test_list_cis_filters(estate: GraphStore, flt: CIFilter | None, expected: list[str]) -> None:
    page = estate.list_cis(flt, limit=MAX_PAGE_SIZE)

    assert [c.ci_id for c in page.items] == expected
    assert page.total == len(expected)
    assert page.next_cursor is None


def test_list_cis_unknown_class(estate: GraphStore) -> None:
    with pytest.raises(UnknownCIClassError):
        estate.list_cis(CIFilter(ci_class="Spaceship"))


@pytest.mark.parametrize("limit", [1, 2, 5, 12, 13])
def test_list_cis_cursor_round_trip(estate: GraphStore, limit: int) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0

    while True:
        page = estate.list_cis(after=cursor, limit=limit)
        pages += 1
        seen.extend(c.ci_id for c in page.items)
        assert len(page.items) <= limit
        assert page.total == len(CLASSES)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert isinstance(cursor, str)

    assert seen == sorted(CLASSES)
    assert pages == -(-len(CLASSES) // limit)


def test_list_limits(estate: GraphStore) -> None:
    with pytest.raises(TraversalLimitError):
        estate.list_cis(limit=MAX_PAGE_SIZE + 1)
    with pytest.raises(TraversalLimitError):
        estate.list_nodes("Asset", limit=MAX_PAGE_SIZE + 1)


def test_list_nodes_with_filters_and_paging(store: GraphStore) -> None:
    groups = [SupportGroup(group_id=f"g{i:02d}", name=f"G{i}", manager="m" if i % 2 else None)
              for i in range(7)]
    store.upsert_nodes(groups)

    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_nodes("SupportGroup", where={"manager": "m"}, after=cursor, limit=2)
        seen.extend(n.key for n in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break

    assert seen == ["g01", "g03", "g05"]
    assert page.total == 3
    assert [n.key for n in store.list_nodes("SupportGroup", where={"manager": None}).items] == [
        "g00", "g02", "g04", "g06"]
    assert store.list_nodes("Person").items == []


def test_list_nodes_filters_on_defaults_and_enums(store: GraphStore) -> None:
    store.upsert_nodes(every_label_nodes())

    assert [n.key for n in store.list_nodes("Asset", where={"lifecycle_stage": "in_use"}).items
            ] == ["A1"]
    assert [n.key for n in store.list_nodes("DataSource", where={"priority": 90}).items] == [
        "itam"]
    assert [n.key for n in store.list_nodes("CI", where={"ci_class": "Server"}).items] == ["c1"]


def test_list_nodes_rejects_unknown_field_and_label(store: GraphStore) -> None:
    with pytest.raises(InvalidRecordError, match="colour"):
        store.list_nodes("SupportGroup", where={"colour": "red"})
    with pytest.raises(InvalidRecordError, match="Spaceship"):
        store.list_nodes("Spaceship")


# -- relationships -------------------------------------------------------------------------
def test_relationships_touching_a_ci(estate: GraphStore) -> None:
    rels = estate.relationships("web")

    assert [r.key for r in rels] == [
        ("DEPENDS_ON", "app", "web"),
        ("DEPENDS_ON", "cache", "web"),
        ("DEPENDS_ON", "web", "cache"),
        ("HAS_INSTALLED", "web", "nginx"),
        ("RUNS_ON", "web", "vm1"),
    ]
    installed = rels[3]
    assert installed.target_label == "SoftwareProduct"
    assert installed.properties == {"version": "1.25"}


def test_relationships_filters_and_all(estate: GraphStore) -> None:
    assert [r.key for r in estate.relationships("cl", rel_types=["MEMBER_OF"])] == [
        ("MEMBER_OF", "hv1", "cl"), ("MEMBER_OF", "hv2", "cl")]
    everything = estate.relationships()
    assert len(everything) == len(EDGES) + 1
    assert [r.key for r in everything] == sorted(r.key for r in everything)
    assert [r.key for r in estate.relationships("nginx", label="SoftwareProduct")] == [
        ("HAS_INSTALLED", "web", "nginx")]
    optional = [r for r in everything if r.optional]
    assert [r.key for r in optional] == [("DEPENDS_ON", "app", "db")]
    assert estate.relationships("nobody") == []


def test_relationship_round_trip(store: GraphStore) -> None:
    store.upsert_nodes([ci("a", "Application"), ci("b", "Server")])
    r = Relationship(rel_type="RUNS_ON", source="a", target="b", optional=True, inferred=True,
                     evidence="env var", properties={"port": 443, "tls": True},
                     first_seen=T0, last_seen=T1, lineage=lineage())

    store.upsert_relationships([r])

    assert store.relationships("a") == [r]


def test_relationship_upsert_replaces(store: GraphStore) -> None:
    store.upsert_nodes([ci("a", "Application"), ci("b", "Server")])
    store.upsert_relationships([rel("RUNS_ON", "a", "b", evidence="x", properties={"k": 1})])

    store.upsert_relationships([rel("RUNS_ON", "a", "b")])

    assert store.relationships("a") == [rel("RUNS_ON", "a", "b")]
    assert store.counts()["relationships"] == 1


def test_delete_relationships(estate: GraphStore) -> None:
    keys = [("MEMBER_OF", "hv1", "cl"), ("HAS_INSTALLED", "web", "nginx"),
            ("RUNS_ON", "vm1", "web")]  # the last one does not exist (wrong way round)

    deleted = estate.delete_relationships(keys)

    assert deleted == 2
    assert estate.counts()["relationships"] == len(EDGES) - 1
    assert estate.relationships("hv1", rel_types=["MEMBER_OF"]) == []
    assert estate.relationships("nginx", label="SoftwareProduct") == []
    assert estate.delete_relationships(keys) == 0
    assert "hv1" not in estate.extract_subgraph(["vm1"], direction=Direction.DOWNSTREAM)


# -- traversal -----------------------------------------------------------------------------
UP_HV1 = {"hv1", "cl", "vm1", "vm2", "web", "db", "cache", "app", "svc"}


@pytest.mark.parametrize(
    ("seeds", "kwargs", "expected"),
    [
        (["hv1"], {}, UP_HV1),
        (["hv1"], {"direction": Direction.UPSTREAM}, UP_HV1),
        (["rack"], {}, UP_HV1 | {"rack"}),
        (["dc"], {}, set(CLASSES) - {"hv2"}),
        (["hv2"], {}, (UP_HV1 - {"hv1"}) | {"hv2"}),
        (["web"], {}, {"web", "cache", "app", "svc"}),  # through the cycle
        (["hv1"], {"depth": 0}, {"hv1"}),
        (["hv1"], {"depth": 1}, {"hv1", "cl"}),
        (["hv1"], {"depth": 2}, {"hv1", "cl", "vm1", "vm2"}),
        (["hv1"], {"depth": 3}, {"hv1", "cl", "vm1", "vm2", "web", "db"}),
        (["hv1"], {"rel_types": ["MEMBER_OF", "HOSTED_ON"]}, {"hv1", "cl", "vm1", "vm2"}),
        (["hv1"], {"rel_types": ["HOSTED_ON"]}, {"hv1"}),
        (["hv1", "vm2"], {"depth": 1}, {"hv1", "cl", "vm2", "db"}),
        (["svc"], {"direction": Direction.DOWNSTREAM}, set(CLASSES)),
        (["vm1"], {"direction": Direction.DOWNSTREAM}, {"vm1", "cl", "hv1", "hv2", "rack",
                                                         "dc"}),
        (["cl"], {"direction": Direction.DOWNSTREAM, "depth": 1}, {"cl", "hv1", "hv2"}),
        (["hv1"], {"direction": Direction.DOWNSTREAM}, {"hv1", "rack", "dc"}),
        (["vm1"], {"direction": Direction.BOTH, "depth": 1}, {"vm1", "web", "cl"}),
        (["vm1"], {"direction": Direction.BOTH, "depth": 2},
         {"vm1", "web", "cl", "app", "cache", "vm2", "hv1", "hv2"}),
    ],
)
def test_extract_subgraph_nodes(
    estate: GraphStore, seeds: list[str], kwargs: dict, expected: set[str]
) -> None:
    g = estate.extract_subgraph(seeds, **kwargs)

    assert set(g.nodes) == expected


def test_extract_subgraph_edges_are_induced(estate: GraphStore) -> None:
    g = estate.extract_subgraph(["hv1"])

    assert edge_set(g) == {(t, s, d) for t, s, d in EDGES if s in UP_HV1 and d in UP_HV1}
    assert ("MEMBER_OF", "hv2", "cl") not in edge_set(g)


def test_extract_subgraph_rel_types_limit_edges(estate: GraphStore) -> None:
    g = estate.extract_subgraph(["hv1"], rel_types=["MEMBER_OF", "HOSTED_ON"])

    assert edge_set(g) == {("MEMBER_OF", "hv1", "cl"), ("HOSTED_ON", "vm1", "cl"),
                           ("HOSTED_ON", "vm2", "cl")}


def test_extract_subgraph_graph_shape(estate: GraphStore) -> None:
    g = estate.extract_subgraph(["hv1"], depth=1)

    assert isinstance(g, nx.MultiDiGraph)
    assert dict(g.nodes["hv1"]) == dump_flat(estate.get_ci("hv1"))
    assert g.nodes["hv1"]["fqdn"] == "HV1.Example.COM"
    assert "lineage" not in g.nodes["hv1"]
    assert list(g.edges(keys=True, data=True)) == [
        ("hv1", "cl", "MEMBER_OF",
         {"rel_type": "MEMBER_OF", "optional": False, "inferred": False, "basis": "declared",
          "confidence": None, "evidence": None, "properties": {"weight": 1}}),
    ]


def test_extract_subgraph_edge_attributes(estate: GraphStore) -> None:
    g = estate.extract_subgraph(["db"], direction=Direction.UPSTREAM)

    assert g.edges["app", "db", "DEPENDS_ON"]["optional"] is True
    assert g.edges["svc", "app", "DEPENDS_ON"]["optional"] is False


def test_extract_subgraph_errors(estate: GraphStore) -> None:
    with pytest.raises(CINotFoundError, match="ghost"):
        estate.extract_subgraph(["hv1", "ghost"])
    with pytest.raises(UnknownRelationshipTypeError):
        estate.extract_subgraph(["hv1"], rel_types=["LOVES"])
    with pytest.raises(InvalidRecordError):
        estate.extract_subgraph(["hv1"], rel_types=["SUPPORTS"])
    with pytest.raises(TraversalLimitError):
        estate.extract_subgraph(["hv1"], depth=-1)


def test_neighbourhood(estate: GraphStore) -> None:
    g1 = estate.neighbourhood("cl")
    g2 = estate.neighbourhood("cl", depth=2, direction=Direction.UPSTREAM)
    g3 = estate.neighbourhood("cl", depth=1, rel_types=["MEMBER_OF"])
    g4 = estate.neighbourhood("hv1", depth=1, direction=Direction.DOWNSTREAM)

    assert set(g1.nodes) == {"cl", "vm1", "vm2", "hv1", "hv2"}
    assert edge_set(g1) == {("HOSTED_ON", "vm1", "cl"), ("HOSTED_ON", "vm2", "cl"),
                            ("MEMBER_OF", "hv1", "cl"), ("MEMBER_OF", "hv2", "cl")}
    assert set(g2.nodes) == {"cl", "vm1", "vm2", "web", "db"}
    assert set(g3.nodes) == {"cl", "hv1", "hv2"}
    assert set(g4.nodes) == {"hv1", "rack", "dc"}
    with pytest.raises(CINotFoundError):
        estate.neighbourhood("ghost")


def test_dependency_graph(estate: GraphStore) -> None:
    g = estate.dependency_graph()

    assert set(g.nodes) == set(CLASSES)
    assert edge_set(g) == set(EDGES)
    assert dict(g.nodes["svc"]) == dump_flat(estate.get_ci("svc"))


def test_empty_store(store: GraphStore) -> None:
    assert store.dependency_graph().number_of_nodes() == 0
    assert store.list_cis().items == [] and store.list_cis().total == 0
    assert store.relationships() == []
    assert store.counts()["CI"] == 0 and store.counts()["relationships"] == 0


# -- CI class changes ----------------------------------------------------------------------
def test_class_change_is_reflected(estate: GraphStore) -> None:
    hv1 = estate.get_ci("hv1")

    estate.upsert_nodes([hv1.model_copy(update={"ci_class": "Server"})])

    assert [c.ci_id for c in estate.list_cis(CIFilter(ci_class="Hypervisor")).items] == ["hv2"]
    assert [c.ci_id for c in estate.list_cis(CIFilter(ci_class="Server")).items] == ["hv1",
                                                                                      "hv2"]
    counts = estate.counts()
    assert counts["CI:Hypervisor"] == 1 and counts["CI:Server"] == 1
    assert estate.get_ci("hv1").ci_class == "Server"
    assert estate.counts()["relationships"] == len(EDGES)


# -- invalid input ---------------------------------------------------------------------------
def assert_unchanged(store: GraphStore, counts: dict[str, int]) -> None:
    assert store.counts() == counts
    with pytest.raises(CINotFoundError):
        store.get_ci("new-ok")


def test_unknown_ci_class_writes_nothing(estate: GraphStore) -> None:
    before = estate.counts()
    batch = WriteBatch(nodes=[ci("new-ok", "Server"), ci("bad", "Spaceship")])

    with pytest.raises(UnknownCIClassError) as info:
        estate.apply(batch)

    assert "Spaceship" in str(info.value) and "bad" in str(info.value)
    assert info.value.field == "ci_class"
    assert_unchanged(estate, before)


def test_unknown_relationship_type_writes_nothing(estate: GraphStore) -> None:
    before = estate.counts()
    batch = WriteBatch(nodes=[ci("new-ok", "Server")],
                       relationships=[rel("LOVES", "new-ok", "hv1")])

    with pytest.raises(UnknownRelationshipTypeError, match="LOVES"):
        estate.apply(batch)

    assert_unchanged(estate, before)


def test_relationship_to_missing_ci_names_it(estate: GraphStore) -> None:
    before = estate.counts()
    batch = WriteBatch(
        nodes=[ci("new-ok", "Server")],
        relationships=[rel("RUNS_ON", "new-ok", "hv1"), rel("RUNS_ON", "web", "ghost-42")],
    )

    with pytest.raises(InvalidRecordError, match="ghost-42") as info:
        estate.apply(batch)

    assert info.value.field == "target"
    assert_unchanged(estate, before)
    assert [r.key for r in estate.relationships("web", rel_types=["RUNS_ON"])] == [
        ("RUNS_ON", "web", "vm1")]


def test_relationship_to_missing_other_node(estate: GraphStore) -> None:
    with pytest.raises(InvalidRecordError, match="no-such-product"):
        estate.upsert_relationships([
            Relationship(rel_type="HAS_INSTALLED", source="web", target="no-such-product",
                         target_label="SoftwareProduct")])


def test_relationship_ends_may_be_in_the_same_batch(store: GraphStore) -> None:
    store.apply(WriteBatch(nodes=[ci("a", "Application"), ci("b", "Server")],
                           relationships=[rel("RUNS_ON", "a", "b")]))

    assert [r.key for r in store.relationships()] == [("RUNS_ON", "a", "b")]


def test_reference_relationship_types_are_refused(estate: GraphStore) -> None:
    with pytest.raises(InvalidRecordError, match="support_group|reference"):
        estate.upsert_relationships([
            Relationship(rel_type="SUPPORTS", source="grp-infra", target="hv1",
                         source_label="SupportGroup")])


def test_ci_relationship_type_between_other_labels_is_refused(estate: GraphStore) -> None:
    with pytest.raises(InvalidRecordError, match="DEPENDS_ON"):
        estate.upsert_relationships([
            Relationship(rel_type="DEPENDS_ON", source="web", target="nginx",
                         target_label="SoftwareProduct")])


@pytest.mark.parametrize(
    ("node", "field"),
    [
        (ConfigurationItem.model_construct(ci_id="x", name=42, ci_class="Server"), "name"),
        (ConfigurationItem.model_construct(ci_id="x", name="x", ci_class="Server",
                                           business_criticality="high"),
         "business_criticality"),
        (ConfigurationItem.model_construct(ci_id="x", name="x", ci_class="Server",
                                           first_seen="yesterday"), "first_seen"),
        (Asset.model_construct(asset_id="a", purchase_date="2020-13-45"), "purchase_date"),
    ],
)
def test_bad_field_types_name_the_field(estate: GraphStore, node: object, field: str) -> None:
    before = estate.counts()

    with pytest.raises(InvalidRecordError) as info:
        estate.apply(WriteBatch(nodes=[ci("new-ok", "Server"), node]))  # type: ignore[list-item]

    assert info.value.field == field
    assert field in str(info.value)
    assert_unchanged(estate, before)


def test_bad_relationship_field_type(estate: GraphStore) -> None:
    bad = Relationship.model_construct(rel_type="RUNS_ON", source="web", target="vm2",
                                       optional="maybe")
    with pytest.raises(InvalidRecordError) as info:
        estate.upsert_relationships([bad])

    assert info.value.field == "optional"
    assert [r.key for r in estate.relationships("vm2", rel_types=["RUNS_ON"])] == [
        ("RUNS_ON", "db", "vm2")]


def test_clear(estate: GraphStore) -> None:
    estate.clear()

    counts = estate.counts()
    assert counts["CI"] == 0 and counts["relationships"] == 0 and counts["Asset"] == 0
    assert estate.find_cis({"serial_number": "SN-1"}) == []


def test_ping(store: GraphStore) -> None:
    store.ping()


def test_large_batch(store: GraphStore) -> None:
    n = 1500
    cis = [ci(f"n{i:05d}", "Server", serial_number=f"S{i}", native_keys=[f"src:{i}"])
           for i in range(n)]
    rels = [rel("CONNECTS_TO", f"n{i:05d}", f"n{i + 1:05d}") for i in range(n - 1)]

    store.apply(WriteBatch(nodes=cis, relationships=rels))

    assert store.counts()["CI"] == n and store.counts()["relationships"] == n - 1
    assert [c.ci_id for c in store.find_cis({"native_keys": "src:1499"})] == ["n01499"]
    assert len(store.extract_subgraph(["n00000"], direction=Direction.DOWNSTREAM)) == n


def test_datetimes_are_utc(store: GraphStore) -> None:
    from datetime import timedelta, timezone

    local = datetime(2024, 6, 1, 14, 0, 0, 500, tzinfo=timezone(timedelta(hours=2)))
    store.upsert_nodes([ci("t", "Server", first_seen=local)])

    got = store.get_ci("t").first_seen

    assert got == local and got is not None and got.utcoffset() == timedelta(0)
    assert got.tzinfo == UTC or got.utcoffset() == timedelta(0)


def test_listing_sees_writes_between_pages(estate: GraphStore) -> None:
    first = estate.list_cis(limit=2)

    estate.upsert_nodes([ci("aaa-new", "Server")])
    after = estate.list_cis(limit=2)
    rest = estate.list_cis(after=first.next_cursor, limit=MAX_PAGE_SIZE)

    assert [c.ci_id for c in after.items] == ["aaa-new", "app"]
    assert after.total == len(CLASSES) + 1
    assert "aaa-new" not in [c.ci_id for c in rest.items]
