"""GLPI Agent JSON and FusionInventory XML importers: the real inventories, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Record, RelationshipRecord, SoftwareRecord
from importers import get_importer
from importers.glpi import normalise_mac
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_mutant
from tests.unit.importers.xml_fuzz import check_xml_mutant

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "glpi"

VALID_JSON = json.dumps(
    {
        "deviceid": "host-a-2024-01-01-00-00-00",
        "content": {
            "versionclient": "GLPI-Agent_v1.7",
            "hardware": {"name": "host-a", "uuid": "AAAA-1", "chassis_type": "Rack Mount Chassis"},
            "bios": {"ssn": "SER123"},
            "softwares": [{"name": "nginx", "publisher": "F5", "version": "1.24.0"}],
        },
    }
).encode()

VALID_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<REQUEST>
  <CONTENT>
    <HARDWARE><NAME>pc-b</NAME><WORKGROUP>corp.example</WORKGROUP></HARDWARE>
    <BIOS><SSN>XYZ987</SSN></BIOS>
    <NETWORKS><MACADDR>00-11-22-33-44-55</MACADDR><IPADDRESS>10.1.2.3</IPADDRESS></NETWORKS>
    <SOFTWARES><NAME>7-Zip</NAME><VERSION>23.01</VERSION></SOFTWARES>
    <VERSIONCLIENT>FusionInventory-Agent_v2.6</VERSIONCLIENT>
  </CONTENT>
  <DEVICEID>pc-b-2024-01-01-00-00-00</DEVICEID>
  <QUERY>INVENTORY</QUERY>
</REQUEST>
"""


def _parse(kind: str, name: str) -> list[Record]:
    return list(get_importer(kind).parse(REALDATA / name))


def _one_ci(records: list[Record]) -> CIRecord:
    cis = [r for r in records if isinstance(r, CIRecord)]
    assert len(cis) == 1
    return cis[0]


def test_json_laptop_identifiers_and_software() -> None:
    # Arrange / Act
    records = _parse("glpi", "computer_1.json")

    # Assert
    ci = _one_ci(records)
    assert (ci.ci_class, ci.name) == ("Computer", "glpixps")
    assert ci.identifiers.serial_number == "640HP72"
    assert ci.identifiers.native_key == "4c4c4544-0034-3010-8048-b6c04f503732"
    assert ci.identifiers.hostname == "glpixps"
    assert ci.identifiers.fqdn is None  # the agent's fqdn "glpixps" has no domain
    # loopback (00:..:00) and the virtual bridge virbr0 are not identifiers
    assert ci.identifiers.mac_addresses == ("00:e0:4c:68:01:db", "44:85:00:2b:90:bc")
    assert ci.attributes["ip_addresses"] == ["192.168.1.142", "192.168.1.118"]
    assert ci.attributes["manufacturer"] == "Dell Inc."
    assert ci.attributes["model"] == "XPS 13 9350"
    assert ci.attributes["os_name"] == "Fedora 31 (Workstation Edition)"
    assert ci.attributes["users"] == ["trasher", "root"]
    software = [r for r in records if isinstance(r, SoftwareRecord)]
    assert len(software) == 6
    assert {(s.product, s.vendor, s.version) for s in software} >= {
        ("gitg", "Fedora Project", "3.32.1-1.fc31"),
        ("gettext", "Fedora Project", "0.20.1-3.fc31"),
    }
    assert all(s.installed_on == ci.identifiers for s in software)
    gettext = next(s for s in software if s.product == "gettext")
    assert gettext.installed_at == datetime(2020, 1, 15, tzinfo=UTC)


def test_json_printer_netinventory() -> None:
    # Arrange / Act
    ci = _one_ci(_parse("glpi", "printer_1.json"))

    # Assert
    assert (ci.ci_class, ci.name) == ("Printer", "NPIF2BE10")
    assert ci.identifiers.serial_number == "PHCVN191TG"
    assert ci.identifiers.mac_addresses == ("00:68:eb:f2:be:10",)
    assert ci.attributes["ip_addresses"] == ["10.59.29.175"]
    assert ci.attributes["model"] == "HP LaserJet M507"


