"""Snipe-IT asset, location and component CSVs: the real samples, our fixtures, bad input."""

from __future__ import annotations

import doctest
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import importers.snipeit
from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import (
    AssetRecord,
    CIRecord,
    LocationRecord,
    PersonRecord,
    Record,
)
from importers import get_importer
from importers.snipeit import hardware_class, lifecycle_stage
from tests.helpers.battery import run_battery

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "snipeit"
FIXTURES = REPO / "tests" / "fixtures" / "importers"


def _parse(kind: str, path: Path) -> list[Record]:
    return list(get_importer(kind).parse(path))


def _assets(records: list[Record]) -> dict[str, AssetRecord]:
    return {r.asset_tag or r.native_key or "": r for r in records if isinstance(r, AssetRecord)}


def _stage(a: AssetRecord) -> str | None:
    return a.lifecycle_stage.value if a.lifecycle_stage else None


# -- real sample: assets ----------------------------------------------------------------------


def test_real_assets_sample_counts() -> None:
    # Act
    records = _parse("snipeit-assets", REALDATA / "assets-sample.csv")

    # Assert: 150 rows; 62 checked out to a user (53 distinct usernames), 42 to a location,
    # 46 not checked out; no status column; categories are construction trades, no hardware.
    assert Counter(type(r).__name__ for r in records) == {"AssetRecord": 150,
                                                          "PersonRecord": 53}
    assets = _assets(records)
    assert len(assets) == 150
    assert Counter(_stage(a) for a in assets.values()) == {"in_use": 104, None: 46}
    assert sum(1 for a in assets.values() if a.holder) == 62
    assert not any(a.tracks for a in assets.values())
    assert all(a.serial_number is None for a in assets.values())  # the sample has no serials


def test_real_assets_sample_key_values() -> None:
    # Arrange: rows 2-4 of assets-sample.csv, read by hand
    records = _parse("snipeit-assets", REALDATA / "assets-sample.csv")
    assets = _assets(records)
    people = {p.username: p for p in records if isinstance(p, PersonRecord)}

    # Act
    backhoe = assets["ICC-2065556"]
    dragline = assets["WBH-2841795"]
    excavator = assets["NNH-3656031"]

    # Assert
    assert (backhoe.name, backhoe.serial_number, backhoe.attributes["model"],
            backhoe.attributes["manufacturer"], backhoe.attributes["category"],
            backhoe.attributes["cost"], backhoe.attributes["purchase_date"],
            backhoe.attributes["model_number"], _stage(backhoe), backhoe.holder,
            backhoe.location, backhoe.origin.line) == (
        "Backhoe", None, "Nial", "Berge Inc", "Ornamental Railings", 2266.13, "2023-01-23",
        "1786VM80X07", None, None, "Wilkinson, Waters and Kerluke", 2)
    assert (dragline.name, dragline.attributes["model"], _stage(dragline), dragline.holder,
            dragline.location) == ("Dragline", "Chase", "in_use", "Gage McCrackem",
                                   "Lindgren-Marquardt")
    assert (people["gmccrackem2a"].name, people["gmccrackem2a"].email) == (
        "Gage McCrackem", "gmccrackem2a@bing.com")
    # checked out to a location: the asset is there, in use, with no holder
    assert (_stage(excavator), excavator.holder, excavator.location) == (
        "in_use", None, "Pacocha-Kiehn")


# -- our fixture: hardware, status labels, warranty ---------------------------------------------


