"""Lansweeper Data API importer: the assetResources response, other shapes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import LifecycleStage
from cmdb_graph.model.records import AssetRecord, CIRecord, Record
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_mutant

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "lansweeper"
REAL = REALDATA / "dataapi-graphql-assetResources-ip-hunt.json"


def _parse(path: Path) -> list[Record]:
    return list(get_importer("lansweeper").parse(path))


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "resp.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _item(**basic: object) -> dict[str, object]:
    return {"key": "k1", "assetBasicInfo": {"name": "n1", **basic}}


def test_real_response_gives_two_assets() -> None:
    # Arrange / Act
    records = _parse(REAL)

    # Assert
    cis = {r.name: r for r in records if isinstance(r, CIRecord)}
    assert set(cis) == {"XLAN-15", "XLAN-499"}
    desktop, vm = cis["XLAN-15"], cis["XLAN-499"]
    assert desktop.ci_class == "Computer"  # Windows, productType "Work Station"
    assert desktop.identifiers.native_key == "60eed3768a037f93418709e4"
    assert desktop.identifiers.serial_number == "LAN15"
    assert desktop.identifiers.mac_addresses == ("cc:00:00:00:00:14",)
    assert (desktop.identifiers.hostname, desktop.identifiers.domain) == (
        "xlan-15", "demo-domain"
    )
    assert desktop.attributes["ip_addresses"] == ["159.101.1.186"]
    assert desktop.attributes["model"] == "OptiPlex 760"
    assert desktop.attributes["os_name"] == "Microsoft Windows 7 Enterprise"
    assert desktop.attributes["operational_status"] == "operational"  # stateName Active
    # productType "Server", but manufacturer Xen / model "HVM domU": a Xen guest
    assert vm.ci_class == "VirtualMachine"
    assert vm.identifiers.serial_number == "LAN499"
    assert vm.attributes["ip_addresses"] == ["10.124.121.131"]
    assets = {r.serial_number: r for r in records if isinstance(r, AssetRecord)}
    assert set(assets) == {"LAN15", "LAN499"}
    assert assets["LAN15"].attributes["purchase_date"] == "2009-04-24"
    assert assets["LAN15"].attributes["warranty_end"] == "2012-04-24"
    assert assets["LAN15"].lifecycle_stage == LifecycleStage.IN_USE
    assert assets["LAN15"].tracks is not None
    assert assets["LAN15"].tracks.native_key == "60eed3768a037f93418709e4"


def test_record_points_at_the_item() -> None:
    # Arrange / Act
    records = _parse(REAL)

    # Assert
    assert records[-1].origin.record == "/data/site/assetResources/items/1"


@pytest.mark.parametrize(
    ("asset_type", "product_type", "expected"),
    [
        ("Windows", "Server", "Server"),
        ("Windows", "Domain Controller", "Server"),
        ("Linux", None, "Server"),
        ("Apple Mac", None, "Computer"),
        ("Switch", None, "NetworkDevice"),
        ("Printer", None, "Printer"),
        ("VMware Guest", None, "VirtualMachine"),
        ("iPhone", None, "MobileDevice"),
        ("Camera", None, "Hardware"),
    ],
)
def test_class_from_type(
    tmp_path: Path, asset_type: str, product_type: str | None, expected: str
) -> None:
    # Arrange
    item = _item(type=asset_type)
    if product_type:
        item["operatingSystem"] = {"productType": product_type}

    # Act
    [ci] = [r for r in _parse(_write(tmp_path, [item])) if isinstance(r, CIRecord)]

    # Assert
    assert ci.ci_class == expected


def test_bare_assetresources_object_is_accepted(tmp_path: Path) -> None:
    # Arrange
    path = _write(tmp_path, {"total": 1, "items": [_item(fqdn="n1.corp.example")]})

    # Act
    [ci] = [r for r in _parse(path) if isinstance(r, CIRecord)]

    # Assert
    assert ci.identifiers.fqdn == "n1.corp.example"


def test_graphql_error_response_is_refused(tmp_path: Path) -> None:
    # Arrange
    path = _write(tmp_path, {"errors": [{"message": "Not authorized"}], "data": None})

    # Act / Assert
    with pytest.raises(InvalidRecordError, match="Not authorized"):
        _parse(path)


def test_item_without_name_names_the_item_and_field(tmp_path: Path) -> None:
    # Arrange
    path = _write(tmp_path, {"data": {"site": {"assetResources": {
        "items": [_item(), {"key": "k2", "assetBasicInfo": {}}]
    }}}})

    # Act / Assert
    with pytest.raises(InvalidRecordError) as info:
        _parse(path)
    assert info.value.record == "/data/site/assetResources/items/1"
    assert info.value.field == "name"


def test_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("lansweeper"),
        REAL.read_bytes(),
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b'"key"', b'"id"', 1),
        required_field="key",
    )


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_gives_records_or_invalid_record_error(data: st.DataObject) -> None:
    # Arrange / Act / Assert: the real response with one value replaced by arbitrary JSON
    check_mutant(get_importer("lansweeper"), json.loads(REAL.read_text("utf-8")), data)


def test_windows_server_caption_without_product_type(tmp_path: Path) -> None:
    # Arrange
    item = _item(type="Windows")
    item["operatingSystem"] = {"caption": "Microsoft Windows Server 2019 Standard"}

    # Act
    [ci] = [r for r in _parse(_write(tmp_path, [item])) if isinstance(r, CIRecord)]

    # Assert
    assert ci.ci_class == "Server"
    assert ci.attributes["os_name"] == "Microsoft Windows Server 2019 Standard"
