"""Mapping files: the declarative description of a CSV or JSON export, validated on load.

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

Value rules (:class:`ValueSpec`, applied by :mod:`importers.mapped_values`): ``column`` may list
several names, the first non-empty one wins; ``map`` is matched exactly, then
case-insensitively; an unmapped value is kept, replaced by ``default`` or refused
(``unmapped: keep | default | error``); ``type`` converts (``date`` and ``datetime`` values
become ISO 8601 strings, datetimes in UTC; ``formats`` lists ``strptime`` formats to try before
ISO 8601 and ``dateutil``); ``fallback`` is another spec tried when this one gives nothing. JSON
values that are objects with ``display_value`` / ``value`` (ServiceNow Table API with
``sysparm_display_value=all``, reference fields) give the display value, or ``value`` with
``json_value: value``.

A bad mapping raises :class:`~cmdb_graph.errors.ConfigurationError` naming the mapping file and
the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cmdb_graph.errors import ConfigurationError
from cmdb_graph.model.registry import CLASS_NAME, REL_NAME

__all__ = [
    "MAPPINGS_DIR",
    "ValueSpec",
    "IdentifierSpec",
    "AssetSpec",
    "RelTypeTarget",
    "RelationshipSpec",
    "MappingSpec",
    "load_mapping",
]

#: Folder of the ready mappings shipped with cmdb-graph.
MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"


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

