"""Logic shared by both stores: batch validation, rows, cursors, traversal directions.

Both :class:`~cmdb_graph.store.memory.MemoryStore` and
:class:`~cmdb_graph.store.neo4j.Neo4jStore` go through these helpers so that they validate,
flatten, page and traverse the same way; the contract suite (``tests/contract``) checks that
they really behave alike.

Rows
----
A *row* is the plain-dict form of a model: ``model_dump(mode="json", exclude_defaults=True)``
without the key fields, i.e. JSON values only (enums as strings, dates and datetimes as ISO
strings), and every field that holds its default (``None``, an empty list, an empty lineage,
...) left out. The memory store keeps rows as they are (memory per CI matters); the Neo4j store
turns them into node properties (:func:`to_props`) and back (:func:`from_props`).
"""

from __future__ import annotations

import base64
import binascii
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from cmdb_graph.errors import (
    InvalidRecordError,
    TraversalLimitError,
    UnknownRelationshipTypeError,
)
from cmdb_graph.model import (
    NODE_SPECS,
    ConfigurationItem,
    ImpactDirection,
    Node,
    Registry,
    Relationship,
)
from cmdb_graph.model.entities import Scalar
from cmdb_graph.store.base import MAX_PAGE_SIZE, CIFilter, Direction, WriteBatch

__all__ = [
    "CI_LABEL",
    "EDGE_ATTRS",
    "REL_KEY_FIELDS",
    "FieldKinds",
    "PreparedBatch",
    "PreparedNode",
    "PreparedRel",
    "CASELESS_IDENTIFIERS",
    "LIST_IDENTIFIERS",
    "SHADOW_PREFIX",
    "check_depth",
    "check_ends",
    "list_needle",
    "shadow_props",
    "split_temporals",
    "check_limit",
    "decode_cursor",
    "edge_attrs",
    "encode_cursor",
    "decode_lineage",
    "encode_lineage",
    "expand_ci",
    "fast_row",
    "field_kinds",
    "from_props",
    "identifier_value",
    "node_from_row",
    "prepare_batch",
    "reference_rel_types",
    "rel_from_row",
    "check_where",
    "class_filter",
    "to_props",
    "traversal_types",
]

CI_LABEL = ConfigurationItem.LABEL

#: Fields of :class:`Relationship` that form its key and end labels (not stored as properties).
REL_KEY_FIELDS: tuple[str, ...] = ("rel_type", "source", "target", "source_label", "target_label")

#: Edge attributes of the networkx graph shape (see ``cmdb_graph.store.base``).
EDGE_ATTRS: tuple[str, ...] = ("rel_type", "optional", "inferred", "evidence", "properties")

#: Identifier fields compared case-insensitively by ``find_cis``.
CASELESS_IDENTIFIERS: frozenset[str] = frozenset({"fqdn", "hostname"})

#: Identifier fields that hold lists (``find_cis`` matches list membership).
LIST_IDENTIFIERS: frozenset[str] = frozenset({"native_keys", "mac_addresses"})


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


def _dump(
    model: BaseModel, exclude: set[str], record: str, memo: _Memo | None = None
) -> dict[str, Any]:
    """``model`` as a lean JSON row; a model built without validation is validated here.

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
_STR_ONLY = frozenset({str})
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
    from cmdb_graph.model import Lineage

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


def _datetime_json(value: datetime) -> str:
    """pydantic's JSON text of a datetime (cached for UTC values: imports repeat one time)."""
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


_Memo = dict[int, tuple[Any, Any]]


def _small_model_json(obj: Any, fields: tuple[tuple[str, str, Any], ...], memo: _Memo) -> Any:
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
            out[name] = _datetime_json(v)
        elif kind == "str" and t is str or kind == "int" and t is int:
            out[name] = v
        elif kind == "ostr" and (v is None or t is str):
            out[name] = v
        else:
            return None
    memo[id(obj)] = (obj, out)
    return out


_SEEN_FIELDS = (("first_seen", "datetime", _NO_DEFAULT), ("last_seen", "datetime", _NO_DEFAULT),
                ("native_key", "ostr", None), ("missed_full_runs", "int", 0))
_ATTR_FIELDS = (("source", "str", _NO_DEFAULT), ("asserted_at", "datetime", _NO_DEFAULT))


def _lineage_json(value: Any, memo: _Memo) -> dict[str, Any] | None:
    from cmdb_graph.model import AttributeSource, Lineage, SourceSeen

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


