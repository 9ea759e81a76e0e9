"""Import runs: records in, one atomic write out.

:func:`run_import` orders the phases of a run; each phase is a module of this package.

1. Read every record (so an ``InvalidRecordError`` of the importer surfaces before anything is
   written) and validate them (:mod:`~cmdb_graph.ingest.validate`).
2. Load the candidates they can match from the store into a working set
   (:mod:`~cmdb_graph.ingest.candidates`, the only module that reads the store;
   :mod:`~cmdb_graph.ingest.workset`).
3. Apply the records in dependency order: groups, people, locations; CIs, hosts first
   (:mod:`~cmdb_graph.ingest.cis`: identification, :mod:`~cmdb_graph.ingest.merge`); assets;
   software, entitlements and relationships (:mod:`~cmdb_graph.ingest.nodes`). References
   become keys in :mod:`~cmdb_graph.ingest.references`, values are reconciled into nodes by
   :mod:`~cmdb_graph.ingest.upsert`.
4. Full runs: count misses and plan retirements, trip the circuit breaker
   (:mod:`~cmdb_graph.ingest.retire`).
5. Complete the plan from the working set's diff (:func:`cmdb_graph.ingest.plan.complete`).
6. Write it with a single ``store.apply(WriteBatch)`` call when the store writes it in one
   transaction (always in the embedded store; in Neo4j up to its configured size). The batch
   holds the ``ImportRun`` and the ``DataSource`` too, so a run is recorded exactly when its
   data is. A larger run on Neo4j is stored ``running`` first and marked succeeded by its last
   write (see :func:`_write`).

Steps 2 to 6 hold the store's import lock (:meth:`GraphStore.import_lock`): no other run
identifies or writes in between, and the runs an interrupted process left ``running`` are
undone and marked failed first (:func:`settle_interrupted`, :mod:`~cmdb_graph.ingest.undo`).
Nothing is written before step 6 (but those undos); a dry run stops before it and takes no
lock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cmdb_graph import heap
from cmdb_graph.errors import CmdbError, ImportAbortedError
from cmdb_graph.feed import SYSTEM_ACTOR, Actor, ActorKind
from cmdb_graph.ingest.candidates import Candidates, stored_source
from cmdb_graph.ingest.cis import ingest_cis
from cmdb_graph.ingest.nodes import (
    ingest_asset,
    ingest_entitlement,
    ingest_group,
    ingest_location,
    ingest_person,
    ingest_relationship,
    ingest_software,
    link_assets_by_serial,
)
from cmdb_graph.ingest.plan import ImportPlan, ImportResult, Skip, complete
from cmdb_graph.ingest.reconcile import ReconciliationPolicy, SourceRanker
from cmdb_graph.ingest.retire import retire, retire_relationships
from cmdb_graph.ingest.state import RunState
from cmdb_graph.ingest.undo import INTERRUPTED, undo_run
from cmdb_graph.ingest.validate import validate_records
from cmdb_graph.ingest.workset import WorkSet
from cmdb_graph.metrics import record_import
from cmdb_graph.model import (
    AssetRecord,
    CIRecord,
    DataSource,
    EntitlementRecord,
    GroupRecord,
    ImportRun,
    LocationRecord,
    PersonRecord,
    RelationshipRecord,
    RunMode,
    RunStatus,
    SoftwareRecord,
    to_utc,
    utcnow,
)
from cmdb_graph.model.clean import without_control_characters
from cmdb_graph.model.records import InputWarning
from cmdb_graph.store.base import GraphStore, WriteBatch
from cmdb_graph.store.paging import iter_nodes

__all__ = [
    "run_import",
    "settle_interrupted",
    "DEFAULT_RETIRE_AFTER",
    "DEFAULT_BREAKER_SHARE",
    "DEFAULT_PRELOAD_LIMIT",
]

log = logging.getLogger(__name__)

#: Consecutive missed full runs after which a CI is retired.
DEFAULT_RETIRE_AFTER = 3
#: Largest share of a source's CIs one run may retire without ``force``.
DEFAULT_BREAKER_SHARE = 0.2
#: Up to this many CIs in the store, a run loads every CI and node up front.
DEFAULT_PRELOAD_LIMIT = 50_000

#: Records applied before CIs (CIs name their groups, owners and locations), in this order.
_BEFORE_CIS: tuple[tuple[type, Callable[[RunState, Any], Any]], ...] = (
    (GroupRecord, ingest_group),
    (PersonRecord, ingest_person),
    (LocationRecord, ingest_location),
)
#: Records applied after CIs and assets, in input order.
_AFTER_CIS: dict[type, Callable[[RunState, Any], Any]] = {
    SoftwareRecord: ingest_software,
    EntitlementRecord: ingest_entitlement,
    RelationshipRecord: ingest_relationship,
}


def _record_failure(
    store: GraphStore, run: ImportRun, exc: BaseException, actor: Actor
) -> ImportRun:
    failed = run.model_copy(update={"status": RunStatus.FAILED, "finished_at": utcnow(),
                                    "error": f"{type(exc).__name__}: {exc}"[:2000]})
    try:
        store.apply(WriteBatch(nodes=[failed], actor=actor))
    except Exception as again:  # the original error matters more than the failure record
        log.info("import %s: could not record failed run %s: %s", run.source, run.run_id,
                 again)
    return failed


def run_import(
    store: GraphStore,
    records: Iterable[Any],
    *,
    source: DataSource | str,
    importer: str,
    mode: RunMode = RunMode.DELTA,
    dry_run: bool = False,
    force: bool = False,
    retire_after: int = DEFAULT_RETIRE_AFTER,
    breaker_share: float = DEFAULT_BREAKER_SHARE,
    now: datetime | None = None,
    files: Sequence[str | Path] = (),
    policy: ReconciliationPolicy | None = None,
    preload_limit: int = DEFAULT_PRELOAD_LIMIT,
    actor: Actor | None = None,
) -> ImportResult:
    """Identify, reconcile and apply one data source's records as one import run.

    Parameters
    ----------
    store : GraphStore
        Where the CMDB lives.
    records : iterable of Record
        What an importer yielded (``CIRecord``, ``RelationshipRecord``, ``AssetRecord``,
        ``GroupRecord``, ``PersonRecord``, ``LocationRecord``, ``SoftwareRecord``,
        ``EntitlementRecord``). Read completely before anything is written.
    source : DataSource or str
        The data source. A name loads the stored ``DataSource`` (or a default one with priority
        50); a ``DataSource`` is upserted as given (its priority and staleness take effect).
    importer : str
        Importer kind, recorded on the ``ImportRun``.
    mode : RunMode
        ``DELTA`` only creates and updates; ``FULL`` also counts misses and retires.
    dry_run : bool
        Plan only; write nothing at all (not even the ImportRun).
    force : bool
        Let a full run through the retirement circuit breaker.
    retire_after : int
        Consecutive missed full runs after which a CI is retired (>= 1).
    breaker_share : float
        Largest share (0..1) of the source's active CIs one run may retire without ``force``.
    now : datetime, optional
        The run's time (UTC); default now. Every time the run writes is this one.
    files : sequence of path
        Input files, recorded on the ``ImportRun``.
    policy : ReconciliationPolicy, optional
        Per class and attribute source orders overriding the priorities.
    preload_limit : int
        Up to this many CIs in the store, every candidate is loaded up front.
    actor : Actor, optional
        Who runs the import, recorded in the run's change records with the run id and data
        source (default: the data source itself; the API passes its caller).

    Returns
    -------
    ImportResult
        The run, the data source and the plan with its counts (created, updated, unchanged,
        merged, retired, skipped) and skips with reason and origin.

    Raises
    ------
    InvalidRecordError
        The importer raised one while being read, or a record is invalid (unknown CI class or
        relationship type, a bad value): nothing but a failed ``ImportRun`` is written.
    ImportAbortedError
        The full run would retire more than ``breaker_share`` of the source's CIs and
        ``force`` is false: nothing is written.
    StoreError
        The store failed; the embedded store wrote nothing, Neo4j nothing beyond one
        transaction.

    Notes
    -----
    Any exception raised while reading the records is recorded as a failed run (in its own small
    write) and re-raised; a failed run retires nothing. Dry runs never write.
    """
    if retire_after < 1:
        raise ValueError("retire_after must be at least 1")
    if not 0.0 <= breaker_share <= 1.0:
        raise ValueError("breaker_share must be between 0 and 1")
    now = now or utcnow()
    now = to_utc(now)
    ds = stored_source(store, source)
    run = ImportRun(
        run_id=f"run-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
        source=ds.name,
        importer=importer,
        mode=mode,
        status=RunStatus.RUNNING,
        started_at=now,
        files=[str(f) for f in files],
    )
    who = replace(actor or Actor(ActorKind.IMPORT, ds.name), run_id=run.run_id, source=ds.name)
    # An import allocates millions of small, long-lived objects (models, rows, lineage); with
    # the cyclic collector on, each full collection walks the whole heap again (the embedded
    # store holds the estate in it). It is paused for the run and restored afterwards.
    try:
        with heap.paused():
            result = _run(store, records, ds=ds, run=run, mode=mode, dry_run=dry_run,
                          force=force, retire_after=retire_after, breaker_share=breaker_share,
                          now=now, policy=policy, preload_limit=preload_limit, actor=who)
    except ImportAbortedError:
        record_import(importer, "aborted")
        raise
    except Exception:
        record_import(importer, "failed")
        raise
    if result.dry_run:
        record_import(importer, "dry_run")
    else:
        record_import(importer, "succeeded", result.run.counts)
    return result


def _run(
    store: GraphStore,
    records: Iterable[Any],
    *,
    ds: DataSource,
    run: ImportRun,
    mode: RunMode,
    dry_run: bool,
    force: bool,
    retire_after: int,
    breaker_share: float,
    now: datetime,
    policy: ReconciliationPolicy | None,
    preload_limit: int,
    actor: Actor,
) -> ImportResult:
    try:
        recs = list(records)
        notes = [r for r in recs if isinstance(r, InputWarning)]  # importers' warnings
        if notes:
            recs = [r for r in recs if not isinstance(r, InputWarning)]
        recs, cleaned = without_control_characters(recs)  # the API's records too
        notes += cleaned
        validate_records(store.registry, recs)
    except Exception as exc:
        if not dry_run:
            _record_failure(store, run, exc, actor)
        raise
    # Identification reads the store and the write follows from it: no other run may write
    # in between (two runs would each create the same new host). A dry run writes nothing.
    with nullcontext() if dry_run else store.import_lock():
        if not dry_run:
            settle_interrupted(store)
        try:
            plan = _plan(store, recs, ds, mode=mode, retire_after=retire_after,
                         breaker_share=breaker_share, now=now,
                         policy=policy or ReconciliationPolicy(), preload_limit=preload_limit)
            plan.warnings[:0] = [Skip(n.record_type, n.reason, n.origin) for n in notes]
        except ImportAbortedError:
            raise
        except Exception as exc:
            if not dry_run:
                _record_failure(store, run, exc, actor)
            raise
        counts = plan.counts()
        if plan.breaker_tripped and not force and not dry_run:
            n, r = len(plan.retirements), len(plan.removed_rels)
            raise ImportAbortedError(
                f"import of {ds.name} refused: this full run would retire {n} of the source's "
                f"{plan.active} CIs ({n / max(plan.active, 1):.0%}) and remove {r} of its "
                f"{plan.active_rels} relationships ({r / max(plan.active_rels, 1):.0%}), "
                f"more than the {breaker_share:.0%} allowed; check the input or force the run"
            )
        if dry_run:
            done = run.model_copy(update={"status": RunStatus.DRY_RUN, "counts": counts,
                                          "finished_at": now})
            return ImportResult(run=done, source=ds, plan=plan, dry_run=True)
        done = run.model_copy(update={"status": RunStatus.SUCCEEDED, "counts": counts,
                                      "finished_at": now})
        try:
            done = _write(store, plan, ds=ds, run=run, done=done, actor=actor)
        except Exception as exc:
            _record_failure(store, run, exc, actor)
            raise
    log.info("import %s run %s (%s): %s", ds.name, run.run_id, mode.value, counts)
    return ImportResult(run=done, source=ds, plan=plan, dry_run=False)


def _write(
    store: GraphStore, plan: ImportPlan, *, ds: DataSource, run: ImportRun, done: ImportRun,
    actor: Actor,
) -> ImportRun:
    """Write the plan so that the stored run tells the truth at every commit; return the run
    as stored (``done`` with its ``feed_from``).

    One transaction when the store writes the whole batch at once: the run appears succeeded
    with its data, a merge moves and deletes the duplicate's relationships in it. Otherwise
    (a large run on Neo4j): the run is stored ``running`` first, then the data (several
    transactions), and marked succeeded by the last write.
    """
    nodes, rels, deletes = list(plan.batch.nodes), list(plan.batch.relationships), plan.deletes
    # the feed head before the run's first write: its change records follow it (undo_run)
    start = store.feed_head()
    run = run.model_copy(update={"feed_from": start})
    done = done.model_copy(update={"feed_from": start})
    whole = WriteBatch(nodes=[ds, *nodes, done], relationships=rels, deletes=list(deletes),
                       actor=actor)
    if store.writes_at_once(whole):
        store.apply(whole)
        return done
    store.apply(WriteBatch(nodes=[ds, run], actor=actor))
    store.apply(WriteBatch(nodes=nodes, relationships=rels, deletes=list(deletes), actor=actor))
    store.apply(WriteBatch(nodes=[done], actor=actor))
    return done


def settle_interrupted(store: GraphStore) -> list[ImportRun]:
    """Undo the runs left ``running`` by an interrupted process, and mark them failed.

    Called by every import run while it holds the import lock, when no other run can be
    running: a stored run that reads ``running`` was interrupted (its process was killed
    between its first and its last write, which only a run Neo4j writes in several
    transactions can be). What it wrote is undone (:func:`cmdb_graph.ingest.undo.undo_run`:
    one atomic write, recorded in the change feed) and the run is marked failed with an error
    that says it was interrupted and what was undone. When the undo cannot be made (its change
    records were pruned, the store failed), the run is only marked failed and its writes stay
    (the error says so; re-running the same input completes them, since runs are
    idempotent).

    Returns
    -------
    list of ImportRun
        The runs marked failed (as now stored).
    """
    stale = [n for n in iter_nodes(store, ImportRun.LABEL, {"status": RunStatus.RUNNING.value})
             if isinstance(n, ImportRun)]
    out: list[ImportRun] = []
    for run in stale:
        try:
            out.append(undo_run(store, run, reason=INTERRUPTED).run)
            continue
        except (CmdbError, ValueError) as exc:
            log.warning("import run %s of %s was interrupted and cannot be undone: %s",
                        run.run_id, run.source, exc)
            why = str(exc)
        failed = run.model_copy(update={
            "status": RunStatus.FAILED, "finished_at": utcnow(),
            "error": f"{INTERRUPTED}; its writes could not be undone ({why}) and stay, re-run "
                     "the import to complete them"[:2000]})
        store.apply(WriteBatch(nodes=[failed], actor=SYSTEM_ACTOR))
        out.append(failed)
    return out


def _plan(
    store: GraphStore,
    recs: Sequence[Any],
    ds: DataSource,
    *,
    mode: RunMode,
    retire_after: int,
    breaker_share: float,
    now: datetime,
    policy: ReconciliationPolicy,
    preload_limit: int,
) -> ImportPlan:
    """Phases 2 to 5: candidates, records, retirement, the completed plan (no writes)."""
    cands = Candidates(store, WorkSet(), preload_limit=preload_limit)
    ranker = SourceRanker(cands.data_sources(ds), policy, store.registry)
    cands.load(recs, ds.name, whole_source=mode is RunMode.FULL)
    run = RunState(src=ds.name, now=now, ranker=ranker, cands=cands)
    _apply_records(run, recs)
    if mode is RunMode.FULL:
        retire(run, retire_after=retire_after, breaker_share=breaker_share)
        retire_relationships(run, breaker_share=breaker_share)
    return complete(run.plan, run.ws)


def _apply_records(run: RunState, recs: Sequence[Any]) -> None:
    """Every record, in dependency order; ``run.plan.applied`` says what each became."""
    applied = run.plan.applied = [None] * len(recs)
    for kind, ingest in _BEFORE_CIS:
        for i, rec in enumerate(recs):
            if isinstance(rec, kind):
                applied[i] = ingest(run, rec)
    ingest_cis(run, [(i, r) for i, r in enumerate(recs) if isinstance(r, CIRecord)])
    for i, rec in enumerate(recs):
        if isinstance(rec, AssetRecord):
            applied[i] = ingest_asset(run, rec)
    link_assets_by_serial(run)
    for i, rec in enumerate(recs):
        after = _AFTER_CIS.get(type(rec))
        if after is not None:
            applied[i] = after(run, rec)
