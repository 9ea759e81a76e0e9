"""Undo an interrupted import run: the store as it was before the run, in one transaction.

A run that Neo4j writes in several transactions is stored ``running`` before its first write
and marked succeeded by its last; a process that dies in between leaves part of its data. Every
one of those writes is a change record of the feed naming the run (``Actor.run_id``), and the
run keeps the feed head from right before its first write (``ImportRun.feed_from``). So
:func:`undo_run` reads the run's records, folds each node's and relationship's changes into
one (:func:`cmdb_graph.feed.net_node_changes`), and writes their inverse
(:func:`cmdb_graph.feed.undo_checked`) as ONE atomic :class:`~cmdb_graph.store.batch.WriteBatch`
together with the run marked failed and undone:

* nodes the run created are deleted (with their relationships), nodes it changed get their
  old values back (a field it added is removed), nodes it deleted come back;
* relationships it added are removed, those it removed come back with their old properties,
  those it changed get their old properties back;
* a merge (an update that set ``duplicate_of``, with its moved relationships) is undone the same
  way, field by field and relationship by relationship;
* what another writer changed since (an API mutation) is left as it is now and counted as
  ``kept``; the ``ImportRun`` node itself is not undone, it is the record of what happened.

The undo is a write like any other: one change record (actor: the system, named
``undo of <run id>``, with the run's data source), so engines following the feed, history and
time travel see it. Undoing a run twice writes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cmdb_graph.errors import FeedGapError, HistoryUnavailableError, ImportAbortedError
from cmdb_graph.feed import (
    Actor,
    ActorKind,
    ChangeRecord,
    RelChange,
    net_node_changes,
    net_rel_changes,
    undo_checked,
)
from cmdb_graph.model import NODE_SPECS, ImportRun, Node, Relationship, RunStatus, utcnow
from cmdb_graph.store.base import GraphStore, WriteBatch
from cmdb_graph.store.rows import REL_KEY_FIELDS, dump_row, node_from_row, rel_from_row

__all__ = ["INTERRUPTED", "UndoResult", "undo_run", "undo_actor", "run_records"]

log = logging.getLogger(__name__)

#: What the error of a run that was interrupted starts with.
INTERRUPTED = "interrupted: the process ended between the run's first and last write"

_RUN_LABEL = ImportRun.LABEL
#: Records read per ``feed_since`` call.
_PAGE = 1000

RelKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class UndoResult:
    """What :func:`undo_run` did.

    Attributes
    ----------
    run : ImportRun
        The run as now stored (failed, ``undone_at`` set).
    records : int
        The run's change records that were undone.
    nodes_deleted : int
        Nodes the run created, deleted.
    nodes_restored : int
        Nodes the run changed (or deleted), given their old values back.
    relationships_removed : int
        Relationships the run added, removed.
    relationships_restored : int
        Relationships the run changed or removed, given back their old properties.
    kept : int
        Fields and items another writer changed after the run, left as they are now.
    already : bool
        The run had been undone before: nothing was written.
    """

    run: ImportRun
    records: int = 0
    nodes_deleted: int = 0
    nodes_restored: int = 0
    relationships_removed: int = 0
    relationships_restored: int = 0
    kept: int = 0
    already: bool = False

    def summary(self) -> str:
        """The counts in words, e.g. ``"3 change records: 120 nodes deleted, ..."``."""
        text = (f"{self.records} change records: {self.nodes_deleted} nodes deleted, "
                f"{self.nodes_restored} restored, {self.relationships_removed} relationships "
                f"removed, {self.relationships_restored} restored")
        if self.kept:
            text += f", {self.kept} later changes by others kept"
        return text


def undo_actor(run: ImportRun) -> Actor:
    """The actor of the write that undoes ``run`` (the system, with the run's data source)."""
    return Actor(ActorKind.SYSTEM, f"undo of {run.run_id}", source=run.source)


def run_records(store: GraphStore, run: ImportRun) -> list[ChangeRecord]:
    """The change records of ``run`` (``Actor.run_id``), oldest first.

    Read from ``run.feed_from`` (from the feed's start for a run stored before it was kept).

    Raises
    ------
    HistoryUnavailableError
        Records after ``feed_from`` were pruned (``CMDB_FEED_RETENTION_DAYS``): what the run
        wrote is no longer known.
    """
    after = run.feed_from or 0
    out: list[ChangeRecord] = []
    try:
        while True:
            page = store.feed_since(after, limit=_PAGE)
            if not page:
                return out
            out += [r for r in page if r.actor.run_id == run.run_id]
            after = page[-1].seq
    except FeedGapError as exc:
        raise HistoryUnavailableError(
            f"the change records of run {run.run_id} are no longer kept ({exc}): its writes "
            "cannot be undone") from exc


def _node_rows(store: GraphStore, keys: Iterable[tuple[str, str]]
               ) -> dict[tuple[str, str], dict[str, Any]]:
    """The current lean rows of the nodes ``keys`` that exist."""
    by_label: dict[str, list[str]] = {}
    for label, key in keys:
        by_label.setdefault(label, []).append(key)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for label, wanted in by_label.items():
        spec_key = NODE_SPECS[label].key
        for key, node in store.get_nodes(label, wanted).items():
            out[(label, key)] = dump_row(node, {spec_key}, f"{label} {key!r}")
    return out


def _rel_rows(store: GraphStore, changes: Mapping[RelKey, RelChange]
              ) -> dict[RelKey, dict[str, Any]]:
    """The current lean rows of the relationships of ``changes`` that exist (one read per
    source node)."""
    by_source: dict[tuple[str, str], set[str]] = {}
    for c in changes.values():
        by_source.setdefault((c.source_label, c.source), set()).add(c.rel_type)
    out: dict[RelKey, dict[str, Any]] = {}
    for (label, source), types in by_source.items():
        for rel in store.relationships(source, rel_types=sorted(types), label=label):
            if rel.key in changes and rel.source == source:
                out[rel.key] = dump_row(rel, set(REL_KEY_FIELDS), f"{rel.key}")
    return out


def undo_run(
    store: GraphStore, run: ImportRun | str, *, reason: str | None = None,
    now: datetime | None = None,
) -> UndoResult:
    """Undo what an interrupted (or failed) import run wrote, and mark it failed and undone.

    Call it holding the store's import lock (``store.import_lock()``): no run may write while
    the undo reads and writes. One atomic write, recorded in the change feed.

    Parameters
    ----------
    store : GraphStore
        The store.
    run : ImportRun or str
        The run, or its ``run_id`` (read again from the store either way).
    reason : str, optional
        What the run's error says happened (default: the run's own error when it failed, else
        :data:`INTERRUPTED`); the counts of the undo are added to it.
    now : datetime, optional
        When (default now); the run's ``undone_at`` (and ``finished_at`` when it had none).

    Returns
    -------
    UndoResult
        The counts, and the run as now stored; ``already`` when it had been undone before
        (nothing is written then).

    Raises
    ------
    NotFoundError
        No run with that id.
    ImportAbortedError
        The run succeeded or was a dry run: there is nothing interrupted to undo.
    HistoryUnavailableError
        The run's change records were pruned.
    StoreError
        The store failed; nothing of the undo is written.
    """
    found = store.get_node(_RUN_LABEL, run if isinstance(run, str) else run.run_id)
    assert isinstance(found, ImportRun)
    run = found  # as stored now: an undo of the same run may have come first
    if run.undone_at is not None:
        return UndoResult(run=run, already=True)
    if run.status in (RunStatus.SUCCEEDED, RunStatus.DRY_RUN):
        raise ImportAbortedError(f"run {run.run_id} {run.status.value}: only an interrupted or "
                                 "failed run is undone")
    records = run_records(store, run)
    nodes = net_node_changes(c for r in records for c in r.nodes if c.label != _RUN_LABEL)
    rels = net_rel_changes(c for r in records for c in r.relationships)
    current = _node_rows(store, nodes)
    kept = 0
    upserts: list[Node] = []
    deletes: list[tuple[str, str]] = []
    deleted = restored = 0
    for (label, key), nchange in nodes.items():
        now_row = current.get((label, key))
        row, left = undo_checked(now_row, nchange)
        kept += len(left)
        if row is None:
            if now_row is not None:
                deletes.append((label, key))
                deleted += 1
        elif row != now_row:
            upserts.append(node_from_row(label, key, row))
            restored += 1
    rel_upserts, rel_deletes, kept_rels = _undo_rels(store, rels, current, deletes, upserts)
    when = now or utcnow()
    note = reason or (run.error if run.status is RunStatus.FAILED and run.error
                      else INTERRUPTED)
    result = UndoResult(
        run=run, records=len(records), nodes_deleted=deleted, nodes_restored=restored,
        relationships_removed=len(rel_deletes),
        relationships_restored=len(rel_upserts), kept=kept + kept_rels)
    done = run.model_copy(update={
        "status": RunStatus.FAILED, "finished_at": run.finished_at or when, "undone_at": when,
        "error": f"{note}; its writes were undone ({result.summary()})"[:2000]})
    store.apply(WriteBatch(nodes=[*upserts, done], relationships=rel_upserts,
                           deletes=rel_deletes, node_deletes=deletes, actor=undo_actor(run),
                           atomic=True))
    log.warning("import run %s of %s undone: %s", run.run_id, run.source, result.summary())
    return UndoResult(run=done, records=result.records, nodes_deleted=deleted,
                      nodes_restored=restored, relationships_removed=len(rel_deletes),
                      relationships_restored=len(rel_upserts), kept=result.kept)


def _undo_rels(
    store: GraphStore, rels: Mapping[RelKey, RelChange],
    current_nodes: Mapping[tuple[str, str], Any], node_deletes: list[tuple[str, str]],
    node_upserts: list[Node],
) -> tuple[list[Relationship], list[RelKey], int]:
    """The relationships to write back and to remove, and how many were kept as they are (a
    relationship whose end will not exist is not written back)."""
    current = _rel_rows(store, rels)
    gone = set(node_deletes)
    coming = {(n.LABEL, getattr(n, NODE_SPECS[n.LABEL].key)) for n in node_upserts}
    ends: set[tuple[str, str]] = set()
    for c in rels.values():
        ends |= {(c.source_label, c.source), (c.target_label, c.target)}
    unknown = ends - set(current_nodes) - coming
    existing = set(current_nodes) | set(_node_rows(store, unknown))
    kept = 0
    upserts: list[Relationship] = []
    deletes: list[RelKey] = []
    for key, change in rels.items():
        now_row = current.get(key)
        row, left = undo_checked(now_row, change)
        kept += len(left)
        if row is None:
            if now_row is not None:
                deletes.append(key)
            continue
        if row == now_row:
            continue
        pair = ((change.source_label, change.source), (change.target_label, change.target))
        if any(end in gone or (end not in existing and end not in coming) for end in pair):
            kept += 1
            continue
        upserts.append(rel_from_row(*key, row, source_label=change.source_label,
                                    target_label=change.target_label))
    return upserts, deletes, kept
