"""Every Cypher statement of the Neo4j store.

Values always travel as parameters. Labels, relationship types and property names cannot be
parameters; the builders here take them only from our own registries (``NODE_SPECS``, the CI
class registry, the relationship-type registry) or from model field names, and check each one
against a strict pattern before it goes into the text, so no user input can reach a query.

Stub nodes
----------
A reference field (``CI.support_group``, ``Asset.ci_id``, ...) is materialised as a relationship
to the target node, which is MERGEd by key when missing and then carries the extra label
``:Stub``. A stub is invisible to every read (``NOT n:Stub``) and to the counts; upserting the
real node later finds it, sets its properties and removes ``:Stub``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from cmdb_graph.model import NODE_SPECS, RefSpec, Relationship
from cmdb_graph.store._common import SHADOW_PREFIX, field_kinds

__all__ = [
    "STUB",
    "CI_SHADOW_RANGE_INDEXES",
    "schema_statements",
    "upsert_nodes",
    "upsert_cis",
    "sync_reference",
    "add_reference",
    "present_keys",
    "existing_keys",
    "merge_relationships",
    "delete_ci_relationships",
    "delete_relationships_any",
    "get_nodes",
    "assets_tracking",
    "find_cis",
    "find_cis_bulk",
    "list_cis",
    "count_cis",
    "list_nodes",
    "count_nodes",
    "relationships_of",
    "all_relationships",
    "reach",
    "counts",
    "ci_graph_page",
    "META",
    "BUMP_GENERATION",
    "GENERATION",
    "CACHE_KEY",
    "CLEAR",
    "PING",
]

_LABEL = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_PROP = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

#: The label of stub nodes (targets of reference fields that were never written).
STUB = "Stub"

PING = "RETURN 1 AS ok"

#: The label of the one node that keeps the store's durable write counter (see
#: :data:`BUMP_GENERATION`); never a CI class, never read as data.
META = "CmdbMeta"

#: Delete everything but the write counter, in batches (auto-commit transaction:
#: ``CALL ... IN TRANSACTIONS``). The counter node stays so that the generation never goes back.
CLEAR = (
    f"MATCH (n) WHERE NOT n:{META} "
    "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
)

#: Increment the write counter, creating it (generation 1, a fresh random ``epoch``) when
#: missing. Run as the LAST statement of every write transaction of the store: the counter
#: node's write lock is then held only while the transaction commits. Parameter: ``$key``.
BUMP_GENERATION = (
    f"MERGE (m:{META} {{key: $key}}) "
    "ON CREATE SET m.generation = 1, m.epoch = randomUUID() "
    "ON MATCH SET m.generation = m.generation + 1"
)

#: The write counter: one row ``generation`` (0 when no write ever ran). Parameter: ``$key``.
GENERATION = (
    f"OPTIONAL MATCH (m:{META} {{key: $key}}) RETURN coalesce(m.generation, 0) AS generation"
)

#: What a cache of the graph is keyed on, in one cheap read: the counter's ``epoch`` and
#: ``generation`` and the numbers of all nodes and all relationships, which Neo4j serves from
#: its count store in O(1) (they catch writes made outside cmdb-graph that add or remove nodes
#: or relationships). Parameter: ``$key``.
CACHE_KEY = (
    f"OPTIONAL MATCH (m:{META} {{key: $key}}) "
    "WITH m.epoch AS epoch, coalesce(m.generation, 0) AS generation "
    "CALL () { MATCH (n) RETURN count(n) AS nodes } "
    "CALL () { MATCH ()-[r]->() RETURN count(r) AS relationships } "
    "RETURN epoch, generation, nodes, relationships"
)


def _label(name: str) -> str:
    if not _LABEL.match(name):
        raise ValueError(f"not a valid label: {name!r}")
    return name


def _type(name: str) -> str:
    if not _TYPE.match(name):
        raise ValueError(f"not a valid relationship type: {name!r}")
    return name


def _prop(name: str) -> str:
    if not _PROP.match(name):
        raise ValueError(f"not a valid property name: {name!r}")
    return name


def _types(names: Iterable[str]) -> str:
    return "|".join(_type(n) for n in names)


def _key(label: str) -> str:
    return _prop(NODE_SPECS[label].key)


def _temporal_fields(model: type[BaseModel]) -> list[tuple[str, str]]:
    kinds = field_kinds(model)
    return sorted(
        [(f, "datetime") for f in kinds.datetimes] + [(f, "date") for f in kinds.dates]
    )


def set_temporals(var: str, model: type[BaseModel]) -> str:
    """``SET`` clauses turning the ISO text in ``row.tm`` into Neo4j temporal properties."""
    sets = [f"{var}.{_prop(f)} = {fn}(row.tm.{_prop(f)})" for f, fn in _temporal_fields(model)]
    return f" SET {', '.join(sets)}" if sets else ""


def props_of(var: str, model: type[BaseModel]) -> str:
    """The properties of ``var`` with its temporal fields as ISO text (cheap to read)."""
    fields = _temporal_fields(model)
    if not fields:
        return f"properties({var})"
    conv = ", ".join(f"{_prop(f)}: toString({var}.{_prop(f)})" for f, _ in fields)
    return f"{var} {{.*, {conv}}}"


def _node_props(var: str, label: str) -> str:
    return props_of(var, NODE_SPECS[label].model)


# -- schema --------------------------------------------------------------------------------
#: CI properties with a range index (identifier lookups, filters).
CI_RANGE_INDEXES: tuple[str, ...] = (
    "serial_number",
    "asset_tag",
    "cloud_id",
    "fqdn",
    "hostname",
    "name",
    "ci_class",
    "environment",
    "support_group",
)
#: Index helper properties (see ``_common.shadow_props``): lower-cased fqdn/hostname.
CI_SHADOW_RANGE_INDEXES: tuple[str, ...] = (SHADOW_PREFIX + "fqdn", SHADOW_PREFIX + "hostname")
#: List identifiers joined into one string with a text index (membership via CONTAINS).
CI_SHADOW_TEXT_INDEXES: tuple[str, ...] = (
    SHADOW_PREFIX + "native_keys",
    SHADOW_PREFIX + "mac_addresses",
)
OTHER_RANGE_INDEXES: dict[str, tuple[str, ...]] = {
    "Asset": ("serial_number", "asset_tag", "ci_id"),
}


def schema_statements() -> list[str]:
    """Constraints and indexes, each created idempotently (``IF NOT EXISTS``).

    One uniqueness constraint per label on its key (``CI.ci_id``, ``Asset.asset_id``, ...),
    range indexes on the CI identifiers and filters, and text indexes for list membership.
    """
    out = []
    for label, spec in sorted(NODE_SPECS.items()):
        out.append(
            f"CREATE CONSTRAINT cmdb_{label.lower()}_key IF NOT EXISTS "
            f"FOR (n:{_label(label)}) REQUIRE n.{_prop(spec.key)} IS UNIQUE"
        )
    for prop in (*CI_RANGE_INDEXES, *CI_SHADOW_RANGE_INDEXES):
        out.append(
            f"CREATE RANGE INDEX cmdb_ci_{prop} IF NOT EXISTS FOR (n:CI) ON (n.{_prop(prop)})"
        )
    for prop in CI_SHADOW_TEXT_INDEXES:
        out.append(
            f"CREATE TEXT INDEX cmdb_ci_{prop} IF NOT EXISTS FOR (n:CI) ON (n.{_prop(prop)})"
        )
    for label, props in OTHER_RANGE_INDEXES.items():
        for prop in props:
            out.append(
                f"CREATE RANGE INDEX cmdb_{label.lower()}_{prop} IF NOT EXISTS "
                f"FOR (n:{_label(label)}) ON (n.{_prop(prop)})"
            )
    out.append(
        f"CREATE CONSTRAINT cmdb_meta_key IF NOT EXISTS FOR (n:{_label(META)}) REQUIRE n.key "
        "IS UNIQUE"
    )
    return out


# -- writes --------------------------------------------------------------------------------
def upsert_nodes(label: str) -> str:
    """MERGE nodes of a non-CI label by key and replace their properties.

    Parameters: ``$rows``, a list of ``{key, props, tm}`` (``tm``: ISO dates and datetimes).
    """
    return (
        "UNWIND $rows AS row "
        f"MERGE (n:{_label(label)} {{{_key(label)}: row.key}}) "
        f"SET n = row.props{set_temporals('n', NODE_SPECS[label].model)} REMOVE n:{STUB}"
    )


def upsert_cis(ci_class: str, all_classes: Iterable[str]) -> str:
    """MERGE CIs of one class by ``ci_id``, replace properties, set ``:CI:<class>``.

    Every other class label of the registry is removed, so a class change replaces the label.
    Parameters: ``$rows``, a list of ``{key, props, tm}``.
    """
    others = sorted(c for c in all_classes if c != ci_class)
    remove = ":".join([STUB, *(_label(c) for c in others)])
    return (
        "UNWIND $rows AS row "
        "MERGE (n:CI {ci_id: row.key}) "
        f"SET n = row.props{set_temporals('n', NODE_SPECS['CI'].model)} "
        f"SET n:{_label(ci_class)} REMOVE n:{remove}"
    )


def sync_reference(label: str, ref: RefSpec) -> str:
    """Keep the relationships of one reference field in step with the field.

    Removes relationships to targets no longer named, MERGEs a stub target by key when it is
    missing, and MERGEs the relationship. Parameters: ``$rows``, a list of ``{key, targets}``.
    """
    target = _label(ref.target_label)
    tkey = _key(ref.target_label)
    rtype = _type(ref.rel_type)
    if ref.outgoing:
        old = f"(n)-[old:{rtype}]->(t:{target})"
        new = f"(n)-[:{rtype}]->(t)"
    else:
        old = f"(n)<-[old:{rtype}]-(t:{target})"
        new = f"(n)<-[:{rtype}]-(t)"
    return (
        "UNWIND $rows AS row "
        f"MATCH (n:{_label(label)} {{{_key(label)}: row.key}}) "
        "CALL (n, row) { "
        f"MATCH {old} WHERE NOT t.{tkey} IN row.targets DELETE old "
        "} "
        "WITH n, row UNWIND row.targets AS tk "
        f"MERGE (t:{target} {{{tkey}: tk}}) ON CREATE SET t:{STUB} "
        f"MERGE {new}"
    )


def add_reference(label: str, ref: RefSpec) -> str:
    """Create the relationships of one reference field of nodes that had none before.

    For nodes the same batch creates: nothing to remove, so only the stub target MERGE and the
    relationship MERGE of :func:`sync_reference`. Parameters: ``$rows``, a list of
    ``{key, targets}`` (``targets`` non-empty).
    """
    target = _label(ref.target_label)
    tkey = _key(ref.target_label)
    rtype = _type(ref.rel_type)
    new = f"(n)-[:{rtype}]->(t)" if ref.outgoing else f"(n)<-[:{rtype}]-(t)"
    return (
        "UNWIND $rows AS row "
        f"MATCH (n:{_label(label)} {{{_key(label)}: row.key}}) "
        "UNWIND row.targets AS tk "
        f"MERGE (t:{target} {{{tkey}: tk}}) ON CREATE SET t:{STUB} "
        f"MERGE {new}"
    )


def present_keys(label: str) -> str:
    """The keys among ``$keys`` of any node of ``label``, stubs included: one list ``keys``."""
    key = _key(label)
    return (
        f"UNWIND $keys AS k MATCH (n:{_label(label)} {{{key}: k}}) "
        f"RETURN collect(n.{key}) AS keys"
    )


def existing_keys(label: str) -> str:
    """The keys among ``$keys`` of existing (non-stub) nodes of ``label``, as one list ``keys``."""
    key = _key(label)
    return (
        f"UNWIND $keys AS k MATCH (n:{_label(label)} {{{key}: k}}) "
        f"WHERE NOT n:{STUB} RETURN collect(n.{key}) AS keys"
    )


def merge_relationships(rel_type: str, source_label: str, target_label: str) -> str:
    """MERGE explicit relationships of one type between existing ends; replace properties.

    Parameters: ``$rows``, a list of ``{s, t, props, tm}``.
    """
    return (
        "UNWIND $rows AS row "
        f"MATCH (a:{_label(source_label)} {{{_key(source_label)}: row.s}}) "
        f"MATCH (b:{_label(target_label)} {{{_key(target_label)}: row.t}}) "
        f"MERGE (a)-[r:{_type(rel_type)}]->(b) SET r = row.props"
        f"{set_temporals('r', Relationship)}"
    )


def delete_ci_relationships(rel_type: str) -> str:
    """Delete CI-to-CI relationships of one type by ``$rows`` of ``{s, t}``; return the count."""
    return (
        "UNWIND $rows AS row "
        f"MATCH (:CI {{ci_id: row.s}})-[r:{_type(rel_type)}]->(:CI {{ci_id: row.t}}) "
        "DELETE r RETURN count(*) AS deleted"
    )


def _any_node(var: str, key_param: str) -> str:
    """A subquery body finding the node of any label whose key is ``key_param``."""
    branches = [
        f"MATCH ({var}:{_label(label)} {{{_prop(spec.key)}: {key_param}}}) RETURN {var}"
        for label, spec in sorted(NODE_SPECS.items())
    ]
    return " UNION ".join(branches)


def delete_relationships_any(rel_type: str) -> str:
    """Delete relationships of one type by ``$rows`` of ``{s, t}`` whatever the end labels."""
    return (
        "UNWIND $rows AS row "
        f"CALL (row) {{ {_any_node('a', 'row.s')} }} "
        f"MATCH (a)-[r:{_type(rel_type)}]->(b) WHERE {node_key('b')} = row.t "
        "DELETE r RETURN count(*) AS deleted"
    )


# -- reads ---------------------------------------------------------------------------------
def node_key(var: str) -> str:
    """An expression: the key of node ``var``, whatever its label."""
    cases = " ".join(
        f"WHEN {var}:{_label(label)} THEN {var}.{_prop(spec.key)}"
        for label, spec in sorted(NODE_SPECS.items())
    )
    return f"CASE {cases} END"


def node_label(var: str) -> str:
    """An expression: the ``NODE_SPECS`` label of node ``var``."""
    cases = " ".join(
        f"WHEN {var}:{_label(label)} THEN '{_label(label)}'" for label in sorted(NODE_SPECS)
    )
    return f"CASE {cases} END"


def get_nodes(label: str) -> str:
    """Nodes of ``label`` by ``$keys``: rows ``key, props``."""
    key = _key(label)
    return (
        f"UNWIND $keys AS k MATCH (n:{_label(label)} {{{key}: k}}) WHERE NOT n:{STUB} "
        f"RETURN n.{key} AS key, {_node_props('n', label)} AS props"
    )


def assets_tracking() -> str:
    """The assets that TRACK each CI of ``$keys``: rows ``ci_id, key, props`` by asset key.

    One ``UNWIND`` over the CI keys (the ``ci_id`` uniqueness constraint finds each CI); an
    asset pointing at a CI that was never written finds its stub, as the memory store does.
    """
    return (
        "UNWIND $keys AS k MATCH (a:Asset)-[:TRACKS]->(:CI {ci_id: k}) "
        f"WHERE NOT a:{STUB} "
        f"RETURN k AS ci_id, a.asset_id AS key, {_node_props('a', 'Asset')} AS props "
        "ORDER BY key"
    )


def find_cis(branches: Sequence[tuple[str, str]]) -> str:
    """CIs matching any identifier: ``branches`` are ``(field, mode)`` pairs.

    ``mode`` is ``eq`` (``c.<field> = $<field>``), ``lc`` (the lower-cased helper property) or
    ``contains`` (list membership through the joined helper property). Each branch uses its
    own index; the union is sorted by ``ci_id``.
    """
    parts = []
    for field, mode in branches:
        param = f"${_prop(field)}"
        if field == "ci_id":
            parts.append(f"MATCH (c:CI {{ci_id: {param}}}) RETURN c")
        elif mode == "eq":
            parts.append(f"MATCH (c:CI) WHERE c.{_prop(field)} = {param} RETURN c")
        elif mode == "lc":
            parts.append(f"MATCH (c:CI) WHERE c.{SHADOW_PREFIX}{_prop(field)} = {param} RETURN c")
        elif mode == "contains":
            parts.append(
                f"MATCH (c:CI) WHERE c.{SHADOW_PREFIX}{_prop(field)} CONTAINS {param} RETURN c"
            )
        else:
            raise ValueError(f"unknown lookup mode {mode!r}")
    return (
        f"CALL () {{ {' UNION '.join(parts)} }} "
        f"WITH c WHERE NOT c:{STUB} "
        f"RETURN c.ci_id AS key, {_node_props('c', 'CI')} AS props ORDER BY key"
    )


def find_cis_bulk(field: str, mode: str) -> str:
    """CIs whose ``field`` matches any of ``$values``: one index seek per value.

    ``mode`` as in :func:`find_cis` (``eq``, ``lc``, ``contains``; ``ci_id`` uses the key).
    Rows ``key, props`` sorted by ``ci_id``, each CI once.
    """
    if field == "ci_id":
        match = "MATCH (c:CI {ci_id: v})"
    elif mode == "eq":
        match = f"MATCH (c:CI) WHERE c.{_prop(field)} = v"
    elif mode == "lc":
        match = f"MATCH (c:CI) WHERE c.{SHADOW_PREFIX}{_prop(field)} = v"
    elif mode == "contains":
        match = f"MATCH (c:CI) WHERE c.{SHADOW_PREFIX}{_prop(field)} CONTAINS v"
    else:
        raise ValueError(f"unknown lookup mode {mode!r}")
    return (
        f"UNWIND $values AS v {match} "
        f"WITH DISTINCT c WHERE NOT c:{STUB} "
        f"RETURN c.ci_id AS key, {_node_props('c', 'CI')} AS props ORDER BY key"
    )


_CI_FILTERS: dict[str, str] = {
    "classes": "c.ci_class IN $classes",
    "operational_status": "c.operational_status = $operational_status",
    "environment": "c.environment = $environment",
    "support_group": "c.support_group = $support_group",
    "name_contains": "toLower(c.name) CONTAINS $name_contains",
    "source": f"$source IN c.{SHADOW_PREFIX}sources",
}


def _ci_where(filters: Iterable[str]) -> str:
    conds = [f"NOT c:{STUB}", *(_CI_FILTERS[f] for f in sorted(filters))]
    return " AND ".join(conds)


def list_cis(filters: Iterable[str], after: bool) -> str:
    """A page of CIs in ``ci_id`` order; ``filters`` name the set filters of ``CIFilter``.

    Parameters: one per filter, ``$after`` when ``after``, ``$limit``.
    """
    start = "c.ci_id > $after" if after else "c.ci_id IS NOT NULL"
    return (
        f"MATCH (c:CI) WHERE {start} AND {_ci_where(filters)} "
        f"RETURN c.ci_id AS key, {_node_props('c', 'CI')} AS props "
        "ORDER BY c.ci_id LIMIT $limit"
    )


def _count_all(label: str) -> str:
    """How many non-stub nodes of ``label``: from the count store, without a scan."""
    return (
        f"CALL () {{ MATCH (n:{_label(label)}) RETURN count(n) AS everything }} "
        f"CALL () {{ MATCH (n:{STUB}:{_label(label)}) RETURN count(n) AS stubs }} "
        "RETURN everything - stubs AS total"
    )


def count_cis(filters: Iterable[str]) -> str:
    """How many CIs match the filters."""
    wanted = list(filters)
    if not wanted:
        return _count_all("CI")
    return f"MATCH (c:CI) WHERE {_ci_where(wanted)} RETURN count(c) AS total"


def _node_where(fields: Sequence[tuple[str, bool]]) -> str:
    conds = [f"NOT n:{STUB}"]
    for i, (field, is_null) in enumerate(fields):
        conds.append(f"n.{_prop(field)} IS NULL" if is_null else f"n.{_prop(field)} = $w{i}")
    return " AND ".join(conds)


def list_nodes(label: str, fields: Sequence[tuple[str, bool]], after: bool) -> str:
    """A page of nodes of ``label`` in key order with equality filters.

    ``fields`` are ``(field, is_null)`` pairs; the value of the i-th is ``$w<i>``.
    """
    key = _key(label)
    start = f"n.{key} > $after" if after else f"n.{key} IS NOT NULL"
    return (
        f"MATCH (n:{_label(label)}) WHERE {start} AND {_node_where(fields)} "
        f"RETURN n.{key} AS key, {_node_props('n', label)} AS props "
        f"ORDER BY n.{key} LIMIT $limit"
    )


def count_nodes(label: str, fields: Sequence[tuple[str, bool]]) -> str:
    """How many nodes of ``label`` match the filters."""
    if not fields:
        return _count_all(label)
    return f"MATCH (n:{_label(label)}) WHERE {_node_where(fields)} RETURN count(n) AS total"


_REL_RETURN = (
    "RETURN type(r) AS rel_type, {sk} AS source, {tk} AS target, "
    "{sl} AS source_label, {tl} AS target_label, {props} AS props"
)


def _rel_return() -> str:
    return _REL_RETURN.format(
        sk=node_key("startNode(r)"),
        tk=node_key("endNode(r)"),
        sl=node_label("startNode(r)"),
        tl=node_label("endNode(r)"),
        props=props_of("r", Relationship),
    )


def relationships_of(label: str, rel_types: Sequence[str]) -> str:
    """Relationships of ``rel_types`` touching the node of ``label`` with key ``$key``."""
    return (
        f"MATCH (n:{_label(label)} {{{_key(label)}: $key}}) WHERE NOT n:{STUB} "
        f"MATCH (n)-[r:{_types(rel_types)}]-() WITH DISTINCT r {_rel_return()}"
    )


def all_relationships(rel_types: Sequence[str]) -> str:
    """Every relationship of ``rel_types``."""
    return f"MATCH ()-[r:{_types(rel_types)}]->() {_rel_return()}"


def _graph_row(var: str, fields: Sequence[str], temporals: Iterable[str],
               types: Sequence[str]) -> str:
    """The compact graph row of CI ``var``: ``[v_1, ..., v_n, edges]`` (see ``ci_graph_page``)."""
    temporal = set(temporals)
    values = ", ".join(_graph_value(var, f, f in temporal) for f in fields)
    if types:
        edges = (
            f"[({var})-[r:{_types(types)}]->(t:CI) WHERE NOT t:{STUB} | "
            "[type(r), t.ci_id, r.optional, r.inferred, r.evidence, r.properties]]"
        )
    else:
        edges = "[]"
    return f"[{values}, {edges}]"


def reach(
    types: Sequence[str], depth: int | None, fields: Sequence[str], temporals: Iterable[str]
) -> str:
    """The CIs reachable from ``$ids`` within ``depth`` hops, with their out-edges, compact.

    One variable-length (quantified) pattern over ``types``; each hop follows a relationship
    forward when its type is in ``$fwd`` and in reverse when it is in ``$rev`` (both, for
    ``both``). Neo4j plans it as a pruning breadth-first expand, so cycles and diamonds cost
    nothing extra. Returns ONE row ``rows``: per reached CI the list ``[v_1, ..., v_n,
    edges]`` of :func:`ci_graph_page` (properties ``fields`` in order, then the
    out-relationships of ``types`` to non-stub CIs; the caller keeps those whose target was
    reached).
    """
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"bad depth {depth!r}")
    rt = _types(types)
    if depth == 0:
        walk = f"MATCH (x:CI) WHERE x.ci_id IN $ids AND NOT x:{STUB} "
    else:
        bound = "{0,}" if depth is None else f"{{0,{int(depth)}}}"
        walk = (
            f"MATCH (s:CI) WHERE s.ci_id IN $ids AND NOT s:{STUB} "
            f"MATCH (s) ((a:CI)-[r:{rt}]-(b:CI) WHERE "
            "(type(r) IN $fwd AND startNode(r) = a) OR (type(r) IN $rev AND endNode(r) = a)"
            f"){bound} (x:CI) "
        )
    row = _graph_row("x", fields, temporals, types)
    return walk + f"WITH DISTINCT x RETURN collect({row}) AS rows"


def _graph_value(var: str, name: str, temporal: bool) -> str:
    return f"toString({var}.{_prop(name)})" if temporal else f"{var}.{_prop(name)}"


def ci_graph_page(
    fields: Sequence[str], temporals: Iterable[str], types: Sequence[str], after: bool
) -> str:
    """One page of the dependency graph, compact: CIs in ``ci_id`` order with their out-edges.

    Returns ONE row ``rows``: a list with one list per CI, ``[v_1, ..., v_n, edges]`` where
    ``v_i`` is property ``fields[i]`` of the CI (``null`` when absent; the ``temporals`` as ISO
    text) and ``edges`` lists the CI's out-relationships of ``types`` to other (non-stub) CIs
    as ``[type, target ci_id, optional, inferred, evidence, properties]``. Whole pages travel
    as one list value, not one record per CI or a map of every property: the driver's per
    record and per map-entry conversion is what made the old whole-graph read slow.
    Parameters: ``$after`` (when ``after``; the last ``ci_id`` of the previous page) and
    ``$limit``.
    """
    start = "c.ci_id > $after" if after else "c.ci_id IS NOT NULL"
    return (
        f"MATCH (c:CI) WHERE {start} AND NOT c:{STUB} "
        "WITH c ORDER BY c.ci_id LIMIT $limit "
        f"RETURN collect({_graph_row('c', fields, temporals, types)}) AS rows"
    )


def counts(labels: Iterable[str], classes: Iterable[str], ci_types: Iterable[str]) -> str:
    """Counts from the count store: rows ``name, n`` for labels, ``CI:<class>`` and types.

    Stub nodes are counted apart under ``Stub:<label>`` so the caller can subtract them.
    """
    parts = [f"MATCH (n:{_label(lb)}) RETURN '{lb}' AS name, count(n) AS n" for lb in labels]
    parts += [
        f"MATCH (n:{_label(c)}) RETURN 'CI:{c}' AS name, count(n) AS n" for c in classes
    ]
    types = list(ci_types)
    if types:
        parts += [
            f"MATCH ()-[r:{_type(t)}]->() RETURN 'rel:{t}' AS name, count(r) AS n"
            for t in types
        ]
    parts.append(
        f"MATCH (n:{STUB}) UNWIND labels(n) AS lb WITH lb WHERE lb <> '{STUB}' "
        f"RETURN '{STUB}:' + lb AS name, count(*) AS n"
    )
    return " UNION ALL ".join(parts)