def fast_row(model: BaseModel, exclude: set[str], memo: _Memo | None = None
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
            out[name] = _datetime_json(v)
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


def edge_attrs(rel_type: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The edge attributes of the graph shape from a relationship row."""
    return {
        "rel_type": rel_type,
        "optional": bool(row.get("optional", False)),
        "inferred": bool(row.get("inferred", False)),
        "evidence": row.get("evidence"),
        "properties": dict(row.get("properties", {})),
    }


# -- Neo4j properties ------------------------------------------------------------------------
def _temporal_to_json(value: Any, is_datetime: bool) -> Any:
    """A date/datetime (Neo4j, Python or ISO text) as the ISO string of pydantic's JSON mode."""
    if hasattr(value, "to_native"):
        value = value.to_native()
    elif isinstance(value, str):
        if not is_datetime:
            return value
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return _DT_ADAPTER.dump_python(value, mode="json")
    if isinstance(value, date):
        return value.isoformat()
    return value


_DT_ADAPTER: TypeAdapter[datetime] = TypeAdapter(datetime)

#: Property name prefix of the Neo4j-only index helper properties (never model fields).
SHADOW_PREFIX = "ix_"


def shadow_props(label: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Index helper properties of a CI (Neo4j only): lower-cased names and list joins.

    ``ix_fqdn``/``ix_hostname`` hold the lower-cased value (case-insensitive lookups through a
    range index); ``ix_native_keys``/``ix_mac_addresses`` hold the list joined with ``\\x1f``
    separators at both ends (membership through a text index and ``CONTAINS``);
    ``ix_sources`` lists the data sources of the lineage (``CIFilter.source``).
    """
    if label != CI_LABEL:
        return {}
    out: dict[str, Any] = {}
    for name in CASELESS_IDENTIFIERS:
        value = row.get(name)
        if value is not None:
            out[SHADOW_PREFIX + name] = str(value).lower()
    for name in LIST_IDENTIFIERS:
        values = row.get(name)
        if values:
            out[SHADOW_PREFIX + name] = list_needle_join(values)
    sources = sorted((row.get("lineage") or {}).get("sources", {}))
    if sources:
        out[SHADOW_PREFIX + "sources"] = sources
    return out


LIST_SEP = "\x1f"


def list_needle_join(values: Iterable[str]) -> str:
    """``values`` joined so that ``CONTAINS list_needle(v)`` tests membership of ``v``."""
    return LIST_SEP + LIST_SEP.join(values) + LIST_SEP


def list_needle(value: str) -> str:
    """The ``CONTAINS`` needle of one list member (see :func:`list_needle_join`)."""
    return LIST_SEP + value + LIST_SEP


#: Key of the compact form of lineage attributes in the stored JSON (see ``encode_lineage``).
LINEAGE_STAMPS = "stamps"
_STAMP_KEYS = frozenset({"source", "asserted_at"})


def encode_lineage(lineage: Mapping[str, Any]) -> str:
    """A lineage row as compact JSON: attributes grouped by their ``(source, asserted_at)``.

    ``{"attributes": {"name": {"source": "s", "asserted_at": "t"}, "fqdn": {...same}}}`` is
    stored as ``{"stamps": [["s", "t", ["fqdn", "name"]]]}``: an import stamps every attribute
    of a node with the same source and time, so this is several times shorter (less to write,
    log and read). :func:`decode_lineage` restores the row; it also reads the plain form.
    """
    attrs = lineage.get("attributes")
    out = {k: v for k, v in lineage.items() if k != "attributes"}
    if attrs:
        groups: dict[tuple[str, str], list[str]] = {}
        for name, entry in attrs.items():
            if (not isinstance(entry, dict) or entry.keys() != _STAMP_KEYS
                    or not isinstance(entry["source"], str)
                    or not isinstance(entry["asserted_at"], str)):
                return json.dumps(lineage, separators=(",", ":"), sort_keys=True)
            groups.setdefault((entry["source"], entry["asserted_at"]), []).append(name)
        out[LINEAGE_STAMPS] = [[src, at, sorted(names)]
                               for (src, at), names in sorted(groups.items())]
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def decode_lineage(value: Mapping[str, Any]) -> dict[str, Any]:
    """The lineage row of stored lineage JSON (compact or plain form)."""
    stamps = value.get(LINEAGE_STAMPS)
    if stamps is None:
        return dict(value)
    out = {k: v for k, v in value.items() if k != LINEAGE_STAMPS}
    attrs: dict[str, Any] = {}
    for src, at, names in stamps:
        entry = {"source": src, "asserted_at": at}
        for name in names:
            attrs[name] = entry
    out["attributes"] = dict(sorted(attrs.items()))
    return out


def to_props(model: type[BaseModel], row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as Neo4j properties: dicts as JSON strings (dates and datetimes stay ISO text).

    Defaults left out of the lean row are filled in (filters need them in Neo4j). Neo4j
    properties cannot hold maps or nulls: ``None`` values are left out, and so are lists and
    dicts that hold their (empty) default; :func:`from_props` restores both.
    """
    kinds = field_kinds(model)
    base = _PROP_DEFAULTS.get(model)
    if base is None:
        base = _PROP_DEFAULTS[model] = {
            k: v for k, v in kinds.defaults.items()
            if v is not None and not isinstance(v, list | dict)
        }
    out = dict(base)
    dicts = kinds.dicts
    for name, value in row.items():
        if value is None or (isinstance(value, list | dict) and not value):
            out.pop(name, None)
        elif name in dicts:
            if name == "lineage":
                out[name] = encode_lineage(value)
            else:
                out[name] = json.dumps(value, separators=(",", ":"), sort_keys=True)
        else:
            out[name] = value
    return out


_PROP_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}


def split_temporals(model: type[BaseModel], props: dict[str, Any]) -> dict[str, str]:
    """Take the date and datetime fields out of ``props``: ``{field: ISO text}``.

    The Neo4j store sends them as text and converts them in Cypher (``datetime(...)``,
    ``date(...)``): much cheaper than the driver's conversion of Python datetimes.
    """
    kinds = field_kinds(model)
    return {
        name: props.pop(name)
        for name in (*kinds.datetimes, *kinds.dates)
        if name in props
    }


def from_props(model: type[BaseModel], props: Mapping[str, Any], skip: Iterable[str]) -> dict[
    str, Any
]:
    """Neo4j properties back to a row (the inverse of :func:`to_props`).

    Parameters
    ----------
    model : type
        The model whose fields the properties hold.
    props : mapping
        The node or relationship properties.
    skip : iterable of str
        Key fields to leave out of the row.
    """
    kinds = field_kinds(model)
    skipped = set(skip)
    out: dict[str, Any] = {}
    for name in kinds.fields:
        if name in skipped:
            continue
        value = props.get(name)
        if value is None:
            default = kinds.defaults.get(name, None)
            if name in kinds.defaults and default is not None and not isinstance(
                default, list | dict
            ):
                out[name] = None  # stored None of a field whose default is something else
            continue
        if name in kinds.dicts:
            out[name] = json.loads(value)
            if name == "lineage":
                out[name] = decode_lineage(out[name])
        elif name in kinds.datetimes or name in kinds.dates:
            out[name] = _temporal_to_json(value, name in kinds.datetimes)
        elif name in kinds.lists:
            out[name] = list(value)
        else:
            out[name] = value
    # Back to the lean form: leave out what equals the default.
    return {k: v for k, v in out.items() if k not in kinds.defaults or kinds.defaults[k] != v}


# -- batch validation ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PreparedNode:
    """One validated node of a batch: label, key and lean row (key field left out)."""

    label: str
    key: str
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PreparedRel:
    """One validated relationship of a batch: key, end labels and lean row."""

    rel_type: str
    source: str
    target: str
    source_label: str
    target_label: str
    row: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        """``(rel_type, source, target)``."""
        return (self.rel_type, self.source, self.target)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A validated batch; nodes de-duplicated by (label, key), the last write winning."""

    nodes: list[PreparedNode]
    relationships: list[PreparedRel]

    def nodes_by_label(self) -> dict[str, list[PreparedNode]]:
        """The nodes grouped by label."""
        out: dict[str, list[PreparedNode]] = {}
        for node in self.nodes:
            out.setdefault(node.label, []).append(node)
        return out

    def rels_by_type(self) -> dict[tuple[str, str, str], list[PreparedRel]]:
        """The relationships grouped by ``(rel_type, source_label, target_label)``."""
        out: dict[tuple[str, str, str], list[PreparedRel]] = {}
        for rel in self.relationships:
            out.setdefault((rel.rel_type, rel.source_label, rel.target_label), []).append(rel)
        return out


def reference_rel_types() -> frozenset[str]:
    """Relationship types derived from reference fields (see ``RefSpec``).

    They cannot be written as relationships: the reference field is the single source of
    truth (set ``support_group`` on the CI rather than writing a ``SUPPORTS`` relationship).
    """
    return frozenset(ref.rel_type for spec in NODE_SPECS.values() for ref in spec.refs)


_REF_TYPES = reference_rel_types()
_NODE_EXCLUDE: dict[str, set[str]] = {label: {spec.key} for label, spec in NODE_SPECS.items()}
_REL_EXCLUDE = set(REL_KEY_FIELDS)

ExistingKeys = Callable[[str, set[str]], set[str]]


def prepare_batch(
    batch: WriteBatch, registry: Registry, existing: ExistingKeys | None
) -> PreparedBatch:
    """Validate a whole batch against the registry and the store, and flatten it to rows.

    Parameters
    ----------
    batch : WriteBatch
        The nodes and relationships to write.
    registry : Registry
        CI classes and relationship types.
    existing : callable or None
        ``existing(label, keys)`` returns the subset of ``keys`` for which a node of ``label``
        exists in the store (stub nodes of the Neo4j store do not count). ``None``: the
        caller runs :func:`check_ends` itself (inside its write transaction).

    Returns
    -------
    PreparedBatch

    Raises
    ------
    UnknownCIClassError
        A CI names a class the registry does not know.
    UnknownRelationshipTypeError
        A relationship names a type the registry does not know.
    InvalidRecordError
        A node is no stored model, a field holds a bad value, a relationship is derived from a
        reference field, joins labels its type does not allow, or an end does not exist (the
        message names the missing key).
    """
    nodes: dict[tuple[str, str], PreparedNode] = {}
    memo: _Memo = {}
    for node in batch.nodes:
        label = getattr(type(node), "LABEL", "")
        spec = NODE_SPECS.get(label)
        if spec is None or not isinstance(node, spec.model):
            raise InvalidRecordError(
                f"{type(node).__name__} is not a node model the store knows",
                record=repr(node)[:80],
            )
        key = getattr(node, spec.key, None)
        record = f"{label} {key!r}"
        if not isinstance(key, str) or not key:
            raise InvalidRecordError("the key must be a non-empty string", record=record,
                                     field=spec.key)
        row = _dump(node, _NODE_EXCLUDE[label], record, memo)
        if label == CI_LABEL:
            try:
                registry.get_class(row["ci_class"])
            except InvalidRecordError as exc:
                exc.record = record
                exc.args = (exc._render(),)
                raise
        nodes[(label, key)] = PreparedNode(label, key, row)

    rels: dict[tuple[str, str, str, str, str], PreparedRel] = {}
    for rel in batch.relationships:
        if not isinstance(rel, Relationship):
            raise InvalidRecordError(
                f"{type(rel).__name__} is not a Relationship", record=repr(rel)[:80]
            )
        record = f"{rel.rel_type} {rel.source!r} -> {rel.target!r}"
        try:
            rtype = registry.get_relationship_type(rel.rel_type)
        except UnknownRelationshipTypeError as exc:
            exc.record = record
            exc.args = (exc._render(),)
            raise
        if rel.rel_type in _REF_TYPES:
            raise InvalidRecordError(
                f"{rel.rel_type} is derived from a reference field; set the field instead",
                record=record,
                field="rel_type",
            )
        for end, label in (("source_label", rel.source_label), ("target_label", rel.target_label)):
            if label not in NODE_SPECS:
                raise InvalidRecordError(f"unknown node label {label!r}", record=record,
                                         field=end)
        if rtype.ci_to_ci and (rel.source_label != CI_LABEL or rel.target_label != CI_LABEL):
            raise InvalidRecordError(
                f"{rel.rel_type} joins two configuration items", record=record, field="source_label"
            )
        row = _dump(rel, _REL_EXCLUDE, record, memo)
        rels[(rel.rel_type, rel.source_label, rel.source, rel.target_label, rel.target)] = (
            PreparedRel(rel.rel_type, rel.source, rel.target, rel.source_label, rel.target_label,
                        row)
        )

    prepared = PreparedBatch(list(nodes.values()), list(rels.values()))
    if existing is not None:
        check_ends(prepared, existing)
    return prepared


def check_ends(prepared: PreparedBatch, existing: ExistingKeys) -> None:
    """Check that every relationship end is a node of the batch or of the store.

    Raises
    ------
    InvalidRecordError
        An end does not exist; the message names the relationship and the missing key.
    """
    in_batch = {(n.label, n.key) for n in prepared.nodes}
    wanted: dict[str, set[str]] = {}
    for rel in prepared.relationships:
        for label, key in ((rel.source_label, rel.source), (rel.target_label, rel.target)):
            if (label, key) not in in_batch:
                wanted.setdefault(label, set()).add(key)
    found = {label: existing(label, keys) for label, keys in wanted.items()}
    for rel in prepared.relationships:
        for end, label, key in (
            ("source", rel.source_label, rel.source),
            ("target", rel.target_label, rel.target),
        ):
            if (label, key) not in in_batch and key not in found.get(label, set()):
                what = "CI" if label == CI_LABEL else label
                raise InvalidRecordError(
                    f"{end} {what} {key!r} does not exist",
                    record=f"{rel.rel_type} {rel.source!r} -> {rel.target!r}",
                    field=end,
                )


# -- reads -----------------------------------------------------------------------------------
def check_limit(limit: int, maximum: int = MAX_PAGE_SIZE) -> None:
    """Raise :class:`TraversalLimitError` unless ``1 <= limit <= maximum``."""
    if limit > maximum:
        raise TraversalLimitError(f"page size {limit} is over the maximum of {maximum}")
    if limit < 1:
        raise TraversalLimitError(f"page size must be at least 1, got {limit}")


def check_depth(depth: int | None, maximum: int | None) -> None:
    """Raise :class:`TraversalLimitError` when ``depth`` is negative or over ``maximum``."""
    if depth is None:
        return
    if depth < 0:
        raise TraversalLimitError(f"depth must be at least 0, got {depth}")
    if maximum is not None and depth > maximum:
        raise TraversalLimitError(f"depth {depth} is over the maximum of {maximum}")


def encode_cursor(key: str) -> str:
    """The opaque cursor after ``key`` (URL-safe base64 of the key)."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor stands for (``None`` stays ``None``).

    Raises
    ------
    InvalidRecordError
        The cursor was not made by :func:`encode_cursor`.
    """
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidRecordError("malformed page cursor", field="after") from exc


def identifier_value(name: str, value: Scalar) -> str | None:
    """The normalised lookup value of an identifier (lower-cased for fqdn/hostname).

    Raises
    ------
    InvalidRecordError
        ``name`` is not one of ``IDENTIFIER_FIELDS``.
    """
    from cmdb_graph.store.base import IDENTIFIER_FIELDS

    if name not in IDENTIFIER_FIELDS:
        raise InvalidRecordError(
            f"not an identifier field (expected one of {', '.join(IDENTIFIER_FIELDS)})",
            field=name,
        )
    if value is None:
        return None
    text = str(value)
    return text.lower() if name in CASELESS_IDENTIFIERS else text


def class_filter(flt: CIFilter | None, registry: Registry) -> set[str] | None:
    """The CI classes a filter's ``ci_class`` matches (with subclasses), or ``None``.

    Raises
    ------
    UnknownCIClassError
        The filter names an unknown class.
    """
    if flt is None or flt.ci_class is None:
        return None
    return registry.subclasses(registry.get_class(flt.ci_class).name)


def check_where(label: str, where: Mapping[str, Scalar] | None) -> dict[str, Scalar]:
    """Validate the equality filters of ``list_nodes``: scalar fields of the label's model.

    Raises
    ------
    InvalidRecordError
        Unknown label, or a field that is not a scalar field of the model.
    """
    spec = NODE_SPECS.get(label)
    if spec is None:
        raise InvalidRecordError(f"unknown node label {label!r}", field="label")
    kinds = field_kinds(spec.model)
    out: dict[str, Scalar] = {}
    for name, value in (where or {}).items():
        if name not in kinds.scalars:
            raise InvalidRecordError(
                f"{label} has no scalar field {name!r} to filter on", field=name
            )
        out[name] = str(value) if isinstance(value, Enum) else value
    return out


def traversal_types(
    registry: Registry, direction: Direction, rel_types: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """Which CI-to-CI types a traversal follows forward and which in reverse.

    Upstream follows each type against its impact direction's start: ``END_TO_START`` (and
    ``NONE``) types in reverse (``end -> start``), ``START_TO_END`` types forward; downstream
    the other way round; ``both`` follows every type both ways.

    Returns
    -------
    forward, reverse : list of str
        Sorted relationship type names.

    Raises
    ------
    UnknownRelationshipTypeError
        A type is unknown.
    InvalidRecordError
        A type does not join two configuration items.
    """
    names = registry.ci_relationship_types() if rel_types is None else list(rel_types)
    forward: set[str] = set()
    reverse: set[str] = set()
    direction = Direction(direction)
    for name in names:
        rtype = registry.get_relationship_type(name)
        if not rtype.ci_to_ci:
            raise InvalidRecordError(
                f"{name} does not join two configuration items", field="rel_types"
            )
        along = rtype.impact is ImpactDirection.START_TO_END
        if direction is Direction.BOTH:
            forward.add(name)
            reverse.add(name)
        elif (direction is Direction.UPSTREAM) == along:
            forward.add(name)
        else:
            reverse.add(name)
    return sorted(forward), sorted(reverse)
