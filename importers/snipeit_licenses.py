"""Snipe-IT software licence CSV exports/imports: licence entitlements.

Follows the Snipe-IT licence importer's CSV layout (Snipe-IT documentation, "Importing
Licenses", and its sample ``sample_csvs/MOCK_LICENSES.csv``): columns ``Name``, ``Email``,
``Username`` (the user a seat is checked out to), ``Item name`` (the licence), ``serial number``
(the product key), ``manufacturer``, ``purchase date``, ``purchase cost``, ``purchase_order``,
``order number``, ``Licensed To Name``, ``Licensed to Email``, ``expiration date``,
``maintained``, ``reassignable``, ``seats``, ``company``, ``supplier``, ``notes``. Quoted
fields may span lines (``notes``); errors name the row's first line.

Mapping (the documented decisions):

- Each row is one :class:`EntitlementRecord`: name and product = ``Item name`` (Snipe-IT
  names a licence after its software), vendor = ``manufacturer``, ``seats`` (required, a
  whole number >= 0), ``expires``, ``purchase_date``, ``cost`` (currency symbols and thousands
  separators dropped), ``licensed_to`` = ``Licensed To Name`` (else its e-mail), and
  ``assigned_to_people`` = ``Name`` (the user holding a seat) when present.
- Dates are ``MM/DD/YYYY`` (Snipe-IT's sample; option ``date_format``) or ISO ``YYYY-MM-DD``.
- The product key is never copied into the CMDB: the native key is ``sha256:`` + the first 16
  hex digits of the SHA-256 of ``serial number`` (stable, not reversible); rows without one
  are keyed by item name, order number and licensee.
- ``maintained`` and ``reassignable`` are booleans (true/false/yes/no/1/0, any case); other
  values (the sample has ``sometimes``) are kept as None. ``order number``,
  ``purchase_order``, ``company``, ``supplier``, the user's e-mail/username and ``notes`` are
  attributes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import EntitlementRecord, Origin, Record
from importers.base import Importer, guard
from importers.readers import Row, Table, read_csv

__all__ = ["SnipeITLicensesImporter", "REQUIRED_COLUMNS"]

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("Item name", "seats")
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


def _bool(value: str | None) -> bool | None:
    v = (value or "").strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


class SnipeITLicensesImporter(Importer[Table]):
    """Snipe-IT licence CSV -> licence entitlements.

    Follows Snipe-IT's licence import layout; see the module docstring for the mapping.

    Parameters
    ----------
    date_format : str
        ``strptime`` format of the date columns besides ISO dates (default ``%m/%d/%Y``).

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: the CSV errors of :func:`importers.base.read_csv`, a missing
        ``Item name``/``seats`` column or value, or a bad number or date -- naming the file,
        the row's line and the column.
    """

    kind = "snipeit-licenses"
    description = "Snipe-IT licence CSV (MOCK_LICENSES.csv layout)"

    def __init__(self, *, date_format: str = "%m/%d/%Y") -> None:
        self.date_format = date_format

    def _date(self, value: str | None, *, file: str, line: int, fld: str) -> date | None:
        if not value:
            return None
        for fmt in (self.date_format, "%Y-%m-%d"):
            try:
                return datetime.strptime(value.strip(), fmt).date()
            except ValueError:
                continue
        raise InvalidRecordError(
            f"not a date ({self.date_format} or YYYY-MM-DD): {value!r}", file=file, line=line,
            field=fld,
        )

    def read(self, path: Path) -> Table:
        return read_csv(path, required=REQUIRED_COLUMNS)

    def transform(self, doc: Table, origin: str) -> list[Record]:
        """One EntitlementRecord per row."""
        out: list[Record] = []
        for line, row in doc:
            with guard(origin, line=line):
                out.append(self._entitlement(row, origin, line))
        if not out:
            raise InvalidRecordError("the CSV has a header but no licence rows", file=origin)
        log.info("%s: %d licence entitlements", origin, len(out))
        return out

    def _entitlement(self, row: Row, name: str, line: int) -> EntitlementRecord:
        item = row.get("Item name")
        if not item:
            raise InvalidRecordError("required field is missing or empty", file=name,
                                     line=line, field="Item name")
        seats_raw = row.get("seats")
        if not seats_raw:
            raise InvalidRecordError("required field is missing or empty", file=name,
                                     line=line, field="seats")
        try:
            seats = int(seats_raw.replace(",", ""))
        except ValueError:
            raise InvalidRecordError(f"seats is not a whole number: {seats_raw!r}",
                                     file=name, line=line, field="seats") from None
        if seats < 0:
            raise InvalidRecordError("seats must not be negative", file=name, line=line,
                                     field="seats")
        serial = row.get("serial number")
        if serial:
            native = "sha256:" + hashlib.sha256(serial.encode("utf-8")).hexdigest()[:16]
        else:
            native = "|".join(
                [item, row.get("order number") or "", row.get("Licensed To Name") or ""]
            )
        attrs: dict[str, Any] = {key: row[col] for col, key in _ATTRIBUTES if row.get(col)}
        for col in ("maintained", "reassignable"):
            if row.get(col):
                attrs[col] = _bool(row[col])
        return EntitlementRecord(
            native_key=native,
            name=item,
            product=item,
            vendor=row.get("manufacturer"),
            seats=seats,
            expires=self._date(row.get("expiration date"), file=name, line=line,
                               fld="expiration date"),
            purchase_date=self._date(row.get("purchase date"), file=name, line=line,
                                     fld="purchase date"),
            cost=_cost(row.get("purchase cost"), file=name, line=line),
            licensed_to=row.get("Licensed To Name") or row.get("Licensed to Email"),
            assigned_to_people=(row["Name"],) if row.get("Name") else (),
            attributes=attrs,
            origin=Origin(file=name, line=line),
        )


#: column -> attribute, copied when not empty
_ATTRIBUTES = (
    ("order number", "order_number"),
    ("purchase_order", "purchase_order"),
    ("company", "company"),
    ("supplier", "supplier"),
    ("Licensed to Email", "licensed_to_email"),
    ("Email", "assignee_email"),
    ("Username", "assignee_username"),
    ("notes", "notes"),
)


def _cost(text: str | None, *, file: str, line: int) -> float | None:
    """``purchase cost`` without currency symbols and thousands separators."""
    if not text:
        return None
    cleaned = re.sub(r"[^\d.\-]", "", text.replace(",", ""))
    try:
        cost = float(cleaned)
    except ValueError:
        raise InvalidRecordError(f"purchase cost is not a number: {text!r}", file=file,
                                 line=line, field="purchase cost") from None
    if cost < 0:
        raise InvalidRecordError("purchase cost must not be negative", file=file, line=line,
                                 field="purchase cost")
    return cost
