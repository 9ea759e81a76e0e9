"""The read statements of the Neo4j store (see :mod:`cmdb_graph.store.neo4j.cypher`).

Every read leaves out stub nodes (``NOT n:Stub``). Values are parameters; names come from our
registries through the checks of :mod:`~cmdb_graph.store.neo4j.cypher`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cmdb_graph.model import Relationship
from cmdb_graph.store.neo4j.cypher import (
    STUB,
    key_hint,
    key_prop,
    node_key,
    node_label,
    node_props,
    props_of,
    safe_label,
    safe_prop,
    safe_type,
    safe_types,
)
from cmdb_graph.store.neo4j.props import SHADOW_PREFIX

__all__ = [
    "get_nodes",
    "node_states",
    "get_relationships",
    "assets_tracking",
    "find_cis",
    "find_cis_bulk",
    "list_cis",
    "count_cis",
    "list_nodes",
    "count_nodes",
    "relationships_of",
    "all_relationships",
    "reach_step",
    "graph_rows",
    "ci_graph_page",
    "counts",
]


def get_nodes(label: str) -> str:
    """Nodes of ``label`` by ``$keys``: ONE row ``rows``, a list of ``[key, props]``.

    One list value rather than a record per node: the driver receives thousands of records
    far more slowly than one list (the same reason as :func:`ci_graph_page`).
    """
    key = key_prop(label)
    return (
        f"UNWIND $keys AS k MATCH (n:{safe_label(label)} {{{key}: k}}) {key_hint('n', label)} "
        f"WHERE NOT n:{STUB} RETURN collect([n.{key}, {node_props('n', label)}]) AS rows"
    )


def node_states(label: str) -> str:
    """The nodes of ``label`` by ``$keys``, stubs included: ONE row ``rows``, a list of
    ``[key, is_stub, props]`` (for the old rows of a write, see ``neo4j.feed``)."""
    key = key_prop(label)
    return (
        f"UNWIND $keys AS k MATCH (n:{safe_label(label)} {{{key}: k}}) {key_hint('n', label)} "
        f"RETURN collect([n.{key}, n:{STUB}, {node_props('n', label)}]) AS rows"
    )


def get_relationships(rel_type: str, source_label: str, target_label: str) -> str:
    """Relationships of one type between given ends, by ``$rows`` of ``{s, t}``.

    ONE row ``rows``, a list of ``[s, t, props]`` (the properties as
    :func:`~.cypher.props_of` reads them).
    """
    return (
        "UNWIND $rows AS row "
        f"MATCH (a:{safe_label(source_label)} {{{key_prop(source_label)}: row.s}})"
        f"-[r:{safe_type(rel_type)}]->"
        f"(b:{safe_label(target_label)} {{{key_prop(target_label)}: row.t}}) "
        f"{key_hint('a', source_label)} "
        f"RETURN collect([row.s, row.t, {props_of('r', Relationship)}]) AS rows"
    )


def assets_tracking() -> str:
    """The assets that TRACK each CI of ``$keys``: rows ``ci_id, key, props`` by asset key.

    One ``UNWIND`` over the CI keys (the ``ci_id`` uniqueness constraint finds each CI); an
    asset pointing at a CI that was never written finds its stub, as the memory store does.
    """
    return (
        "UNWIND $keys AS k MATCH (a:Asset)-[:TRACKS]->(:CI {ci_id: k}) "
        f"WHERE NOT a:{STUB} "
        f"RETURN k AS ci_id, a.asset_id AS key, {node_props('a', 'Asset')} AS props "
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
        param = f"${safe_prop(field)}"
        if field == "ci_id":
            parts.append(f"MATCH (c:CI {{ci_id: {param}}}) RETURN c")
        elif mode == "eq":
            parts.append(f"MATCH (c:CI) WHERE c.{safe_prop(field)} = {param} RETURN c")
        elif mode == "lc":
            parts.append(
                f"MATCH (c:CI) WHERE c.{SHADOW_PREFIX}{safe_prop(field)} = {param} RETURN c"
            )
        elif mode == "contains":
            parts.append(
                f"MATCH (c:CI) WHERE c.{SHADOW_PREFIX}{safe_prop(field)} CONTAINS {param} RETURN c"
            )
        else:
            raise ValueError(f"unknown lookup mode {mode!r}")
    return (
        f"CALL () {{ {' UNION '.join(parts)} }} "
        f"WITH c WHERE NOT c:{STUB} "
        f"RETURN c.ci_id AS key, {node_props('c', 'CI')} AS props ORDER BY key"
    )


def find_cis_bulk(field: str, mode: str) -> str:
    """CIs whose ``field`` matches any of ``$values``: one index seek per value.

    ``mode`` as in :func:`find_cis` (``eq``, ``lc``, ``contains``; ``ci_id`` uses the key).
    Rows ``key, props`` sorted by ``ci_id``, each CI once.
    """
    if field == "ci_id":
        match = "MATCH (c:CI {ci_id: v})"
    elif mode == "eq":
        match = f"MATCH (c:CI) WHERE c.{safe_prop(field)} = v"
    elif mode == "lc":
        match = f"MATCH (c:CI) WHERE c.{SHADOW_PREFIX}{safe_prop(field)} = v"
    elif mode == "contains":
        match = f"MATCH (c:CI) WHERE c.{SHADOW_PREFIX}{safe_prop(field)} CONTAINS v"
    else:
        raise ValueError(f"unknown lookup mode {mode!r}")
    return (
        f"UNWIND $values AS v {match} "
        f"WITH DISTINCT c WHERE NOT c:{STUB} "
        f"RETURN c.ci_id AS key, {node_props('c', 'CI')} AS props ORDER BY key"
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
        f"RETURN c.ci_id AS key, {node_props('c', 'CI')} AS props "
        "ORDER BY c.ci_id LIMIT $limit"
    )


def _count_all(label: str) -> str:
    """How many non-stub nodes of ``label``: from the count store, without a scan."""
    return (
        f"CALL () {{ MATCH (n:{safe_label(label)}) RETURN count(n) AS everything }} "
        f"CALL () {{ MATCH (n:{STUB}:{safe_label(label)}) RETURN count(n) AS stubs }} "
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
        prop = safe_prop(field)
        conds.append(f"n.{prop} IS NULL" if is_null else f"n.{prop} = $w{i}")
    return " AND ".join(conds)


def list_nodes(label: str, fields: Sequence[tuple[str, bool]], after: bool) -> str:
    """A page of nodes of ``label`` in key order with equality filters.

    ``fields`` are ``(field, is_null)`` pairs; the value of the i-th is ``$w<i>``.
    """
    key = key_prop(label)
    start = f"n.{key} > $after" if after else f"n.{key} IS NOT NULL"
    return (
        f"MATCH (n:{safe_label(label)}) WHERE {start} AND {_node_where(fields)} "
        f"RETURN n.{key} AS key, {node_props('n', label)} AS props "
        f"ORDER BY n.{key} LIMIT $limit"
    )


def count_nodes(label: str, fields: Sequence[tuple[str, bool]]) -> str:
    """How many nodes of ``label`` match the filters."""
    if not fields:
        return _count_all(label)
    return f"MATCH (n:{safe_label(label)}) WHERE {_node_where(fields)} RETURN count(n) AS total"


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
        f"MATCH (n:{safe_label(label)} {{{key_prop(label)}: $key}}) WHERE NOT n:{STUB} "
        f"MATCH (n)-[r:{safe_types(rel_types)}]-() WITH DISTINCT r {_rel_return()}"
    )


def all_relationships(rel_types: Sequence[str]) -> str:
    """Every relationship of ``rel_types``."""
    return f"MATCH ()-[r:{safe_types(rel_types)}]->() {_rel_return()}"


def _graph_row(var: str, fields: Sequence[str], temporals: Iterable[str],
               types: Sequence[str]) -> str:
    """The compact graph row of CI ``var``: ``[v_1, ..., v_n, edges]`` (see ``ci_graph_page``)."""
    temporal = set(temporals)
    values = ", ".join(_graph_value(var, f, f in temporal) for f in fields)
    if types:
        edges = (
            f"[({var})-[r:{safe_types(types)}]->(t:CI) WHERE NOT t:{STUB} | "
            "[type(r), t.ci_id, r.optional, r.inferred, r.basis, r.confidence, r.evidence, "
            "r.properties]]"
        )
    else:
        edges = "[]"
    return f"[{values}, {edges}]"


def reach_step(types: Sequence[str]) -> str:
    """One breadth-first step: the CIs one hop from ``$frontier`` over ``types``.

    Each hop follows a relationship forward when its type is in ``$fwd`` and in reverse when
    it is in ``$rev`` (both, for ``both``). Returns ONE row ``ids``: the distinct ``ci_id`` of
    the (non-stub) CIs reached. The caller keeps the visited set and calls it once per depth
    level, so the cost is the relationships of the frontier, whatever the cycles: a single
    variable-length pattern enumerates every trail, which explodes on cyclic graphs
    (a 40-CI random graph with 90 relationships ran for over an hour).
    """
    rt = safe_types(types)
    return (
        f"MATCH (a:CI)-[r:{rt}]-(b:CI) WHERE a.ci_id IN $frontier AND NOT b:{STUB} AND "
        "((type(r) IN $fwd AND startNode(r) = a) OR (type(r) IN $rev AND endNode(r) = a)) "
        "RETURN collect(DISTINCT b.ci_id) AS ids"
    )


def graph_rows(fields: Sequence[str], temporals: Iterable[str], types: Sequence[str]) -> str:
    """The compact graph rows of the CIs ``$ids`` (see :func:`ci_graph_page`), as ONE row.

    Per (non-stub) CI the list ``[v_1, ..., v_n, edges]``: properties ``fields`` in order, then
    the out-relationships of ``types`` to non-stub CIs (the caller keeps those whose target it
    holds).
    """
    return (
        f"MATCH (x:CI) WHERE x.ci_id IN $ids AND NOT x:{STUB} "
        f"RETURN collect({_graph_row('x', fields, temporals, types)}) AS rows"
    )


def _graph_value(var: str, name: str, temporal: bool) -> str:
    return f"toString({var}.{safe_prop(name)})" if temporal else f"{var}.{safe_prop(name)}"


def ci_graph_page(
    fields: Sequence[str], temporals: Iterable[str], types: Sequence[str], after: bool
) -> str:
    """One page of the dependency graph, compact: CIs in ``ci_id`` order with their out-edges.

    Returns ONE row ``rows``: a list with one list per CI, ``[v_1, ..., v_n, edges]`` where
    ``v_i`` is property ``fields[i]`` of the CI (``null`` when absent; the ``temporals`` as ISO
    text) and ``edges`` lists the CI's out-relationships of ``types`` to other (non-stub) CIs
    as ``[type, target ci_id, optional, inferred, basis, confidence, evidence, properties]``.
    Whole pages travel as one list value, not one record per CI or a map of every property:
    the driver's per record and per map-entry conversion is what made the old whole-graph
    read slow.
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
    parts = [f"MATCH (n:{safe_label(lb)}) RETURN '{lb}' AS name, count(n) AS n" for lb in labels]
    parts += [
        f"MATCH (n:{safe_label(c)}) RETURN 'CI:{c}' AS name, count(n) AS n" for c in classes
    ]
    types = list(ci_types)
    if types:
        parts += [
            f"MATCH ()-[r:{safe_type(t)}]->() RETURN 'rel:{t}' AS name, count(r) AS n"
            for t in types
        ]
    parts.append(
        f"MATCH (n:{STUB}) UNWIND labels(n) AS lb WITH lb WHERE lb <> '{STUB}' "
        f"RETURN '{STUB}:' + lb AS name, count(*) AS n"
    )
    return " UNION ALL ".join(parts)
