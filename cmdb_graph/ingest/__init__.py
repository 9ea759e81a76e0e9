"""Identification, reconciliation and import runs.

Importers yield records (:mod:`cmdb_graph.model.records`); :func:`run_import` identifies them
against the store's configuration items, reconciles attribute values by data-source priority,
records lineage, retires what full runs no longer see, and writes the result in one batch.

Public API
----------
:func:`run_import`
    One import run (delta or full, dry run, forced), returning an :class:`ImportResult` (the
    written ``ImportRun``, the ``DataSource`` and the :class:`ImportPlan` with its counts,
    creates, updates, merges, retirements, skips and warnings).
:func:`undo_run`
    Undo what an interrupted import run wrote (the store as before it, in one write) and mark
    it failed; the next run does it for every run an interrupted process left ``running``.
:class:`ReconciliationPolicy`
    Per CI class and attribute source orders that override data-source priorities.
:func:`lineage_of`
    A CI's provenance: per source first/last seen, per attribute value, source and time.
:mod:`cmdb_graph.ingest.identify`, :mod:`cmdb_graph.ingest.reconcile`
    The identifier rules and the reconciliation rules as pure functions.
:mod:`cmdb_graph.ingest.references`
    The one place where a reference (identifiers, a name) becomes a ``ci_id`` or node key:
    import runs and the API's mutations both resolve through it.

One module per phase of a run (:mod:`cmdb_graph.ingest.run` orders them): ``validate``,
``candidates`` (the only module that reads the store), ``workset`` (what the run read and
planned, and the diff), ``cis`` and ``nodes`` (records to upserts), ``references``,
``upsert``, ``merge``, ``retire``, ``plan``.

Keys ingestion derives: new CIs ``ci-<hash of class group, first usable rule, its value>``,
assets ``ast-<hash>``, support groups ``grp-<slug of name>``, people ``per-<slug of username,
e-mail or name>``, locations ``loc-<slug>``, software products ``sw-<slug of vendor and name>``,
entitlements ``ent-<slug of source and native key, or of name>``. Two locations (or groups)
with the same name are one node.
"""

from cmdb_graph.ingest.identify import CIIndex, RecordKeys, match_rule, norm_mac, norm_serial, slug
from cmdb_graph.ingest.lineage import AttributeValue, CILineage, lineage_of
from cmdb_graph.ingest.plan import (
    COUNT_KEYS,
    ImportPlan,
    ImportResult,
    Merge,
    PlannedChange,
    Retirement,
    Skip,
)
from cmdb_graph.ingest.reconcile import ReconciliationPolicy, SourceRanker, reconcile_values
from cmdb_graph.ingest.run import (
    DEFAULT_BREAKER_SHARE,
    DEFAULT_PRELOAD_LIMIT,
    DEFAULT_RETIRE_AFTER,
    run_import,
)
from cmdb_graph.ingest.undo import UndoResult, undo_run

__all__ = [
    "COUNT_KEYS",
    "DEFAULT_BREAKER_SHARE",
    "DEFAULT_PRELOAD_LIMIT",
    "DEFAULT_RETIRE_AFTER",
    "AttributeValue",
    "CIIndex",
    "CILineage",
    "ImportPlan",
    "ImportResult",
    "Merge",
    "PlannedChange",
    "RecordKeys",
    "ReconciliationPolicy",
    "Retirement",
    "Skip",
    "SourceRanker",
    "UndoResult",
    "lineage_of",
    "match_rule",
    "norm_mac",
    "norm_serial",
    "reconcile_values",
    "run_import",
    "slug",
    "undo_run",
]
