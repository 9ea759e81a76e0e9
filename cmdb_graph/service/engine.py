"""The composition layer between a store and the impact engine (used by the API and the CLI).

Impact functions (:mod:`impact`) are pure and run over an :class:`impact.ImpactGraph` (a
networkx graph with its registry and topology); this module decides *which* graph each
question needs, extracts it from the store, wraps it once, and calls them with the server's
caps (:class:`impact.ImpactLimits` from ``Settings.max_depth``/``max_results``).

What each question extracts:

========================  ==================================================================
change impact             upstream closure of the changed CIs, plus the one-hop downstream
                          fringe of every CI in it, so that a reached CI with a redundancy rule
                          sees *all* its inputs (the other members of a cluster), not only the
                          reached ones
change conflicts          the same, seeded with the CIs of the assessed change and of every
                          active change whose window overlaps it; all changes and windows
incident routing          downstream closure of the CI (up to ``max_depth``)
probable cause            downstream closure of the affected CIs; all changes and incidents
quality reports           the whole dependency graph, every asset and entitlement
licence position          every HAS_INSTALLED relationship, entitlement and software product
neighbourhood, paths      the store's neighbourhood of the start CI
service map, SPOF         downstream closure of the service
========================  ==================================================================

By default (``Settings.graph_cache``) the engine keeps the whole dependency graph as one
:class:`impact.ImpactGraph` (with its :class:`impact.Topology`), on both stores, and every
question runs on it: the table above then describes what the impact functions look at, not what
is read from the store. The graph is read from the store once (at the first question) and then
**kept current by following the store's change feed** (:class:`~cmdb_graph.service.follow.
FeedFollower`): on every question the engine reads the store's key, and when it moved applies
the change records since the last one it saw (``GraphStore.feed_since``), in time proportional
to what changed. ITSM records and CI attributes no impact rule reads leave the topology alone;
new CIs and relationship changes fork it (copy-on-write) and patch its arrays. The key:

* the embedded :class:`~cmdb_graph.store.memory.MemoryStore`: its feed head;
* Neo4j: :meth:`~cmdb_graph.store.neo4j.Neo4jStore.cache_key`, one small query: the durable
  write counter every write transaction of every process increments, its random epoch, and
  the count-store totals of nodes and relationships (so raw-Cypher writes that add or remove
  nodes or relationships are seen too, by a rebuild; a property-only edit made outside
  cmdb-graph is not seen until the engine rebuilds: the feed does not record it).

The whole graph is read again (a rebuild) only at the first question, after a reset record, a
:class:`~cmdb_graph.errors.FeedGapError`, on a store that keeps no records, when the key moved
without a record, after a CI was deleted, or when more than ``far_behind`` changes are pending.
Updates run under a lock, one at a time; questions hold a read lease (:meth:`Engine.reading`)
while they run, and records are applied only while no question reads the graph, so every
question sees one version. With ``graph_cache`` off each question extracts its subgraph as in
the table above.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import ParamSpec, TypeVar

import networkx as nx

import impact
from cmdb_graph.errors import (
    CINotFoundError,
    ConfigurationError,
    InvalidRecordError,
    NotFoundError,
)
from cmdb_graph.model import (
    Asset,
    Change,
    ChangeState,
    Entitlement,
    Incident,
    Node,
    SoftwareProduct,
    Window,
)
from cmdb_graph.service.past import TimeTravel
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import MAX_PAGE_SIZE, Direction, GraphStore
from impact.licences import LicencePosition, licence_position

__all__ = ["Engine", "ProposedChange", "list_all"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def list_all(store: GraphStore, label: str) -> Iterator[Node]:
    """Every node of ``label``, page by page (sorted by key)."""
    after: str | None = None
    while True:
        page = store.list_nodes(label, after=after, limit=MAX_PAGE_SIZE)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


@dataclass(frozen=True, slots=True)
class ProposedChange:
    """A change not (yet) recorded: its CIs and window, assessed for conflicts."""

    ci_ids: tuple[str, ...]
    window_start: datetime
    window_end: datetime
    change_id: str = "proposed"


def _question(method: Callable[P, R]) -> Callable[P, R]:
    """Run an engine method as one question: on one version of the cached graph (a read
    lease held while it runs, so that change records wait for it)."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        engine = args[0]
        assert isinstance(engine, Engine)
        with engine.reading():
            return method(*args, **kwargs)

    return run


