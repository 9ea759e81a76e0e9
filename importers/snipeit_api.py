"""Snipe-IT REST API pages: hardware, licences and components, mapped as the CSV importers map.

Follows the Snipe-IT REST API reference (snipe-it.readme.io/reference: ``GET /api/v1/hardware``,
``GET /api/v1/licenses``, ``GET /api/v1/components``): a list page is ``{"total": N, "rows":
[...]}`` whose rows carry nested objects (``{"id": 3, "name": "Laptops"}``), dates as
``{"date": "2024-01-31", "formatted": ...}`` and times as ``{"datetime": ..., "formatted":
...}``. Each row is turned into the row of the matching CSV import file (same column names as
Snipe-IT's own importer) and mapped by the CSV importer of :mod:`importers.snipeit` or
:mod:`importers.snipeit_licenses`, so that a file and the API give the same records. The
"line" of an error is the row's place on the page (1 = first row).

Columns taken per kind:

hardware (:class:`SnipeITHardwareAPIImporter`)
    ``name``, ``asset_tag``, ``serial``, ``model.name``, ``model_number``, ``category.name``,
    ``manufacturer.name``, ``status_label.name``, ``purchase_date``, ``purchase_cost``,
    ``warranty_months``, ``eol``, ``location.name`` (``rtd_location`` when none), ``company``,
    ``supplier``, ``order_number``, ``notes``, ``last_audit_date`` (the CI's observed-at
    time); ``assigned_to`` by its ``type``: a user (name,
    first/last name, username, e-mail), a location, or another asset.
licenses (:class:`SnipeITLicensesAPIImporter`)
    ``name`` (Item name), ``product_key`` (serial number; only hashed, see
    :mod:`importers.snipeit_licenses`), ``manufacturer``, ``seats``, ``purchase_date``,
    ``purchase_cost``, ``order_number``, ``purchase_order``, ``license_name``,
    ``license_email``, ``expiration_date``, ``maintained``, ``reassignable``, ``company``,
    ``supplier``, ``notes``.
components (:class:`SnipeITComponentsAPIImporter`)
    ``name``, ``category``, ``qty``, ``min_amt``, ``serial``, ``purchase_date``,
    ``purchase_cost``, ``location``, ``company``, ``order_number``, ``supplier``,
    ``manufacturer``, ``model_number``, ``notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import Record
from importers.base import mapping_items
from importers.readers import Row, Table, load_json
from importers.snipeit import SnipeITAssetsImporter, SnipeITComponentsImporter
from importers.snipeit_licenses import SnipeITLicensesImporter

__all__ = ["SnipeITHardwareAPIImporter", "SnipeITLicensesAPIImporter",
           "SnipeITComponentsAPIImporter", "api_table"]

#: CSV column -> API field (dotted for nested objects)
_HARDWARE = (
    ("Item Name", "name"), ("Asset Tag", "asset_tag"), ("Serial Number", "serial"),
    ("Model Name", "model"), ("Model Number", "model_number"), ("Category", "category"),
    ("Manufacturer", "manufacturer"), ("Status", "status_label"),
    ("Purchase Date", "purchase_date"), ("Purchase Cost", "purchase_cost"),
    ("Warranty Months", "warranty_months"), ("EOL Date", "eol"), ("Company", "company"),
    ("Supplier", "supplier"), ("Order Number", "order_number"), ("Notes", "notes"),
    ("Last Audit Date", "last_audit_date"),
)
_LICENSES = (
    ("Item name", "name"), ("serial number", "product_key"), ("manufacturer", "manufacturer"),
    ("seats", "seats"), ("purchase date", "purchase_date"), ("purchase cost", "purchase_cost"),
    ("order number", "order_number"), ("purchase_order", "purchase_order"),
    ("Licensed To Name", "license_name"), ("Licensed to Email", "license_email"),
    ("expiration date", "expiration_date"), ("maintained", "maintained"),
    ("reassignable", "reassignable"), ("company", "company"), ("supplier", "supplier"),
    ("notes", "notes"),
)
_COMPONENTS = (
    ("Item Name", "name"), ("Category", "category"), ("Quantity", "qty"),
    ("Min Qty", "min_amt"), ("Serial Number", "serial"), ("Purchase Date", "purchase_date"),
    ("Purchase Cost", "purchase_cost"), ("Location", "location"), ("Company", "company"),
    ("Order Number", "order_number"), ("Supplier", "supplier"),
    ("Manufacturer", "manufacturer"), ("Model Number", "model_number"), ("Notes", "notes"),
)
_CHECKOUT = ("Checkout Type", "Full Name", "First Name", "Last Name", "Username", "Email",
             "Checked Out To: Location", "Location")


def _cell(value: Any) -> str | None:
    """One API value as the CSV cell Snipe-IT would export."""
    if isinstance(value, Mapping):
        for key in ("name", "date", "datetime", "formatted"):
            if value.get(key) not in (None, ""):
                return _cell(value[key])
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, list):
        return None
    text = str(value).strip()
    return text or None


def _rows(doc: Any, origin: str) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(doc, Mapping) and "rows" in doc:
        return mapping_items(doc["rows"], file=origin, pointer="/rows", what="a row")
    if isinstance(doc, list):
        return mapping_items(doc, file=origin, pointer="", what="a row")
    if isinstance(doc, Mapping) and doc.get("status") == "error":
        raise InvalidRecordError(f"Snipe-IT error answer: {_cell(doc.get('messages'))}",
                                 file=origin)
    raise InvalidRecordError("expected a Snipe-IT list page {\"total\", \"rows\": [...]}",
                             file=origin)


def api_table(doc: Any, origin: str, columns: tuple[tuple[str, str], ...],
              checkout: bool = False) -> Table:
    """A Snipe-IT API list page as the CSV table of the matching import file.

    Raises
    ------
    InvalidRecordError
        No list page, or a row that is no object.
    """
    header = [c for c, _ in columns] + (list(_CHECKOUT) if checkout else [])
    table = Table(file=origin, header=header)
    for index, (_, item) in enumerate(_rows(doc, origin), start=1):
        row: Row = {column: _cell(item.get(field)) for column, field in columns}
        if checkout:
            row.update(_checkout(item))
        table.rows.append((index, row))
    return table


def _checkout(item: Mapping[str, Any]) -> Row:
    """The checkout columns from ``assigned_to`` (user, location or asset)."""
    row: Row = dict.fromkeys(_CHECKOUT)
    row["Location"] = _cell(item.get("location")) or _cell(item.get("rtd_location"))
    who = item.get("assigned_to")
    if not isinstance(who, Mapping):
        return row
    kind = _cell(who.get("type")) or "user"
    row["Checkout Type"] = kind
    if kind == "user":
        row.update({"Full Name": _cell(who.get("name")),
                    "First Name": _cell(who.get("first_name")),
                    "Last Name": _cell(who.get("last_name")),
                    "Username": _cell(who.get("username")), "Email": _cell(who.get("email"))})
    elif kind == "location":
        row["Checked Out To: Location"] = _cell(who.get("name"))
    return row


class _SavedPage:
    """A saved API page is a JSON file (``curl .../api/v1/hardware > page.json``)."""

    def read(self, path: Path) -> Any:
        return load_json(path)


class SnipeITHardwareAPIImporter(_SavedPage, SnipeITAssetsImporter):
    """``GET /api/v1/hardware`` pages -> the records of the asset CSV (module docstring)."""

    kind = "snipeit-api-hardware"
    description = "Snipe-IT REST API hardware list page (GET /api/v1/hardware)"

    def transform(self, doc: Any, origin: str) -> list[Record]:
        return super().transform(api_table(doc, origin, _HARDWARE, checkout=True), origin)


class SnipeITLicensesAPIImporter(_SavedPage, SnipeITLicensesImporter):
    """``GET /api/v1/licenses`` pages -> licence entitlements (module docstring)."""

    kind = "snipeit-api-licenses"
    description = "Snipe-IT REST API licenses list page (GET /api/v1/licenses)"

    def __init__(self, *, date_format: str = "%Y-%m-%d") -> None:
        super().__init__(date_format=date_format)

    def transform(self, doc: Any, origin: str) -> list[Record]:
        table = api_table(doc, origin, _LICENSES)
        return super().transform(table, origin) if table.rows else []


class SnipeITComponentsAPIImporter(_SavedPage, SnipeITComponentsImporter):
    """``GET /api/v1/components`` pages -> component asset records (module docstring)."""

    kind = "snipeit-api-components"
    description = "Snipe-IT REST API components list page (GET /api/v1/components)"

    def transform(self, doc: Any, origin: str) -> list[Record]:
        return super().transform(api_table(doc, origin, _COMPONENTS), origin)
