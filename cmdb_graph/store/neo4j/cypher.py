"""The Cypher of the Neo4j store: names, shared expressions, schema and write statements.

Read statements are in :mod:`cmdb_graph.store.neo4j.cypher_reads`; no other module holds
Cypher text.

Values always travel as parameters. Labels, relationship types and property names cannot be
parameters; the builders here take them only from our own registries (``NODE_SPECS``, the CI
class registry, the relationship-type registry) or from model field names, and check each one
against a strict pattern (:func:`safe_label`, :func:`safe_type`, :func:`safe_prop`) before it
goes into the text, so no user input can reach a query.

Stub nodes
----------
A reference field (``CI.support_group``, ``Asset.ci_id``, ...) is materialised as a relationship
to the target node, which is MERGEd by key when missing and then carries the extra label
``:Stub``. A stub is invisible to every read (``NOT n:Stub``) and to the counts; upserting the
real node later finds it, sets its properties and removes ``:Stub``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel

from cmdb_graph.model import NODE_SPECS, RefSpec, Relationship
from cmdb_graph.model.registry import CLASS_NAME, REL_NAME
from cmdb_graph.store.neo4j.props import SHADOW_PREFIX
from cmdb_graph.store.query import INDEXED_NODE_FIELDS
from cmdb_graph.store.rows import field_kinds

__all__ = [
    "STUB",
    "META",
    "FEED",
    "PING",
    "CLEAR",
    "CLEAR_REST",
    "NEXT_SEQ",
    "UNDO_SEQ",
    "WRITE_RECORD",
    "FEED_STATE",
    "FEED_SINCE",
    "LOCK_FEED",
    "FEED_OLDEST",
    "PRUNE_FEED",
    "CACHE_KEY",
    "CI_SHADOW_RANGE_INDEXES",
    "safe_label",
    "safe_type",
    "safe_prop",
    "safe_types",
    "key_prop",
    "key_hint",
    "set_temporals",
    "props_of",
    "node_props",
    "node_key",
    "node_label",
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
    "relationships_touching",
    "delete_nodes",
    "referencing_types",
]

#: Node labels are CI class names or ``NODE_SPECS`` labels, relationship types registry names:
#: the registry's own name patterns.
_LABEL = CLASS_NAME
_TYPE = REL_NAME
_PROP = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

#: The label of stub nodes (targets of reference fields that were never written).
STUB = "Stub"

PING = "RETURN 1 AS ok"

#: The label of the one node that keeps the store's feed counter (see :data:`NEXT_SEQ`); never
#: a CI class, never read as data.
META = "CmdbMeta"

#: The label of the change records of the feed (see :mod:`cmdb_graph.store.neo4j.feed`):
#: ``(:ChangeRecord {seq, at, data})``, ``data`` the bytes of
#: :func:`cmdb_graph.feed.encode_record`. Never a CI class, never read as data.
FEED = "ChangeRecord"

#: Delete everything but the feed counter and the change records, in batches (auto-commit
#: transaction: ``CALL ... IN TRANSACTIONS``). The counter stays so that sequence numbers never
#: go back; the records stay (``clear`` records a reset, as the embedded store does).
CLEAR = (
    f"MATCH (n) WHERE NOT n:{META} AND NOT n:{FEED} "
    "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
)

#: Delete what :data:`CLEAR` left (nodes written while it ran), in the reset's transaction.
CLEAR_REST = f"MATCH (n) WHERE NOT n:{META} AND NOT n:{FEED} DETACH DELETE n"

#: Take the next sequence number: increment the counter, creating it (seq 1, a fresh random
#: ``epoch``) when missing; one row ``seq``. Run as the FIRST statement of every write
#: transaction of the store: the counter node's write lock is then held until the transaction
#: commits, so cmdb-graph's write transactions run one at a time, commit in sequence order and
#: read exact old values. A counter of an older version (``generation``, no records) is taken
#: over: its value becomes the feed's floor. Parameter: ``$key``.
NEXT_SEQ = (
    f"MERGE (m:{META} {{key: $key}}) "
    "ON CREATE SET m.seq = 1, m.feed_floor = 0, m.epoch = randomUUID() "
    "ON MATCH SET m.feed_floor = coalesce(m.feed_floor, m.generation, 0), "
    "m.seq = coalesce(m.seq, m.generation, 0) + 1 "
    "REMOVE m.generation "
    "RETURN m.seq AS seq"
)

#: Take the import lock (see ``Neo4jStore.import_lock``): MERGE a meta node under the meta
#: key's uniqueness constraint and write to it, in a transaction that is held open while the
#: run identifies and writes and is then rolled back (the node is never committed). A second
#: transaction taking it waits for the first to end, also when its process dies (the server
#: rolls back the transaction of a closed connection). Parameter: ``$key``.
IMPORT_LOCK = f"MERGE (m:{META} {{key: $key}}) SET m.held = true"

#: Give the sequence number back: the transaction changed nothing, it writes no record.
#: Parameter: ``$key``.
UNDO_SEQ = f"MATCH (m:{META} {{key: $key}}) SET m.seq = m.seq - 1"

#: Store one change record. Parameters: ``$seq``, ``$at`` (ISO text), ``$data`` (bytes).
WRITE_RECORD = f"CREATE (:{FEED} {{seq: $seq, at: datetime($at), data: $data}})"

#: The feed's state: one row ``head`` (the newest sequence number, 0 before the first write),
#: ``floor`` (every record up to it was pruned) and ``epoch``. Parameter: ``$key``.
FEED_STATE = (
    f"OPTIONAL MATCH (m:{META} {{key: $key}}) "
    "RETURN coalesce(m.seq, m.generation, 0) AS head, "
    "coalesce(m.feed_floor, m.generation, 0) AS floor, m.epoch AS epoch"
)

#: The records after ``$after``, oldest first, at most ``$limit``: rows ``data``.
FEED_SINCE = (
    f"MATCH (r:{FEED}) WHERE r.seq > $after "
    "RETURN r.data AS data ORDER BY r.seq LIMIT $limit"
)

#: Take the counter's lock for pruning (first statement of the pruning transaction): one row
#: ``floor``. Parameter: ``$key``.
LOCK_FEED = (
    f"MATCH (m:{META} {{key: $key}}) SET m.pruned_at = datetime() "
    "RETURN coalesce(m.feed_floor, 0) AS floor"
)

#: The oldest records after ``$floor``: rows ``seq``, ``old`` (written before ``$cutoff``,
#: ISO text), oldest first, at most ``$limit``.
FEED_OLDEST = (
    f"MATCH (r:{FEED}) WHERE r.seq > $floor "
    "RETURN r.seq AS seq, r.at < datetime($cutoff) AS old ORDER BY r.seq LIMIT $limit"
)

#: Delete the records in ``($floor, $upto]`` and raise the floor to ``$upto``. Parameters:
#: ``$key``, ``$floor``, ``$upto``.
PRUNE_FEED = (
    f"MATCH (m:{META} {{key: $key}}) SET m.feed_floor = $upto "
    f"WITH m MATCH (r:{FEED}) WHERE r.seq > $floor AND r.seq <= $upto DELETE r"
)

#: What a cache of the graph is keyed on, in one cheap read: the counter's ``epoch``, the
#: feed head (``generation``) and the numbers of all nodes (change records left out) and all
#: relationships, which Neo4j serves from its count store in O(1) (they catch writes made
#: outside cmdb-graph that add or remove nodes or relationships). Parameter: ``$key``.
CACHE_KEY = (
    f"OPTIONAL MATCH (m:{META} {{key: $key}}) "
    "WITH m.epoch AS epoch, coalesce(m.seq, m.generation, 0) AS generation "
    "CALL () { MATCH (n) RETURN count(n) AS everything } "
    f"CALL () {{ MATCH (n:{FEED}) RETURN count(n) AS records }} "
    "CALL () { MATCH ()-[r]->() RETURN count(r) AS relationships } "
    "RETURN epoch, generation, everything - records AS nodes, relationships"
)


def safe_label(name: str) -> str:
    """``name`` if it is a valid node label, else ``ValueError``."""
    if not _LABEL.match(name):
        raise ValueError(f"not a valid label: {name!r}")
    return name


def safe_type(name: str) -> str:
    """``name`` if it is a valid relationship type, else ``ValueError``."""
    if not _TYPE.match(name):
        raise ValueError(f"not a valid relationship type: {name!r}")
    return name


def safe_prop(name: str) -> str:
    """``name`` if it is a valid property name, else ``ValueError``."""
    if not _PROP.match(name):
        raise ValueError(f"not a valid property name: {name!r}")
    return name


def safe_types(names: Iterable[str]) -> str:
    """Relationship types as a pattern alternative: ``A|B|C``."""
    return "|".join(safe_type(n) for n in names)


def key_prop(label: str) -> str:
    """The key property of ``label`` (``ci_id``, ``asset_id``, ...)."""
    return safe_prop(NODE_SPECS[label].key)


def _temporal_fields(model: type[BaseModel]) -> list[tuple[str, str]]:
    kinds = field_kinds(model)
    return sorted(
        [(f, "datetime") for f in kinds.datetimes] + [(f, "date") for f in kinds.dates]
    )


def set_temporals(var: str, model: type[BaseModel]) -> str:
    """``SET`` clauses turning the ISO text in ``row.tm`` into Neo4j temporal properties."""
    sets = [f"{var}.{safe_prop(f)} = {fn}(row.tm.{safe_prop(f)})"
            for f, fn in _temporal_fields(model)]
    return f" SET {', '.join(sets)}" if sets else ""


def props_of(var: str, model: type[BaseModel]) -> str:
    """The properties of ``var`` with its temporal fields as ISO text (cheap to read)."""
    fields = _temporal_fields(model)
    if not fields:
        return f"properties({var})"
    conv = ", ".join(f"{safe_prop(f)}: toString({var}.{safe_prop(f)})" for f, _ in fields)
    return f"{var} {{.*, {conv}}}"


def key_hint(var: str, label: str) -> str:
    """``USING INDEX`` on the key of ``label``: a lookup by key seeks the key's index.

    Without it, a statement first planned while the database was empty (a fresh install, a
    test after ``clear``) may be cached with a label scan, and a lookup of thousands of keys
    then reads every node once per key (minutes instead of a second at a few thousand nodes)
    until Neo4j plans it again.
    """
    return f"USING INDEX {var}:{safe_label(label)}({key_prop(label)})"


def node_props(var: str, label: str) -> str:
    """:func:`props_of` for a node of ``label``."""
    return props_of(var, NODE_SPECS[label].model)


def node_key(var: str) -> str:
    """An expression: the key of node ``var``, whatever its label."""
    cases = " ".join(
        f"WHEN {var}:{safe_label(label)} THEN {var}.{safe_prop(spec.key)}"
        for label, spec in sorted(NODE_SPECS.items())
    )
    return f"CASE {cases} END"


def node_label(var: str) -> str:
    """An expression: the ``NODE_SPECS`` label of node ``var``."""
    cases = " ".join(
        f"WHEN {var}:{safe_label(label)} THEN '{safe_label(label)}'"
        for label in sorted(NODE_SPECS)
    )
    return f"CASE {cases} END"


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
#: Index helper properties (see ``props.shadow_props``): lower-cased fqdn/hostname.
CI_SHADOW_RANGE_INDEXES: tuple[str, ...] = (SHADOW_PREFIX + "fqdn", SHADOW_PREFIX + "hostname")
#: List identifiers joined into one string with a text index (membership via CONTAINS).
CI_SHADOW_TEXT_INDEXES: tuple[str, ...] = (
    SHADOW_PREFIX + "native_keys",
    SHADOW_PREFIX + "mac_addresses",
)
OTHER_RANGE_INDEXES: dict[str, tuple[str, ...]] = INDEXED_NODE_FIELDS


def schema_statements() -> list[str]:
    """Constraints and indexes, each created idempotently (``IF NOT EXISTS``).

    One uniqueness constraint per label on its key (``CI.ci_id``, ``Asset.asset_id``, ...),
    range indexes on the CI identifiers and filters, text indexes for list membership, and
    the unique keys of the feed counter and of the change records (``seq``: the index that
    ``feed_since`` reads in order).
    """
    out = []
    for label, spec in sorted(NODE_SPECS.items()):
        out.append(
            f"CREATE CONSTRAINT cmdb_{label.lower()}_key IF NOT EXISTS "
            f"FOR (n:{safe_label(label)}) REQUIRE n.{safe_prop(spec.key)} IS UNIQUE"
        )
    for prop in (*CI_RANGE_INDEXES, *CI_SHADOW_RANGE_INDEXES):
        out.append(
            f"CREATE RANGE INDEX cmdb_ci_{prop} IF NOT EXISTS FOR (n:CI) ON (n.{safe_prop(prop)})"
        )
    for prop in CI_SHADOW_TEXT_INDEXES:
        out.append(
            f"CREATE TEXT INDEX cmdb_ci_{prop} IF NOT EXISTS FOR (n:CI) ON (n.{safe_prop(prop)})"
        )
    for label, props in OTHER_RANGE_INDEXES.items():
        for prop in props:
            out.append(
                f"CREATE RANGE INDEX cmdb_{label.lower()}_{prop} IF NOT EXISTS "
                f"FOR (n:{safe_label(label)}) ON (n.{safe_prop(prop)})"
            )
    out.append(
        f"CREATE CONSTRAINT cmdb_meta_key IF NOT EXISTS FOR (n:{safe_label(META)}) REQUIRE n.key "
        "IS UNIQUE"
    )
    out.append(
        f"CREATE CONSTRAINT cmdb_feed_seq IF NOT EXISTS FOR (n:{safe_label(FEED)}) REQUIRE n.seq "
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
        f"MERGE (n:{safe_label(label)} {{{key_prop(label)}: row.key}}) "
        f"SET n = row.props{set_temporals('n', NODE_SPECS[label].model)} REMOVE n:{STUB}"
    )


def upsert_cis(ci_class: str, all_classes: Iterable[str]) -> str:
    """MERGE CIs of one class by ``ci_id``, replace properties, set ``:CI:<class>``.

    Every other class label of the registry is removed, so a class change replaces the label.
    Parameters: ``$rows``, a list of ``{key, props, tm}``.
    """
    others = sorted(c for c in all_classes if c != ci_class)
    remove = ":".join([STUB, *(safe_label(c) for c in others)])
    return (
        "UNWIND $rows AS row "
        "MERGE (n:CI {ci_id: row.key}) "
        f"SET n = row.props{set_temporals('n', NODE_SPECS['CI'].model)} "
        f"SET n:{safe_label(ci_class)} REMOVE n:{remove}"
    )


def sync_reference(label: str, ref: RefSpec) -> str:
    """Keep the relationships of one reference field in step with the field.

    Removes relationships to targets no longer named, MERGEs a stub target by key when it is
    missing, and MERGEs the relationship. Parameters: ``$rows``, a list of ``{key, targets}``.
    """
    target = safe_label(ref.target_label)
    tkey = key_prop(ref.target_label)
    rtype = safe_type(ref.rel_type)
    if ref.outgoing:
        old = f"(n)-[old:{rtype}]->(t:{target})"
        new = f"(n)-[:{rtype}]->(t)"
    else:
        old = f"(n)<-[old:{rtype}]-(t:{target})"
        new = f"(n)<-[:{rtype}]-(t)"
    return (
        "UNWIND $rows AS row "
        f"MATCH (n:{safe_label(label)} {{{key_prop(label)}: row.key}}) {key_hint('n', label)} "
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
    target = safe_label(ref.target_label)
    tkey = key_prop(ref.target_label)
    rtype = safe_type(ref.rel_type)
    new = f"(n)-[:{rtype}]->(t)" if ref.outgoing else f"(n)<-[:{rtype}]-(t)"
    return (
        "UNWIND $rows AS row "
        f"MATCH (n:{safe_label(label)} {{{key_prop(label)}: row.key}}) {key_hint('n', label)} "
        "UNWIND row.targets AS tk "
        f"MERGE (t:{target} {{{tkey}: tk}}) ON CREATE SET t:{STUB} "
        f"MERGE {new}"
    )


def present_keys(label: str) -> str:
    """The keys among ``$keys`` of any node of ``label``, stubs included: one list ``keys``."""
    key = key_prop(label)
    return (
        f"UNWIND $keys AS k MATCH (n:{safe_label(label)} {{{key}: k}}) {key_hint('n', label)} "
        f"RETURN collect(n.{key}) AS keys"
    )


def existing_keys(label: str) -> str:
    """The keys among ``$keys`` of existing (non-stub) nodes of ``label``, as one list ``keys``."""
    key = key_prop(label)
    return (
        f"UNWIND $keys AS k MATCH (n:{safe_label(label)} {{{key}: k}}) {key_hint('n', label)} "
        f"WHERE NOT n:{STUB} RETURN collect(n.{key}) AS keys"
    )


def merge_relationships(rel_type: str, source_label: str, target_label: str) -> str:
    """MERGE explicit relationships of one type between existing ends; replace properties.

    Parameters: ``$rows``, a list of ``{s, t, props, tm}``.
    """
    return (
        "UNWIND $rows AS row "
        f"MATCH (a:{safe_label(source_label)} {{{key_prop(source_label)}: row.s}}) "
        f"{key_hint('a', source_label)} "
        f"MATCH (b:{safe_label(target_label)} {{{key_prop(target_label)}: row.t}}) "
        f"{key_hint('b', target_label)} "
        f"MERGE (a)-[r:{safe_type(rel_type)}]->(b) SET r = row.props"
        f"{set_temporals('r', Relationship)}"
    )


def _deleted(var: str, source_label: str, target_label: str) -> str:
    """Delete relationship ``var``; ONE row ``rows`` of what they were: ``[s, t, sl, tl,
    props]``."""
    return (
        f"WITH row, {var}, {source_label} AS sl, {target_label} AS tl, "
        f"{props_of(var, Relationship)} AS props DELETE {var} "
        "RETURN collect([row.s, row.t, sl, tl, props]) AS rows"
    )


def delete_ci_relationships(rel_type: str) -> str:
    """Delete CI-to-CI relationships of one type by ``$rows`` of ``{s, t}``.

    Returns ONE row ``rows``: per deleted relationship ``[s, t, source label, target label,
    props]`` (its properties as :func:`props_of` reads them), for its change record.
    """
    return (
        "UNWIND $rows AS row "
        f"MATCH (a:CI {{ci_id: row.s}})-[r:{safe_type(rel_type)}]->(b:CI {{ci_id: row.t}}) "
        f"{key_hint('a', 'CI')} " + _deleted("r", "'CI'", "'CI'")
    )


def _any_node(var: str, key_param: str) -> str:
    """A subquery body finding the node of any label whose key is ``key_param``."""
    branches = [
        f"MATCH ({var}:{safe_label(label)} {{{safe_prop(spec.key)}: {key_param}}}) "
        f"{key_hint(var, label)} RETURN {var}"
        for label, spec in sorted(NODE_SPECS.items())
    ]
    return " UNION ".join(branches)


def delete_relationships_any(rel_type: str) -> str:
    """Delete relationships of one type by ``$rows`` of ``{s, t}`` whatever the end labels.

    Returns what :func:`delete_ci_relationships` does.
    """
    return (
        "UNWIND $rows AS row "
        f"CALL (row) {{ {_any_node('a', 'row.s')} }} "
        f"MATCH (a)-[r:{safe_type(rel_type)}]->(b) WHERE {node_key('b')} = row.t "
        + _deleted("r", node_label("a"), node_label("b"))
    )


def relationships_touching(label: str) -> str:
    """The relationships of types ``$types`` that touch the nodes of ``label`` keyed
    ``$keys``, either way: ONE row ``rels``, a list of ``[rel_type, source key, target key]``
    (a loop may appear twice)."""
    key = key_prop(label)
    return (
        f"UNWIND $keys AS k MATCH (n:{safe_label(label)} {{{key}: k}}) {key_hint('n', label)} "
        "CALL (n) { "
        "MATCH (n)-[r]->(b) WHERE type(r) IN $types RETURN type(r) AS t, n AS a, b AS b "
        "UNION "
        "MATCH (a)-[r]->(n) WHERE type(r) IN $types RETURN type(r) AS t, a AS a, n AS b "
        "} "
        f"RETURN collect([t, {node_key('a')}, {node_key('b')}]) AS rels"
    )


def referencing_types(label: str) -> tuple[list[str], list[str]]:
    """The reference relationships other nodes' fields make to a node of ``label``, as
    ``(incoming types, outgoing types)`` seen from that node (see :func:`delete_nodes`)."""
    incoming: set[str] = set()
    outgoing: set[str] = set()
    for spec in NODE_SPECS.values():
        for ref in spec.refs:
            if ref.target_label == label:
                (incoming if ref.outgoing else outgoing).add(ref.rel_type)
    return sorted(incoming), sorted(outgoing)


def delete_nodes(label: str, all_classes: Iterable[str]) -> str:
    """Delete the (non-stub) nodes of ``label`` keyed ``$keys``.

    Every relationship of such a node goes (the caller removes the explicit ones first, to
    record them), but those that other nodes' reference fields make to it (``$keep_in``,
    ``$keep_out``: :func:`referencing_types`): a node still named by one becomes a stub again
    (its key only, ``:Stub``, a CI without its class label), as a target never written is; one
    named by none is deleted.
    """
    key = key_prop(label)
    classes = sorted(all_classes) if label == "CI" else []
    unclass = f" REMOVE n:{':'.join(safe_label(c) for c in classes)}" if classes else ""
    return (
        f"UNWIND $keys AS k MATCH (n:{safe_label(label)} {{{key}: k}}) {key_hint('n', label)} "
        f"WHERE NOT n:{STUB} "
        "CALL (n) { MATCH (n)-[r]->() WHERE NOT type(r) IN $keep_out DELETE r } "
        "CALL (n) { MATCH (n)<-[r]-() WHERE NOT type(r) IN $keep_in DELETE r } "
        "WITH n, EXISTS { (n)--() } AS named "
        f"FOREACH (_ IN CASE WHEN named THEN [1] ELSE [] END | SET n = {{{key}: n.{key}}}, "
        f"n:{STUB}{unclass}) "
        "WITH n, named WHERE NOT named DELETE n"
    )
