"""Write batches: what a caller asks to write, and the validated, flattened form stores write.

:class:`WriteBatch` is what callers give :meth:`GraphStore.apply`. :func:`prepare_batch` checks
the whole batch against the registries before anything is written and turns it into a
:class:`PreparedBatch` of lean rows (see :mod:`cmdb_graph.store.rows`), de-duplicated, which
every store then writes in its own way; :func:`check_ends` checks that relationship ends exist,
against the batch and the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cmdb_graph.errors import InvalidRecordError, UnknownRelationshipTypeError
from cmdb_graph.feed import Actor
from cmdb_graph.model import NODE_SPECS, Node, Registry, Relationship
from cmdb_graph.store.rows import CI_LABEL, REL_KEY_FIELDS, RowMemo, dump_row

__all__ = [
    "WriteBatch",
    "PreparedNode",
    "PreparedRel",
    "PreparedBatch",
    "ExistingKeys",
    "reference_rel_types",
    "prepare_batch",
    "check_ends",
]


@dataclass(slots=True)
class WriteBatch:
    """Writes applied together by :meth:`GraphStore.apply`.

    Order of application: nodes (any label, CIs included), then relationships, then the
    relationship deletions, then the node deletions. Relationship ends may be nodes of the
    same batch. ``deletes`` names relationships by ``(rel_type, source, target)`` (those of
    reference fields are left: change the field); a merge moves the duplicate's relationships
    and deletes the old ones in the same write. ``node_deletes`` names nodes by
    ``(label, key)``: each goes with every explicit relationship it still has (each recorded as
    removed); the reference fields of other nodes that name it stay as they are (on Neo4j it
    becomes an invisible stub again, as a target never written is). ``atomic``: the store
    writes the batch in one transaction whatever its size (Neo4j otherwise splits a batch over
    ``tx_limit``).
    """

    nodes: list[Node] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    #: Who makes the write, recorded in its change record (``None``: the system).
    actor: Actor | None = None
    deletes: list[tuple[str, str, str]] = field(default_factory=list)
    #: Nodes to delete, by ``(label, key)`` (absent ones are skipped).
    node_deletes: list[tuple[str, str]] = field(default_factory=list)
    #: One transaction whatever the size.
    atomic: bool = False

    def __len__(self) -> int:
        return (len(self.nodes) + len(self.relationships) + len(self.deletes)
                + len(self.node_deletes))

    def node_delete_keys(self) -> list[tuple[str, str]]:
        """``node_deletes`` without repeats, each label checked.

        Raises
        ------
        InvalidRecordError
            A label is not a node label of the store, or a key is empty.
        """
        keys = list(dict.fromkeys((label, key) for label, key in self.node_deletes))
        for label, key in keys:
            if label not in NODE_SPECS:
                raise InvalidRecordError(f"unknown node label {label!r}", record=f"{key!r}",
                                         field="label")
            if not isinstance(key, str) or not key:
                raise InvalidRecordError("the key must be a non-empty string",
                                         record=f"{label} {key!r}")
        return keys

    def delete_keys(self, registry: Registry) -> list[tuple[str, str, str]]:
        """``deletes`` without repeats, each type checked against ``registry``.

        Raises
        ------
        UnknownRelationshipTypeError
            A key names an unknown relationship type.
        """
        keys = list(dict.fromkeys((t, s, e) for t, s, e in self.deletes))
        for rel_type, _, _ in keys:
            registry.get_relationship_type(rel_type)
        return keys


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

#: ``existing(label, keys)``: the subset of ``keys`` for which a node of ``label`` exists in
#: the store (stub nodes of the Neo4j store do not count).
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
        See :data:`ExistingKeys`. ``None``: the caller runs :func:`check_ends` itself (inside
        its write transaction).

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
    memo: RowMemo = {}
    nodes: dict[tuple[str, str], PreparedNode] = {}
    for node in batch.nodes:
        prepared_node = _prepare_node(node, registry, memo)
        nodes[(prepared_node.label, prepared_node.key)] = prepared_node
    rels: dict[tuple[str, str, str, str, str], PreparedRel] = {}
    for rel in batch.relationships:
        prepared_rel = _prepare_rel(rel, registry, memo)
        rels[(rel.rel_type, rel.source_label, rel.source, rel.target_label, rel.target)] = (
            prepared_rel
        )
    prepared = PreparedBatch(list(nodes.values()), list(rels.values()))
    if existing is not None:
        check_ends(prepared, existing)
    return prepared


def _name_record(exc: InvalidRecordError, record: str) -> None:
    """Make ``exc`` name ``record`` (a registry error knows the bad name, not the record)."""
    exc.record = record
    exc.args = (exc._render(),)


def _prepare_node(node: Node, registry: Registry, memo: RowMemo) -> PreparedNode:
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
    row = dump_row(node, _NODE_EXCLUDE[label], record, memo)
    if label == CI_LABEL:
        try:
            registry.get_class(row["ci_class"])
        except InvalidRecordError as exc:
            _name_record(exc, record)
            raise
    return PreparedNode(label, key, row)


def _prepare_rel(rel: Relationship, registry: Registry, memo: RowMemo) -> PreparedRel:
    if not isinstance(rel, Relationship):
        raise InvalidRecordError(
            f"{type(rel).__name__} is not a Relationship", record=repr(rel)[:80]
        )
    record = f"{rel.rel_type} {rel.source!r} -> {rel.target!r}"
    try:
        rtype = registry.get_relationship_type(rel.rel_type)
    except UnknownRelationshipTypeError as exc:
        _name_record(exc, record)
        raise
    if rel.rel_type in _REF_TYPES:
        raise InvalidRecordError(
            f"{rel.rel_type} is derived from a reference field; set the field instead",
            record=record,
            field="rel_type",
        )
    for end, label in (("source_label", rel.source_label), ("target_label", rel.target_label)):
        if label not in NODE_SPECS:
            raise InvalidRecordError(f"unknown node label {label!r}", record=record, field=end)
    if rtype.ci_to_ci and (rel.source_label != CI_LABEL or rel.target_label != CI_LABEL):
        raise InvalidRecordError(
            f"{rel.rel_type} joins two configuration items", record=record, field="source_label"
        )
    row = dump_row(rel, _REL_EXCLUDE, record, memo)
    return PreparedRel(rel.rel_type, rel.source, rel.target, rel.source_label, rel.target_label,
                       row)


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
