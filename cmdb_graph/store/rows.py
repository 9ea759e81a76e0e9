"""Rows: the plain-dict form in which the stores hold and write models, and model reflection.

A *row* is the plain-dict form of a model: ``model_dump(mode="json", exclude_defaults=True)``
without the key fields, i.e. JSON values only (enums as strings, dates and datetimes as ISO
strings), and every field that holds its default (``None``, an empty list, an empty lineage,
...) left out. The memory store keeps rows as they are (memory per CI matters); the Neo4j store
turns them into node properties (:mod:`cmdb_graph.store.neo4j.props`) and back. Any store that
keeps rows as text (Neo4j's lineage property today) writes lineage in the compact form of
:func:`encode_lineage`.

This module holds:

* model reflection: :func:`field_kinds` (what each field of a model holds);
* rows from models: :func:`dump_row`, with :func:`fast_row` as its fast path (the same dict
  for the value types our models hold, pydantic for anything else);
* models and graph attributes from rows: :func:`node_from_row`, :func:`ci_from_row`,
  :func:`rel_from_row`, :func:`expand_ci`, :func:`edge_attrs`;
* the compact lineage JSON: :func:`encode_lineage`, :func:`decode_lineage`;
* a whole row as stored bytes (the embedded database's rows): :func:`encode_row`,
  :func:`decode_row` (orjson, lineage in the compact form).
"""

from __future__ import annotations

import functools
import json
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model import (
    NODE_SPECS,
    AttributeSource,
    ConfigurationItem,
    Lineage,
    Node,
    Relationship,
    SourceSeen,
)

__all__ = [
    "CI_LABEL",
    "EDGE_DEFAULTS",
    "REL_KEY_FIELDS",
    "Row",
    "RowMemo",
    "FieldKinds",
    "field_kinds",
    "dump_row",
    "fast_row",
    "datetime_json",
    "node_from_row",
    "ci_from_row",
    "rel_from_row",
    "expand_ci",
    "edge_attrs",
    "lean_ci",
    "lean_edge_attrs",
    "LINEAGE_STAMPS",
    "compact_lineage",
    "encode_lineage",
    "decode_lineage",
    "encode_row",
    "decode_row",
]

CI_LABEL = ConfigurationItem.LABEL

#: Fields of :class:`Relationship` that form its key and end labels (not stored as properties).
REL_KEY_FIELDS: tuple[str, ...] = ("rel_type", "source", "target", "source_label", "target_label")

#: A lean row (see the module docstring).
Row = dict[str, Any]

#: Conversions of lineage entries by object id, shared by the rows of one batch (ingestion
#: gives many nodes the same entry objects): ``id(obj) -> (obj, converted)``.
RowMemo = dict[int, tuple[Any, Any]]

_DT_ADAPTER: TypeAdapter[datetime] = TypeAdapter(datetime)


