"""Impact engine: pure functions over networkx graphs extracted by a store.

The graph shape is documented in :mod:`cmdb_graph.store.base` (MultiDiGraph, node id =
``ci_id``, edges dependent -> dependency keyed by relationship type). Every function takes the
graph first and options as keywords, never reads the clock (``now`` is a parameter) and returns
frozen, deterministically sorted results (:mod:`impact.results`). Pass ``topology=`` (a
:class:`Topology` built once from the same graph) to skip rebuilding the array form per call.

- Status: :func:`propagate_status` (DESIGN section 4 rules, redundancy, cycles).
- Changes: :func:`change_impact`, :func:`change_conflicts`, :func:`schedule_conflicts`.
- Incidents: :func:`route_incident`, :func:`probable_cause`.
- Data quality: :data:`REPORTS`, :func:`run_report`, :func:`run_all` (:mod:`impact.quality`).
- Exploration: :func:`neighbourhood`, :func:`paths_between`, :func:`service_map`,
  :func:`single_points_of_failure`.
- Caps: :class:`ImpactLimits` (``TraversalLimitError`` beyond them).

Closure and propagation run over :class:`Topology` (CSR arrays, vectorised frontier passes);
networkx serves the algorithms on extracted subgraphs (paths, single points of failure).
"""

from impact.change import change_conflicts, change_impact, schedule_conflicts
from impact.explore import neighbourhood, paths_between, service_map, single_points_of_failure
from impact.incident import probable_cause, route_incident
from impact.limits import DEFAULT_LIMITS, ImpactLimits
from impact.propagation import propagate_status
from impact.quality import REPORTS, QualityInput, QualityOptions, run_all, run_report
from impact.results import (
    ChangeConflict,
    ChangeImpact,
    ConflictKind,
    EdgeRef,
    ImpactedCI,
    ImpactedCIs,
    ImpactStatus,
    ImpactSummary,
    LazyItems,
    Neighbourhood,
    NodeRef,
    PathsResult,
    ProbableCause,
    ProbableCauses,
    QualityFinding,
    QualityReport,
    RedundancyImpact,
    RedundancyImpacts,
    Routing,
    ServiceLayer,
    ServiceMap,
    SinglePointOfFailure,
    StatusResult,
)
from impact.topology import Propagation, Topology, parse_redundancy
from impact.windows import window_contains, window_overlaps

__all__ = [
    "DEFAULT_LIMITS",
    "REPORTS",
    "ChangeConflict",
    "ChangeImpact",
    "ConflictKind",
    "EdgeRef",
    "ImpactLimits",
    "ImpactStatus",
    "ImpactSummary",
    "ImpactedCI",
    "ImpactedCIs",
    "LazyItems",
    "Neighbourhood",
    "NodeRef",
    "PathsResult",
    "ProbableCause",
    "ProbableCauses",
    "Propagation",
    "QualityFinding",
    "QualityInput",
    "QualityOptions",
    "QualityReport",
    "RedundancyImpact",
    "RedundancyImpacts",
    "Routing",
    "ServiceLayer",
    "ServiceMap",
    "SinglePointOfFailure",
    "StatusResult",
    "Topology",
    "change_conflicts",
    "change_impact",
    "neighbourhood",
    "parse_redundancy",
    "paths_between",
    "probable_cause",
    "propagate_status",
    "route_incident",
    "run_all",
    "run_report",
    "schedule_conflicts",
    "service_map",
    "single_points_of_failure",
    "window_contains",
    "window_overlaps",
]