def test_hardware_assets_become_cis_that_the_asset_tracks() -> None:
    # Act
    records = _parse("snipeit-assets", FIXTURES / "snipeit_assets_hardware.csv")

    # Assert
    cis = {(r.name, r.ci_class, r.identifiers.asset_tag, r.identifiers.serial_number,
            r.location) for r in records if isinstance(r, CIRecord)}
    assert cis == {
        ("Alison's MacBook Pro", "Computer", "GROK-12782", "C02ZK1ABMD6M", "Amsterdam HQ"),
        ("db-node-03", "Server", "GROK-20001", "CZ2038ABCD", "Amsterdam DC1"),
        ("Sales iPhone 7", "MobileDevice", "GROK-30007", "F2LX91QKHG7F", None),
        ("3rd floor printer", "Printer", "GROK-40004", "PHBQB12345", "Amsterdam HQ"),
        ("Spare monitor", "Peripheral", "GROK-50011", "3CQ1234ABC", "Amsterdam HQ"),
        ("core-sw-02", "NetworkDevice", "GROK-70002", "FOC2231X0CD", "Amsterdam DC1"),
    }
    assets = _assets(records)
    assert {(tag, a.serial_number, _stage(a), a.holder, a.attributes.get("warranty_end"),
             a.tracks.asset_tag if a.tracks else None) for tag, a in assets.items()} == {
        ("GROK-12782", "C02ZK1ABMD6M", "in_use", "Alison Reyes", "2026-01-15", "GROK-12782"),
        ("GROK-20001", "CZ2038ABCD", "in_stock", None, "2027-06-01", "GROK-20001"),
        ("GROK-30007", "F2LX91QKHG7F", "lost", "Bo Lindqvist", "2023-03-10", "GROK-30007"),
        ("GROK-40004", "PHBQB12345", "retired", None, "2021-09-30", "GROK-40004"),
        ("GROK-50011", "3CQ1234ABC", "in_repair", None, None, "GROK-50011"),
        ("GROK-60001", None, "retired", None, None, None),  # furniture: asset only
        ("GROK-70002", "FOC2231X0CD", "in_repair", None, "2024-01-15", "GROK-70002"),
    }
    assert assets["GROK-12782"].attributes["cost"] == 2399.0  # "2,399.00"
    assert {(p.name, p.username, p.email) for p in records if isinstance(p, PersonRecord)} == {
        ("Alison Reyes", "areyes", "areyes@example.com"),
        ("Bo Lindqvist", "blindqvist", "blindqvist@example.com"),
    }


@pytest.mark.parametrize(
    ("status", "checked_out", "stage"),
    [
        ("Ready to Deploy", False, "in_stock"),
        ("Ready to Deploy", True, "in_use"),
        ("Deployed", False, "in_use"),
        ("Pending", False, "in_repair"),
        ("Undeployable", False, "in_repair"),
        ("Out for Diagnostics", False, "in_repair"),
        ("Archived", False, "retired"),
        ("Broken - Not Fixable", False, "retired"),
        ("Lost/Stolen", False, "lost"),
        ("Disposed", False, "disposed"),
        ("On Order", False, "ordered"),
        (None, True, "in_use"),
        (None, False, None),
        ("Loaned to the museum", False, None),
    ],
)
def test_lifecycle_stage_from_status_label(status: str | None, checked_out: bool,
                                           stage: str | None) -> None:
    got = lifecycle_stage(status, checked_out=checked_out)
    assert (got.value if got else None) == stage


def test_hardware_class_overrides_and_non_hardware() -> None:
    assert hardware_class("Access Points") == "NetworkDevice"
    assert hardware_class("Doors, Frames & Hardware") is None
    assert hardware_class("Kiosks", {"kiosks": "Computer"}) == "Computer"


def test_hardware_categories_option_makes_a_category_assets_only() -> None:
    importer = get_importer("snipeit-assets", hardware_categories={"Monitors": ""})
    records = list(importer.parse(FIXTURES / "snipeit_assets_hardware.csv"))
    assert "Spare monitor" not in {r.name for r in records if isinstance(r, CIRecord)}
    assert _assets(records)["GROK-50011"].tracks is None


def test_docstring_examples_run() -> None:
    assert doctest.testmod(importers.snipeit).failed == 0


def test_empty_asset_tag_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "assets.csv"
    path.write_text("Item Name,Asset Tag,Category\nlaptop 1,T-1,Laptops\nlaptop 2,,Laptops\n",
                    encoding="utf-8")
    with pytest.raises(InvalidRecordError) as info:
        _parse("snipeit-assets", path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 3, "Asset Tag")


def test_bad_purchase_date_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "assets.csv"
    path.write_text("Asset Tag,Purchase Date\nT-1,someday soon\n", encoding="utf-8")
    with pytest.raises(InvalidRecordError) as info:
        _parse("snipeit-assets", path)
    assert (info.value.line, info.value.field) == (2, "Purchase Date")


# -- locations and components -------------------------------------------------------------------


def test_real_locations_sample() -> None:
    # Act
    records = _parse("snipeit-locations", REALDATA / "locations-sample.csv")

    # Assert: 19 rows, two names used twice (Airdrie, Rocky Mountain House), 16 managers
    locations = [r for r in records if isinstance(r, LocationRecord)]
    assert len(locations) == 19
    names = Counter(r.name for r in locations)
    assert len(names) == 17
    assert {n for n, c in names.items() if c > 1} == {"Airdrie", "Rocky Mountain House"}
    assert len([r for r in records if isinstance(r, PersonRecord)]) == 16
    peace = next(r for r in locations if r.name == "Peace River")
    assert (peace.parent, peace.attributes) == (None, {
        "address": "8 Brentwood Court", "city": "Birendranagar", "state": "AB",
        "country": "CA", "zip": "T8S", "currency": "CAD", "manager": "Danika Mostyn",
        "manager_username": "dmostyn0"})
    sundre = next(r for r in locations if r.name == "Sundre")
    assert "manager" not in sundre.attributes


