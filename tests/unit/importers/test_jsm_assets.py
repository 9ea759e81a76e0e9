"""JSM Assets JSON: the WuerthPhoenix load files (real), the REST object shape, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Record, RelationshipRecord
from importers import get_importer
from tests.helpers.battery import run_battery

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "jira-assets"
FIXTURES = REPO / "tests" / "fixtures" / "importers"
SAMPLE = REALDATA / "wuerth-load-jsm-cmdb-sample-data.json"
NETEYE = REALDATA / "wuerth-neteye-hosts-ready.json"
REST = FIXTURES / "jsm_assets_rest_objects.json"


def _parse(path: Path, **options: object) -> list[Record]:
    return list(get_importer("jsm-assets", **options).parse(path))


def _cis(records: list[Record]) -> set[tuple[str, str, str | None, object]]:
    return {(r.name, r.ci_class, r.identifiers.native_key, r.attributes.get("object_type"))
            for r in records if isinstance(r, CIRecord)}


def _rels(records: list[Record]) -> set[tuple[str, str | None, str | None]]:
    return {(r.rel_type, r.source.native_key, r.target.native_key)
            for r in records if isinstance(r, RelationshipRecord)}


def test_products_and_components_of_the_load_sample() -> None:
    # Act
    records = _parse(SAMPLE)

    # Assert: read by hand: 3 products (1 without components), 3 nested components
    assert _cis(records) == {
        ("Product 1", "BusinessService", "Product1_NoSpace", "Product"),
        ("Product 3", "BusinessService", "Product3_NoSpace", "Product"),
        ("Product 4", "BusinessService", "Product4_NoSpace", "Product"),
        ("Component 3", "ConfigurationItem", "COMPONENT3_NoSpace", "Component"),
        ("Component 1", "ConfigurationItem", "COMPONENT1_NoSpace", "Component"),
        ("Component 2", "ConfigurationItem", "COMPONENT2_NoSpace", "Component"),
    }
    assert _rels(records) == {
        ("DEPENDS_ON", "Product3_NoSpace", "COMPONENT3_NoSpace"),
        ("DEPENDS_ON", "Product4_NoSpace", "COMPONENT1_NoSpace"),
        ("DEPENDS_ON", "Product4_NoSpace", "COMPONENT2_NoSpace"),
    }
    p4 = next(r for r in records if isinstance(r, CIRecord) and r.name == "Product 4")
    assert p4.attributes == {"object_type": "Product",
                             "description": "This is the Product 1 Description",
                             "organization": "MyORG1", "price": "0,00 EURO",
                             "item_number": "123"}
    c1 = next(r for r in records if isinstance(r, CIRecord) and r.name == "Component 1")
    assert (c1.attributes["model"], c1.origin.record) == ("Model ABC", "/2/COMPONENTS/0")


def test_composite_relation_can_be_contains() -> None:
    records = _parse(SAMPLE, component_relationship="CONTAINS")
    assert {t for t, _, _ in _rels(records)} == {"CONTAINS"}
    assert len(_rels(records)) == 3


def test_neteye_hosts_sample() -> None:
    records = _parse(NETEYE)
    assert _cis(records) == {
        ("SampleHost", "ConfigurationItem", "SampleHost_Acme", "Monitored Host"),
        ("switch001-cisco-docker", "ConfigurationItem", "switch001-cisco-docker_Acme",
         "Monitored Host"),
    }
    assert _rels(records) == set()
    host = next(r for r in records if isinstance(r, CIRecord) and r.name == "SampleHost")
    assert host.attributes["link"] == (
        "https://<NETEYE URL>/neteye/monitoring/host/show?host=SampleHost")
    assert host.attributes["organization"] == "Acme"


def test_component_links_to_the_product_with_its_item_number(tmp_path: Path) -> None:
    # Arrange: a separate component entry (the script's component file) next to products
    path = tmp_path / "load.json"
    path.write_text(json.dumps([
        {"PRODUCTNAME": "Shop", "SEARCHKEY": "shop", "PRODUCT_ITEMNUMBER": "7"},
        {"Name": "Cart", "SEARCHKEY": "cart", "PRODUCT_ITEMNUMBER": "7"},
        {"Name": "Orphan", "SEARCHKEY": "orphan", "PRODUCT_ITEMNUMBER": "999"},
    ]), encoding="utf-8")

    # Act
    records = _parse(path)

    # Assert
    assert _rels(records) == {("DEPENDS_ON", "shop", "cart")}
    assert {n for n, _, _, _ in _cis(records)} == {"Shop", "Cart", "Orphan"}


def test_rest_object_shape() -> None:
    # Act
    records = _parse(REST)

    # Assert
    cis = [r for r in records if isinstance(r, CIRecord)]
    assert {(r.name, r.ci_class, r.identifiers.native_key, r.identifiers.serial_number,
             r.attributes.get("operational_status"), r.owner, r.location) for r in cis} == {
        ("pay-app-01", "Server", "ITSM-101", "VMW-9921-A1", "operational", "Priya Natarajan",
         None),
        ("pay-cluster", "Cluster", "ITSM-7", None, None, None, "Frankfurt DC"),
    }
    app = next(r for r in cis if r.name == "pay-app-01")
    assert app.attributes["ip_addresses"] == ["10.30.1.11", "10.30.2.11"]
    assert app.attributes["cost_center"] == "CC-4410"
    # "Members" of a cluster: ours is member -> cluster
    assert _rels(records) == {("DEPENDS_ON", "ITSM-101", "ITSM-5"),
                              ("MEMBER_OF", "ITSM-101", "ITSM-7")}


def test_rest_classes_option(tmp_path: Path) -> None:
    records = _parse(REST, classes={"Host": "VirtualMachine"})
    assert ("pay-app-01", "VirtualMachine", "ITSM-101", "Host") in _cis(records)


@pytest.mark.parametrize(
    ("payload", "record", "field"),
    [
        ([{"PRODUCTNAME": "a", "SEARCHKEY": "a"}, {"PRODUCTNAME": "b"}], "/1", "SEARCHKEY"),
        ([{"PRODUCTNAME": "a", "SEARCHKEY": "a", "COMPONENTS": [{"SEARCHKEY": "c"}]}],
         "/0/COMPONENTS/0", "Name"),
        ({"objectEntries": [{"objectKey": "K-1", "label": "x"}]}, "/objectEntries/0",
         "objectType.name"),
        ({"objectEntries": [{"objectType": {"name": "Host"}, "label": "x"}]},
         "/objectEntries/0", "objectKey"),
    ],
)
def test_missing_required_fields_name_the_record(tmp_path: Path, payload: object, record: str,
                                                 field: str) -> None:
    # Arrange
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload), encoding="utf-8")

    # Act
    with pytest.raises(InvalidRecordError) as info:
        _parse(path)

    # Assert
    assert (info.value.file, info.value.record, info.value.field) == (str(path), record, field)


def test_bad_input_battery_load_format(tmp_path: Path) -> None:
    run_battery(
        get_importer("jsm-assets"),
        SAMPLE.read_bytes(),
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda d: d.replace(b'"SEARCHKEY": "Product3_NoSpace"',
                                             b'"KEY": "Product3_NoSpace"'),
        required_field="SEARCHKEY",
    )


def test_bad_input_battery_rest_shape(tmp_path: Path) -> None:
    run_battery(
        get_importer("jsm-assets"),
        REST.read_bytes(),
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda d: d.replace(b'"objectKey": "ITSM-7"', b'"key": "ITSM-7"'),
        required_field="objectKey",
    )
