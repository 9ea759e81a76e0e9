"""Impact engine: pure functions over an estate's dependency graph.

Every function takes an :class:`ImpactGraph` first (the dependency graph a store extracted, in
the shape documented in :mod:`cmdb_graph.store.base`, with its registry and its
:class:`Topology`, built once) and options as keywords, never reads the clock (``now`` is a
parameter) and returns frozen, deterministically sorted results (:mod:`impact.results`).

- Status: :func:`propagate_status` (down / degraded along each relationship type's impact
  direction, redundancy rules, cycles).
- Changes: :func:`change_impact`, :func:`change_conflicts`, :func:`schedule_conflicts`.
- Incidents: :func:`route_incident`, :func:`probable_cause`.
- Data quality: :data:`REPORTS`, :func:`run_report`, :func:`run_all` (:mod:`impact.quality`);
  the dependency map's coverage: :func:`coverage` (:mod:`impact.coverage`).
- Exploration: :func:`neighbourhood`, :func:`paths_between`, :func:`service_map`,
  :func:`single_points_of_failure`.
- Caps: :class:`ImpactLimits` (``TraversalLimitError`` beyond them).

Closure and propagation run over :class:`Topology` (CSR arrays, :mod:`impact.csr`; vectorised
frontier passes, :mod:`impact.passes`; explaining inputs and paths, :mod:`impact.explain`);
networkx serves the algorithms on extracted subgraphs (paths, single points of failure).
"""

from impact.change import change_impact
from impact.conflicts import INACTIVE_CHANGE_STATES, change_conflicts, schedule_conflicts
from impact.coverage import Coverage, coverage
from impact.explore import neighbourhood, paths_between, service_map, single_points_of_failure
from impact.graph import ImpactGraph
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
    PathLink,
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
    "INACTIVE_CHANGE_STATES",
    "REPORTS",
    "ChangeConflict",
    "ChangeImpact",
    "ConflictKind",
    "Coverage",
    "EdgeRef",
    "ImpactGraph",
    "ImpactLimits",
    "ImpactStatus",
    "ImpactSummary",
    "ImpactedCI",
    "ImpactedCIs",
    "PathLink",
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
    "coverage",
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