# -- field kinds ---------------------------------------------------------------------------
def _kind_of(annotation: Any) -> str:
    """One of ``datetime``, ``date``, ``dict``, ``list``, ``scalar`` for a field annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kind_of(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = {_kind_of(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else "scalar"
    if origin in (list, tuple, set):
        return "list"
    if origin is dict or annotation is dict:
        return "dict"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "dict"
        if issubclass(annotation, datetime):
            return "datetime"
        if issubclass(annotation, date):
            return "date"
    return "scalar"


@dataclass(frozen=True, slots=True)
class FieldKinds:
    """What each field of one model holds, for the conversions between rows and properties.

    Attributes
    ----------
    fields : tuple of str
        Every field, in declaration order.
    datetimes, dates, dicts, lists, scalars : frozenset of str
        Fields by the kind of value they hold (``dicts`` includes nested models: lineage).
    defaults : dict
        JSON form of each field's default (fields without a default are absent).
    """

    fields: tuple[str, ...]
    datetimes: frozenset[str]
    dates: frozenset[str]
    dicts: frozenset[str]
    lists: frozenset[str]
    scalars: frozenset[str]
    defaults: dict[str, Any]


_KINDS: dict[type[BaseModel], FieldKinds] = {}


def field_kinds(model: type[BaseModel]) -> FieldKinds:
    """The (cached) :class:`FieldKinds` of a model class."""
    found = _KINDS.get(model)
    if found is not None:
        return found
    by_kind: dict[str, set[str]] = {k: set() for k in ("datetime", "date", "dict", "list")}
    by_kind["scalar"] = set()
    defaults: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        by_kind[_kind_of(info.annotation)].add(name)
        if not info.is_required():
            value = info.get_default(call_default_factory=True)
            defaults[name] = TypeAdapter(Any).dump_python(value, mode="json")
    kinds = FieldKinds(
        fields=tuple(model.model_fields),
        datetimes=frozenset(by_kind["datetime"]),
        dates=frozenset(by_kind["date"]),
        dicts=frozenset(by_kind["dict"]),
        lists=frozenset(by_kind["list"]),
        scalars=frozenset(by_kind["scalar"]),
        defaults=defaults,
    )
    _KINDS[model] = kinds
    return kinds


# -- rows ----------------------------------------------------------------------------------
def _validation_field(exc: ValidationError) -> str | None:
    for err in exc.errors():
        if err.get("loc"):
            return ".".join(str(p) for p in err["loc"])
    return None


def dump_row(
    model: BaseModel, exclude: set[str], record: str, memo: RowMemo | None = None
) -> dict[str, Any]:
    """``model`` as a lean JSON row; a model built without validation is validated here.

    Parameters
    ----------
    model : BaseModel
        A node or relationship model.
    exclude : set of str
        Fields to leave out (the key fields).
    record : str
        How an error names the record (``"CI 'ci-1'"``).
    memo : dict, optional
        Conversions of lineage entries by object, shared by the calls of one batch.

    Raises
    ------
    InvalidRecordError
        A field holds a value of the wrong type (a model built with ``model_construct``).
    """
    row = fast_row(model, exclude, memo)
    if row is not None:
        return row
    try:
        return model.model_dump(
            mode="json", exclude_defaults=True, exclude=exclude, warnings="error"
        )
    except PydanticSerializationError:
        pass
    # A value of the wrong type slipped past validation; let pydantic say which field.
    try:
        type(model).model_validate(model.model_dump(mode="python", warnings=False))
    except ValidationError as exc:
        raise InvalidRecordError(
            f"invalid value: {exc.errors()[0].get('msg', exc)}",
            record=record,
            field=_validation_field(exc),
        ) from exc
    raise InvalidRecordError("a field holds a value that cannot be stored", record=record)


# -- fast rows -------------------------------------------------------------------------------
# ``model_dump(mode="json", exclude_defaults=True)`` costs tens of microseconds per node, most
# of it in the lineage (one datetime per attribute). ``fast_row`` gives the same dict for the
# value types our models hold, checking each value's type as strictly as pydantic's serializer
# does (it returns ``None`` for anything else, and the caller falls back to pydantic). Nested
# lineage entries are converted once per object within one batch (ingestion shares them).
_NO_DEFAULT = object()
_SCALAR_TYPES = (str, int, bool)


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    kind: str  # str, int, float, bool, enum, datetime, date, strlist, scalardict, intdict, lineage
    nullable: bool
    default: Any  # the Python default (a factory is called once), or _NO_DEFAULT
    enum: type[Enum] | None = None


_PLANS: dict[type[BaseModel], tuple[_FieldPlan, ...] | None] = {}


def _plan_kind(annotation: Any) -> tuple[str, bool, type[Enum] | None] | None:
    """``(kind, nullable, enum class)`` of a field annotation, or ``None`` if unsupported."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        non_null = [a for a in args if a is not type(None)]
        if len(non_null) == len(args) - 1 and len(non_null) == 1:
            nullable = True
            annotation = non_null[0]
            origin = typing.get_origin(annotation)
        else:
            return None
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        # constraints (Field(min_length=...), AfterValidator) do not change the serialisation
        annotation, origin = base, typing.get_origin(base)
    if origin is list and typing.get_args(annotation) == (str,):
        return "strlist", nullable, None
    if origin is dict:
        kt, vt = typing.get_args(annotation)
        if kt is str and vt is int:
            return "intdict", nullable, None
        if kt is str and set(typing.get_args(vt)) == {str, int, float, bool, type(None)}:
            return "scalardict", nullable, None
        return None
    if annotation is Lineage:
        return "lineage", nullable, None
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return "enum", nullable, annotation
        if annotation is datetime:
            return "datetime", nullable, None
        if annotation is date:
            return "date", nullable, None
        if annotation in (str, int, float, bool):
            return annotation.__name__, nullable, None
    return None