def test_locations_with_parent() -> None:
    records = _parse("snipeit-locations", FIXTURES / "snipeit_locations_nested.csv")
    assert {(r.name, r.parent) for r in records if isinstance(r, LocationRecord)} == {
        ("Amsterdam", None), ("Amsterdam HQ", "Amsterdam"), ("Amsterdam DC1", "Amsterdam")}
    assert [(p.name, p.username) for p in records if isinstance(p, PersonRecord)] == [
        ("Sanne de Boer", "sdeboer")]


def test_real_components_sample() -> None:
    # Act: one row, and the file has no newline at its end
    (rec,) = _parse("snipeit-components", REALDATA / "components-sample.csv")

    # Assert
    assert isinstance(rec, AssetRecord)
    assert (rec.name, rec.serial_number, rec.native_key, _stage(rec), rec.location,
            rec.tracks) == ("RTX 4080", "123456789", "component:RTX 4080:123456789",
                            "in_stock", "Austin", None)
    assert rec.attributes == {
        "category": "component", "item_type": "component", "component_category": "GPU",
        "quantity": 10, "cost": 5000.0, "purchase_date": "2024-01-01",
        "company": "Grokability", "order_number": "2790"}


# -- bad-input battery ----------------------------------------------------------------------------


def _rename_header(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        head, _, rest = data.partition(b"\n")
        return head.replace(old, new, 1) + b"\n" + rest
    return change


@pytest.mark.parametrize(
    ("kind", "path", "column"),
    [
        ("snipeit-assets", FIXTURES / "snipeit_assets_hardware.csv", b"Asset Tag"),
        ("snipeit-assets", REALDATA / "assets-sample.csv", b"Asset Tag"),
        ("snipeit-locations", REALDATA / "locations-sample.csv", b"name"),
        ("snipeit-components", REALDATA / "components-sample.csv", b"Item Name"),
    ],
)
def test_bad_input_battery(tmp_path: Path, kind: str, path: Path, column: bytes) -> None:
    run_battery(
        get_importer(kind),
        path.read_bytes(),
        fmt="csv",
        tmp_path=tmp_path,
        missing_required=_rename_header(column, b"Something Else"),
        required_field={b"name": "Name"}.get(column, column.decode()),
    )


# -- last audit: when someone saw the asset ---------------------------------------------------


def _with_audit(tmp_path: Path, dates: list[str]) -> Path:
    """The first rows of the real assets sample, with a ``Last Audit Date`` column added."""
    import csv

    with (REALDATA / "assets-sample.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    path = tmp_path / "audited.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow([*rows[0], "Last Audit Date"])
        for row, date in zip(rows[1:], dates, strict=False):
            out.writerow([*row, date])
    return path


def test_last_audit_date_is_the_ci_s_observed_at(tmp_path: Path) -> None:
    # Arrange: two real rows, their categories taken as servers, one audited in 2019
    path = _with_audit(tmp_path, ["2019-04-02 10:15:00", ""])
    categories = {a.attributes["category"] for a in _assets(_parse("snipeit-assets", path))
                  .values()}
    importer = get_importer("snipeit-assets", hardware_categories=dict.fromkeys(
        (str(c) for c in categories), "Server"))

    # Act
    records = list(importer.parse(path))

    # Assert: the audited CI was seen at its audit; the other keeps no time of its own
    cis = [r for r in records if isinstance(r, CIRecord)]
    assert [c.attributes.get("observed_at") for c in cis] == ["2019-04-02T10:15:00+00:00",
                                                               None]
    audited = next(a for a in _assets(records).values() if "last_audit" in a.attributes)
    assert audited.attributes["last_audit"] == "2019-04-02T10:15:00+00:00"


def test_bad_last_audit_date_names_line_and_column(tmp_path: Path) -> None:
    path = _with_audit(tmp_path, ["2019-04-02", "after lunch"])
    with pytest.raises(InvalidRecordError) as info:
        _parse("snipeit-assets", path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 3,
                                                                   "Last Audit Date")
