"""Unit tests of the identification rules over an in-memory CI index (no store)."""

from __future__ import annotations

import pytest

from cmdb_graph.ingest.identify import (
    CIIndex,
    RecordKeys,
    class_family,
    class_group,
    match_rule,
    norm_mac,
    norm_serial,
    slug,
    split_fqdn,
)
from cmdb_graph.model import ConfigurationItem, Identifiers, Registry

REG = Registry()


def ci(ci_id: str, name: str = "x", ci_class: str = "Server", **kw: object) -> ConfigurationItem:
    return ConfigurationItem(ci_id=ci_id, name=name, ci_class=ci_class, **kw)  # type: ignore[arg-type]


def index(*cis: ConfigurationItem) -> CIIndex:
    ix = CIIndex()
    ix.put_all(cis)
    return ix


def ids(rule: str, keys: RecordKeys, ix: CIIndex, ci_class: str | None = "Server",
        host_id: str | None = None) -> list[str]:
    return [c.ci_id for c in match_rule(ix, REG, rule, keys, ci_class=ci_class, host_id=host_id)]


@pytest.mark.parametrize("raw", ["To be filled by O.E.M.", "0", "000000", " ", "N/A", "None",
                                 "Default string", "System Serial Number"])
def test_placeholder_serials_are_dropped(raw: str) -> None:
    assert norm_serial(raw) is None


def test_serials_and_macs_are_normalised() -> None:
    assert norm_serial("  CZC12 ") == "CZC12"
    assert norm_mac("00-1A-2B-3C-4D-5E") == "00:1a:2b:3c:4d:5e"
    assert norm_mac("001a.2b3c.4d5e") == "00:1a:2b:3c:4d:5e"
    assert norm_mac("00:00:00:00:00:00") is None
    assert norm_mac("not a mac") is None


def test_fqdn_split_and_derived_keys() -> None:
    assert split_fqdn("Web01.Corp.Example.") == ("web01", "corp.example")
    assert split_fqdn("10.0.0.1") == ("10.0.0.1", None)
    keys = RecordKeys.of(Identifiers(fqdn="WEB01.corp.example"), "src")
    assert (keys.fqdn, keys.hostname, keys.domain) == ("web01.corp.example", "web01",
                                                       "corp.example")
    keys = RecordKeys.of(Identifiers(hostname="db1.corp.example"), "src")
    assert (keys.fqdn, keys.hostname, keys.domain) == ("db1.corp.example", "db1", "corp.example")


def test_native_key_is_scoped_to_its_source() -> None:
    ix = index(ci("a", native_keys=["glpi:1"]))
    assert ids("native_key", RecordKeys.of(Identifiers(native_key="1"), "glpi"), ix) == ["a"]
    assert ids("native_key", RecordKeys.of(Identifiers(native_key="1"), "sccm"), ix) == []


def test_serial_matches_case_insensitively_within_the_class_group() -> None:
    ix = index(ci("srv", serial_number="abc1"),
               ci("app", ci_class="Application", serial_number="ABC1"))
    keys = RecordKeys.of(Identifiers(serial_number="ABC1"), "s")
    assert ids("serial_number", keys, ix) == ["srv"]
    assert ids("serial_number", keys, ix, ci_class="Application") == ["app"]


def test_hostname_with_and_without_domain() -> None:
    ix = index(ci("a", hostname="web01", domain="a.example"),
               ci("b", hostname="web01", domain="b.example"),
               ci("c", hostname="web02"))
    with_a = RecordKeys.of(Identifiers(hostname="WEB01", domain="a.example"), "s")
    bare = RecordKeys.of(Identifiers(hostname="web01"), "s")
    other_domain = RecordKeys.of(Identifiers(hostname="web02", domain="z.example"), "s")
    assert ids("hostname_domain", with_a, ix) == ["a"]
    assert ids("hostname_domain", bare, ix) == ["a", "b"]
    assert ids("hostname_domain", other_domain, ix) == ["c"]  # no domain on c: no conflict


def test_hostname_match_refuses_a_contradicting_serial() -> None:
    ix = index(ci("a", hostname="web01", serial_number="S1"))
    keys = RecordKeys.of(Identifiers(hostname="web01", serial_number="S2"), "s")
    assert ids("hostname_domain", keys, ix) == []


def test_mac_needs_another_identifier_that_matches_or_is_absent() -> None:
    ix = index(ci("a", hostname="web01", mac_addresses=["00:1a:2b:3c:4d:5e"]))
    mac = ("001A2B3C4D5E",)
    alone = RecordKeys.of(Identifiers(mac_addresses=mac), "s")
    contradicting = RecordKeys.of(Identifiers(mac_addresses=mac, hostname="web02"), "s")
    absent_on_candidate = RecordKeys.of(Identifiers(mac_addresses=mac, serial_number="S9"), "s")
    assert ids("mac_address", alone, ix) == []
    assert ids("mac_address", contradicting, ix) == []
    assert ids("mac_address", absent_on_candidate, ix) == ["a"]


def test_name_host_and_name_rules() -> None:
    ix = index(ci("app-a", "nginx", "Application", host_id="h1"),
               ci("app-b", "nginx", "Application", host_id="h2"),
               ci("svc", "Shop", "BusinessService"),
               ci("cl", "Shop", "Cluster"))
    nginx = RecordKeys.of(Identifiers(name="NGINX"), "s")
    assert ids("name_host", nginx, ix, ci_class="Middleware", host_id="h2") == ["app-b"]
    assert ids("name_host", nginx, ix, ci_class="Application", host_id=None) == []
    shop = RecordKeys.of(Identifiers(name="shop"), "s")
    assert ids("name", shop, ix, ci_class="ApplicationService") == ["svc"]
    assert ids("name", shop, ix, ci_class="Cluster") == ["cl"]


def test_duplicates_are_not_indexed() -> None:
    ix = index(ci("a", serial_number="S1"), ci("b", serial_number="S1", duplicate_of="a"))
    assert ids("serial_number", RecordKeys.of(Identifiers(serial_number="S1"), "s"), ix) == ["a"]


def test_reindexing_drops_old_values() -> None:
    ix = index(ci("a", serial_number="S1"))
    ix.put(ci("a", serial_number="S2"))
    assert ids("serial_number", RecordKeys.of(Identifiers(serial_number="S1"), "s"), ix) == []
    assert ids("serial_number", RecordKeys.of(Identifiers(serial_number="S2"), "s"), ix) == ["a"]


def test_groups_families_and_slugs() -> None:
    assert class_group(REG, "Database") == "dependent"
    assert class_group(REG, "BusinessService") == "service"
    assert class_group(REG, "VirtualMachine") == "infra"
    assert class_family(REG, "Hypervisor") == "Hardware"
    assert slug("Linux Ops (EU) – Zürich") == "linux-ops-eu-zurich"
    assert len(slug("日本")) == 10 and slug("日本") == slug("日本")
    assert slug("日本") != slug("中国")
