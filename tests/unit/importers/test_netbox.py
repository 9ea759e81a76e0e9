"""NetBox REST API importer: the pynetbox fixtures, list pages, NetBox 4 shapes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, LocationRecord, Record, RelationshipRecord
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_mutant

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "netbox"

#: a NetBox 4 list page: a server, one of its interfaces, a switch and a cable between them
PAGE = {
    "count": 4,
    "next": None,
    "previous": None,
    "results": [
        {
            "id": 10,
            "url": "https://netbox.example/api/dcim/devices/10/",
            "name": "db01.dc1.example.net",
            "role": {"id": 3, "name": "Database Server", "slug": "database-server"},
            "device_type": {"model": "PowerEdge R650", "manufacturer": {"name": "Dell"}},
            "serial": "CN0R650X",
            "asset_tag": "AT-0010",
            "site": {"id": 1, "name": "DC1"},
            "location": {"id": 4, "name": "Hall A"},
            "rack": {"id": 7, "name": "R07"},
            "status": {"value": "failed", "label": "Failed"},
            "primary_ip4": {"address": "192.0.2.10/24"},
            "primary_ip6": {"address": "2001:db8::10/64"},
        },
        {
            "id": 11,
            "url": "https://netbox.example/api/dcim/devices/11/",
            "name": "leaf01",
            "role": {"id": 1, "name": "Leaf", "slug": "leaf"},
            "device_type": {"model": "7050", "manufacturer": {"name": "Arista"}},
            "serial": "ARI7050",
            "site": {"id": 1, "name": "DC1"},
            "status": {"value": "active", "label": "Active"},
        },
        {
            "id": 100,
            "url": "https://netbox.example/api/dcim/interfaces/100/",
            "device": {"id": 10, "name": "db01.dc1.example.net"},
            "name": "eno1",
            "primary_mac_address": {"mac_address": "AA:BB:CC:00:00:10"},
            "mac_addresses": [{"mac_address": "AA:BB:CC:00:00:11"}],
            "cable": {"id": 500},
        },
        {
            "id": 500,
            "url": "https://netbox.example/api/dcim/cables/500/",
            "a_terminations": [
                {"object_type": "dcim.interface", "object_id": 100,
                 "object": {"id": 100, "name": "eno1", "device": {"id": 10, "name": "db01"}}}
            ],
            "b_terminations": [
                {"object_type": "dcim.interface", "object_id": 200,
                 "object": {"id": 200, "name": "Eth1", "device": {"id": 11, "name": "leaf01"}}}
            ],
            "status": {"value": "connected", "label": "Connected"},
            "label": "C-500",
        },
    ],
}


def _parse(path: Path) -> list[Record]:
    return list(get_importer("netbox").parse(path))


def _rels(records: list[Record]) -> set[tuple[str, str | None, str | None]]:
    return {
        (r.rel_type, r.source.native_key, r.target.native_key)
        for r in records
        if isinstance(r, RelationshipRecord)
    }


def test_real_device() -> None:
    # Arrange / Act
    records = _parse(REALDATA / "pynetbox-device.json")

    # Assert
    [device] = [r for r in records if isinstance(r, CIRecord)]
    assert (device.ci_class, device.name) == ("NetworkDevice", "test1-edge1")  # role Router
    assert device.identifiers.native_key == "dcim.device:1"
    assert device.identifiers.serial_number == "5555555555"
    assert device.identifiers.asset_tag is None  # null in the file
    assert device.attributes["manufacturer"] == "Juniper"
    assert device.attributes["model"] == "MX960"
    assert device.attributes["ip_addresses"] == ["10.0.255.1"]
    assert device.attributes["operational_status"] == "operational"
    assert device.location == "TEST1"
    assert _rels(records) == {("CONTAINS", "dcim.rack:1", "dcim.device:1")}  # rack A1R1
    assert [(r.name, r.kind) for r in records if isinstance(r, LocationRecord)] == [
        ("TEST1", "site")
    ]


def test_real_rack() -> None:
    # Arrange / Act
    [rack] = [r for r in _parse(REALDATA / "pynetbox-rack.json") if isinstance(r, CIRecord)]

    # Assert
    assert (rack.ci_class, rack.name, rack.identifiers.native_key) == (
        "Rack", "A1R1", "dcim.rack:1"
    )
    assert rack.attributes["facility_id"] == "T23A01"
    assert rack.attributes["u_height"] == 42
    assert rack.location == "TEST1"


def test_real_cable_connects_the_devices_of_its_two_ends() -> None:
    # Arrange / Act
    records = _parse(REALDATA / "pynetbox-cable.json")

    # Assert: console port of tst1-test1 (device 1) to console server port of tst1-test2 (2)
    assert _rels(records) == {("CONNECTS_TO", "dcim.device:1", "dcim.device:2")}
    [cable] = records
    assert isinstance(cable, RelationshipRecord)
    assert cable.properties["cable_id"] == "1"


def test_real_interface_without_its_device_gives_its_connection_only() -> None:
    # Arrange / Act
    records = _parse(REALDATA / "pynetbox-interface.json")

    # Assert: mac_address is null; the connected endpoint is device 1
    assert _rels(records) == {("CONNECTS_TO", "dcim.device:2", "dcim.device:1")}
    assert not [r for r in records if isinstance(r, CIRecord)]


def test_list_page_in_netbox_4_shape(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "page.json"
    path.write_text(json.dumps(PAGE), encoding="utf-8")

    # Act
    records = _parse(path)

    # Assert
    cis = {r.identifiers.native_key: r for r in records if isinstance(r, CIRecord)}
    db = cis["dcim.device:10"]
    assert db.ci_class == "Server"  # role "Database Server"
    assert db.identifiers.mac_addresses == ("aa:bb:cc:00:00:10", "aa:bb:cc:00:00:11")
    assert (db.identifiers.hostname, db.identifiers.fqdn) == ("db01", "db01.dc1.example.net")
    assert db.identifiers.asset_tag == "AT-0010"
    assert db.attributes["operational_status"] == "repair"
    assert db.attributes["ip_addresses"] == ["192.0.2.10", "2001:db8::10"]
    assert db.location == "DC1 / Hall A"
    assert cis["dcim.device:11"].ci_class == "NetworkDevice"  # role Leaf
    # the cable is in the input, so the interface adds no second CONNECTS_TO
    assert _rels(records) == {
        ("CONTAINS", "dcim.rack:7", "dcim.device:10"),
        ("CONNECTS_TO", "dcim.device:10", "dcim.device:11"),
    }
    locations = {r.name: r.parent for r in records if isinstance(r, LocationRecord)}
    assert locations == {"DC1": None, "DC1 / Hall A": "DC1"}


def test_role_classes_option_overrides_the_role_words(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "page.json"
    path.write_text(json.dumps(PAGE), encoding="utf-8")

    # Act
    records = list(
        get_importer("netbox", role_classes={"database-server": "Hypervisor"}).parse(path)
    )

    # Assert
    classes = {r.name: r.ci_class for r in records if isinstance(r, CIRecord)}
    assert classes["db01.dc1.example.net"] == "Hypervisor"


@pytest.mark.parametrize(
    ("slug", "expected"),
    [("pdu", "Hardware"), ("core-switch", "NetworkDevice"), ("storage", "StorageDevice"),
     ("compute", "Server"), ("something-else", "Hardware")],
)
def test_role_to_class(tmp_path: Path, slug: str, expected: str) -> None:
    # Arrange
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps({"id": 1, "name": "x", "device_type": {}, "role": {"slug": slug}}),
        encoding="utf-8",
    )

    # Act
    [ci] = [r for r in _parse(path) if isinstance(r, CIRecord)]

    # Assert
    assert ci.ci_class == expected


def test_unknown_object_names_its_position(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"results": [PAGE["results"][1], {"id": 3, "foo": 1}]}),
                    encoding="utf-8")

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        _parse(path)
    assert info.value.record == "/results/1"


def test_bad_input_battery(tmp_path: Path) -> None:
    valid = (REALDATA / "pynetbox-device.json").read_bytes()
    run_battery(
        get_importer("netbox"),
        valid,
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b'"id": 1,\n    "name"', b'"name"', 1),
        required_field="id",
    )



@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_gives_records_or_invalid_record_error(data: st.DataObject) -> None:
    # Arrange / Act / Assert: the list page with one value replaced by arbitrary JSON
    check_mutant(get_importer("netbox"), PAGE, data)


def test_cable_points_at_the_network_device_and_mirrors_are_not_repeated(tmp_path: Path) -> None:
    # Arrange: the cable's A end on the switch, and the server's interface describing the
    # same connection from the other side
    page = json.loads(json.dumps(PAGE))
    cable = page["results"][3]
    cable["a_terminations"], cable["b_terminations"] = (
        cable["b_terminations"], cable["a_terminations"]
    )
    page["results"].append({
        "id": 201, "url": "https://netbox.example/api/dcim/interfaces/201/",
        "device": {"id": 11, "name": "leaf01"}, "name": "Eth2",
        "connected_endpoints_type": "dcim.interface",
        "connected_endpoints": [{"id": 101, "name": "eno2", "device": {"id": 10}}],
    })
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page), encoding="utf-8")

    # Act
    records = _parse(path)

    # Assert: one CONNECTS_TO, from the server to the leaf switch
    connects = {r for r in _rels(records) if r[0] == "CONNECTS_TO"}
    assert connects == {("CONNECTS_TO", "dcim.device:10", "dcim.device:11")}
