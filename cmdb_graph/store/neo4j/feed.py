"""The change feed on Neo4j: one ``(:ChangeRecord)`` node per write transaction, written in it.

Storage
-------
* ``(:CmdbMeta {key: 'store'})`` holds ``seq`` (the feed head: the sequence number of the
  newest record), ``feed_floor`` (every record up to it was pruned) and ``epoch`` (a random id
  given when the node is created, so a database wiped from outside never repeats a key).
* ``(:ChangeRecord {seq, at, data})``: ``seq`` unique (a constraint, whose index ``feed_since``
  reads in order), ``at`` a Neo4j datetime (pruning compares it), ``data`` the bytes of
  :func:`cmdb_graph.feed.encode_record` (the same bytes the embedded store keeps).

One write transaction
---------------------
:class:`TxFeed` is created as the transaction's FIRST step: it increments ``seq``, which takes
the counter node's write lock until the transaction commits. cmdb-graph's write transactions
therefore run one at a time on a database, whatever the number of processes: sequence numbers
are unique, commit in order and leave no gap (a transaction that rolls back rolls its number
back too), and the old values read after the lock are exact (no other cmdb-graph write can
change a node between the read and the write). The work then reads the old rows of what it
will write (:meth:`TxFeed.old_nodes`, :meth:`TxFeed.old_rels`), computes its changes
(:meth:`TxFeed.changes`) and writes only what changes (re-importing unchanged data costs reads
only); :meth:`TxFeed.finish` stores the record, or gives the number back when nothing changed
(no record, as in the embedded store).

A change is computed from lean rows (:mod:`cmdb_graph.store.rows`) by
:func:`cmdb_graph.feed.node_change` / :func:`~cmdb_graph.feed.rel_change`, the functions the
embedded store uses: the old row as this store reads it (stub nodes count as absent, as the
embedded store has none), the new row as the batch gives it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from neo4j import ManagedTransaction

from cmdb_graph.feed import (
    SYSTEM_ACTOR,
    Actor,
    ChangeRecord,
    NodeChange,
    RelChange,
    decode_record,
    encode_record,
    node_change,
    rel_change,
)
from cmdb_graph.model import NODE_SPECS, Relationship
from cmdb_graph.store.batch import PreparedNode, PreparedRel
from cmdb_graph.store.neo4j import cypher, cypher_reads
from cmdb_graph.store.neo4j.props import from_props
from cmdb_graph.store.neo4j.writes import chunks
from cmdb_graph.store.rows import REL_KEY_FIELDS

__all__ = ["META_KEY", "FeedState", "TxFeed", "read_feed", "prune_oldest", "rel_row"]

log = logging.getLogger(__name__)

#: Key of the counter node (``(:CmdbMeta {key: 'store'})``).
META_KEY = "store"

Row = dict[str, Any]
#: A relationship with its end labels: ``(rel_type, source_label, source, target_label,
#: target)``.
FullRelKey = tuple[str, str, str, str, str]


def rel_row(props: Mapping[str, Any]) -> Row:
    """The lean row of a relationship's properties (as :func:`cypher.props_of` reads them)."""
    return from_props(Relationship, props, skip=REL_KEY_FIELDS)


def _one(tx: ManagedTransaction, query: str, **params: Any) -> list[list[Any]]:
    """The list value of a query's one row (see ``cypher_reads.get_nodes``)."""
    found: list[list[Any]] = tx.run(query, params).single(strict=True)[0]
    return found