def test_xml_windows_laptop() -> None:
    # Arrange / Act
    records = _parse("fusioninventory", "fusioninventory-windows-inventory-12.xml")

    # Assert
    ci = _one_ci(records)
    assert (ci.ci_class, ci.name) == ("Computer", "pc-arg-23")
    ids = ci.identifiers
    assert ids.serial_number == "CZC0479792"
    assert (ids.hostname, ids.domain, ids.fqdn) == (
        "pc-arg-23", "cedre.local", "pc-arg-23.cedre.local"
    )
    assert ids.native_key == "33e737a8-f827-11df-9297-47c0a301005a"
    # six NETWORKS entries; the hosted-network virtual adapter (VIRTUALDEV 1) is left out
    assert ids.mac_addresses == (
        "68:b5:99:e6:84:eb", "61:b5:99:e6:84:ea", "74:f3:95:c7:e8:c2", "00:ff:3a:68:62:80",
        "00:22:10:d4:3e:74",
    )
    assert ci.attributes["ip_addresses"] == ["10.253.6.55"]
    assert ci.attributes["os_name"] == "Microsoft Windows 8.1 Professionnel"
    assert ci.attributes["model"] == "HP EliteBook 2540p"
    software = [r for r in records if isinstance(r, SoftwareRecord)]
    assert len(software) == 8
    ccleaner = next(s for s in software if s.product == "CCleaner")
    assert (ccleaner.vendor, ccleaner.version) == ("Piriform", "5.09")
    assert ccleaner.installed_at == datetime(2015, 9, 11, tzinfo=UTC)  # DD/MM/YYYY
    kb = next(s for s in software if s.product == "KB4019215")
    assert (kb.vendor, kb.version) == (None, None)


def test_xml_netdiscovery_switch() -> None:
    # Arrange / Act
    ci = _one_ci(_parse("fusioninventory", "fusioninventory-netdiscovery-16.xml"))

    # Assert
    assert (ci.ci_class, ci.name) == ("NetworkDevice", "J9803A")
    assert ci.identifiers.serial_number == "cn3afrt37n"
    assert ci.attributes["ip_addresses"] == ["192.168.1.9"]
    assert ci.attributes["model"] == "1810-24G"
    assert ci.location == "Agence Teclib"
    # the file's MAC d5:c9:gh:81:cf:80 has a non-hex octet: kept, but never as an identifier
    assert ci.identifiers.mac_addresses == ()
    assert ci.attributes["invalid_mac_addresses"] == ["d5:c9:gh:81:cf:80"]
    assert ci.identifiers.asset_tag is None  # the placeholder "assettag"


def test_virtual_machine_by_vmsystem(tmp_path: Path) -> None:
    # Arrange
    doc = json.loads(VALID_JSON)
    doc["content"]["hardware"]["vmsystem"] = "KVM"
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(doc), encoding="utf-8")

    # Act
    ci = _one_ci(list(get_importer("glpi").parse(path)))

    # Assert
    assert ci.ci_class == "VirtualMachine"


def test_server_by_chassis_type(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "srv.json"
    path.write_bytes(VALID_JSON)

    # Act
    ci = _one_ci(list(get_importer("glpi").parse(path)))

    # Assert
    assert ci.ci_class == "Server"
    assert ci.identifiers.serial_number == "SER123"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00-11-22-AA-BB-CC", "00:11:22:aa:bb:cc"),
        ("0011.22aa.bbcc", "00:11:22:aa:bb:cc"),
        ("00:00:00:00:00:00", None),
        ("d5:c9:gh:81:cf:80", None),
        (None, None),
    ],
)
def test_normalise_mac(raw: str | None, expected: str | None) -> None:
    assert normalise_mac(raw) == expected


