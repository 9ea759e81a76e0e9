"""Snipe-IT CSV exports and import files: assets, locations and components.

Follows the Snipe-IT importer documentation ("Importing Assets", "Importing Locations",
"Importing Components" at snipe-it.readme.io, and ``app/Importer/import_mappings.md`` in
snipe/snipe-it) and the sample CSVs shipped in ``sample_csvs/`` of the Snipe-IT repository.
Headers are matched case-insensitively, with the aliases Snipe-IT's own importer accepts
(``Item Name`` or ``Name``, ``Serial Number`` or ``Serial``, ``Model Name`` or ``Model``,
``Checked Out To: Username`` or ``Username``, ...).

What becomes what
-----------------
Assets (:class:`SnipeITAssetsImporter`)
    One :class:`~cmdb_graph.model.records.AssetRecord` per row, keyed by its asset tag
    (Snipe-IT's own lookup key). Its ``attributes`` use the Asset model's field names
    (``model``, ``manufacturer``, ``category``, ``supplier``, ``order_number``, ``cost``,
    ``purchase_date``, ``warranty_end``) plus ``model_number``, ``company``, ``status``,
    ``warranty_months``, ``notes``, ``last_audit``. ``warranty_end`` is the purchase date plus
    the warranty months. ``Last Audit Date`` (when someone last audited the asset, i.e. saw
    it) is also the CI's observed-at time: its ``last_seen``, so that staleness reads the
    audit, not the import. The user an asset is checked out to becomes a
    :class:`~cmdb_graph.model.records.PersonRecord` (once per file) and the asset's ``holder``;
    an asset checked out to a location takes that location.

    Assets of a hardware category also yield a :class:`~cmdb_graph.model.records.CIRecord` with
    the asset's tag and serial number, which the asset ``tracks``, so that ITAM and discovery
    reconcile on them. The class comes from words in the category: server -> Server; laptop,
    notebook, desktop, workstation, computer, PC, Chromebook, MacBook -> Computer; phone,
    smartphone, mobile, tablet, iPad, iPhone -> MobileDevice; printer, MFP, plotter -> Printer;
    switch, router, firewall, network, access point -> NetworkDevice; monitor, display,
    keyboard, mouse, dock, headset, webcam, projector, peripheral -> Peripheral. Other
    categories (furniture, vehicles, the construction machinery of Snipe-IT's sample) give
    assets only. ``hardware_categories`` overrides this per category name.

    Lifecycle stage from the status label (Snipe-IT's default labels and their types):

    ====================================================  ==============
    status label contains                                 lifecycle stage
    ====================================================  ==============
    "undeployable"                                        in_repair
    "ready to deploy", "deployable", "available", "stock" in_stock
    "deployed", "in use", "assigned"                      in_use
    "lost", "stolen", "missing"                           lost
    "dispos", "recycl", "sold", "donat", "destroy"        disposed
    "broken" (Broken - Not Fixable), "archiv", "retire"   retired
    "repair", "diagnos", "pending", "maintenance", "rma"  in_repair
    "order", "purchas"                                    ordered
    ====================================================  ==============

    An asset that is checked out (to a user or a location) and whose label is deployable is
    ``in_use`` (Snipe-IT shows such assets as "Deployed"). Without a status column a checked-out
    asset is ``in_use`` and any other has no stage; an unknown label gives no stage (the label
    stays in ``attributes["status"]``).
Locations (:class:`SnipeITLocationsImporter`)
    One :class:`~cmdb_graph.model.records.LocationRecord` per row (``Name``; ``Parent`` names
    the enclosing location), with address, city, state, country, zip, currency and manager as
    attributes; each manager also becomes a PersonRecord. Snipe-IT allows two locations of the
    same name (its sample has two "Airdrie"); both rows are yielded as they are.
Components (:class:`SnipeITComponentsImporter`)
    Components (RAM, GPUs, disks) are counted stock that is installed into assets, not
    configuration items of their own: each row is one AssetRecord with ``category`` =
    ``"component"``, the Snipe-IT category in ``component_category``, ``quantity``, and
    lifecycle stage ``in_stock``. Its key is ``component:<Item Name>[:<Serial>]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import ClassVar, TypeVar

from dateutil import parser as date_parser
from dateutil.relativedelta import relativedelta

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import LifecycleStage, Scalar
from cmdb_graph.model.records import (
    AssetRecord,
    CIRecord,
    Identifiers,
    LocationRecord,
    Origin,
    PersonRecord,
    Record,
)
from cmdb_graph.model.registry import CLASS_NAME
from importers.base import Importer, guard, observed_at
from importers.mapped_values import number_text
from importers.readers import Row, Table, read_csv

__all__ = [
    "SnipeITAssetsImporter",
    "SnipeITLocationsImporter",
    "SnipeITComponentsImporter",
    "lifecycle_stage",
    "hardware_class",
]

T = TypeVar("T")

_HARDWARE_WORDS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"server", "servers"}), "Server"),
    (frozenset({"laptop", "laptops", "notebook", "notebooks", "desktop", "desktops",
                "workstation", "workstations", "pc", "pcs", "computer", "computers",
                "chromebook", "chromebooks", "macbook", "macbooks"}), "Computer"),
    (frozenset({"phone", "phones", "smartphone", "smartphones", "mobile", "mobiles", "tablet",
                "tablets", "ipad", "ipads", "iphone", "iphones"}), "MobileDevice"),
    (frozenset({"printer", "printers", "mfp", "mfps", "plotter", "plotters"}), "Printer"),
    (frozenset({"switch", "switches", "router", "routers", "firewall", "firewalls", "network",
                "networking"}), "NetworkDevice"),
    (frozenset({"monitor", "monitors", "display", "displays", "keyboard", "keyboards", "mouse",
                "mice", "dock", "docks", "docking", "headset", "headsets", "webcam", "webcams",
                "projector", "projectors", "peripheral", "peripherals"}), "Peripheral"),
)

_STAGE_RULES: tuple[tuple[tuple[str, ...], LifecycleStage], ...] = (
    (("undeployable",), LifecycleStage.IN_REPAIR),
    (("ready to deploy", "deployable", "available", "stock"), LifecycleStage.IN_STOCK),
    (("deployed", "in use", "assigned"), LifecycleStage.IN_USE),
    (("lost", "stolen", "missing"), LifecycleStage.LOST),
    (("dispos", "recycl", "sold", "donat", "destroy"), LifecycleStage.DISPOSED),
    (("broken", "archiv", "retire"), LifecycleStage.RETIRED),
    (("repair", "diagnos", "pending", "maintenance", "rma"), LifecycleStage.IN_REPAIR),
    (("order", "purchas"), LifecycleStage.ORDERED),
)


def hardware_class(category: str | None, overrides: Mapping[str, str] | None = None) -> str | None:
    """The CI class for a Snipe-IT category, or ``None`` when it is no hardware category.

    Examples
    --------
    >>> hardware_class("Laptops"), hardware_class("Network Switches"), hardware_class("Chairs")
    ('Computer', 'NetworkDevice', None)
    """
    if not category:
        return None
    if overrides:
        for k, v in overrides.items():
            if k.casefold() == category.casefold():
                return v
    text = category.casefold()
    words = set(re.findall(r"[a-z0-9]+", text))
    if "access point" in text or "access points" in text:
        return "NetworkDevice"
    for keys, cls in _HARDWARE_WORDS:
        if words & keys:
            return cls
    return None


def lifecycle_stage(status: str | None, *, checked_out: bool) -> LifecycleStage | None:
    """The lifecycle stage for a Snipe-IT status label (see the module docstring).

    Examples
    --------
    >>> lifecycle_stage("Ready to Deploy", checked_out=False).value
    'in_stock'
    >>> lifecycle_stage("Ready to Deploy", checked_out=True).value
    'in_use'
    >>> lifecycle_stage("Lost/Stolen", checked_out=False).value
    'lost'
    """
    if not status:
        return LifecycleStage.IN_USE if checked_out else None
    text = status.casefold()
    for needles, stage in _STAGE_RULES:
        if any(n in text for n in needles):
            if stage is LifecycleStage.IN_STOCK and checked_out:
                return LifecycleStage.IN_USE
            return stage
    return None


def _norm(header: str) -> str:
    return " ".join(header.casefold().replace("_", " ").split())


class _Columns:
    """Resolves our field names to the file's headers through Snipe-IT's aliases."""

    def __init__(self, header: list[str], aliases: Mapping[str, tuple[str, ...]]) -> None:
        by_norm = {_norm(h): h for h in header}
        self.cols: dict[str, str] = {}
        for field, names in aliases.items():
            for n in names:
                if n in by_norm:
                    self.cols[field] = by_norm[n]
                    break

    def get(self, row: Row, field: str) -> str | None:
        col = self.cols.get(field)
        return row.get(col) if col is not None else None


def _number(text: str) -> float:
    """``"$1,234.50"`` -> 1234.5; decimal commas as :func:`~importers.mapped_values.number_text`."""
    return float(number_text(re.sub(r"[^0-9,.\-]", "", text)))


class _SnipeITCSV(Importer[Table]):
    """Shared reading: header aliases, required columns, typed cells with located errors.

    Subclasses map one row (:meth:`_row`); the transform guards each row with its line.
    """

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    aliases: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: our field -> the documented column name, for error messages
    required: ClassVar[dict[str, str]] = {}

    def read(self, path: Path) -> Table:
        return read_csv(path, delimiter=",")

    def transform(self, doc: Table, origin: str) -> list[Record]:
        """The people first (each once), then the records of every row."""
        cols = _Columns(doc.header, self.aliases)
        missing = [d for f, d in self.required.items() if f not in cols.cols]
        if missing and doc.rows:
            raise InvalidRecordError(
                f"missing required column(s) {', '.join(missing)}; the header has "
                f"{', '.join(doc.header)}", file=origin, line=1, field=missing[0])
        people: dict[str, PersonRecord] = {}
        out: list[Record] = []
        for line, row in doc:
            for f, d in self.required.items():
                if not cols.get(row, f):
                    raise InvalidRecordError("required value is empty", file=origin, line=line,
                                             field=cols.cols.get(f, d))
            with guard(origin, line=line):
                out.extend(self._row(cols, row, Origin(file=origin, line=line), people))
        return [*people.values(), *out]

    def _row(self, cols: _Columns, row: Row, origin: Origin,
             people: dict[str, PersonRecord]) -> list[Record]:
        """The records of one row; people met on the way go to ``people`` (by key)."""
        raise NotImplementedError

    @staticmethod
    def _date(cols: _Columns, row: Row, field: str, file: str, line: int) -> date | None:
        return _cell(cols, row, field, _date_of, "a date", file, line)

    @staticmethod
    def _float(cols: _Columns, row: Row, field: str, file: str, line: int) -> float | None:
        return _cell(cols, row, field, _number, "a number", file, line)

    @staticmethod
    def _int(cols: _Columns, row: Row, field: str, file: str, line: int) -> int | None:
        return _cell(cols, row, field, _whole, "a whole number", file, line)


def _cell(cols: _Columns, row: Row, field: str, convert: Callable[[str], T], what: str,
          file: str, line: int) -> T | None:
    """The cell of ``field`` converted, ``None`` when empty, or an error naming the column."""
    text = cols.get(row, field)
    if not text:
        return None
    try:
        return convert(text)
    except (ValueError, OverflowError) as exc:
        raise InvalidRecordError(f"not {what}: {text!r}", file=file, line=line,
                                 field=cols.cols.get(field, field)) from exc


def _date_of(text: str) -> date:
    """An ISO date, else whatever ``dateutil`` reads (``ValueError`` when nothing)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return date_parser.parse(text).date()