class Engine(TimeTravel):
    """Answers impact questions about the estate in one store.

    Parameters
    ----------
    store : GraphStore
        Where the estate lives.
    settings : Settings, optional
        ``max_depth`` and ``max_results`` become the :class:`impact.ImpactLimits`;
        ``graph_cache`` turns the cached whole graph on (default) or off.
    far_behind : int, optional
        Follow at most this many changes (node and relationship changes summed over the
        records) before a rebuild from the store is cheaper (default
        :data:`FAR_BEHIND`).

    Notes
    -----
    Thread-safe: the cache is kept current under a lock (one rebuild or catch-up at a time);
    questions run under a read lease on one version of it; results are immutable.
    Every public method raises the library's own errors (:class:`~cmdb_graph.errors.CmdbError`
    subclasses): ``CINotFoundError`` for unknown CIs, ``TraversalLimitError`` for requests over
    the caps, ``NotFoundError`` for unknown changes.
    """

    def __init__(
        self, store: GraphStore, settings: Settings | None = None, *,
        far_behind: int | None = None,
    ) -> None:
        super().__init__(store, settings, far_behind=far_behind)
        s = settings or Settings()
        self.limits = impact.ImpactLimits(max_depth=s.max_depth, max_results=s.max_results)
        #: Whether change impact follows inferred relationships (``Settings.impact_inferred``).
        self.impact_inferred = s.impact_inferred

    def _wrap(self, graph: nx.MultiDiGraph) -> impact.ImpactGraph:
        """An extracted graph for one question (its topology is built if the question needs
        it)."""
        return impact.ImpactGraph(graph, self.registry)

    def whole_graph(self) -> impact.ImpactGraph:
        """The whole dependency graph (cached where the store allows)."""
        cached = self._whole()
        if cached is not None:
            return cached.graph
        return self._wrap(self.store.dependency_graph())

    def _whole_with(self, ci_ids: list[str]) -> impact.ImpactGraph | None:
        """The cached whole graph, after checking it holds ``ci_ids`` (``None``: no cache).

        Raises
        ------
        CINotFoundError
            One of ``ci_ids`` is not in it.
        """
        cached = self._whole()
        if cached is None:
            return None
        cached.graph.require(ci_ids)
        return cached.graph

    def impact_graph(self, ci_ids: Iterable[str]) -> impact.ImpactGraph:
        """Upstream closure of ``ci_ids`` with the one-hop downstream fringe of every CI in it
        (the whole cached graph when there is one).

        Raises
        ------
        CINotFoundError
            One of ``ci_ids`` does not exist (checked on the cached graph; without a cache
            the impact function raises it).
        """
        ids = sorted(set(ci_ids))
        whole = self._whole_with(ids)
        if whole is not None:
            return whole
        closure = self.store.extract_subgraph(ids, direction=Direction.UPSTREAM)
        fringe = self.store.extract_subgraph(
            sorted(closure.nodes), direction=Direction.DOWNSTREAM, depth=1
        )
        return self._wrap(nx.compose(fringe, closure))

    def downstream_graph(
        self, ci_ids: Iterable[str], depth: int | None = None
    ) -> impact.ImpactGraph:
        """What ``ci_ids`` need, up to ``depth`` hops (default ``max_depth``; the whole cached
        graph when there is one).

        Raises
        ------
        CINotFoundError
            One of ``ci_ids`` does not exist (checked on the cached graph; without a cache
            the impact function raises it).
        """
        ids = sorted(set(ci_ids))
        whole = self._whole_with(ids)
        if whole is not None:
            return whole
        hops = self.limits.max_depth if depth is None else depth
        return self._wrap(
            self.store.extract_subgraph(ids, direction=Direction.DOWNSTREAM, depth=hops))

    # -- ITSM records -------------------------------------------------------------------------
    def changes(self) -> list[Change]:
        """Every recorded change."""
        return [n for n in list_all(self.store, "Change") if isinstance(n, Change)]

    def windows(self) -> list[Window]:
        """Every maintenance and blackout window."""
        return [n for n in list_all(self.store, "Window") if isinstance(n, Window)]

    def incidents(self) -> list[Incident]:
        """Every recorded incident."""
        return [n for n in list_all(self.store, "Incident") if isinstance(n, Incident)]

    def change(self, change_id: str) -> Change:
        """One recorded change.

        Raises
        ------
        NotFoundError
            No change has that id.
        """
        node = self.store.get_node("Change", change_id)
        if not isinstance(node, Change):
            raise NotFoundError(f"no change {change_id!r}")
        return node

    # -- questions ----------------------------------------------------------------------------
    @_question
    def change_impact(
        self,
        ci_ids: Sequence[str],
        *,
        depth: int | None = None,
        services_only: bool = False,
        paths_per_ci: int = 3,
        inferred: bool | None = None,
    ) -> impact.ChangeImpact:
        """Impact of taking ``ci_ids`` down (see :func:`impact.change_impact`).

        ``inferred`` (default ``Settings.impact_inferred``) False: relationships marked
        ``inferred`` carry no impact (the question runs on a copy of the graph without them).

        Raises
        ------
        InvalidRecordError
            ``ci_ids`` is empty.
        CINotFoundError, TraversalLimitError
            As :func:`impact.change_impact`.
        """
        if not ci_ids:
            raise InvalidRecordError("at least one CI is needed", field="ciIds")
        self.limits.check_depth(depth)
        graph = self.impact_graph(ci_ids)
        if not (self.impact_inferred if inferred is None else inferred):
            graph = self._wrap(without_inferred(graph.graph))
        return impact.change_impact(
            graph, ci_ids, depth_limit=depth, services_only=services_only,
            paths_per_ci=paths_per_ci, limits=self.limits,
        )

    @_question
    def change_conflicts(
        self, change: Change | ProposedChange
    ) -> tuple[Change, tuple[impact.ChangeConflict, ...]]:
        """Conflicts of a recorded or proposed change with every other change and window.

        Returns
        -------
        (Change, tuple of ChangeConflict)
            The change assessed (a proposed one as a ``Change``) and its conflicts.

        Raises
        ------
        InvalidRecordError
            The proposed window ends before it starts, or names no CI.
        CINotFoundError
            A CI of the assessed change does not exist.
        """
        if isinstance(change, ProposedChange):
            if not change.ci_ids:
                raise InvalidRecordError("a proposed change needs CIs", field="ciIds")
            if change.window_end <= change.window_start:
                raise InvalidRecordError(
                    "the change window must end after it starts", field="windowEnd"
                )
            assessed = Change(change_id=change.change_id, window_start=change.window_start,
                              window_end=change.window_end, ci_ids=list(change.ci_ids),
                              state=ChangeState.SCHEDULED)
        else:
            assessed = change
        others = self.changes()
        seeds = set(assessed.ci_ids)
        for other in others:
            if (other.change_id != assessed.change_id
                    and other.state not in impact.INACTIVE_CHANGE_STATES
                    and other.window_start < assessed.window_end
                    and assessed.window_start < other.window_end):
                seeds.update(other.ci_ids)
        missing = self._missing(assessed.ci_ids)
        if missing:
            raise CINotFoundError(
                f"change {assessed.change_id}: unknown CI(s): {', '.join(missing[:5])}"
            )
        existing = sorted(seeds - set(self._missing(seeds)))
        found = impact.change_conflicts(
            self.impact_graph(existing), assessed, changes=others, windows=self.windows(),
        )
        return assessed, found

    @_question
    def route_incident(self, ci_id: str) -> impact.Routing:
        """Support group for an incident on ``ci_id`` (see :func:`impact.route_incident`)."""
        return impact.route_incident(self.downstream_graph([ci_id]), ci_id, limits=self.limits)

    @_question
    def probable_cause(
        self,
        affected: Sequence[str],
        *,
        now: datetime | None = None,
        lookback: timedelta = timedelta(days=7),
        max_candidates: int = 20,
    ) -> impact.ProbableCauses:
        """Ranked shared dependencies of ``affected`` (see :func:`impact.probable_cause`).

        Raises
        ------
        InvalidRecordError
            ``affected`` is empty.
        """
        if not affected:
            raise InvalidRecordError("at least one affected CI is needed", field="ciIds")
        return impact.probable_cause(
            self.downstream_graph(affected), affected, now=now or datetime.now(UTC),
            changes=self.changes(), incidents=self.incidents(), lookback=lookback,
            max_candidates=max_candidates, limits=self.limits,
        )

    @_question
    def quality_input(
        self, *, now: datetime | None = None, options: impact.QualityOptions | None = None
    ) -> impact.QualityInput:
        """Everything the data-quality reports read: whole graph, assets, entitlements."""
        graph = self.whole_graph()
        assets = [n for n in list_all(self.store, "Asset") if isinstance(n, Asset)]
        ents = [n for n in list_all(self.store, "Entitlement") if isinstance(n, Entitlement)]
        return impact.QualityInput(
            graph=graph, now=now or datetime.now(UTC), assets=assets, entitlements=ents,
            options=options or impact.QualityOptions(),
        )

    @_question
    def report(
        self,
        name: str,
        *,
        now: datetime | None = None,
        options: impact.QualityOptions | None = None,
    ) -> impact.QualityReport:
        """One data-quality report by name (see :data:`impact.REPORTS`).

        Raises
        ------
        ConfigurationError
            No report has that name.
        """
        if name not in impact.REPORTS:
            raise ConfigurationError(
                f"unknown report {name!r}; known: {', '.join(impact.REPORTS)}"
            )
        return impact.run_report(name, self.quality_input(now=now, options=options))

    @_question
    def coverage(self) -> impact.Coverage:
        """The dependency map's coverage (see :func:`impact.coverage`)."""
        return impact.coverage(self.whole_graph())

    def licence_position(self, *, as_of: date | None = None) -> LicencePosition:
        """Entitled seats against installations per software product.

        Reads every ``HAS_INSTALLED`` relationship (``(:CI)-[:HAS_INSTALLED]->
        (:SoftwareProduct)``), every entitlement and every software product, and counts them
        with :func:`impact.licences.licence_position`.

        Parameters
        ----------
        as_of : date, optional
            Entitlements that expired before this day no longer count (``None``: expiry is
            ignored).

        Returns
        -------
        LicencePosition
            Per product positions, the over- and under-licensed products and the entitlements
            that name no product.
        """
        installations = self.store.relationships(rel_types=["HAS_INSTALLED"])
        ents = [n for n in list_all(self.store, "Entitlement") if isinstance(n, Entitlement)]
        products = [n for n in list_all(self.store, "SoftwareProduct")
                    if isinstance(n, SoftwareProduct)]
        return licence_position(installations, ents, products, as_of=as_of)

    def neighbourhood(
        self,
        ci_id: str,
        *,
        depth: int = 1,
        direction: str = "both",
        rel_types: Sequence[str] | None = None,
    ) -> impact.Neighbourhood:
        """CIs within ``depth`` hops of ``ci_id`` (see :func:`impact.neighbourhood`)."""
        hops = self.limits.check_depth(depth)
        past = self._in_past()
        if past is not None:
            return impact.neighbourhood(past.graph, ci_id, depth=hops, direction=direction,
                                        rel_types=rel_types, limits=self.limits)
        graph = self.store.neighbourhood(ci_id, depth=hops, direction=_store_direction(direction),
                                         rel_types=rel_types)
        return impact.neighbourhood(self._wrap(graph), ci_id, depth=hops, direction=direction,
                                    rel_types=rel_types, limits=self.limits)

    @_question
    def paths(
        self,
        source: str,
        target: str,
        *,
        max_paths: int = 10,
        max_length: int | None = None,
        direction: str = "both",
        rel_types: Sequence[str] | None = None,
    ) -> impact.PathsResult:
        """Simple paths between two CIs (see :func:`impact.paths_between`).

        Every path of at most ``max_length`` hops lies within that many hops of ``source``,
        so the store's neighbourhood of ``source`` is all the search needs.
        """
        length = self.limits.check_path_length(max_length)
        self.limits.check_paths(max_paths)
        cached = self._whole()
        if cached is not None:
            graph = cached.graph
        else:
            near = self.store.neighbourhood(source, depth=length,
                                            direction=_store_direction(direction),
                                            rel_types=rel_types)
            if target not in near:
                self.store.get_ci(target)  # CINotFoundError when it does not exist
                near = near.copy()
                near.add_node(target, ci_id=target)
            graph = self._wrap(near)
        return impact.paths_between(graph, source, target, max_paths=max_paths,
                                    max_length=length, direction=direction, rel_types=rel_types,
                                    limits=self.limits)

    @_question
    def service_map(self, service: str, *, depth: int | None = None) -> impact.ServiceMap:
        """A service down to its infrastructure (see :func:`impact.service_map`)."""
        hops = self.limits.check_depth(depth)
        graph = self.downstream_graph([service], depth=min(hops + 1, self.limits.max_depth))
        return impact.service_map(graph, service, depth_limit=depth, limits=self.limits)

    @_question
    def single_points_of_failure(
        self, service: str
    ) -> tuple[impact.SinglePointOfFailure, ...]:
        """CIs whose failure alone takes ``service`` down."""
        cached = self._whole()
        if cached is not None:
            graph = cached.graph
        else:
            graph = self._wrap(
                self.store.extract_subgraph([service], direction=Direction.DOWNSTREAM))
        return impact.single_points_of_failure(graph, service, limits=self.limits)

    # -- helpers ------------------------------------------------------------------------------
    def _missing(self, ci_ids: Iterable[str]) -> list[str]:
        ids = sorted(set(ci_ids))
        cached = self._whole()
        if cached is not None:
            return [c for c in ids if c not in cached.graph]
        found = self.store.get_cis(ids)
        return [c for c in ids if c not in found]


def without_inferred(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of ``graph`` without the relationships marked ``inferred``."""
    out = graph.copy()
    out.remove_edges_from([(u, v, k) for u, v, k, inf in
                           graph.edges(keys=True, data="inferred", default=False) if inf])
    return out



def _store_direction(direction: str) -> Direction:
    try:
        return Direction(direction)
    except ValueError:
        raise InvalidRecordError(
            f"direction must be upstream, downstream or both, not {direction!r}",
            field="direction",
        ) from None