def _row_plan(model: type[BaseModel]) -> tuple[_FieldPlan, ...] | None:
    if model in _PLANS:
        return _PLANS[model]
    plans: list[_FieldPlan] | None = []
    for name, info in model.model_fields.items():
        found = _plan_kind(info.annotation)
        if found is None or info.exclude or info.serialization_alias or info.alias:
            plans = None
            break
        kind, nullable, enum = found
        default = (
            _NO_DEFAULT if info.is_required() else info.get_default(call_default_factory=True)
        )
        assert plans is not None
        plans.append(_FieldPlan(name, kind, nullable, default, enum))
    if plans is not None and (
        model.__pydantic_computed_fields__ or model.model_config.get("extra") != "forbid"
    ):
        plans = None
    _PLANS[model] = tuple(plans) if plans is not None else None
    return _PLANS[model]


_DT_JSON: dict[datetime, str] = {}


def datetime_json(value: datetime) -> str:
    """pydantic's JSON text of a datetime (cached for UTC values: imports repeat one time).

    The one place a datetime becomes row text, so rows from :func:`fast_row`, from pydantic and
    from Neo4j properties agree to the character.
    """
    if value.tzinfo is UTC:
        found = _DT_JSON.get(value)
        if found is None:
            if len(_DT_JSON) > 4096:
                _DT_JSON.clear()
            found = _DT_JSON[value] = _DT_ADAPTER.dump_python(value, mode="json")
        return found
    text: str = _DT_ADAPTER.dump_python(value, mode="json")
    return text


def _finite(value: float) -> bool:
    return value - value == 0.0  # False for inf and nan


def _scalar_ok(value: Any) -> bool:
    t = type(value)
    return value is None or t in _SCALAR_TYPES or (t is float and _finite(value))


def _small_model_json(obj: Any, fields: tuple[tuple[str, str, Any], ...], memo: RowMemo) -> Any:
    """A SourceSeen / AttributeSource as its lean JSON dict, once per object (memo by id)."""
    hit = memo.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    values = obj.__dict__
    out: dict[str, Any] = {}
    for name, kind, default in fields:
        v = values[name]
        if default is not _NO_DEFAULT and v == default and type(v) is type(default):
            continue
        t = type(v)
        if kind == "datetime" and t is datetime:
            out[name] = datetime_json(v)
        elif kind == "str" and t is str or kind == "int" and t is int:
            out[name] = v
        elif kind == "ostr" and (v is None or t is str):
            out[name] = v
        else:
            return None
    memo[id(obj)] = (obj, out)
    return out


_SEEN_FIELDS = (("first_seen", "datetime", _NO_DEFAULT), ("last_seen", "datetime", _NO_DEFAULT),
                ("native_key", "ostr", None), ("missed_full_runs", "int", 0),
                ("matched_by", "ostr", None))
_ATTR_FIELDS = (("source", "str", _NO_DEFAULT), ("asserted_at", "datetime", _NO_DEFAULT))