class TxFeed:
    """The change record of one write transaction (see the module docstring).

    Parameters
    ----------
    tx : ManagedTransaction
        The write transaction; the constructor runs its first statement.
    actor : Actor or None
        Who makes the write (``None``: the system).
    batch_size : int
        Keys per read of old rows.

    Attributes
    ----------
    seq : int
        The transaction's sequence number.
    nodes, rels : list
        The changes reported so far, in order.
    reset : bool
        The transaction emptied the store first (``clear``).
    present : dict
        Per label, the keys of the nodes last given to :meth:`old_nodes` that are in the
        database (stubs included).
    """

    def __init__(self, tx: ManagedTransaction, actor: Actor | None, batch_size: int) -> None:
        self.tx = tx
        self.actor = actor if actor is not None else SYSTEM_ACTOR
        self.batch_size = batch_size
        self.seq = int(tx.run(cypher.NEXT_SEQ, key=META_KEY).single(strict=True)["seq"])
        self.nodes: list[NodeChange] = []
        self.rels: list[RelChange] = []
        self.reset = False
        self.present: dict[str, set[str]] = {}

    # -- old rows (read before the write, under the counter's lock) -----------------------
    def old_nodes(self, nodes: Sequence[PreparedNode]) -> dict[tuple[str, str], Row]:
        """The stored rows of ``nodes`` that exist (stubs do not), by ``(label, key)``.

        Also sets :attr:`present`: per label, the keys of ``nodes`` that are in the database,
        stubs included (see ``writes.batch_statements``), from the same read.
        """
        by_label: dict[str, list[str]] = {}
        for node in nodes:
            by_label.setdefault(node.label, []).append(node.key)
        out: dict[tuple[str, str], Row] = {}
        self.present = {}
        for label, keys in sorted(by_label.items()):
            spec = NODE_SPECS[label]
            query = cypher_reads.node_states(label)
            found = self.present[label] = set()
            for chunk in chunks(keys, self.batch_size):
                for key, stub, props in _one(self.tx, query, keys=list(chunk)):
                    found.add(key)
                    if not stub:
                        out[(label, key)] = from_props(spec.model, props, skip=(spec.key,))
        return out

    def old_rels(self, rels: Sequence[PreparedRel]) -> dict[FullRelKey, Row]:
        """The stored rows of ``rels`` that exist, by :data:`FullRelKey`."""
        groups: dict[tuple[str, str, str], list[dict[str, str]]] = {}
        for rel in rels:
            groups.setdefault((rel.rel_type, rel.source_label, rel.target_label), []).append(
                {"s": rel.source, "t": rel.target})
        out: dict[FullRelKey, Row] = {}
        for (rel_type, sl, tl), pairs in sorted(groups.items()):
            query = cypher_reads.get_relationships(rel_type, sl, tl)
            for chunk in chunks(pairs, self.batch_size):
                for source, target, props in _one(self.tx, query, rows=list(chunk)):
                    out.setdefault((rel_type, sl, source, tl, target), rel_row(props))
        return out

    # -- changes --------------------------------------------------------------------------
    def changes(
        self,
        nodes: Sequence[PreparedNode],
        old_nodes: Mapping[tuple[str, str], Row],
        rels: Sequence[PreparedRel],
        old_rels: Mapping[FullRelKey, Row],
    ) -> tuple[list[PreparedNode], list[PreparedRel]]:
        """Record the changes of writing ``nodes`` then ``rels`` over their old rows.

        Returns the nodes and relationships that change: the others hold their rows already,
        and the caller need not write them.
        """
        changed_nodes: list[PreparedNode] = []
        for node in nodes:
            change = node_change(node.label, node.key, old_nodes.get((node.label, node.key)),
                                 node.row)
            if change is not None:
                self.nodes.append(change)
                changed_nodes.append(node)
        changed_rels: list[PreparedRel] = []
        for rel in rels:
            full = (rel.rel_type, rel.source_label, rel.source, rel.target_label, rel.target)
            rchange = rel_change(rel.key, (rel.source_label, rel.target_label),
                                 old_rels.get(full), rel.row)
            if rchange is not None:
                self.rels.append(rchange)
                changed_rels.append(rel)
        return changed_nodes, changed_rels

    def finish(self) -> ChangeRecord | None:
        """Store the record (the transaction's last statement); ``None`` when nothing changed.

        A transaction that changed nothing gives its sequence number back and stores no record.
        """
        if not self.nodes and not self.rels and not self.reset:
            self.tx.run(cypher.UNDO_SEQ, key=META_KEY).consume()
            return None
        record = ChangeRecord(
            seq=self.seq, at=datetime.now(UTC), actor=self.actor, nodes=tuple(self.nodes),
            relationships=tuple(self.rels), reset=self.reset,
        )
        self.tx.run(cypher.WRITE_RECORD, seq=record.seq, at=record.at.isoformat(),
                    data=encode_record(record)).consume()
        return record


@dataclass(frozen=True, slots=True)
class FeedState:
    """The feed's counter as one read saw it.

    Attributes
    ----------
    head : int
        The newest sequence number (0 before the first write).
    floor : int
        Every record up to it was pruned (0: none).
    epoch : str or None
        The counter's random id (``None`` before the first write).
    """

    head: int
    floor: int
    epoch: str | None


def read_feed(
    tx: ManagedTransaction, after: int, limit: int
) -> tuple[FeedState, list[ChangeRecord]]:
    """The feed's state and the records with ``seq > after`` (at most ``limit``), in one read.

    Records are read only when ``floor <= after < head``; the caller decides what a gap means.
    """
    r = tx.run(cypher.FEED_STATE, key=META_KEY).single(strict=True)
    state = FeedState(int(r["head"]), int(r["floor"]),
                      None if r["epoch"] is None else str(r["epoch"]))
    if not state.floor <= after < state.head or limit <= 0:
        return state, []
    records = [decode_record(bytes(row["data"]))
               for row in tx.run(cypher.FEED_SINCE, after=after, limit=limit)]
    return state, records


def prune_oldest(tx: ManagedTransaction, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest records written before ``cutoff``; how many.

    Only a leading run is deleted (records are pruned in sequence order, so the feed keeps no
    hole): the floor rises to the last one deleted. Holds the counter's lock, as writes do.
    """
    r = tx.run(cypher.LOCK_FEED, key=META_KEY).single()
    if r is None:
        return 0
    floor = int(r["floor"])
    upto = floor
    for row in tx.run(cypher.FEED_OLDEST, floor=floor, limit=limit,
                      cutoff=cutoff.isoformat()):
        if not row["old"]:
            break
        upto = int(row["seq"])
    if upto == floor:
        return 0
    tx.run(cypher.PRUNE_FEED, key=META_KEY, floor=floor, upto=upto).consume()
    return upto - floor