def _whole(text: str) -> int:
    """The first whole number in the text (``"36 months"`` -> 36)."""
    m = re.search(r"-?\d+", text)
    if m is None:
        raise ValueError("no digits")
    return int(m.group())


def _put(attrs: dict[str, Scalar], key: str, value: Scalar | date) -> None:
    if value is None or value == "":
        return
    attrs[key] = value.isoformat() if isinstance(value, date) else value


class SnipeITAssetsImporter(_SnipeITCSV):
    """Snipe-IT asset CSV (the importer's asset fields; see the module docstring).

    Parameters
    ----------
    hardware_categories : dict of str to str, optional
        Category name (case-insensitive) -> CI class, consulted before the built-in words; map
        a category to ``""`` to make it assets-only.

    Raises
    ------
    ValueError
        A bad class name in ``hardware_categories``.
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed CSV, no ``Asset Tag`` column, an empty
        asset tag, or a date/number that cannot be read; names the file, line and column.
    """

    kind = "snipeit-assets"
    description = "Snipe-IT asset CSV (importer fields, snipe-it.readme.io 'Importing Assets')"
    aliases = {
        "name": ("item name", "name", "asset name"),
        "asset_tag": ("asset tag", "tag"),
        "serial": ("serial number", "serial", "serial no"),
        "category": ("category", "category name"),
        "model": ("model name", "model", "asset model"),
        "model_number": ("model number", "model no"),
        "manufacturer": ("manufacturer",),
        "status": ("status", "status label"),
        "purchase_date": ("purchase date",),
        "purchase_cost": ("purchase cost", "cost"),
        "warranty": ("warranty months", "warranty"),
        "eol": ("eol date", "asset eol date", "end of life"),
        "location": ("location", "default location"),
        "company": ("company",),
        "supplier": ("supplier",),
        "order_number": ("order number",),
        "notes": ("notes", "asset notes"),
        "last_audit": ("last audit date", "last audit", "last_audit_date"),
        "checkout_type": ("checkout type",),
        "full_name": ("checked out to: full name", "full name"),
        "first_name": ("checked out to: first name", "first name"),
        "last_name": ("checked out to: last name", "last name"),
        "username": ("checked out to: username", "username"),
        "email": ("checked out to: email", "email"),
        "checkout_location": ("checked out to: location",),
    }
    required = {"asset_tag": "Asset Tag"}

    def __init__(self, hardware_categories: Mapping[str, str] | None = None) -> None:
        for cls in (hardware_categories or {}).values():
            if cls and not CLASS_NAME.match(cls):
                raise ValueError(f"hardware_categories: {cls!r} is not a CI class name")
        self.hardware_categories = dict(hardware_categories or {})

    def _row(self, cols: _Columns, row: Row, origin: Origin,
             people: dict[str, PersonRecord]) -> list[Record]:
        """The asset's CI (hardware categories only) and its asset record."""
        file, line = origin.file, int(origin.line or 0)
        tag = cols.get(row, "asset_tag")
        assert tag is not None  # required
        serial = cols.get(row, "serial")
        name = cols.get(row, "name")
        category = cols.get(row, "category")
        checkout_type = (cols.get(row, "checkout_type") or "").casefold()
        holder = self._holder(cols, row, origin, people) if checkout_type in (
            "", "user") else None
        checkout_loc = cols.get(row, "checkout_location")
        checked_out = holder is not None or bool(checkout_loc) or checkout_type == "asset"
        location = checkout_loc or cols.get(row, "location")
        status = cols.get(row, "status")
        purchase = self._date(cols, row, "purchase_date", file, line)
        months = self._int(cols, row, "warranty", file, line)
        attrs: dict[str, Scalar] = {}
        for f in ("model", "model_number", "manufacturer", "category", "supplier",
                  "order_number", "company"):
            _put(attrs, f, cols.get(row, f))
        _put(attrs, "cost", self._float(cols, row, "purchase_cost", file, line))
        _put(attrs, "purchase_date", purchase)
        _put(attrs, "warranty_months", months)
        if purchase is not None and months is not None:
            _put(attrs, "warranty_end", purchase + relativedelta(months=months))
        _put(attrs, "end_of_life", self._date(cols, row, "eol", file, line))
        _put(attrs, "status", status)
        _put(attrs, "checkout_type", cols.get(row, "checkout_type"))
        _put(attrs, "notes", cols.get(row, "notes"))
        audited = self._audited(cols, row, file, line)
        _put(attrs, "last_audit", audited)
        out: list[Record] = []
        ci_class = hardware_class(category, self.hardware_categories)
        tracks = None
        if ci_class:
            tracks = Identifiers(native_key=tag, asset_tag=tag, serial_number=serial)
            ci_attrs: dict[str, Scalar | list[str]] = {
                k: attrs[k] for k in ("manufacturer", "model") if k in attrs}
            if audited is not None:  # someone saw it then: the CI's last seen
                ci_attrs["observed_at"] = audited
            out.append(CIRecord(ci_class=ci_class, name=name or tag, identifiers=tracks,
                                attributes=ci_attrs, location=location, origin=origin))
        out.append(AssetRecord(
            native_key=tag, asset_tag=tag, serial_number=serial, name=name,
            lifecycle_stage=lifecycle_stage(status, checked_out=checked_out),
            attributes=attrs, tracks=tracks,
            holder=holder.name if holder is not None else None,
            location=location, origin=origin,
        ))
        return out

    @staticmethod
    def _audited(cols: _Columns, row: Row, file: str, line: int) -> str | None:
        """When the asset was last audited (seen by someone), as ISO 8601 UTC text.

        Raises
        ------
        InvalidRecordError
            The cell is not a date or time.
        """
        value = cols.get(row, "last_audit")
        if value is None:
            return None
        when = observed_at(value)
        if when is None:
            raise InvalidRecordError(f"not a date or time: {value!r}", file=file, line=line,
                                     field="Last Audit Date")
        return when

    @staticmethod
    def _holder(cols: _Columns, row: Row, origin: Origin,
                people: dict[str, PersonRecord]) -> PersonRecord | None:
        username = cols.get(row, "username")
        email = cols.get(row, "email")
        full = cols.get(row, "full_name") or " ".join(
            p for p in (cols.get(row, "first_name"), cols.get(row, "last_name")) if p) or None
        name = full or username or email
        if name is None:
            return None
        key = (username or email or name).casefold()
        if key not in people:
            people[key] = PersonRecord(name=name, email=email, username=username, origin=origin)
        return people[key]


