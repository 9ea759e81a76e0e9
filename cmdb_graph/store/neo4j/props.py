"""Neo4j properties: rows to node and relationship properties and back, and graph rows.

Neo4j properties cannot hold maps or nulls, and the store wants index helpers the model does
not have, so the Neo4j store converts each lean row (:mod:`cmdb_graph.store.rows`):

* :func:`to_props` / :func:`from_props`: dicts (lineage, ``attributes``, ``properties``) as
  JSON strings, defaults filled in for filters, ``None`` and empty values left out;
* :func:`split_temporals`: dates and datetimes travel as ISO text, turned into Neo4j temporal
  values in Cypher;
* :func:`shadow_props`: the ``ix_*`` index helper properties of a CI (lower-cased names,
  joined lists, the sources of the lineage);
* :class:`GraphRows` and :func:`graph_from_rows`: the compact rows of
  :func:`cmdb_graph.store.neo4j.cypher_reads.ci_graph_page` as the graph shape of
  :mod:`cmdb_graph.store.base`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import networkx as nx
from pydantic import BaseModel

from cmdb_graph.model import ConfigurationItem, to_utc
from cmdb_graph.store.query import CASELESS_IDENTIFIERS, LIST_IDENTIFIERS
from cmdb_graph.store.rows import (
    CI_LABEL,
    datetime_json,
    decode_lineage,
    edge_attrs,
    encode_lineage,
    field_kinds,
)

__all__ = [
    "SHADOW_PREFIX",
    "GRAPH_FIELDS",
    "GRAPH_TEMPORALS",
    "temporal_json",
    "to_props",
    "from_props",
    "split_temporals",
    "shadow_props",
    "list_needle",
    "GraphRows",
    "graph_from_rows",
]

_CI_KINDS = field_kinds(ConfigurationItem)
#: The CI properties of the graph shape, in the order of the compact graph rows.
GRAPH_FIELDS: tuple[str, ...] = tuple(f for f in _CI_KINDS.fields if f != "lineage")
assert GRAPH_FIELDS[0] == "ci_id"
#: The temporal ones among them (read as ISO text).
GRAPH_TEMPORALS: tuple[str, ...] = tuple(sorted(_CI_KINDS.datetimes | _CI_KINDS.dates))


def temporal_json(value: Any, is_datetime: bool) -> Any:
    """A date/datetime (Neo4j, Python or ISO text) as the ISO string of pydantic's JSON mode.

    Datetimes are normalised to UTC (:func:`cmdb_graph.model.to_utc`); any other value is
    returned as it is.
    """
    if hasattr(value, "to_native"):
        value = value.to_native()
    elif isinstance(value, str):
        if not is_datetime:
            return value
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return datetime_json(to_utc(value))
    if isinstance(value, date):
        return value.isoformat()
    return value


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


#: Separator of the joined list helper properties (``ix_native_keys``, ``ix_mac_addresses``).
LIST_SEP = "\x1f"


def list_needle_join(values: Iterable[str]) -> str:
    """``values`` joined so that ``CONTAINS list_needle(v)`` tests membership of ``v``."""
    return LIST_SEP + LIST_SEP.join(values) + LIST_SEP


def list_needle(value: str) -> str:
    """The ``CONTAINS`` needle of one list member (see :func:`list_needle_join`)."""
    return LIST_SEP + value + LIST_SEP


_PROP_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}


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
            out[name] = temporal_json(value, name in kinds.datetimes)
        elif name in kinds.lists:
            out[name] = list(value)
        else:
            out[name] = value
    # Back to the lean form: leave out what equals the default.
    return {k: v for k, v in out.items() if k not in kinds.defaults or kinds.defaults[k] != v}


def graph_from_rows(rows: list[list[Any]], keep: set[str] | None) -> nx.MultiDiGraph:
    """The graph of compact rows (see :func:`.cypher_reads.ci_graph_page`), nodes by ``ci_id``.

    ``keep``: the ids an edge's target must be among (``None``: any target).
    """
    g = nx.MultiDiGraph()
    convert = GraphRows()
    rows.sort(key=lambda row: str(row[0]))
    g.add_nodes_from((row[0], convert.node(row)) for row in rows)
    g.add_edges_from(
        (row[0], target, rel_type,
         edge_attrs(rel_type, {"optional": optional, "inferred": inferred, "basis": basis,
                               "confidence": confidence, "evidence": evidence,
                               "properties": json.loads(props) if props is not None else {}}))
        for row in rows
        for rel_type, target, optional, inferred, basis, confidence, evidence, props in row[-1]
        if keep is None or target in keep
    )
    return g


class GraphRows:
    """Neo4j values of one CI (a row of :func:`.cypher_reads.ci_graph_page`) as node attributes.

    The same result as ``expand_ci(key, from_props(ConfigurationItem, props, skip=("ci_id",)))``
    (the shape of :mod:`cmdb_graph.store.base`), without the per-field generic work. A
    property Neo4j does not hold is ``None``, or a fresh empty list/dict for list and dict
    fields (``to_props`` writes every non-``None`` scalar, defaults included, and leaves out
    only ``None`` and empty lists/dicts); JSON fields are decoded; dates and datetimes, read
    as ISO text, become pydantic's JSON form (memoised: estates share few distinct instants).
    The contract suite checks the result equals the embedded store's graph.
    """

    def __init__(self) -> None:
        kinds = _CI_KINDS
        self.fields = GRAPH_FIELDS
        self.lists = [f for f in self.fields if f in kinds.lists]
        self.dicts = [f for f in self.fields if f in kinds.dicts]
        self.temporals = [(f, f in kinds.datetimes) for f in self.fields
                          if f in kinds.datetimes or f in kinds.dates]
        self._instants: dict[tuple[str, bool], str] = {}

    def node(self, row: Sequence[Any]) -> dict[str, Any]:
        """The node attributes of one row (the values of ``GRAPH_FIELDS``, then anything)."""
        out = dict(zip(self.fields, row, strict=False))
        for name in self.lists:
            if out[name] is None:
                out[name] = []
        for name in self.dicts:
            value = out[name]
            out[name] = {} if value is None else json.loads(value)
        for name, is_datetime in self.temporals:
            value = out[name]
            if value is not None:
                found = self._instants.get((value, is_datetime))
                if found is None:
                    found = temporal_json(value, is_datetime)
                    self._instants[(value, is_datetime)] = found
                out[name] = found
        return out
