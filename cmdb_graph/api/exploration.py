"""Exploration: the neighbourhood of a CI, paths between two CIs, a service's map down to its
infrastructure, and its single points of failure.

The answers are the engine's result models (:mod:`impact.results`), typed here by field lists
(:mod:`cmdb_graph.api.derive`).
"""

from __future__ import annotations

from typing import Annotated

import strawberry

import impact
from cmdb_graph.api.cis.types import ConfigurationItemType, load_ci
from cmdb_graph.api.common import AsOf, Info, guarded, when
from cmdb_graph.api.derive import Field, answer, answers, derived, ids, of
from cmdb_graph.api.errors import UserError
from cmdb_graph.service.mapview import nearest_first
from cmdb_graph.settings import Role
from cmdb_graph.store.base import Direction

__all__ = ["ExplorationQuery", "NodeRef"]

TraversalDirection = strawberry.enum(
    Direction, name="TraversalDirection",
    description=(
        "upstream: the CIs a failure reaches (dependents, the blast-radius side); downstream: "
        "the CIs it needs; both."
    ),
)


async def _node_ci(root: impact.NodeRef, info: Info) -> ConfigurationItemType | None:
    return await load_ci(info, root.ci_id)


@derived(impact.NodeRef, description="A CI in an exploration result, with its distance.",
         fields={
             "ci_id": ids("The CI."),
             "name": "Its name.",
             "ci_class": "Its CI class.",
             "distance": "Hops from the start.",
         })
class NodeRef:
    ci = strawberry.field(resolver=_node_ci,
                          description="The full configuration item (status, environment, ...; "
                                      "batched for all nodes).")


@derived(impact.EdgeRef, description="A relationship, dependent -> what it needs.", fields={
    "source": ids("The dependent CI."),
    "target": ids("The CI it needs."),
    "rel_type": "Relationship type.",
    "optional": "An optional dependency.",
})
class EdgeRef:
    pass


@derived(impact.Neighbourhood,
         description="CIs within some hops of a CI and the relationships among them.", fields={
             "center": ids("The start CI."),
             "depth": "Hops explored.",
             "direction": "upstream, downstream or both.",
             "nodes": "CIs, by distance then ci_id.",
             "edges": "Relationships among them.",
         })
class Neighbourhood:
    total_nodes: int = strawberry.field(
        description="CIs within the depth, before the maxNodes cap."
    )
    truncated: bool = strawberry.field(
        description="maxNodes left CIs out (the farthest ones, then by ci_id)."
    )


NeighbourhoodResult = Annotated[
    Neighbourhood | UserError,
    strawberry.union("NeighbourhoodResult", description="The neighbourhood, or why not."),
]


@strawberry.type(description="One path between two CIs.")
class Path:
    ci_ids: list[strawberry.ID] = strawberry.field(description="The CIs along the path.")
    rel_types: list[str] = strawberry.field(
        description="Relationship type(s) of each hop ('A|B' when several)."
    )


def _paths(root: impact.PathsResult) -> list[Path]:
    return [Path(ci_ids=list(p), rel_types=list(t))  # type: ignore[arg-type]
            for p, t in zip(root.paths, root.rel_types, strict=True)]


@derived(impact.PathsResult, name="Paths",
         description="Simple paths between two CIs, shortest first.", fields={
             "source": ids("Start CI."),
             "target": ids("End CI."),
             "paths": Field("The paths found.", resolver=_paths),
             "truncated": "More paths exist within the bounds.",
         })
class Paths:
    pass


PathsResult = Annotated[
    Paths | UserError, strawberry.union("PathsResult", description="Paths, or why not.")
]


@derived(impact.ServiceLayer, description="The CIs at one depth below a service.", fields={
    "depth": "Hops below the service.",
    "ci_ids": ids("CIs at that depth."),
})
class ServiceLayer:
    pass