class SnipeITLocationsImporter(_SnipeITCSV):
    """Snipe-IT locations CSV (``Name``, ``Address``, ``Address2``, ``City``, ``State``,
    ``Country``, ``Zip``, ``Parent``, ``Manager``, ``Manager Username``, ``Currency``), as in
    snipe-it.readme.io "Importing Locations" and ``sample_csvs/locations-sample.csv``.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed CSV, no ``Name`` column or an empty name.
    """

    kind = "snipeit-locations"
    description = "Snipe-IT locations CSV (snipe-it.readme.io 'Importing Locations')"
    aliases = {
        "name": ("name", "location name", "location"),
        "parent": ("parent", "parent location", "parent name"),
        "address": ("address", "address1"),
        "address2": ("address2", "address 2"),
        "city": ("city",),
        "state": ("state",),
        "country": ("country",),
        "zip": ("zip", "postal code"),
        "currency": ("currency",),
        "manager": ("manager", "manager name"),
        "manager_username": ("manager username",),
        "ldap_ou": ("ldap ou",),
    }
    required = {"name": "Name"}

    def _row(self, cols: _Columns, row: Row, origin: Origin,
             people: dict[str, PersonRecord]) -> list[Record]:
        """One location; its manager as a person."""
        attrs: dict[str, Scalar] = {}
        for f in ("address", "address2", "city", "state", "country", "zip", "currency",
                  "manager", "ldap_ou"):
            _put(attrs, f, cols.get(row, f))
        manager = cols.get(row, "manager")
        username = cols.get(row, "manager_username")
        _put(attrs, "manager_username", username)
        if manager or username:
            key = (username or manager or "").casefold()
            people.setdefault(key, PersonRecord(name=manager or username or "",
                                                username=username, origin=origin))
        name = cols.get(row, "name")
        assert name is not None  # required
        return [LocationRecord(name=name, parent=cols.get(row, "parent"), attributes=attrs,
                               origin=origin)]


