"""The write statements of one prepared batch, and building them while the server works.

:func:`batch_statements` turns a :class:`~cmdb_graph.store.batch.PreparedBatch` into the
``UNWIND $rows`` statements that write it, in order: nodes (per label, CIs per class), then
the relationships of reference fields, then explicit relationships. :func:`prefetch` builds
them in a helper thread so that the next statement's parameters are ready when the server has
run the current one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from cmdb_graph.model import NODE_SPECS, Registry, Relationship
from cmdb_graph.store.batch import PreparedBatch, PreparedNode, PreparedRel
from cmdb_graph.store.neo4j import cypher
from cmdb_graph.store.neo4j.props import shadow_props, split_temporals, to_props
from cmdb_graph.store.rows import CI_LABEL

__all__ = ["Statement", "batch_statements", "node_params", "rel_params", "chunks", "prefetch"]

T = TypeVar("T")

#: One statement, the rows its ``$rows`` parameter unwinds, and the batch's nodes or
#: relationships those rows write, one per row (empty for the statements of reference fields,
#: which write no field of the model: their change is the field's, recorded with the node).
Statement = tuple[str, list[dict[str, Any]], Sequence[PreparedNode | PreparedRel]]


def batch_statements(
    prepared: PreparedBatch, registry: Registry, present: Mapping[str, set[str]] | None
) -> Iterator[Statement]:
    """The write statements of a batch, in order: nodes, references, relationships.

    Each statement's rows are built when it is reached; see :data:`Statement`.

    Parameters
    ----------
    prepared : PreparedBatch
        The validated batch.
    registry : Registry
        The CI classes (a CI's class label replaces every other class label).
    present : mapping or None
        Per label, the keys of the batch's nodes that existed before it (``None``: treat every
        node as existing). The references of new nodes are only added, never synchronised.
    """
    by_label = prepared.nodes_by_label()
    for label, nodes in sorted(by_label.items()):
        if label != CI_LABEL:
            yield cypher.upsert_nodes(label), [node_params(label, n) for n in nodes], nodes
            continue
        by_class: dict[str, list[PreparedNode]] = {}
        for node in nodes:
            by_class.setdefault(node.row["ci_class"], []).append(node)
        for cls, group in sorted(by_class.items()):
            yield (cypher.upsert_cis(cls, registry.classes),
                   [node_params(label, n) for n in group], group)
    for label, nodes in sorted(by_label.items()):
        yield from _reference_statements(label, nodes, present)
    for (rel_type, sl, tl), rels in sorted(prepared.rels_by_type().items()):
        yield cypher.merge_relationships(rel_type, sl, tl), [rel_params(r) for r in rels], rels


def _reference_statements(
    label: str, nodes: Sequence[PreparedNode], present: Mapping[str, set[str]] | None
) -> Iterator[Statement]:
    """The statements that keep the reference relationships of ``nodes`` in step."""
    known = present.get(label) if present is not None else None
    for ref in NODE_SPECS[label].refs:
        synced: list[dict[str, Any]] = []
        added: list[dict[str, Any]] = []
        for node in nodes:
            value = node.row.get(ref.field)
            targets = list(value) if ref.many and value else ([value] if value else [])
            if known is None or node.key in known:
                synced.append({"key": node.key, "targets": targets})
            elif targets:
                added.append({"key": node.key, "targets": targets})
        if synced:
            yield cypher.sync_reference(label, ref), synced, ()
        if added:
            yield cypher.add_reference(label, ref), added, ()


def node_params(label: str, node: PreparedNode) -> dict[str, Any]:
    """The ``$rows`` entry of one node: ``{key, props, tm}`` (``tm``: ISO temporals)."""
    spec = NODE_SPECS[label]
    props = to_props(spec.model, node.row)
    props.update(shadow_props(label, node.row))
    props[spec.key] = node.key
    return {"key": node.key, "props": props, "tm": split_temporals(spec.model, props)}


def rel_params(rel: PreparedRel) -> dict[str, Any]:
    """The ``$rows`` entry of one relationship: ``{s, t, props, tm}``."""
    props = to_props(Relationship, rel.row)
    # The end labels are the end nodes' labels (reads take them from the nodes): storing
    # them on every relationship only costs write time and space.
    props.pop("source_label", None)
    props.pop("target_label", None)
    tm = split_temporals(Relationship, props)
    return {"s": rel.source, "t": rel.target, "props": props, "tm": tm}


def chunks(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``rows`` in consecutive slices of at most ``size``."""
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def prefetch(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """``items``, computed ahead in a helper thread (at most ``depth`` waiting).

    Building a statement's parameters is Python work; running it is the server's. With the
    parameters of the next statement built while the server runs the current one, the two
    overlap. An exception of ``items`` is raised here, in order; stopping early stops the
    helper.
    """
    out: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))

    helper = threading.Thread(target=produce, name="neo4j-statements", daemon=True)
    helper.start()
    try:
        while True:
            ok, item = out.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        helper.join()
