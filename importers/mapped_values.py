"""Values out of a mapped row: the rules of a :class:`~importers.mapping_spec.ValueSpec`.

A row is one CSV row (header -> cell) or one JSON record (dotted paths reach into nested objects
and lists). :func:`extract` takes the first non-empty column of a spec, flattens ServiceNow-style
``{display_value, value}`` objects, maps it through the spec's value map, converts it to the
spec's type and falls back, defaults or refuses as the spec says; every refusal is an
:class:`~cmdb_graph.errors.InvalidRecordError` naming the file, the line or record and the column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from dateutil import parser as date_parser

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import Origin
from importers.mapping_spec import ValueSpec

__all__ = ["Where", "get_path", "has_path", "scalar", "extract", "number_text", "snake_case"]

_TRUE = {"1", "true", "yes", "y", "t", "on"}
_FALSE = {"0", "false", "no", "n", "f", "off"}


class Where:
    """Where a row is, for origins and error messages."""

    __slots__ = ("file", "line", "record")

    def __init__(self, file: str, line: int | None, record: str | None) -> None:
        self.file = file
        self.line = line
        self.record = record

    def error(self, message: str, field: str | None) -> InvalidRecordError:
        return InvalidRecordError(message, file=self.file, line=self.line, record=self.record,
                                  field=field)

    def origin(self) -> Origin:
        return Origin(file=self.file, line=self.line, record=self.record)


def get_path(row: Mapping[str, Any], path: str, *, is_json: bool) -> Any:
    """The value at a column name, or (JSON) a dotted path with list indexes (``ips.0``)."""
    if path in row or not is_json:
        return row.get(path)
    cur: Any = row
    for part in path.split("."):
        if isinstance(cur, Mapping):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def has_path(row: Mapping[str, Any], path: str) -> bool:
    """Whether a JSON record has a value (even ``null``) at a dotted path."""
    if path in row:
        return True
    cur: Any = row
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False
    return True


def scalar(raw: Any, spec: ValueSpec) -> Any:
    """Flatten ServiceNow-style ``{display_value, value}`` objects; strip strings."""
    if isinstance(raw, Mapping):
        keys = {
            "display": ("display_value", "value"),
            "value": ("value", "display_value"),
            "display_only": ("display_value",),
            "value_only": ("value",),
        }[spec.json_value]
        for k in keys:
            if raw.get(k) not in (None, ""):
                return scalar(raw[k], spec)
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        return raw or None
    return raw


def _map_value(value: Any, spec: ValueSpec, ctx: Where, col: str | None) -> Any:
    if spec.map is None:
        return value
    key = str(value)
    if key in spec.map:
        return spec.map[key]
    folded = key.casefold()
    for k, v in spec.map.items():
        if k.casefold() == folded:
            return v
    if spec.unmapped == "default":
        return spec.default
    if spec.unmapped == "error":
        known = ", ".join(sorted(spec.map)[:20])
        raise ctx.error(f"value {key!r} is not in the mapping's value map (known: {known})", col)
    return value


def _to_datetime(text: str, spec: ValueSpec) -> datetime:
    for fmt in spec.formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    return date_parser.parse(text, dayfirst=spec.dayfirst)


def _convert(value: Any, spec: ValueSpec, ctx: Where, col: str | None) -> Any:
    if value is None:
        return None
    try:
        if spec.type == "str":
            return str(value) if not isinstance(value, bool | int | float) else value
        if spec.type == "int":
            if isinstance(value, bool):
                return int(value)
            return int(float(value)) if isinstance(value, str) and "." in value else int(value)
        if spec.type == "float":
            return float(number_text(value)) if isinstance(value, str) else float(value)
        if spec.type == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().casefold()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"not a yes/no value: {value!r}")
        if spec.type == "list":
            items = value if isinstance(value, list) else str(value).split(spec.split)
            out = [str(scalar(i, spec) or "").strip() for i in items]
            return [i for i in out if i]
        # date / datetime
        if isinstance(value, datetime):
            dt = value
        elif isinstance(value, date):
            dt = datetime(value.year, value.month, value.day)
        else:
            dt = _to_datetime(str(value), spec)
        if spec.type == "date":
            return dt.date().isoformat()
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
        return dt.isoformat()
    except (ValueError, TypeError, OverflowError) as exc:
        raise ctx.error(f"cannot read {value!r} as {spec.type}: {exc}", col) from exc


def number_text(text: str) -> str:
    """``"1,234.50"`` -> ``"1234.50"``; ``"1.234,50"`` and ``"12,5"`` -> decimal comma."""
    text = text.strip().replace(" ", "")
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            return text.replace(".", "").replace(",", ".")
        return text.replace(",", "")
    if text.count(",") == 1 and len(text.split(",")[1]) != 3:
        return text.replace(",", ".")
    return text.replace(",", "")


def extract(row: Mapping[str, Any], spec: ValueSpec | None, ctx: Where, *, is_json: bool,
            what: str) -> Any:
    """The value ``spec`` selects from ``row`` (``None`` when empty and not required)."""
    if spec is None:
        return None
    value: Any = None
    col: str | None = None
    if spec.constant is not None:
        value = spec.constant
    else:
        cols = [spec.column] if isinstance(spec.column, str) else list(spec.column or [])
        for c in cols:
            col = c
            value = scalar(get_path(row, c, is_json=is_json), spec)
            if value not in (None, "", []):
                break
            value = None
    if value is not None:
        value = _convert(_map_value(value, spec, ctx, col), spec, ctx, col)
    if value in (None, "", []) and spec.fallback is not None:
        value = extract(row, spec.fallback, ctx, is_json=is_json, what=what)
    if value in (None, "", []):
        value = spec.default if spec.default is not None else None
        if value is not None:
            value = _convert(value, spec, ctx, col)
    if value in (None, "", []) and spec.required:
        raise ctx.error(f"required value for {what} is missing or empty", col or what)
    return value


def snake_case(name: str) -> str:
    """A header or attribute name as a snake_case key (``Serial Number`` -> ``serial_number``)."""
    s = re.sub(r"[^0-9A-Za-z]+", "_", name.strip())
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", s)
    return s.strip("_").lower()

