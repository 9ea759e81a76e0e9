"""Generic mapped CSV/JSON importers and the vendor mappings: real file, fixtures, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cmdb_graph.errors import ConfigurationError, InvalidRecordError
from cmdb_graph.model.records import AssetRecord, CIRecord, Record, RelationshipRecord
from importers import IMPORTERS, get_importer
from importers.generic import MappedImporter
from importers.mapping_spec import MAPPINGS_DIR, load_mapping
from tests.helpers.battery import run_battery

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata"
FIXTURES = REPO / "tests" / "fixtures" / "importers"
E_CITE_MAPPING = FIXTURES / "e_cite_cmdb_mapping.yaml"

GENERIC_KINDS = {
    "servicenow-ci": "servicenow_cmdb_ci.yaml",
    "servicenow-rel": "servicenow_cmdb_rel_ci.yaml",
    "lansweeper-csv": "lansweeper_csv.yaml",
    "snow": "snow_computers.yaml",
    "flexera": "flexera_inventory_devices.yaml",
    "certero": "certero_devices.yaml",
    "jsm-assets-csv": "jsm_assets_csv.yaml",
}


def _cis(records: list[Record]) -> list[CIRecord]:
    return [r for r in records if isinstance(r, CIRecord)]


def _parse(kind: str, path: Path, **options: object) -> list[Record]:
    return list(get_importer(kind, **options).parse(path))


# -- registry and mappings ------------------------------------------------------------------


def test_every_kind_of_this_module_is_registered_and_loads_its_mapping() -> None:
    # Arrange / Act
    loaded = {kind: get_importer(kind) for kind in GENERIC_KINDS}

    # Assert
    for kind, importer in loaded.items():
        assert IMPORTERS[kind].startswith("importers.generic:")
        assert importer.kind == kind
        assert isinstance(importer, MappedImporter)
        assert (MAPPINGS_DIR / GENERIC_KINDS[kind]).is_file()
        assert importer.mapping.document  # each mapping names the document it follows


def test_generic_csv_and_json_need_a_mapping() -> None:
    with pytest.raises(ConfigurationError, match="mapping"):
        get_importer("csv")
    with pytest.raises(ConfigurationError, match="mapping"):
        get_importer("json")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("ci_class: Server\nname: n\nidentifers: {native_key: id}\n", "identifers"),
        ("ci_class: {constant: server}\nname: n\n", "ci_class"),
        ("name: n\n", "<top>"),
        ("ci_class: Server\nname: n\nattributes:\n  x: {column: a, unmapped: maybe}\n",
         "attributes.x.unmapped"),
        ("record: relationship\nrelationship:\n  source: {native_key: p}\n"
         "  target: {native_key: c}\n  type: t\n  type_map: {a: depends-on}\n",
         "relationship.type_map.a"),
    ],
)
def test_a_bad_mapping_names_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    # Arrange
    path = tmp_path / "bad-mapping.yaml"
    path.write_text(text, encoding="utf-8")

    # Act
    with pytest.raises(ConfigurationError) as info:
        load_mapping(path)

    # Assert
    assert str(path) in str(info.value)
    assert key in str(info.value)


def test_malformed_mapping_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("ci_class: [Server\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="m.yaml"):
        load_mapping(path)


# -- the real generic CMDB file ---------------------------------------------------------------


def test_e_cite_cmdb_csv_semicolon_delimited() -> None:
    # Arrange
    path = REALDATA / "generic-cmdb" / "e-cite-netbox-test-cmdb.csv"

    # Act
    records = _parse("csv", path, mapping=E_CITE_MAPPING)

    # Assert: read by hand: name;type;id;comment, three rows
    assert {
        (r.name, r.ci_class, r.identifiers.native_key, r.attributes.get("description"),
         r.origin.line)
        for r in _cis(records)
    } == {
        ("server1", "Server", "1", "This is the first server", 2),
        ("server2", "Server", "2", "Second one", 3),
        ("vm1", "VirtualMachine", "3", "This is a VM", 4),
    }
    assert len(records) == 3


def test_e_cite_cmdb_csv_unknown_type_names_line_and_column(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "cmdb.csv"
    path.write_text("name;type;id;comment\nsw1;switch;9;x\n", encoding="utf-8")

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        _parse("csv", path, mapping=E_CITE_MAPPING)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 2, "type")
    assert "switch" in str(info.value)


def test_missing_required_column_names_file_line_1_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.csv"
    path.write_text("name;kind;id\nserver1;server;1\n", encoding="utf-8")
    with pytest.raises(InvalidRecordError) as info:
        _parse("csv", path, mapping=E_CITE_MAPPING)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 1, "type")


def test_empty_required_value_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.csv"
    path.write_text("name;type;id;comment\nserver1;server;;x\n", encoding="utf-8")
    with pytest.raises(InvalidRecordError) as info:
        _parse("csv", path, mapping=E_CITE_MAPPING)
    assert (info.value.line, info.value.field) == (2, "id")


# -- ServiceNow -----------------------------------------------------------------------------


def test_servicenow_cmdb_ci_server_list_export_csv() -> None:
    # Act
    records = _parse("servicenow-ci", FIXTURES / "servicenow_cmdb_ci_server.csv")

    # Assert
    got = {
        (r.name, r.ci_class, r.identifiers.native_key, r.identifiers.serial_number,
         r.identifiers.asset_tag, r.identifiers.fqdn, r.identifiers.domain,
         r.attributes.get("operational_status"), r.attributes.get("environment"),
         r.support_group, r.owner, r.location)
        for r in _cis(records)
    }
    assert got == {
        ("lnux100", "Server", "3a172e4bc0a8000b0064ad6b7e16e1aa", "VMW-4211-88AB", "P1000201",
         "lnux100.corp.example.com", "corp.example.com", "operational", "production",
         "Linux Admins", "Fred Luddy", "San Diego"),
        ("winsql01", "Server", "3a27d0b5c0a8000b00a9b1ef9ee7ac55", "CZJ73901PQ", "P1000342",
         "winsql01.corp.example.com", "corp.example.com", "repair", "production",
         "Database", "Don Goodliffe", "London"),
        ("esx-lab-03", "Hypervisor", "b4fd7c8437201000deeabfc8bcbe5dc1", "SGH912XKQ7", None,
         None, "lab.example.com", "retired", "test", None, None, None),
    }
    sql = next(r for r in _cis(records) if r.name == "winsql01")
    assert sql.attributes["ip_addresses"] == ["10.0.20.5", "10.0.20.6"]
    assert sql.identifiers.mac_addresses == ("00:50:56:aa:02:05",)
    assert sql.attributes["last_seen"] == "2024-03-17T22:00:03+00:00"
    assert sql.attributes["model"] == "ProLiant DL380 Gen10"


def test_servicenow_table_api_json_display_values_and_criticality_spellings() -> None:
    # Act
    records = _parse("servicenow-ci", FIXTURES / "servicenow_cmdb_ci_table_api.json")

    # Assert
    got = {
        (r.name, r.ci_class, r.identifiers.native_key, r.attributes.get("operational_status"),
         r.attributes.get("business_criticality"), r.support_group, r.owner, r.location,
         r.origin.record)
        for r in _cis(records)
    }
    assert got == {
        # cmdb_ci_service spells it busines_criticality; display value "1 - most critical"
        ("Order Processing", "BusinessService", "d1a3b2c3db3c3300f7a8e7f48a961901",
         "operational", 1, "Order Management", "Fred Luddy", None, "/result/0"),
        ("lnux100", "Server", "3a172e4bc0a8000b0064ad6b7e16e1aa", "operational", None,
         "Linux Admins", None, "San Diego", "/result/1"),
        # no display values: the reference's sys_id is not taken for a group name
        ("orders-db", "Database", "0c43b4bbdb3c3300f7a8e7f48a961955", "retired", 2, None,
         None, None, "/result/2"),
    }


def test_servicenow_cmdb_rel_ci_orientation_and_skipped_types() -> None:
    # Act
    records = _parse("servicenow-rel", FIXTURES / "servicenow_cmdb_rel_ci.csv")

    # Assert: "Members::Member of" has the cluster as parent, ours is member -> cluster;
    # "Sends data to::Receives data from" is not in the type map and is skipped.
    rels = [r for r in records if isinstance(r, RelationshipRecord)]
    assert len(rels) == len(records) == 6
    assert {(r.rel_type, r.source.name, r.target.name, r.origin.line) for r in rels} == {
        ("DEPENDS_ON", "Order Processing", "lnux100", 2),
        ("RUNS_ON", "lnux100", "esx-lab-03", 3),
        ("MEMBER_OF", "winsql01", "SQL Cluster", 4),
        ("CONNECTS_TO", "winsql01", "core-sw-01", 5),
        ("CONTAINS", "Rack R12", "winsql01", 6),
        ("HOSTED_ON", "vm-web-01", "esx-lab-03", 8),
    }
    member = next(r for r in rels if r.rel_type == "MEMBER_OF")
    assert member.source.native_key == "3a27d0b5c0a8000b00a9b1ef9ee7ac55"
    assert member.target.native_key == "e2b4c3d4db3c3300f7a8e7f48a961902"
    assert member.properties["source_type"] == "Members::Member of"


def test_servicenow_rel_table_api_json_with_display_values_all(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "cmdb_rel_ci.json"
    path.write_text(json.dumps({"result": [{
        "sys_id": {"display_value": "r1", "value": "r1"},
        "parent": {"display_value": "app01", "link": "https://x/api/now/table/cmdb_ci/p1",
                   "value": "p1"},
        "child": {"display_value": "db01", "link": "https://x/api/now/table/cmdb_ci/c1",
                  "value": "c1"},
        "type": {"display_value": "Depends on::Used by", "link": "https://x/t", "value": "t1"},
    }]}), encoding="utf-8")

    # Act
    (rel,) = _parse("servicenow-rel", path)

    # Assert
    assert isinstance(rel, RelationshipRecord)
    assert (rel.rel_type, rel.source.native_key, rel.source.name, rel.target.native_key,
            rel.target.name, rel.origin.record) == (
        "DEPENDS_ON", "p1", "app01", "c1", "db01", "/result/0")


def test_a_type_map_that_refuses_unknown_types_names_the_line(tmp_path: Path) -> None:
    # Arrange
    mapping = tmp_path / "rel.yaml"
    mapping.write_text(
        "record: relationship\nrelationship:\n  source: {native_key: a}\n"
        "  target: {native_key: b}\n  type: t\n  type_map: {uses: DEPENDS_ON}\n",
        encoding="utf-8")
    data = tmp_path / "rel.csv"
    data.write_text("a,b,t\nx,y,uses\nx,z,feeds\n", encoding="utf-8")

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        _parse("csv", data, mapping=mapping)
    assert (info.value.line, info.value.field) == (3, "t")
    assert "feeds" in str(info.value)


def test_json_records_path_and_required_field_errors(tmp_path: Path) -> None:
    # Arrange
    no_result = tmp_path / "no_result.json"
    no_result.write_text('{"records": []}', encoding="utf-8")
    no_name = tmp_path / "no_name.json"
    no_name.write_text('{"result": [{"name": "a", "sys_class_name": "cmdb_ci"},'
                       ' {"sys_class_name": "cmdb_ci"}]}', encoding="utf-8")

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        _parse("servicenow-ci", no_result)
    assert info.value.file == str(no_result)
    assert info.value.field == "result"
    with pytest.raises(InvalidRecordError) as info:
        _parse("servicenow-ci", no_name)
    assert (info.value.record, info.value.field) == ("/result/1", "name")


def test_a_value_that_cannot_be_converted_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "lansweeper.csv"
    path.write_text("AssetName,AssetTypename,Lastseen\npc1,Windows,not a date at all\n",
                    encoding="utf-8")
    with pytest.raises(InvalidRecordError) as info:
        _parse("lansweeper-csv", path)
    assert (info.value.line, info.value.field) == (2, "Lastseen")


# -- discovery and SAM exports ------------------------------------------------------------------


def test_lansweeper_csv_cis_and_tracking_assets() -> None:
    # Act
    records = _parse("lansweeper-csv", FIXTURES / "lansweeper_assets_report.csv")

    # Assert
    assert {
        (r.name, r.ci_class, r.identifiers.native_key, r.identifiers.serial_number,
         r.identifiers.domain, r.attributes.get("operational_status"), r.location)
        for r in _cis(records)
    } == {
        ("WS-ANNA-01", "Computer", "1001", "PF3XK2LM", "CORP", "operational", "Amsterdam HQ"),
        ("SRV-FILE-02", "Server", "1002", "7HJ2KL3", "CORP", "operational", "Amsterdam DC1"),
        ("SW-CORE-01", "NetworkDevice", "1003", "FOC2231X0AB", None, "operational",
         "Amsterdam DC1"),
        ("PRN-3RD-FLOOR", "Printer", "1004", "PHBQB12345", None, "repair", "Amsterdam HQ"),
        ("WS-OLD-17", "Computer", "1005", "5CG8123XYZ", "CORP", "retired", None),
    }
    assets = [r for r in records if isinstance(r, AssetRecord)]
    assert {
        (a.native_key, a.asset_tag, a.serial_number,
         a.lifecycle_stage.value if a.lifecycle_stage else None, a.holder,
         a.tracks.native_key if a.tracks else None)
        for a in assets
    } == {
        ("1001", "BC-001001", "PF3XK2LM", "in_use", "anna.devries", "1001"),
        ("1002", None, "7HJ2KL3", "in_use", None, "1002"),
        ("1003", None, "FOC2231X0AB", "in_use", None, "1003"),
        ("1004", "BC-001004", "PHBQB12345", "in_repair", None, "1004"),
        ("1005", None, "5CG8123XYZ", "disposed", None, "1005"),
    }
    ws = next(r for r in _cis(records) if r.name == "WS-ANNA-01")
    assert ws.identifiers.mac_addresses == ("3C:52:82:11:22:33",)
    assert ws.attributes["last_seen"] == "2024-04-10T16:02:55+00:00"


def test_snow_computers_classes_from_is_virtual_and_is_server() -> None:
    records = _parse("snow", FIXTURES / "snow_computers.csv")
    assert {
        (r.name, r.ci_class, r.identifiers.serial_number, r.attributes.get("os_name"),
         r.attributes.get("last_seen"), r.attributes.get("organization"), r.owner)
        for r in _cis(records)
    } == {
        ("LT-0042", "Computer", "9ZQ4LM3", "Microsoft Windows 11 Enterprise",
         "2024-04-08T06:12:00+00:00", "Sales/Benelux", "EMEA\\jdoe"),
        ("SQLPRD01", "VirtualMachine", "VMware-42 1c 5d 0e",
         "Microsoft Windows Server 2019 Standard", "2024-04-09T02:00:00+00:00",
         "IT/Infrastructure", None),
        ("APP-PHY-02", "Server", "CZ2038ABCD", "Red Hat Enterprise Linux 8.8",
         "2024-04-07T21:45:10+00:00", "IT/Infrastructure", None),
    }


def test_flexera_inventory_devices() -> None:
    records = _parse("flexera", FIXTURES / "flexera_inventory_devices.csv")
    assert {
        (r.name, r.ci_class, r.identifiers.native_key, r.identifiers.serial_number,
         r.identifiers.mac_addresses, r.attributes.get("model"), r.attributes.get("last_seen"))
        for r in _cis(records)
    } == {
        ("NYC-LT-0199", "Computer", "5501", "5CD1234XYZ", ("C8:5A:CF:12:34:56",),
         "HP EliteBook 850 G8", "2024-04-05T14:30:00+00:00"),
        ("NYC-ESX-07", "Hypervisor", "5502", "MXQ9990AB1", ("94:40:C9:AA:BB:07",),
         "ProLiant DL380 Gen10 Plus", "2024-04-06T01:00:00+00:00"),
        ("NYC-VM-WEB3", "VirtualMachine", "5503", "VMware-56 4d 12 aa", ("00:50:56:9A:01:33",),
         "VMware7.1", "2024-04-06T01:05:00+00:00"),
    }


def test_certero_devices_day_first_dates() -> None:
    records = _parse("certero", FIXTURES / "certero_devices.csv")
    assert {
        (r.name, r.ci_class, r.identifiers.serial_number, r.identifiers.domain,
         tuple(r.attributes.get("ip_addresses") or ()),  # type: ignore[arg-type]
         r.attributes.get("last_seen"), r.location)
        for r in _cis(records)
    } == {
        ("UKL-DT-3301", "Computer", "MJ0ABCDE", "uk.example.net", ("172.16.3.31",),
         "2024-04-09T08:12:00+00:00", "Manchester"),
        ("UKL-SRV-DB1", "Server", "CZ21450XYZ", "uk.example.net", ("172.16.9.10",),
         "2024-04-10T02:00:00+00:00", "Manchester DC"),
        ("UKL-VM-APP2", "VirtualMachine", "VMware-42 0a 1b 2c", "uk.example.net",
         ("172.16.9.42",), "2024-03-01T23:30:00+00:00", None),
    }


def test_jsm_assets_csv_export_with_attribute_columns() -> None:
    records = _parse("jsm-assets-csv", FIXTURES / "jsm_assets_objects.csv")
    assert {
        (r.name, r.ci_class, r.identifiers.native_key, r.identifiers.serial_number,
         r.attributes.get("operational_status"), r.attributes.get("created"),
         r.attributes.get("cost_center"), r.support_group, r.owner, r.location)
        for r in _cis(records)
    } == {
        ("pay-app-01", "Server", "ITSM-101", "VMW-9921-A1", "operational",
         "2024-02-12T09:15:00+00:00", "CC-4410", "Payments Platform", "Priya Natarajan",
         "Frankfurt DC"),
        ("Payments", "BusinessService", "ITSM-102", None, "operational",
         "2024-02-12T09:20:00+00:00", "CC-4410", "Payments Platform", "Priya Natarajan", None),
        ("LT-PN-01", "Computer", "ITSM-118", "PF4ABCD1", "repair",
         "2024-01-05T11:02:00+00:00", "CC-4410", None, "Priya Natarajan", "Frankfurt Office"),
    }


# -- the bad-input battery --------------------------------------------------------------------


def _drop_header(name: bytes, replacement: bytes) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        head, _, rest = data.partition(b"\n")
        return head.replace(name, replacement, 1) + b"\n" + rest
    return change


CSV_BATTERY = [
    ("servicenow-ci", "servicenow_cmdb_ci_server.csv", b'"sys_class_name"', "sys_class_name"),
    ("servicenow-rel", "servicenow_cmdb_rel_ci.csv", b'"child"', "child"),
    ("lansweeper-csv", "lansweeper_assets_report.csv", b"AssetName", "AssetName"),
    ("snow", "snow_computers.csv", b"Name", "Name"),
    ("flexera", "flexera_inventory_devices.csv", b"ComputerName", "ComputerName"),
    ("certero", "certero_devices.csv", b"Device Name", "Device Name"),
    ("jsm-assets-csv", "jsm_assets_objects.csv", b'"Object Type"', "Object Type"),
]


@pytest.mark.parametrize(("kind", "fixture", "column", "field"), CSV_BATTERY)
def test_bad_input_battery_csv(tmp_path: Path, kind: str, fixture: str, column: bytes,
                               field: str) -> None:
    run_battery(
        get_importer(kind),
        (FIXTURES / fixture).read_bytes(),
        fmt="csv",
        tmp_path=tmp_path,
        missing_required=_drop_header(column, b"Unrelated"),
        required_field=field,
    )


def test_bad_input_battery_generic_csv(tmp_path: Path) -> None:
    run_battery(
        get_importer("csv", mapping=E_CITE_MAPPING),
        (REALDATA / "generic-cmdb" / "e-cite-netbox-test-cmdb.csv").read_bytes(),
        fmt="csv",
        tmp_path=tmp_path,
        missing_required=_drop_header(b"type", b"kind"),
        required_field="type",
    )


def test_bad_input_battery_servicenow_table_api_json(tmp_path: Path) -> None:
    run_battery(
        get_importer("servicenow-ci"),
        (FIXTURES / "servicenow_cmdb_ci_table_api.json").read_bytes(),
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda d: d.replace(b'"sys_class_name"', b'"class_name"', 1),
        required_field="sys_class_name",
    )


def test_bad_input_battery_generic_json(tmp_path: Path) -> None:
    mapping = tmp_path / "things.yaml"
    mapping.write_text(
        "records_path: data.items\nrequired: [id, name]\nci_class: {constant: Server}\n"
        "name: name\nidentifiers: {native_key: id, serial_number: hw.serial}\n",
        encoding="utf-8")
    valid = json.dumps({"data": {"items": [
        {"id": "a1", "name": "alpha", "hw": {"serial": "S1"}},
        {"id": "b2", "name": "beta", "hw": {"serial": "S2"}},
    ]}}).encode()
    importer = get_importer("json", mapping=mapping)
    assert {(r.name, r.identifiers.serial_number) for r in _cis(list(importer.parse(
        _write(tmp_path / "ok.json", valid))))} == {("alpha", "S1"), ("beta", "S2")}
    run_battery(
        importer, valid, fmt="json", tmp_path=tmp_path,
        missing_required=lambda d: d.replace(b'"name": "beta"', b'"nom": "beta"'),
        required_field="name",
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_shipped_mapping_can_be_named_for_the_generic_csv_importer() -> None:
    # Arrange / Act: the snow mapping by name, through the generic CSV importer
    records = _parse("csv", FIXTURES / "snow_computers.csv", mapping="snow_computers")

    # Assert
    assert {r.name for r in _cis(records)} == {"LT-0042", "SQLPRD01", "APP-PHY-02"}


def test_an_option_an_importer_does_not_take_is_named_with_those_it_takes() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_importer("compose", nonsense="1")
    assert str(info.value) == "importer 'compose' has no option nonsense; its options: project"
    assert get_importer("compose", project="shop").project == "shop"
