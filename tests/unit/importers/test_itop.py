"""iTop XML data importer: the iTop sample data files, the FunctionalCI id space, bad input."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.ingest import run_import
from cmdb_graph.model.records import AssetRecord, CIRecord, Record, RelationshipRecord
from cmdb_graph.store.memory import MemoryStore
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.xml_fuzz import check_xml_mutant

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "itop"
FIXTURES = REPO / "tests" / "fixtures" / "importers"
FILES = (
    "data.sample.servers.xml",
    "data.sample.dbserver.xml",
    "data.sample.dbschema.xml",
    "data.sample.webserver.xml",
    "data.sample.webapp.xml",
    "data.sample.applications.xml",
    "data.sample.applicationsolutionci.xml",
)

VALID = b"""<?xml version="1.0" encoding="UTF-8"?>
<Set>
  <Server alias="Server" id="1">
    <name>srv-a</name>
    <business_criticity>medium</business_criticity>
    <serialnumber>SN-1</serialnumber>
    <status>production</status>
  </Server>
  <WebServer alias="WebServer" id="2">
    <name>nginx</name>
    <system_id>1</system_id>
  </WebServer>
</Set>
"""


def _parse(name: str) -> list[Record]:
    return list(get_importer("itop").parse(REALDATA / name))


def _cis(records: list[Record]) -> dict[str, CIRecord]:
    return {
        r.identifiers.native_key: r
        for r in records
        if isinstance(r, CIRecord) and r.identifiers.native_key
    }


def _rels(records: list[Record]) -> set[tuple[str, str | None, str | None]]:
    return {
        (r.rel_type, r.source.native_key, r.target.native_key)
        for r in records
        if isinstance(r, RelationshipRecord)
    }


def test_servers_file_gives_four_servers_with_names_serials_and_assets() -> None:
    # Arrange / Act
    records = _parse("data.sample.servers.xml")

    # Assert
    cis = _cis(records)
    assert {k: (c.ci_class, c.name) for k, c in cis.items()} == {
        "FunctionalCI:1": ("Server", "Server1"),
        "FunctionalCI:2": ("Server", "Server2"),
        "FunctionalCI:3": ("Server", "Server3"),
        "FunctionalCI:4": ("Server", "Server4"),
    }
    assert [c.identifiers.serial_number for c in cis.values()] == [
        None, None, None, "US3215687014"
    ]
    server4 = cis["FunctionalCI:4"]
    assert server4.attributes["ip_addresses"] == ["10.10.24.2"]
    assert server4.attributes["business_criticality"] == 3
    assert server4.attributes["operational_status"] == "operational"
    assert server4.attributes["itop_location_id"] == "2"
    assert "itop_brand_id" not in cis["FunctionalCI:2"].attributes  # brand_id 0 = none
    assets = [r for r in records if isinstance(r, AssetRecord)]
    assert len(assets) == 4
    asset4 = next(a for a in assets if a.native_key == "PhysicalDevice:4")
    assert asset4.serial_number == "US3215687014"
    assert asset4.attributes == {"purchase_date": "2021-07-30", "warranty_end": "2025-07-29"}
    assert asset4.tracks is not None and asset4.tracks.native_key == "FunctionalCI:4"


def test_application_solutions_map_criticity_to_business_criticality() -> None:
    # Arrange / Act
    cis = _cis(_parse("data.sample.applications.xml"))

    # Assert
    assert {c.name: (c.ci_class, c.attributes["business_criticality"]) for c in cis.values()} == {
        "CRM": ("ApplicationService", 1),
        "ERP": ("ApplicationService", 3),
        "itop": ("ApplicationService", 3),
        "Sales web site": ("ApplicationService", 1),
    }
    assert cis["FunctionalCI:30"].name == "Sales web site"


def test_solution_links_become_depends_on_pairs() -> None:
    # Arrange / Act
    records = _parse("data.sample.applicationsolutionci.xml")

    # Assert
    assert _rels(records) == {
        ("DEPENDS_ON", "FunctionalCI:28", "FunctionalCI:20"),
        ("DEPENDS_ON", "FunctionalCI:29", "FunctionalCI:15"),
        ("DEPENDS_ON", "FunctionalCI:30", "FunctionalCI:27"),
        ("DEPENDS_ON", "FunctionalCI:30", "FunctionalCI:28"),
    }
    assert all(isinstance(r, RelationshipRecord) for r in records)


def test_software_instances_run_on_their_system() -> None:
    # Arrange / Act
    dbserver = _parse("data.sample.dbserver.xml")
    schema = _parse("data.sample.dbschema.xml")
    webserver = _parse("data.sample.webserver.xml")
    webapp = _parse("data.sample.webapp.xml")

    # Assert
    assert {(c.ci_class, c.name) for c in _cis(dbserver).values()} == {("Database", "Oracle")}
    assert _rels(dbserver) == {("RUNS_ON", "FunctionalCI:17", "FunctionalCI:3")}
    assert {(c.ci_class, c.name) for c in _cis(schema).values()} == {("Database", "odooprod")}
    assert _rels(schema) == {("RUNS_ON", "FunctionalCI:20", "FunctionalCI:17")}
    assert {(c.ci_class, c.name) for c in _cis(webserver).values()} == {("Middleware", "IIS")}
    assert _rels(webserver) == {("RUNS_ON", "FunctionalCI:23", "FunctionalCI:15")}
    assert {(c.ci_class, c.name) for c in _cis(webapp).values()} == {
        ("Application", "onlineSales")
    }
    assert _rels(webapp) == {("RUNS_ON", "FunctionalCI:24", "FunctionalCI:23")}
    oracle = _cis(dbserver)["FunctionalCI:17"]
    assert oracle.identifiers.host is not None
    assert oracle.identifiers.host.native_key == "FunctionalCI:3"


def _graph(paths: list[Path]) -> tuple[nx.DiGraph, dict[str, CIRecord]]:
    importer = get_importer("itop")
    records = [r for p in paths for r in importer.parse(p)]
    graph = nx.DiGraph()
    for rel in records:
        if isinstance(rel, RelationshipRecord):
            graph.add_edge(rel.source.native_key, rel.target.native_key, type=rel.rel_type)
    return graph, _cis(records)


def test_all_seven_files_chain_solutions_down_to_servers() -> None:
    # Arrange
    paths = [REALDATA / f for f in FILES]

    # Act
    graph, cis = _graph(paths)

    # Assert: every relationship end that the files define is one of their CIs ...
    defined = set(cis)
    assert set(graph.nodes) - defined == {"FunctionalCI:15"}  # the VM of iTop's virt. module
    # ... ERP and Sales web site reach Server3 through schema -> DB server
    assert nx.shortest_path(graph, "FunctionalCI:30", "FunctionalCI:3") == [
        "FunctionalCI:30", "FunctionalCI:28", "FunctionalCI:20", "FunctionalCI:17",
        "FunctionalCI:3",
    ]
    assert [cis[k].name for k in nx.shortest_path(graph, "FunctionalCI:28", "FunctionalCI:3")] == [
        "ERP", "odooprod", "Oracle", "Server3"
    ]
    # ... and the RUNS_ON chain web application -> web server -> its system
    assert nx.shortest_path(graph, "FunctionalCI:24", "FunctionalCI:15") == [
        "FunctionalCI:24", "FunctionalCI:23", "FunctionalCI:15"
    ]
    assert {graph.edges[e]["type"] for e in [("FunctionalCI:24", "FunctionalCI:23"),
                                             ("FunctionalCI:23", "FunctionalCI:15")]} == {
        "RUNS_ON"
    }


def test_virtualisation_fixture_connects_the_web_stack_to_a_server() -> None:
    # Arrange
    paths = [REALDATA / f for f in FILES] + [FIXTURES / "itop_virtualization.xml"]

    # Act
    graph, cis = _graph(paths)

    # Assert: with the VM, its hypervisor and farm, every link end resolves, and the itop
    # solution and the onlineSales web application reach Server2
    assert set(graph.nodes) <= set(cis)
    assert cis["FunctionalCI:15"].ci_class == "VirtualMachine"
    assert cis["FunctionalCI:9"].ci_class == "Hypervisor"
    assert cis["FunctionalCI:7"].ci_class == "Cluster"
    assert graph.edges["FunctionalCI:15", "FunctionalCI:9"]["type"] == "HOSTED_ON"
    assert graph.edges["FunctionalCI:9", "FunctionalCI:7"]["type"] == "MEMBER_OF"
    for start in ("FunctionalCI:29", "FunctionalCI:24"):
        assert nx.has_path(graph, start, "FunctionalCI:2")
    solutions = [k for k, c in cis.items() if c.ci_class == "ApplicationService"]
    reaching = {
        cis[s].name for s in solutions
        if any(cis[n].ci_class == "Server" for n in nx.descendants(graph, s) if n in cis)
    }
    assert reaching == {"ERP", "itop", "Sales web site"}  # CRM has no CI in the sample


def test_objects_that_are_no_ci_are_skipped() -> None:
    # Arrange
    path = FIXTURES / "itop_virtualization.xml"

    # Act
    records = list(get_importer("itop").parse(path))

    # Assert: the Organization object is skipped, not an error
    assert {c.name for c in _cis(records).values()} == {"Cluster A", "esx-a1", "vm-web-01"}


def test_rack_id_becomes_contains_from_the_rack(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "rack.xml"
    path.write_text(
        '<Set><Rack id="40"><name>R1</name></Rack>'
        '<Server id="41"><name>s</name><rack_id>40</rack_id></Server></Set>',
        encoding="utf-8",
    )

    # Act
    records = list(get_importer("itop").parse(path))

    # Assert
    assert _rels(records) == {("CONTAINS", "FunctionalCI:40", "FunctionalCI:41")}


def test_unknown_criticity_names_the_object_and_field(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "bad.xml"
    path.write_text(
        '<Set><Server id="5"><name>x</name><business_criticity>urgent</business_criticity>'
        "</Server></Set>",
        encoding="utf-8",
    )

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("itop").parse(path))
    assert info.value.record == "Server[id=5]"
    assert info.value.field == "business_criticity"


def test_link_without_end_is_refused(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "bad.xml"
    path.write_text(
        '<Set><lnkApplicationSolutionToFunctionalCI id="9"><applicationsolution_id>1'
        "</applicationsolution_id><functionalci_id>0</functionalci_id>"
        "</lnkApplicationSolutionToFunctionalCI></Set>",
        encoding="utf-8",
    )

    # Act / Assert
    with pytest.raises(InvalidRecordError, match="functionalci_id"):
        list(get_importer("itop").parse(path))


def test_wrong_root_is_refused(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "nmap.xml"
    path.write_text("<nmaprun/>", encoding="utf-8")

    # Act / Assert
    with pytest.raises(InvalidRecordError, match="Set"):
        list(get_importer("itop").parse(path))


def test_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("itop"),
        VALID,
        fmt="xml",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b"<name>srv-a</name>", b""),
        required_field="name",
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mutated_file_gives_records_or_invalid_record_error(data: st.DataObject) -> None:
    # Arrange / Act / Assert: one element removed or one value replaced
    path = data.draw(st.sampled_from(
        [REALDATA / f for f in FILES] + [FIXTURES / "itop_virtualization.xml"]
    ))
    check_xml_mutant(get_importer("itop"), path.read_bytes(), data)


@pytest.mark.parametrize("one_run", [True, False], ids=["one-run", "run-per-file"])
def test_ingested_into_the_memory_store_services_reach_servers(one_run: bool) -> None:
    # Arrange: the seven sample files and the virtualisation fixture, each file after those it
    # refers to, so that file-by-file runs find both ends of every relationship
    store = MemoryStore()
    importer = get_importer("itop")
    paths = [REALDATA / FILES[0], FIXTURES / "itop_virtualization.xml"] + [
        REALDATA / f for f in FILES[1:]
    ]

    # Act
    if one_run:
        records = [r for path in paths for r in importer.parse(path)]
        result = run_import(store, records, source="itop", importer="itop", files=paths)
        assert not result.plan.skips
    else:
        for path in paths:
            result = run_import(store, list(importer.parse(path)), source="itop",
                                importer="itop", files=[path])
            assert not result.plan.skips, result.plan.skips

    # Assert: links resolve across files through the FunctionalCI id space
    graph = store.dependency_graph()
    by_name = {data["name"]: node for node, data in graph.nodes(data=True)}
    assert nx.has_path(graph, by_name["Sales web site"], by_name["Server3"])
    assert nx.has_path(graph, by_name["itop"], by_name["Server2"])
    assert nx.has_path(graph, by_name["onlineSales"], by_name["Server2"])
    assert store.counts()["CI:Server"] == 4