class SnipeITComponentsImporter(_SnipeITCSV):
    """Snipe-IT components CSV (``Item Name``, ``Category``, ``Quantity``, ``Serial number``,
    ``Purchase Date``, ``Purchase Cost``, ``Location``, ``Company``, ``Order Number``, ...),
    as in snipe-it.readme.io "Importing Components" and ``sample_csvs/components-sample.csv``.
    Each row is one asset record of category ``component`` (see the module docstring).

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed CSV, no ``Item Name`` column or an empty
        one, or a bad date, number or quantity.
    """

    kind = "snipeit-components"
    description = "Snipe-IT components CSV (snipe-it.readme.io 'Importing Components')"
    aliases = {
        "name": ("item name", "name", "component name"),
        "category": ("category",),
        "quantity": ("quantity", "qty"),
        "serial": ("serial number", "serial"),
        "purchase_date": ("purchase date",),
        "purchase_cost": ("purchase cost", "cost"),
        "location": ("location",),
        "company": ("company",),
        "order_number": ("order number",),
        "supplier": ("supplier",),
        "manufacturer": ("manufacturer",),
        "model_number": ("model number",),
        "min_qty": ("min qty", "min amt", "minimum quantity"),
        "notes": ("notes",),
    }
    required = {"name": "Item Name"}

    def _row(self, cols: _Columns, row: Row, origin: Origin,
             people: dict[str, PersonRecord]) -> list[Record]:
        """One asset record of category ``component``."""
        file, line = origin.file, int(origin.line or 0)
        name = cols.get(row, "name")
        assert name is not None  # required
        serial = cols.get(row, "serial")
        attrs: dict[str, Scalar] = {"category": "component", "item_type": "component"}
        _put(attrs, "component_category", cols.get(row, "category"))
        _put(attrs, "quantity", self._int(cols, row, "quantity", file, line))
        _put(attrs, "min_quantity", self._int(cols, row, "min_qty", file, line))
        _put(attrs, "cost", self._float(cols, row, "purchase_cost", file, line))
        _put(attrs, "purchase_date", self._date(cols, row, "purchase_date", file, line))
        for f in ("company", "order_number", "supplier", "manufacturer", "model_number",
                  "notes"):
            _put(attrs, f, cols.get(row, f))
        key = f"component:{name}" + (f":{serial}" if serial else "")
        return [AssetRecord(
            native_key=key, serial_number=serial, name=name,
            lifecycle_stage=LifecycleStage.IN_STOCK, attributes=attrs,
            location=cols.get(row, "location"), origin=origin,
        )]