@derived(impact.ServiceMap, description="A service down to its infrastructure.", fields={
    "service": ids("The service."),
    "nodes": "Every CI it needs, with distance.",
    "edges": "Impact-carrying relationships.",
    "layers": "CIs by depth.",
    "truncated": "CIs lie beyond the depth asked for.",
})
class ServiceMap:
    pass


ServiceMapResult = Annotated[
    ServiceMap | UserError,
    strawberry.union("ServiceMapResult", description="The map, or why not."),
]


@derived(impact.SinglePointOfFailure,
         description="A CI whose failure alone takes a service down.", fields={
             "ci_id": ids("The CI."),
             "name": "Its name.",
             "ci_class": "Its CI class.",
             "depth": "Hops below the service.",
             "path": ids("From the service down to it."),
         })
class SinglePointOfFailure:
    pass


@strawberry.type(description="The single points of failure of a service.")
class SinglePointsOfFailure:
    service: strawberry.ID = strawberry.field(description="The service.")
    points: list[SinglePointOfFailure] = strawberry.field(
        description="By depth below the service, then ci_id."
    )


SinglePointsOfFailureResult = Annotated[
    SinglePointsOfFailure | UserError,
    strawberry.union("SinglePointsOfFailureResult", description="The CIs, or why not."),
]


@strawberry.type
class ExplorationQuery:
    """Neighbourhoods, paths, service maps and single points of failure."""

    @strawberry.field(description="CIs within some hops of a CI and the relationships among "
                                  "them.")
    async def neighbourhood(
        self,
        info: Info,
        ci_id: strawberry.ID,
        depth: int = 1,
        direction: TraversalDirection = Direction.BOTH,
        rel_types: list[str] | None = None,
        max_nodes: Annotated[int | None, strawberry.argument(
            description="Return at most this many CIs, nearest first, and the relationships "
                        "among them (default: all, up to the server's result cap)."
        )] = None,
        as_of: AsOf = None,
    ) -> NeighbourhoodResult:
        engine = info.context.app.engine

        def work() -> Neighbourhood:
            with engine.as_of(when(as_of)):
                found = engine.neighbourhood(str(ci_id), depth=depth,
                                             direction=str(direction), rel_types=rel_types)
            r, total = nearest_first(found, max_nodes)
            return of(Neighbourhood, r, total_nodes=total, truncated=total > len(r.nodes))

        return await guarded(info, Role.READER, work)

    @strawberry.field(description="Simple paths between two CIs, shortest first.")
    async def paths(
        self,
        info: Info,
        source: strawberry.ID,
        target: strawberry.ID,
        max_paths: int = 10,
        max_length: int | None = None,
        direction: TraversalDirection = Direction.BOTH,
        rel_types: list[str] | None = None,
    ) -> PathsResult:
        engine = info.context.app.engine
        def work() -> Paths:
            return answer(Paths, engine.paths(
                str(source), str(target), max_paths=max_paths, max_length=max_length,
                direction=str(direction), rel_types=rel_types,
            ))

        return await guarded(info, Role.READER, work)

    @strawberry.field(description="A service down to its infrastructure, layer by layer.")
    async def service_map(
        self, info: Info, service: strawberry.ID, depth: int | None = None, as_of: AsOf = None
    ) -> ServiceMapResult:
        engine = info.context.app.engine

        def work() -> ServiceMap:
            with engine.as_of(when(as_of)):
                return answer(ServiceMap, engine.service_map(str(service), depth=depth))

        return await guarded(info, Role.READER, work)

    @strawberry.field(description="The CIs whose failure alone takes a service down "
                                  "(redundancy rules applied).")
    async def single_points_of_failure(
        self, info: Info, service: strawberry.ID, as_of: AsOf = None
    ) -> SinglePointsOfFailureResult:
        engine = info.context.app.engine

        def work() -> SinglePointsOfFailure:
            with engine.as_of(when(as_of)):
                found = engine.single_points_of_failure(str(service))
            return SinglePointsOfFailure(service=service,
                                         points=answers(SinglePointOfFailure, found))

        return await guarded(info, Role.READER, work)
