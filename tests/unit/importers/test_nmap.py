"""nmap XML importer: the libnmap sample scan, nmap 7 shaped scans, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Record, RelationshipRecord
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.xml_fuzz import check_xml_mutant

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "nmap"

#: nmap 7 style output (written for these tests): osmatch elements, a MAC with vendor, a
#: user-given host name, a switch, a printer and a host that is down
SCAN = REPO / "tests" / "fixtures" / "importers" / "nmap_scan_nmap7.xml"


def _scan() -> list[Record]:
    return list(get_importer("nmap").parse(SCAN))


def _hosts(records: list[Record]) -> list[CIRecord]:
    return [r for r in records if isinstance(r, CIRecord) and r.identifiers.host is None]


def test_real_scan_host_ports_and_os_guess() -> None:
    # Arrange / Act
    records = list(get_importer("nmap").parse(REALDATA / "libnmap-1_os_banner_scripts.xml"))

    # Assert
    [host] = _hosts(records)
    assert (host.ci_class, host.name) == ("Server", "localhost")
    assert host.identifiers.native_key == "ip:127.0.0.1"
    assert host.identifiers.hostname is None  # "localhost" identifies nothing
    assert host.attributes["ip_addresses"] == ["127.0.0.1"]
    assert host.attributes["open_ports"] == [
        "22/tcp ssh OpenSSH 5.3",
        "25/tcp smtp Postfix smtpd",
        "80/tcp http Apache httpd 2.2.15",
        "111/tcp rpcbind 2-4",
        "631/tcp ipp CUPS 1.4",
        "3306/tcp mysql MySQL 5.1.67",
        "8009/tcp ajp13",
        "8080/tcp tcpwrapped",
    ]
    # Netgear WAP and Linux 2.6.X tie at 96%: the classes disagree, so Server and Linux
    assert (host.attributes["os_name"], host.attributes["os_accuracy"]) == ("Linux 2.6.X", 96)
    services = {
        r.name: (r.ci_class, r.attributes.get("version"))
        for r in records
        if isinstance(r, CIRecord) and r.identifiers.host is not None
    }
    assert services == {
        "Postfix smtpd": ("Middleware", None),
        "Apache httpd": ("Middleware", "2.2.15"),
        "MySQL": ("Database", "5.1.67"),
    }
    runs_on = {
        (r.source.name, r.target.native_key)
        for r in records
        if isinstance(r, RelationshipRecord) and r.rel_type == "RUNS_ON"
    }
    assert runs_on == {
        ("Postfix smtpd", "ip:127.0.0.1"),
        ("Apache httpd", "ip:127.0.0.1"),
        ("MySQL", "ip:127.0.0.1"),
    }


def test_nmap7_scan_hosts_classes_and_identifiers() -> None:
    # Arrange / Act
    records = _scan()

    # Assert
    hosts = {h.attributes["ip_addresses"][0]: h for h in _hosts(records)}
    assert set(hosts) == {"192.0.2.5", "192.0.2.6", "192.0.2.1"}  # the down host is skipped
    web = hosts["192.0.2.5"]
    assert (web.ci_class, web.name) == ("Server", "web05")  # the user-given name first
    assert web.identifiers.native_key == "mac:00:1b:21:aa:bb:cc"
    assert web.identifiers.mac_addresses == ("00:1b:21:aa:bb:cc",)
    assert web.identifiers.hostname == "web05"
    assert web.attributes["mac_vendor"] == "Intel Corporate"
    assert (web.attributes["os_name"], web.attributes["os_accuracy"]) == ("Linux 5.0 - 5.14", 98)
    assert web.attributes["open_ports"] == [
        "443/tcp https nginx 1.24.0", "80/tcp http nginx 1.24.0",
        "5432/tcp postgresql PostgreSQL DB 15.2",
    ]
    assert hosts["192.0.2.6"].ci_class == "Printer"
    switch = hosts["192.0.2.1"]
    assert switch.ci_class == "NetworkDevice"
    assert (switch.identifiers.fqdn, switch.identifiers.domain) == (
        "sw1.example.net", "example.net"
    )
    assert switch.attributes["os_name"] == "Cisco IOS 15.X"


def test_one_service_ci_per_product_and_host() -> None:
    # Arrange / Act
    records = _scan()

    # Assert: nginx on 443 and 80 is one Middleware CI, identified by name + host
    apps = [r for r in records if isinstance(r, CIRecord) and r.identifiers.host is not None]
    assert {(a.name, a.ci_class) for a in apps} == {
        ("nginx", "Middleware"), ("PostgreSQL DB", "Database")
    }
    nginx = next(a for a in apps if a.name == "nginx")
    assert nginx.attributes["ports"] == ["443/tcp", "80/tcp"]
    assert nginx.identifiers.name == "nginx"
    assert nginx.identifiers.host is not None
    assert nginx.identifiers.host.native_key == "mac:00:1b:21:aa:bb:cc"


def test_host_without_address_names_the_host(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "bad.xml"
    path.write_text('<nmaprun><host><status state="up"/></host></nmaprun>', encoding="utf-8")

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("nmap").parse(path))
    assert (info.value.record, info.value.field) == ("host[1]", "address")


def test_bad_input_battery(tmp_path: Path) -> None:
    valid = (REALDATA / "libnmap-1_os_banner_scripts.xml").read_bytes()
    run_battery(
        get_importer("nmap"),
        valid,
        fmt="xml",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(
            b'<address addr="127.0.0.1" addrtype="ipv4"/>', b""
        ),
        required_field="address",
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mutated_scan_gives_records_or_invalid_record_error(data: st.DataObject) -> None:
    # Arrange / Act / Assert: one element removed or one value replaced
    name = data.draw(st.sampled_from(["real", "nmap7"]))
    path = REALDATA / "libnmap-1_os_banner_scripts.xml" if name == "real" else SCAN
    check_xml_mutant(get_importer("nmap"), path.read_bytes(), data)
