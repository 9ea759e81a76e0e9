"""Snipe-IT licence CSV importer: MOCK_LICENSES.csv, dates and numbers, bad input."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import EntitlementRecord
from importers import get_importer
from tests.helpers.battery import run_battery

REPO = Path(__file__).resolve().parents[3]
MOCK = REPO / ".." / "shared" / "realdata" / "snipeit" / "MOCK_LICENSES.csv"

HEADER = (
    "Name,Email,Username,Item name,serial number,manufacturer,purchase date,purchase cost,"
    "purchase_order,order number,Licensed To Name,Licensed to Email,expiration date,"
    "maintained,reassignable,seats,company,supplier,notes\n"
)
VALID = (
    HEADER
    + 'Ada Lovelace,ada@example.com,ada,Acme Editor,KEY-1,Acme,2024-01-15,"$1,200.50",PO-1,'
    'ON-1,Example Ltd,it@example.com,12/31/2026,yes,no,25,Example Ltd,Reseller,"two\nlines"\n'
    + ",,,Acme Viewer,,Acme,,,,,,,,,,3,,,\n"
).encode()


def _mock() -> list[EntitlementRecord]:
    records = list(get_importer("snipeit-licenses").parse(MOCK))
    assert all(isinstance(r, EntitlementRecord) for r in records)
    return [r for r in records if isinstance(r, EntitlementRecord)]


def test_mock_licenses_every_row() -> None:
    # Arrange / Act
    records = _mock()

    # Assert: 50 rows, many with multi-line notes
    assert len(records) == 50
    assert sum(r.seats or 0 for r in records) == 2784
    assert sorted(r.seats or 0 for r in records if r.product == "Carvedilol") == [24, 63]
    first = records[0]
    assert (first.name, first.product, first.vendor, first.seats) == (
        "Argentum Malachite Athletes Foot Relief", "Argentum Malachite Athletes Foot Relief",
        "Beer, Leannon and Lubowitz", 80)
    assert (first.purchase_date, first.expires, first.cost) == (
        date(2012, 7, 13), date(2016, 1, 27), 79.66)
    assert first.licensed_to == "Cynthia Spencer"
    assert first.assigned_to_people == ("Helen Anderson",)
    assert first.attributes["maintained"] is False and first.attributes["reassignable"] is False
    assert first.attributes["notes"].count("\n") == 2
    # the product key is not stored, only a digest of it
    digest = hashlib.sha256(b"1aa5b0eb-79c5-40b2-8943-5472a6893c3c").hexdigest()[:16]
    assert first.native_key == f"sha256:{digest}"
    assert "1aa5b0eb" not in str(first.model_dump())
    last = records[-1]
    assert (last.product, last.seats, last.vendor, last.origin.line) == (
        "Promethazine Hydrochloride", 1, "Moen Group", 137)


def test_mock_licenses_blank_and_odd_values() -> None:
    # Arrange / Act
    records = _mock()

    # Assert
    fluoride = next(r for r in records if r.product == "sodium fluoride")
    assert fluoride.vendor is None  # empty manufacturer
    assert sum(1 for r in records if r.purchase_date is None) == 4
    odd = [r for r in records if "reassignable" in r.attributes
           and r.attributes["reassignable"] is None]
    assert len(odd) == 4  # "sometimes" is no boolean


def test_iso_dates_costs_with_separators_and_no_serial(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "licences.csv"
    path.write_bytes(VALID)

    # Act
    editor, viewer = list(get_importer("snipeit-licenses").parse(path))

    # Assert
    assert isinstance(editor, EntitlementRecord) and isinstance(viewer, EntitlementRecord)
    assert (editor.purchase_date, editor.expires, editor.cost) == (
        date(2024, 1, 15), date(2026, 12, 31), 1200.5)
    assert editor.attributes["maintained"] is True
    assert viewer.native_key == "Acme Viewer||"
    assert viewer.assigned_to_people == ()
    assert viewer.origin.line == 4  # the editor row spans lines 2-3


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (",,,Acme,,,,,,,,,,,,many,,,", "seats"),
        (",,,Acme,,,,,,,,,,,,-1,,,", "seats"),
        (",,,Acme,,,,,,,,,,,,,,,", "seats"),
        (",,,,,,,,,,,,,,,5,,,", "Item name"),
        (",,,Acme,,,31/12/2026,,,,,,,,,5,,,", "purchase date"),
        (",,,Acme,,,,ten dollars,,,,,,,,5,,,", "purchase cost"),
    ],
)
def test_bad_values_name_line_and_column(tmp_path: Path, row: str, field: str) -> None:
    # Arrange
    path = tmp_path / "licences.csv"
    path.write_text(HEADER + ",,,Fine,,,,,,,,,,,,1,,,\n" + row + "\n")

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("snipeit-licenses").parse(path))

    # Assert
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 3, field)


def test_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("snipeit-licenses"),
        VALID,
        fmt="csv",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b",seats,", b",places,", 1),
        required_field="seats",
    )