def _lineage_json(value: Any, memo: RowMemo) -> dict[str, Any] | None:
    if type(value) is not Lineage or value.__pydantic_extra__:
        return None
    out: dict[str, Any] = {}
    for part, cls, fields in (("sources", SourceSeen, _SEEN_FIELDS),
                              ("attributes", AttributeSource, _ATTR_FIELDS)):
        entries = value.__dict__[part]
        if type(entries) is not dict:
            return None
        if not entries:
            continue
        conv: dict[str, Any] = {}
        for k, entry in entries.items():
            hit = memo.get(id(entry))
            if hit is not None and hit[0] is entry and type(k) is str:
                conv[k] = hit[1]
                continue
            if type(k) is not str or type(entry) is not cls:
                return None
            j = _small_model_json(entry, fields, memo)
            if j is None:
                return None
            conv[k] = j
        out[part] = conv
    return out


def fast_row(model: BaseModel, exclude: set[str], memo: RowMemo | None = None
             ) -> dict[str, Any] | None:
    """``model.model_dump(mode="json", exclude_defaults=True, exclude=exclude)``, fast.

    Returns ``None`` when the model holds a value this fast path does not handle (a wrong type
    included): the caller then asks pydantic, which also reports bad values.

    Parameters
    ----------
    model : BaseModel
        A node or relationship model.
    exclude : set of str
        Fields to leave out.
    memo : dict, optional
        Conversions of lineage entries by object, shared by the calls of one batch.
    """
    plan = _row_plan(type(model))
    if plan is None or model.__pydantic_extra__:
        return None
    if memo is None:
        memo = {}
    values = model.__dict__
    out: dict[str, Any] = {}
    for f in plan:
        name = f.name
        if name in exclude:
            continue
        v = values[name]
        if v is None:
            if not f.nullable:
                return None
            if f.default is not None:
                out[name] = None
            continue
        kind = f.kind
        t = type(v)
        if kind == "lineage":
            j = _lineage_json(v, memo)
            if j is None:
                return None
            if j:  # an empty lineage is the default
                out[name] = j
            continue
        if kind == "str":
            ok = t is str
        elif kind == "enum":
            ok = t is f.enum
        elif kind == "strlist":
            ok = t is list and all(type(x) is str for x in v)
        elif kind == "scalardict":
            ok = t is dict and all(type(k) is str and _scalar_ok(x) for k, x in v.items())
        elif kind == "intdict":
            ok = t is dict and all(type(k) is str and type(x) is int for k, x in v.items())
        elif kind in ("datetime", "date"):
            ok = t is (datetime if kind == "datetime" else date)
        elif kind == "int":
            ok = t is int
        elif kind == "bool":
            ok = t is bool
        elif kind == "float":
            ok = t is float and _finite(v)
        else:
            ok = False
        if not ok:
            return None
        default = f.default
        if default is not _NO_DEFAULT and type(default) is t and v == default:
            continue
        if kind == "enum":
            out[name] = v.value
        elif kind == "datetime":
            out[name] = datetime_json(v)
        elif kind == "date":
            out[name] = v.isoformat()
        elif kind in ("strlist", "scalardict", "intdict"):
            out[name] = v.copy()
        else:
            out[name] = v
    return out


def node_from_row(label: str, key: str, row: Mapping[str, Any]) -> Node:
    """Rebuild the model of ``label`` from its key and row."""
    spec = NODE_SPECS[label]
    return spec.model.model_validate({**row, spec.key: key})


def ci_from_row(ci_id: str, row: Mapping[str, Any]) -> ConfigurationItem:
    """Rebuild a :class:`ConfigurationItem` from its ``ci_id`` and row."""
    return ConfigurationItem.model_validate({**row, "ci_id": ci_id})


