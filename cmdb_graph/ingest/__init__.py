"""Identification, reconciliation and import runs.

Importers yield records (:mod:`cmdb_graph.model.records`); :func:`run_import` identifies them
against the store's configuration items, reconciles attribute values by data-source priority,
records lineage, retires what full runs no longer see, and writes the result in one batch.
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
    "lineage_of",
    "match_rule",
    "norm_mac",
    "norm_serial",
    "reconcile_values",
    "run_import",
    "slug",
]
