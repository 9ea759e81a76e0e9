"""Coverage of the dependency map: where it is thin, and how much of it was inferred.

Real container estates declare few dependencies; importers infer more from settings
(``inferred`` relationships). This report says how much of the map rests on inference and
where the map has holes an engineer should look at.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmdb_graph.model import ImpactDirection
from impact.graph import ImpactGraph

__all__ = ["Coverage", "coverage"]


@dataclass(frozen=True, slots=True)
class Coverage:
    """The coverage of one estate's dependency map.

    Attributes
    ----------
    services_without_dependencies : tuple of str
        Business and application services (not retired) that need nothing: impact can never
        reach them.
    containers_without_dependents : tuple of str
        Containers (not retired) that nothing needs: no service and no other CI rests on them
        (an optional inferred relationship, which is how importers attach the containers no
        workload needs to their application service, does not count).
    relationships : int
        CI-to-CI relationships that carry impact.
    inferred_relationships : int
        Those of them an importer inferred (from environment values, arguments, connection
        strings, application grouping) rather than a source declared.
    """

    services_without_dependencies: tuple[str, ...]
    containers_without_dependents: tuple[str, ...]
    relationships: int
    inferred_relationships: int

    @property
    def inferred_share(self) -> float:
        """``inferred_relationships / relationships`` (0.0 with no relationships)."""
        return self.inferred_relationships / self.relationships if self.relationships else 0.0


def coverage(graph: ImpactGraph) -> Coverage:
    """Services that need nothing, containers nothing needs, and the share of impacting
    relationships that were inferred (see :class:`Coverage`).

    A relationship "needs" along its type's impact direction: ``(a)-[DEPENDS_ON]->(b)`` makes
    ``a`` need ``b``; ``(m)-[MEMBER_OF]->(c)`` makes ``c`` need ``m``. Types that carry no
    impact are not counted.
    """
    reg = graph.registry
    directions = reg.impacting_types()
    needs: set[str] = set()
    needed: set[str] = set()
    total = inferred = 0
    for u, v, rel_type, is_inferred, optional in graph.inferred_flags():
        direction = directions.get(rel_type)
        if direction is ImpactDirection.END_TO_START:
            needer, need = u, v
        elif direction is ImpactDirection.START_TO_END:
            needer, need = v, u
        else:
            continue
        needs.add(needer)
        if not (is_inferred and optional):
            needed.add(need)
        total += 1
        inferred += is_inferred
    live = sorted(c for c in graph.ci_ids() if not graph.is_retired(c))
    containers = [c for c in live if graph.ci_class(c) in reg.classes
                  and "Container" in reg.ancestors(graph.ci_class(c))]
    return Coverage(
        services_without_dependencies=tuple(c for c in live
                                            if graph.is_service(c) and c not in needs),
        containers_without_dependents=tuple(c for c in containers if c not in needed),
        relationships=total,
        inferred_relationships=inferred,
    )