def rel_from_row(
    rel_type: str,
    source: str,
    target: str,
    row: Mapping[str, Any],
    *,
    source_label: str = CI_LABEL,
    target_label: str = CI_LABEL,
) -> Relationship:
    """Rebuild a :class:`Relationship` from its key, end labels and row."""
    return Relationship.model_validate(
        {
            **row,
            "rel_type": rel_type,
            "source": source,
            "target": target,
            "source_label": source_label,
            "target_label": target_label,
        }
    )


def expand_ci(ci_id: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The node attributes of the graph shape: every field as ``dump_flat`` gives it.

    Defaults are filled in (fresh lists/dicts, never shared), ``lineage`` is left out.
    """
    kinds = field_kinds(ConfigurationItem)
    out: dict[str, Any] = {}
    for name in kinds.fields:
        if name == "lineage":
            continue
        if name in row:
            value = row[name]
        elif name == "ci_id":
            value = ci_id
        else:
            value = kinds.defaults.get(name)
            if isinstance(value, list | dict):
                value = type(value)()
        out[name] = value
    return out


def lean_ci(ci_id: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`expand_ci` without the attributes that read as absent (``None``, empty lists
    and dicts), in one pass: the node attributes of the engine's lean graph.

    Examples
    --------
    >>> lean_ci("vm1", {"name": "web VM", "tags": [], "ci_class": "VirtualMachine"})["name"]
    'web VM'
    """
    fields, defaults = _lean_fields()
    out: dict[str, Any] = {"ci_id": ci_id}
    for name, value in defaults.items():
        out[name] = type(value)(value) if isinstance(value, list | dict) else value
    for name, value in row.items():
        if name not in fields:
            continue
        if value is None or (isinstance(value, list | dict) and not value):
            out.pop(name, None)
        else:
            out[name] = value
    return out


@functools.cache
def _lean_fields() -> tuple[frozenset[str], dict[str, Any]]:
    """The CI fields of the graph shape, and the defaults that do not read as absent."""
    kinds = field_kinds(ConfigurationItem)
    fields = frozenset(f for f in kinds.fields if f != "lineage")
    return fields, {k: v for k, v in kinds.defaults.items()
                    if k in fields and k != "ci_id" and v is not None
                    and not (isinstance(v, list | dict) and not v)}


#: The relationship fields the graph shape keeps on each edge, with the value each reads as
#: when absent. ``inferred`` is ``basis == "inferred"`` (rows from before the basis hold only
#: ``inferred``); the edge keeps both, impact reads ``inferred``.
EDGE_DEFAULTS: dict[str, Any] = {"optional": False, "inferred": False, "basis": "declared",
                                 "confidence": None, "evidence": None, "properties": {}}


def edge_attrs(rel_type: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The edge attributes of the graph shape from a relationship row."""
    inferred = bool(row.get("inferred", False)) or row.get("basis") == "inferred"
    return {
        "rel_type": rel_type,
        "optional": bool(row.get("optional", False)),
        "inferred": inferred,
        "basis": "inferred" if inferred else str(row.get("basis") or "declared"),
        "confidence": row.get("confidence"),
        "evidence": row.get("evidence"),
        "properties": dict(row.get("properties") or {}),
    }


def lean_edge_attrs(row: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`edge_attrs` without the attributes at their default (``rel_type``, which the
    edge key gives, ``optional`` and ``inferred`` false, a basis that ``inferred`` implies or
    ``declared``, no confidence, no evidence, no properties)."""
    out: dict[str, Any] = {}
    if row.get("optional", False):
        out["optional"] = True
    basis = row.get("basis")
    if row.get("inferred", False) or basis == "inferred":
        out["inferred"] = True
    elif basis and basis != "declared":
        out["basis"] = str(basis)
    for name in ("confidence", "evidence"):
        value = row.get(name)
        if value is not None:
            out[name] = value
    props = row.get("properties")
    if props:
        out["properties"] = dict(props)
    return out


# -- compact lineage -------------------------------------------------------------------------
#: Key of the compact form of lineage attributes in the stored JSON (see ``encode_lineage``).
LINEAGE_STAMPS = "stamps"
_STAMP_KEYS = frozenset({"source", "asserted_at"})


def compact_lineage(lineage: Mapping[str, Any]) -> dict[str, Any]:
    """A lineage row in its compact form: attributes grouped by ``(source, asserted_at)``.

    ``{"attributes": {"name": {"source": "s", "asserted_at": "t"}, "fqdn": {...same}}}``
    becomes ``{"stamps": [["s", "t", ["fqdn", "name"]]]}``: an import stamps every attribute
    of a node with the same source and time, so this is several times shorter (less to write,
    log and read). A lineage whose attribute entries are not plain stamps is returned as it is.
    :func:`decode_lineage` restores the row from either form.
    """
    attrs = lineage.get("attributes")
    out = {k: v for k, v in lineage.items() if k != "attributes"}
    if attrs:
        groups: dict[tuple[str, str], list[str]] = {}
        for name, entry in attrs.items():
            if (not isinstance(entry, dict) or entry.keys() != _STAMP_KEYS
                    or not isinstance(entry["source"], str)
                    or not isinstance(entry["asserted_at"], str)):
                return dict(lineage)
            groups.setdefault((entry["source"], entry["asserted_at"]), []).append(name)
        out[LINEAGE_STAMPS] = [[src, at, sorted(names)]
                               for (src, at), names in sorted(groups.items())]
    return out


def encode_lineage(lineage: Mapping[str, Any]) -> str:
    """A lineage row as compact JSON text (:func:`compact_lineage`, keys sorted)."""
    return json.dumps(compact_lineage(lineage), separators=(",", ":"), sort_keys=True)


def decode_lineage(
    value: Mapping[str, Any], stamps: dict[tuple[str, str], dict[str, str]] | None = None
) -> dict[str, Any]:
    """The lineage row of stored lineage JSON (compact or plain form).

    Parameters
    ----------
    value : Mapping
        The decoded JSON object.
    stamps : dict, optional
        Entry dicts by ``(source, asserted_at)``, shared across calls: rows decoded with the
        same dict share one entry object per stamp (loading a large estate keeps one dict
        per import run and source instead of one per attribute of every CI; attribute names
        are interned). The entries must then never be changed in place (stores replace rows,
        they never edit them).
    """
    found = value.get(LINEAGE_STAMPS)
    if found is None:
        return dict(value)
    out = {k: v for k, v in value.items() if k != LINEAGE_STAMPS}
    attrs: dict[str, Any] = {}
    for src, at, names in found:
        entry = None if stamps is None else stamps.get((src, at))
        if entry is None:
            entry = {"source": src, "asserted_at": at}
            if stamps is not None:
                stamps[(src, at)] = entry
        if stamps is None:
            for name in names:
                attrs[name] = entry
        else:
            for name in names:
                attrs[sys.intern(name)] = entry
    out["attributes"] = dict(sorted(attrs.items()))
    return out


def encode_row(row: Mapping[str, Any]) -> bytes:
    """A lean row as stored bytes: compact JSON (orjson), lineage in its compact form.

    Raises
    ------
    TypeError
        The row holds a value that is not JSON (lean rows never do).
    """
    lineage = row.get("lineage")
    if lineage:
        row = {**row, "lineage": compact_lineage(lineage)}
    return orjson.dumps(row)


def decode_row(
    data: bytes, stamps: dict[tuple[str, str], dict[str, str]] | None = None
) -> dict[str, Any]:
    """The lean row of :func:`encode_row`'s bytes (``stamps`` as in :func:`decode_lineage`).

    Raises
    ------
    orjson.JSONDecodeError
        The bytes are not JSON (a damaged database).
    """
    row: dict[str, Any] = orjson.loads(data)
    lineage = row.get("lineage")
    if lineage:
        row["lineage"] = decode_lineage(lineage, stamps)
    return row
