"""Impact engine: pure functions over networkx graphs extracted by a store.

The graph shape is documented in :mod:`cmdb_graph.store.base`. Closure and status propagation
run over a compact array form (:class:`Topology`); networkx serves the algorithms on extracted
subgraphs (paths, single points of failure, exports). Semantics: DESIGN section 4 and the
docstrings of each function.
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
    ImpactStatus,
    ImpactSummary,
    Neighbourhood,
    NodeRef,
    PathsResult,
    ProbableCause,
    ProbableCauses,
    QualityFinding,
    QualityReport,
    RedundancyImpact,
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