def test_software_without_name_names_the_entry(tmp_path: Path) -> None:
    # Arrange
    doc = json.loads(VALID_JSON)
    doc["content"]["softwares"].append({"version": "1"})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("glpi").parse(path))
    assert info.value.record == "/content/softwares/1"
    assert info.value.field == "name"


def test_json_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("glpi"),
        VALID_JSON,
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b'"deviceid"', b'"device"'),
        required_field="deviceid",
    )


def test_xml_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("fusioninventory"),
        VALID_XML,
        fmt="xml",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(
            b"<DEVICEID>pc-b-2024-01-01-00-00-00</DEVICEID>", b""
        ),
        required_field="DEVICEID",
    )


def test_xml_sample_maps_like_json(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "pc.xml"
    path.write_bytes(VALID_XML)

    # Act
    records = list(get_importer("fusioninventory").parse(path))

    # Assert
    ci = _one_ci(records)
    assert ci.identifiers.mac_addresses == ("00:11:22:33:44:55",)
    assert ci.identifiers.domain == "corp.example"
    assert [(s.product, s.version) for s in records if isinstance(s, SoftwareRecord)] == [
        ("7-Zip", "23.01")
    ]


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_json_any_value_anywhere_gives_records_or_invalid_record_error(
    data: st.DataObject,
) -> None:
    # Arrange / Act / Assert: a real inventory with one value replaced by arbitrary JSON
    path = data.draw(st.sampled_from([
        REALDATA / "computer_1.json", REALDATA / "printer_1.json",
        REPO / "tests" / "fixtures" / "importers" / "glpi_host_with_guests.json",
    ]))
    check_mutant(get_importer("glpi"), json.loads(path.read_text("utf-8")), data)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_xml_mutated_message_gives_records_or_invalid_record_error(
    data: st.DataObject,
) -> None:
    # Arrange / Act / Assert: one element removed or one value replaced
    name = data.draw(st.sampled_from(
        ["fusioninventory-windows-inventory-12.xml", "fusioninventory-netdiscovery-16.xml"]
    ))
    check_xml_mutant(get_importer("fusioninventory"), (REALDATA / name).read_bytes(), data)


def test_guests_and_database_servers_of_a_host() -> None:
    # Arrange
    path = REPO / "tests" / "fixtures" / "importers" / "glpi_host_with_guests.json"

    # Act
    records = list(get_importer("glpi").parse(path))

    # Assert
    cis = {r.name: r for r in records if isinstance(r, CIRecord)}
    host = cis["kvm01"]
    assert host.ci_class == "Server"
    assert host.identifiers.fqdn == "kvm01.lab.example"
    vm, container, dbms = cis["web-vm"], cis["registry"], cis["PostgreSQL 15"]
    assert vm.ci_class == "VirtualMachine"
    assert vm.identifiers.native_key == "9a8b7c6d-1111-4222-8333-444455556666"
    assert vm.identifiers.mac_addresses == ("52:54:00:12:34:56",)
    assert (vm.attributes["vcpu"], vm.attributes["memory_mb"]) == (4, 8192)
    assert vm.attributes["operational_status"] == "operational"
    assert container.ci_class == "Container"
    assert container.identifiers.host is not None
    assert container.identifiers.host.native_key == host.identifiers.native_key
    assert dbms.ci_class == "Database"
    assert dbms.attributes["databases"] == ["inventory", "billing"]
    assert dbms.attributes["ports"] == ["5432"]
    rels = {
        (r.rel_type, r.source.name, r.target.native_key)
        for r in records
        if isinstance(r, RelationshipRecord)
    }
    key = host.identifiers.native_key
    assert rels == {
        ("HOSTED_ON", "web-vm", key),
        ("RUNS_ON", "registry", key),
        ("RUNS_ON", "PostgreSQL 15", key),
    }
