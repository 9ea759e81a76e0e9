"""Generic CSV and JSON importers driven by a declarative mapping file, and the vendor exports
that ship with a ready mapping (ServiceNow, Lansweeper CSV, Snow, Flexera, Certero, JSM CSV).

A mapping is a YAML file validated by :class:`MappingSpec`. It says, for one export format,
which column (CSV) or dotted JSON path gives the CI class, the name, each identifier, the
attributes (through value maps, type conversion and date parsing), the support group, owner and
location, whether an :class:`~cmdb_graph.model.records.AssetRecord` tracking the CI is emitted,
or, for relationship tables, the two ends and the relationship type (through a type map that may
reverse the direction). The shipped mappings live in ``importers/mappings/*.yaml``; each names the
vendor document it follows in its ``document`` key. A minimal mapping::

    document: "Our spreadsheet, semicolon-separated"
    format: csv
    delimiter: ";"
    required: [id, name]
    ci_class:
      column: type
      map: {server: Server, vm: VirtualMachine}
      unmapped: error
    name: name                       # a bare string is a column (or a dotted JSON path)
    identifiers:
      native_key: id
      serial_number: {column: [serial_number, serial], required: false}
    attributes:
      operational_status:
        column: status
        map: {"1": operational, "7": retired}
        fallback: {column: state, map: {Active: operational}}
      last_seen: {column: last_scan, type: datetime}
      ip_addresses: {column: ip, type: list, split: ","}

Value rules (:class:`ValueSpec`): ``column`` may list several names, the first non-empty one
wins; ``map`` is matched exactly, then case-insensitively; an unmapped value is kept, replaced
by ``default`` or refused (``unmapped: keep | default | error``); ``type`` converts (``date``
and ``datetime`` values become ISO 8601 strings, datetimes in UTC; ``formats`` lists
``strptime`` formats to try before ISO 8601 and ``dateutil``); ``fallback`` is another spec
tried when this one gives nothing. JSON values that are objects with ``display_value`` /
``value`` (ServiceNow Table API with ``sysparm_display_value=all``, reference fields) give the
display value, or ``value`` with ``json_value: value``.

Bad input raises :class:`~cmdb_graph.errors.InvalidRecordError` naming the file and the line
(CSV) or record (JSON pointer) and the field; a bad mapping raises
:class:`~cmdb_graph.errors.ConfigurationError` naming the mapping file and the key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from dateutil import parser as date_parser
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cmdb_graph.errors import ConfigurationError, InvalidRecordError
from cmdb_graph.model.entities import LifecycleStage, Scalar
from cmdb_graph.model.records import (
    AssetRecord,
    CIRecord,
    Identifiers,
    Origin,
    Record,
    RelationshipRecord,
)
from cmdb_graph.model.registry import CLASS_NAME, REL_NAME
from importers.base import load_json, read_csv

__all__ = [
    "MAPPINGS_DIR",
    "ValueSpec",
    "IdentifierSpec",
    "AssetSpec",
    "RelTypeTarget",
    "RelationshipSpec",
    "MappingSpec",
    "load_mapping",
    "MappedImporter",
    "GenericCSVImporter",
    "GenericJSONImporter",
    "ServiceNowCIImporter",
    "ServiceNowRelImporter",
    "LansweeperCSVImporter",
    "SnowImporter",
    "FlexeraImporter",
    "CerteroImporter",
    "JSMAssetsCSVImporter",
]

log = logging.getLogger(__name__)

#: Folder of the ready mappings shipped with cmdb-graph.
MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

_TRUE = {"1", "true", "yes", "y", "t", "on"}
_FALSE = {"0", "false", "no", "n", "f", "off"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueSpec(_Spec):
    """Where one value comes from and how it is converted.

    A bare string in the mapping file stands for ``{column: <string>}``; a list for
    ``{column: [...]}``.

    Attributes
    ----------
    column : str or list of str, optional
        Column name (CSV) or dotted path (JSON; list items by index, e.g. ``ips.0``). With a
        list, the first column that has a non-empty value is used.
    constant : scalar, optional
        A fixed value (instead of ``column``).
    map : dict, optional
        Value map, matched exactly, then case-insensitively.
    unmapped : {"keep", "default", "error"}
        What happens to a value that the map does not know.
    default : scalar, optional
        Used when the value is empty (and for unmapped values with ``unmapped: default``).
    type : {"str", "int", "float", "bool", "date", "datetime", "list"}
        Conversion after mapping. ``list`` splits on ``split``.
    formats : list of str
        ``strptime`` formats tried first for ``date`` / ``datetime``.
    dayfirst : bool
        For ambiguous dates left to ``dateutil`` (``01/02/2024``).
    required : bool
        An empty value is an error naming the line/record and column.
    fallback : ValueSpec, optional
        Tried when this spec gives no value.
    json_value : {"display", "value", "display_only", "value_only"}
        Which half of a ``{display_value, value}`` JSON object to take (the other half is the
        fall-back unless ``_only``); ServiceNow reference fields without display values are
        ``{link, value}`` where ``value`` is a sys_id, so names use ``display_only``.
    """

    column: str | list[str] | None = None
    constant: str | int | float | bool | None = None
    map: dict[str, str | int | float | bool | None] | None = None
    unmapped: Literal["keep", "default", "error"] = "keep"
    default: str | int | float | bool | None = None
    type: Literal["str", "int", "float", "bool", "date", "datetime", "list"] = "str"
    split: str = ","
    formats: list[str] = Field(default_factory=list)
    dayfirst: bool = False
    required: bool = False
    fallback: ValueSpec | None = None
    json_value: Literal["display", "value", "display_only", "value_only"] = "display"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": data}
        if isinstance(data, list):
            return {"column": data}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> ValueSpec:
        if self.column is None and self.constant is None and self.default is None:
            raise ValueError("give a column, a constant or a default")
        if self.column is not None and self.constant is not None:
            raise ValueError("give either a column or a constant, not both")
        return self

    def columns(self) -> list[str]:
        """The column names this spec (and its fallbacks) read."""
        cols = [self.column] if isinstance(self.column, str) else list(self.column or [])
        if self.fallback is not None:
            cols.extend(self.fallback.columns())
        return cols


class IdentifierSpec(_Spec):
    """Where each identifier of a CI (or a relationship end) comes from."""

    native_key: ValueSpec | None = None
    serial_number: ValueSpec | None = None
    asset_tag: ValueSpec | None = None
    cloud_id: ValueSpec | None = None
    fqdn: ValueSpec | None = None
    hostname: ValueSpec | None = None
    domain: ValueSpec | None = None
    mac_addresses: ValueSpec | None = None
    name: ValueSpec | None = None
    ci_class: ValueSpec | None = None

    def specs(self) -> dict[str, ValueSpec]:
        """The identifiers that are mapped, by field name."""
        return {k: v for k, v in self if isinstance(v, ValueSpec)}


class AssetSpec(_Spec):
    """Emit an :class:`AssetRecord` that tracks each CI (by the CI's identifiers).

    ``asset_tag`` and ``serial_number`` default to the CI's; ``native_key`` to the CI's native
    key. ``attributes`` keys should be :class:`~cmdb_graph.model.Asset` fields (``model``,
    ``manufacturer``, ``cost``, ``purchase_date``, ``warranty_end``, ...).
    """

    native_key: ValueSpec | None = None
    asset_tag: ValueSpec | None = None
    serial_number: ValueSpec | None = None
    name: ValueSpec | None = None
    lifecycle_stage: ValueSpec | None = None
    holder: ValueSpec | None = None
    location: ValueSpec | None = None
    attributes: dict[str, ValueSpec] = Field(default_factory=dict)


class RelTypeTarget(_Spec):
    """What one source relationship type becomes.

    ``reverse`` swaps the ends, so that ours always point from the dependent to what it needs
    (e.g. ServiceNow ``Members::Member of`` has the cluster as parent; ours is member -> cluster).
    """

    type: str
    reverse: bool = False
    optional: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"type": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _name(self) -> RelTypeTarget:
        if not REL_NAME.match(self.type):
            raise ValueError(f"relationship type {self.type!r} must be UPPER_SNAKE")
        return self


class RelationshipSpec(_Spec):
    """A relationship table: the ends, and the type column with its type map."""

    source: IdentifierSpec
    target: IdentifierSpec
    type: ValueSpec
    type_map: dict[str, RelTypeTarget] = Field(default_factory=dict)
    unmapped: Literal["error", "skip", "keep"] = "error"
    properties: dict[str, ValueSpec] = Field(default_factory=dict)


class MappingSpec(_Spec):
    """One mapping file (see the module docstring).

    Attributes
    ----------
    document : str
        The vendor document or export the column names follow.
    format : {"csv", "json"}, optional
        Default format; vendor importers choose by file suffix when it is not set.
    records_path : str, optional
        Dotted path of the record list in a JSON file (``result`` for the ServiceNow Table API,
        ``objectEntries`` for JSM Assets); without it the top level must be a list (or an object
        that is one record).
    required : list of str
        Columns (CSV header) or fields (each JSON record) that must be present.
    record : {"ci", "relationship"}
        What each row becomes.
    extra_columns : {"ignore", "attributes"}
        Whether columns the mapping does not use become attributes (snake_case keys).
    delimiter, encoding : str
        CSV delimiter (sniffed among ``,;\t|`` when unset) and text encoding (``utf-8``; e.g.
        ``cp1252`` for exports saved by Excel); bytes that do not decode are an error naming
        the line.
    """

    description: str = ""
    document: str = ""
    format: Literal["csv", "json"] | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"
    records_path: str | None = None
    required: list[str] = Field(default_factory=list)
    record: Literal["ci", "relationship"] = "ci"
    ci_class: ValueSpec | None = None
    name: ValueSpec | None = None
    identifiers: IdentifierSpec = Field(default_factory=IdentifierSpec)
    attributes: dict[str, ValueSpec] = Field(default_factory=dict)
    extra_columns: Literal["ignore", "attributes"] = "ignore"
    support_group: ValueSpec | None = None
    owner: ValueSpec | None = None
    location: ValueSpec | None = None
    asset: AssetSpec | None = None
    relationship: RelationshipSpec | None = None

    @field_validator("ci_class")
    @classmethod
    def _class_names(cls, spec: ValueSpec | None) -> ValueSpec | None:
        cur = spec
        while cur is not None:
            for c in (cur.constant, cur.default, *(cur.map or {}).values()):
                if c is not None and not CLASS_NAME.match(str(c)):
                    raise ValueError(f"CI class {c!r} must be a PascalCase class name")
            cur = cur.fallback
        return spec

    @model_validator(mode="after")
    def _complete(self) -> MappingSpec:
        if self.record == "ci":
            if self.ci_class is None:
                raise ValueError("a CI mapping needs 'ci_class'")
            if self.name is None:
                raise ValueError("a CI mapping needs 'name'")
        elif self.relationship is None:
            raise ValueError("a relationship mapping needs 'relationship'")
        return self


def load_mapping(path: str | Path) -> MappingSpec:
    """Read and validate a mapping file.

    Parameters
    ----------
    path : str or Path
        A YAML mapping file, or the name of a shipped mapping (``servicenow_cmdb_ci``).

    Raises
    ------
    ConfigurationError
        The file cannot be read or parsed, or a key is wrong; the message names the file and
        the key (e.g. ``attributes.operational_status.unmapped``).
    """
    p = Path(path)
    if not p.suffix and not p.exists():
        p = MAPPINGS_DIR / f"{p.name}.yaml"
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{p}: cannot read mapping file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{p}: malformed YAML in mapping file: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{p}: a mapping file must hold a YAML mapping at the top")
    try:
        return MappingSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"key {'.'.join(str(x) for x in err['loc']) or '<top>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"{p}: invalid mapping: {problems}") from exc


# ---------------------------------------------------------------------------------------------
# value extraction


class _Ctx:
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


def _get_path(row: Mapping[str, Any], path: str, *, is_json: bool) -> Any:
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


def _has_path(row: Mapping[str, Any], path: str) -> bool:
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


def _scalar(raw: Any, spec: ValueSpec) -> Any:
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
                return _scalar(raw[k], spec)
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        return raw or None
    return raw


def _map_value(value: Any, spec: ValueSpec, ctx: _Ctx, col: str | None) -> Any:
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


def _convert(value: Any, spec: ValueSpec, ctx: _Ctx, col: str | None) -> Any:
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
            return float(_number_text(value)) if isinstance(value, str) else float(value)
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
            out = [str(_scalar(i, spec) or "").strip() for i in items]
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


def _number_text(text: str) -> str:
    """``"1,234.50"`` -> ``"1234.50"``; ``"1.234,50"`` and ``"12,5"`` -> decimal comma."""
    text = text.strip().replace(" ", "")
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            return text.replace(".", "").replace(",", ".")
        return text.replace(",", "")
    if text.count(",") == 1 and len(text.split(",")[1]) != 3:
        return text.replace(",", ".")
    return text.replace(",", "")


def _value(row: Mapping[str, Any], spec: ValueSpec | None, ctx: _Ctx, *, is_json: bool,
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
            value = _scalar(_get_path(row, c, is_json=is_json), spec)
            if value not in (None, "", []):
                break
            value = None
    if value is not None:
        value = _convert(_map_value(value, spec, ctx, col), spec, ctx, col)
    if value in (None, "", []) and spec.fallback is not None:
        value = _value(row, spec.fallback, ctx, is_json=is_json, what=what)
    if value in (None, "", []):
        value = spec.default if spec.default is not None else None
        if value is not None:
            value = _convert(value, spec, ctx, col)
    if value in (None, "", []) and spec.required:
        raise ctx.error(f"required value for {what} is missing or empty", col or what)
    return value


# ---------------------------------------------------------------------------------------------
# importers


def _snake(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z]+", "_", name.strip())
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", s)
    return s.strip("_").lower()


class MappedImporter:
    """Parse a CSV or JSON file through a :class:`MappingSpec`.

    Parameters
    ----------
    mapping : str, Path or MappingSpec, optional
        The mapping file (or shipped mapping name); subclasses bring a default.
    format : {"csv", "json"}, optional
        Forces the format; otherwise the mapping's ``format``, else the file suffix
        (``.json`` is JSON, anything else CSV).
    delimiter : str, optional
        Overrides the mapping's CSV delimiter (sniffed among ``,;\\t|`` when neither is set).

    Raises
    ------
    ConfigurationError
        No mapping given, or the mapping file is invalid.
    """

    kind: ClassVar[str] = "mapped"
    description: ClassVar[str] = "CSV/JSON through a mapping file"
    default_mapping: ClassVar[str | None] = None
    forced_format: ClassVar[Literal["csv", "json"] | None] = None

    def __init__(
        self,
        mapping: str | Path | MappingSpec | None = None,
        *,
        format: Literal["csv", "json"] | None = None,
        delimiter: str | None = None,
    ) -> None:
        if mapping is None:
            mapping = self.default_mapping
        if mapping is None:
            raise ConfigurationError(f"importer {self.kind!r} needs mapping=<mapping file>")
        self.mapping = mapping if isinstance(mapping, MappingSpec) else load_mapping(mapping)
        self.format = format or self.forced_format
        self.delimiter = delimiter
        self._used = self._used_columns()

    # -- rows ---------------------------------------------------------------------------------
    def _format_for(self, path: Path) -> Literal["csv", "json"]:
        if self.format is not None:
            return self.format
        if self.mapping.format is not None:
            return self.mapping.format
        return "json" if path.suffix.lower() == ".json" else "csv"

    def _rows(self, path: Path) -> Iterator[tuple[_Ctx, Mapping[str, Any], bool]]:
        name = str(path)
        if self._format_for(path) == "csv":
            for line, row in read_csv(
                path,
                required=self.mapping.required,
                delimiter=self.delimiter or self.mapping.delimiter,
                encoding=self.mapping.encoding,
            ):
                yield _Ctx(name, line, None), row, False
            return
        data = load_json(path)
        pointer = ""
        if self.mapping.records_path:
            for part in self.mapping.records_path.split("."):
                if not isinstance(data, Mapping) or part not in data:
                    raise InvalidRecordError(
                        f"no {self.mapping.records_path!r} list at the top of the JSON "
                        "(the mapping's records_path)",
                        file=name, record=pointer or "/", field=part,
                    )
                data = data[part]
                pointer += f"/{part}"
        if isinstance(data, Mapping):
            data = [data]
        if not isinstance(data, list):
            raise InvalidRecordError("expected a list of records", file=name,
                                     record=pointer or "/")
        for i, rec in enumerate(data):
            where = f"{pointer}/{i}"
            if not isinstance(rec, Mapping):
                raise InvalidRecordError("a record must be a JSON object", file=name,
                                         record=where)
            for req in self.mapping.required:
                if not _has_path(rec, req):
                    raise InvalidRecordError("required field is missing", file=name,
                                             record=where, field=req)
            yield _Ctx(name, None, where), rec, True

    # -- records ------------------------------------------------------------------------------
    def parse(self, path: Path) -> Iterator[Record]:
        """Yield the records of one export file (all read before the first is yielded).

        Raises
        ------
        InvalidRecordError
            Unreadable or malformed file, a missing required column/field, an empty required
            value, a value that cannot be converted, or an unmapped value the mapping refuses;
            the message names the file, line/record and field.
        """
        records: list[Record] = []
        for ctx, row, is_json in self._rows(Path(path)):
            if self.mapping.record == "relationship":
                rel = self._relationship(row, ctx, is_json)
                if rel is not None:
                    records.append(rel)
            else:
                records.extend(self._ci(row, ctx, is_json))
        yield from records

    def _identifiers(self, spec: IdentifierSpec, row: Mapping[str, Any], ctx: _Ctx,
                     is_json: bool) -> Identifiers:
        values: dict[str, Any] = {}
        for key, vs in spec.specs().items():
            v = _value(row, vs, ctx, is_json=is_json, what=key)
            if v in (None, "", []):
                continue
            if key == "mac_addresses":
                v = tuple(v) if isinstance(v, list) else (str(v),)
            else:
                v = str(v)
            values[key] = v
        return Identifiers(**values)

    def _used_columns(self) -> set[str]:
        m = self.mapping
        specs: list[ValueSpec | None] = [m.ci_class, m.name, m.support_group, m.owner,
                                         m.location, *m.identifiers.specs().values(),
                                         *m.attributes.values()]
        if m.asset is not None:
            a = m.asset
            specs += [a.native_key, a.asset_tag, a.serial_number, a.name, a.lifecycle_stage,
                      a.holder, a.location, *a.attributes.values()]
        cols: set[str] = set()
        for s in specs:
            if s is not None:
                cols.update(s.columns())
        return cols

    def _ci(self, row: Mapping[str, Any], ctx: _Ctx, is_json: bool) -> list[Record]:
        m = self.mapping
        assert m.ci_class is not None and m.name is not None  # checked by MappingSpec
        ci_class = _value(row, m.ci_class, ctx, is_json=is_json, what="ci_class")
        name = _value(row, m.name, ctx, is_json=is_json, what="name")
        if ci_class in (None, ""):
            raise ctx.error("no CI class for this row", _first(m.ci_class.columns(), "ci_class"))
        if not CLASS_NAME.match(str(ci_class)):
            raise ctx.error(f"CI class {ci_class!r} is not a PascalCase class name; add the "
                            "value to the mapping's ci_class map",
                            _first(m.ci_class.columns(), "ci_class"))
        if name in (None, ""):
            raise ctx.error("the CI has no name", _first(m.name.columns(), "name"))
        idents = self._identifiers(m.identifiers, row, ctx, is_json)
        attrs: dict[str, Scalar | list[str]] = {}
        if m.extra_columns == "attributes":
            for col, raw in row.items():
                if col in self._used or isinstance(raw, Mapping | list):
                    continue
                v = _scalar(raw, ValueSpec(column=col))
                if v is not None:
                    attrs[_snake(col)] = v
        for key, vs in m.attributes.items():
            v = _value(row, vs, ctx, is_json=is_json, what=f"attributes.{key}")
            if v not in (None, "", []):
                attrs[key] = v
        ci = CIRecord(
            ci_class=str(ci_class),
            name=str(name),
            identifiers=idents,
            attributes=attrs,
            support_group=_opt_str(_value(row, m.support_group, ctx, is_json=is_json,
                                          what="support_group")),
            owner=_opt_str(_value(row, m.owner, ctx, is_json=is_json, what="owner")),
            location=_opt_str(_value(row, m.location, ctx, is_json=is_json, what="location")),
            origin=ctx.origin(),
        )
        out: list[Record] = [ci]
        if m.asset is not None:
            out.append(self._asset(m.asset, ci, row, ctx, is_json))
        return out

    def _asset(self, a: AssetSpec, ci: CIRecord, row: Mapping[str, Any], ctx: _Ctx,
               is_json: bool) -> AssetRecord:
        def val(spec: ValueSpec | None, what: str) -> Any:
            return _value(row, spec, ctx, is_json=is_json, what=f"asset.{what}")

        stage = val(a.lifecycle_stage, "lifecycle_stage")
        if stage is not None:
            try:
                stage = LifecycleStage(str(stage))
            except ValueError:
                raise ctx.error(
                    f"lifecycle stage {stage!r} is not one of "
                    f"{', '.join(s.value for s in LifecycleStage)}; map it in asset."
                    "lifecycle_stage", _first(a.lifecycle_stage.columns()
                                              if a.lifecycle_stage else [], "lifecycle_stage"),
                ) from None
        attrs: dict[str, Scalar] = {}
        for key, vs in a.attributes.items():
            v = val(vs, f"attributes.{key}")
            if v not in (None, ""):
                attrs[key] = ", ".join(v) if isinstance(v, list) else v
        ids = ci.identifiers
        return AssetRecord(
            native_key=_opt_str(val(a.native_key, "native_key")) or ids.native_key,
            asset_tag=_opt_str(val(a.asset_tag, "asset_tag")) or ids.asset_tag,
            serial_number=_opt_str(val(a.serial_number, "serial_number")) or ids.serial_number,
            name=_opt_str(val(a.name, "name")) or ci.name,
            lifecycle_stage=stage,
            attributes=attrs,
            tracks=ids,
            holder=_opt_str(val(a.holder, "holder")),
            location=_opt_str(val(a.location, "location")) or ci.location,
            origin=ci.origin,
        )

    def _relationship(self, row: Mapping[str, Any], ctx: _Ctx,
                      is_json: bool) -> RelationshipRecord | None:
        r = self.mapping.relationship
        assert r is not None  # checked by MappingSpec
        type_col = _first(r.type.columns(), "type")
        raw_type = _value(row, r.type, ctx, is_json=is_json, what="relationship.type")
        if raw_type in (None, ""):
            raise ctx.error("the relationship has no type", type_col)
        target_spec = _lookup_type(r.type_map, str(raw_type))
        if target_spec is None:
            if r.unmapped == "skip":
                log.info("%s: skipping relationship type %r (not in the type map)", ctx.file,
                         raw_type)
                return None
            if r.unmapped == "error" or not REL_NAME.match(str(raw_type)):
                raise ctx.error(
                    f"relationship type {raw_type!r} is not in the mapping's type_map "
                    f"(known: {', '.join(sorted(r.type_map))})", type_col)
            target_spec = RelTypeTarget(type=str(raw_type))
        src = self._identifiers(r.source, row, ctx, is_json)
        dst = self._identifiers(r.target, row, ctx, is_json)
        for end, ids, spec in (("source", src, r.source), ("target", dst, r.target)):
            if ids.is_empty():
                cols = [c for s in spec.specs().values() for c in s.columns()]
                raise ctx.error(f"the relationship's {end} end has no identifier",
                                _first(cols, end))
        if target_spec.reverse:
            src, dst = dst, src
        props: dict[str, Scalar] = {}
        for key, vs in r.properties.items():
            v = _value(row, vs, ctx, is_json=is_json, what=f"relationship.properties.{key}")
            if v not in (None, ""):
                props[key] = ", ".join(v) if isinstance(v, list) else v
        props.setdefault("source_type", str(raw_type))
        return RelationshipRecord(
            rel_type=target_spec.type,
            source=src,
            target=dst,
            optional=target_spec.optional,
            properties=props,
            origin=ctx.origin(),
        )


def _lookup_type(type_map: Mapping[str, RelTypeTarget], raw: str) -> RelTypeTarget | None:
    if raw in type_map:
        return type_map[raw]
    folded = raw.casefold()
    for k, v in type_map.items():
        if k.casefold() == folded:
            return v
    return None


def _first(cols: list[str], default: str) -> str:
    return cols[0] if cols else default


def _opt_str(value: Any) -> str | None:
    if value in (None, "", []):
        return None
    return ", ".join(value) if isinstance(value, list) else str(value)


class GenericCSVImporter(MappedImporter):
    """Any CSV export, through a mapping file (``mapping=`` is required)."""

    kind = "csv"
    description = "CSV through a declarative mapping file (importers/generic.py)"
    forced_format = "csv"


class GenericJSONImporter(MappedImporter):
    """Any JSON export, through a mapping file (``mapping=`` is required)."""

    kind = "json"
    description = "JSON through a declarative mapping file (importers/generic.py)"
    forced_format = "json"


class ServiceNowCIImporter(MappedImporter):
    """ServiceNow CMDB CI tables (``cmdb_ci`` and its extensions such as ``cmdb_ci_server``).

    Follows ServiceNow's list export (CSV with field names as headers, display values for
    reference and choice fields) and the Table API JSON (``GET /api/now/table/<table>``, records
    under ``result``, with or without ``sysparm_display_value``); the file suffix chooses
    (``.json`` or CSV). Mapping: ``importers/mappings/servicenow_cmdb_ci.yaml``.
    """

    kind = "servicenow-ci"
    description = "ServiceNow cmdb_ci* list export CSV or Table API JSON"
    default_mapping = "servicenow_cmdb_ci"


class ServiceNowRelImporter(MappedImporter):
    """ServiceNow ``cmdb_rel_ci`` (parent, child, type) as list export CSV or Table API JSON.

    The ServiceNow type ``"Depends on::Used by"`` reads *parent depends on child*; the type map
    in ``importers/mappings/servicenow_cmdb_rel_ci.yaml`` turns each type into ours, reversing
    those whose parent is the needed end (``Members::Member of``: the parent is the cluster).
    """

    kind = "servicenow-rel"
    description = "ServiceNow cmdb_rel_ci list export CSV or Table API JSON"
    default_mapping = "servicenow_cmdb_rel_ci"


class LansweeperCSVImporter(MappedImporter):
    """Lansweeper report export (CSV) of assets, column names as in the report builder
    (``tblAssets`` / ``tblAssetCustom`` fields). Mapping:
    ``importers/mappings/lansweeper_csv.yaml`` (also emits an asset record per asset)."""

    kind = "lansweeper-csv"
    description = "Lansweeper asset report CSV export"
    default_mapping = "lansweeper_csv"


class SnowImporter(MappedImporter):
    """Snow License Manager computer list export (CSV). Mapping:
    ``importers/mappings/snow_computers.yaml``."""

    kind = "snow"
    description = "Snow License Manager computers CSV export"
    default_mapping = "snow_computers"


class FlexeraImporter(MappedImporter):
    """Flexera One / FlexNet Manager Suite inventory devices export (CSV). Mapping:
    ``importers/mappings/flexera_inventory_devices.yaml``."""

    kind = "flexera"
    description = "Flexera One / FlexNet Manager inventory devices CSV export"
    default_mapping = "flexera_inventory_devices"


class CerteroImporter(MappedImporter):
    """Certero device export (CSV). Mapping: ``importers/mappings/certero_devices.yaml``."""

    kind = "certero"
    description = "Certero device CSV export"
    default_mapping = "certero_devices"


class JSMAssetsCSVImporter(MappedImporter):
    """Jira Service Management Assets object CSV export (``Key``, ``Name``, ``Object Type``,
    ``Created``, ``Updated`` and one column per attribute). Mapping:
    ``importers/mappings/jsm_assets_csv.yaml``; attribute columns it does not name become
    attributes."""

    kind = "jsm-assets-csv"
    description = "Jira Service Management Assets object CSV export"
    default_mapping = "jsm_assets_csv"
