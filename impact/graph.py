"""The impact graph: the one object every impact function reads the estate through.

:class:`ImpactGraph` holds a dependency graph in the store shape, the registry that gives each
relationship type its impact direction and each CI class its kind, and the graph's
:class:`~impact.topology.Topology` (built once, on first use). A caller (the service layer)
builds one per state of the estate and passes it first to every impact function; the
functions read CI attributes through its accessors and walk relationships through its
iterators, never through networkx directly, and results take their names from it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any

import networkx as nx

from cmdb_graph.errors import CINotFoundError
from cmdb_graph.model import ImpactDirection, OperationalStatus, Registry, ServiceKind, link_trust
from impact.csr import in_service
from impact.results import PathLink
from impact.topology import Topology

__all__ = ["READ_DEFAULTS", "ImpactGraph"]

_RETIRED = str(OperationalStatus.RETIRED)
#: Model defaults that read as present: a node that leaves the field out (the embedded store's
#: rows, the followed graph) holds this value.
READ_DEFAULTS = {"operational_status": str(OperationalStatus.OPERATIONAL)}


class ImpactGraph:
    """A dependency graph with its registry and impact topology, read through accessors.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        Dependency graph in the store shape (``cmdb_graph.store.base``): node id = ``ci_id``,
        node attributes = the CI's flat fields; edges in stored orientation, keyed by their
        relationship type, with attributes ``rel_type`` and ``optional``.
    registry : Registry, optional
        Impact direction of each relationship type and kind of each CI class (default
        ``Registry()``).
    topology : Topology, optional
        A topology already built from ``graph`` with ``registry``; default: built from them
        on first use (once, also when several threads ask at the same time).

    Notes
    -----
    **What impact functions read.** CI attributes through the accessors (:meth:`name`,
    :meth:`ci_class`, :meth:`kind`, :meth:`status`, :meth:`in_service`, :meth:`criticality`,
    :meth:`environment`,
    :meth:`redundancy`, :meth:`support_group`, :meth:`attr`), relationships through
    :meth:`out_relationships`, :meth:`in_relationships`, :meth:`relationships` and
    :meth:`rel_types_between`, closures and propagation through :attr:`topology`. Today the
    attributes live once, in the networkx node dictionaries; the topology keeps its own small
    integer arrays of class codes and criticality for the array passes. Because nothing else
    reads the node dictionaries, their storage can change (compact per-attribute arrays) without
    touching the impact functions.

    **Keeping it current.** The topology's incremental methods (``add_nodes``, ``add_edges``,
    ``remove_edges``, ``set_attributes``, ``set_redundancy``) are reached through
    :attr:`topology`; a writer that changes the estate applies the same change to
    :attr:`graph` and to a :meth:`~impact.topology.Topology.fork` of :attr:`topology`,
    outside any running query (see :mod:`impact.topology` on concurrency), and wraps them in a
    new ``ImpactGraph`` (what ``cmdb_graph.service.follow`` does with the change feed).
    Missing node attributes read as ``None`` (the followed graph leaves out empty ones), or as
    the model's default when it has one that reads as present (``operational_status``): the
    engine's graph on the embedded store holds the store's own rows, which leave defaults out.

    Results of :func:`impact.change_impact` keep a reference to the graph and read it when
    their items are built: do not change it in place while such results are in use.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.MultiDiGraph()
    >>> g.add_node("vm1", name="web VM", ci_class="VirtualMachine")
    >>> ig = ImpactGraph(g)
    >>> ig.name("vm1"), ig.ci_class("vm1"), str(ig.kind("vm1")), "vm1" in ig
    ('web VM', 'VirtualMachine', 'infrastructure', True)
    """

    def __init__(
        self,
        graph: nx.MultiDiGraph,
        registry: Registry | None = None,
        topology: Topology | None = None,
    ) -> None:
        self._graph = graph
        self._nodes: Mapping[str, Mapping[str, Any]] = graph.nodes
        self._registry = registry or Registry()
        self._topology = topology
        self._lock = threading.Lock()

    # -- parts ------------------------------------------------------------------------------
    @property
    def graph(self) -> nx.MultiDiGraph:
        """The networkx graph (for algorithms run on it whole; read CIs with the accessors)."""
        return self._graph

    @property
    def registry(self) -> Registry:
        """The registry the topology was built with."""
        return self._registry

    @property
    def topology(self) -> Topology:
        """The impact topology (CSR arrays), built on first use."""
        topo = self._topology
        if topo is None:
            with self._lock:
                topo = self._topology
                if topo is None:
                    topo = Topology.from_graph(self._graph, self._registry)
                    self._topology = topo
        return topo

    @cached_property
    def impact_directions(self) -> dict[str, ImpactDirection]:
        """The relationship types that carry impact, with their direction (registry)."""
        return self._registry.impacting_types()

    def subgraph(self, ci_ids: Iterable[str]) -> ImpactGraph:
        """The CIs ``ci_ids`` and the relationships among them, with the same registry (a
        view of the graph; its topology is built on first use)."""
        return ImpactGraph(self._graph.subgraph(ci_ids), self._registry)

    # -- CIs --------------------------------------------------------------------------------
    def __contains__(self, ci_id: object) -> bool:
        return ci_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def ci_ids(self) -> Iterator[str]:
        """Every ``ci_id``, in the graph's order."""
        return iter(self._nodes)

    def require(self, ci_ids: Iterable[str]) -> list[str]:
        """``ci_ids`` deduplicated and sorted.

        Raises
        ------
        CINotFoundError
            One of them is not in the graph (the message names the first few).
        """
        ids = sorted(set(ci_ids))
        missing = [c for c in ids if c not in self._nodes]
        if missing:
            raise CINotFoundError(f"unknown CI(s): {', '.join(missing[:5])}")
        return ids

    def attr(self, ci_id: str, name: str, default: Any = None) -> Any:
        """Attribute ``name`` of a CI; when missing or ``None``, the model's default if it has
        one that reads as present (``operational_status``), else ``default``.

        Raises
        ------
        KeyError
            ``ci_id`` is not in the graph.
        """
        value = self._nodes[ci_id].get(name)
        if value is None:
            return READ_DEFAULTS.get(name, default)
        return value

    def name(self, ci_id: str) -> str:
        """The CI's name (its ``ci_id`` when it has none)."""
        return str(self._nodes[ci_id].get("name") or ci_id)

    def ci_class(self, ci_id: str) -> str:
        """The CI's class (``""`` when unknown)."""
        return str(self._nodes[ci_id].get("ci_class") or "")

    def kind(self, ci_id: str) -> ServiceKind:
        """The service kind of the CI's class (infrastructure for unknown classes)."""
        return self._registry.kind_of(self.ci_class(ci_id))

    def is_service(self, ci_id: str) -> bool:
        """Whether the CI's class is a business or application service."""
        return self._registry.is_service(self.ci_class(ci_id))

    def status(self, ci_id: str) -> str:
        """The CI's operational status (``operational``, the model's default, when the node
        leaves it out)."""
        return str(self.attr(ci_id, "operational_status", ""))

    def in_service(self, ci_id: str) -> bool:
        """Whether the CI is in service: its operational status is not ``non_operational``
        (planned, in stock, offline), ``repair`` or ``retired`` (see
        :func:`impact.csr.in_service`; no status recorded: in service)."""
        return in_service(self.attr(ci_id, "operational_status"))

    def is_retired(self, ci_id: str) -> bool:
        """Whether the CI's operational status is ``retired``."""
        return self.status(ci_id) == _RETIRED

    def criticality(self, ci_id: str) -> Any:
        """The CI's business criticality as stored (normally 1 to 4; ``None`` when none)."""
        return self._nodes[ci_id].get("business_criticality")

    def environment(self, ci_id: str) -> str | None:
        """The CI's environment (production, test...), ``None`` when not recorded."""
        value = self.attr(ci_id, "environment")
        return None if value is None else str(value)

    def redundancy(self, ci_id: str) -> str | None:
        """The CI's redundancy rule (``all``, ``k``, ``k%``), ``None`` when it has none."""
        value = self.attr(ci_id, "redundancy")
        return None if value in (None, "") else str(value)

    def support_group(self, ci_id: str) -> str | None:
        """The CI's support group, ``None`` when it has none."""
        value = self.attr(ci_id, "support_group")
        return None if value is None else str(value)

    # -- relationships ----------------------------------------------------------------------
    def out_relationships(self, ci_id: str) -> Iterator[tuple[str, str, bool]]:
        """``(target, rel_type, optional)`` of every relationship stored from ``ci_id``."""
        for _, v, key, data in self._graph.out_edges(ci_id, keys=True, data=True):
            yield v, str(data.get("rel_type", key)), bool(data.get("optional", False))

    def in_relationships(self, ci_id: str) -> Iterator[tuple[str, str, bool]]:
        """``(source, rel_type, optional)`` of every relationship stored to ``ci_id``."""
        for u, _, key, data in self._graph.in_edges(ci_id, keys=True, data=True):
            yield u, str(data.get("rel_type", key)), bool(data.get("optional", False))

    def relationships(
        self, among: Iterable[str] | None = None
    ) -> Iterator[tuple[str, str, str, bool]]:
        """``(source, target, rel_type, optional)`` of every relationship, or of those with
        both ends in ``among``."""
        graph = self._graph if among is None else self._graph.subgraph(set(among))
        for u, v, key, data in graph.edges(keys=True, data=True):
            yield u, v, str(data.get("rel_type", key)), bool(data.get("optional", False))

    def inferred_flags(self) -> Iterator[tuple[str, str, str, bool, bool]]:
        """``(source, target, rel_type, inferred, optional)`` of every relationship."""
        for u, v, key, data in self._graph.edges(keys=True, data=True):
            yield (u, v, str(data.get("rel_type", key)), bool(data.get("inferred", False)),
                   bool(data.get("optional", False)))

    def link(self, a: str, b: str) -> PathLink | None:
        """The relationship that carries a failure of ``a`` to ``b`` (a hop of an explaining
        path), the most certain when several do (highest confidence, then type); ``None``
        when none does."""
        directions = self.impact_directions
        best: tuple[float, str] | None = None
        found: PathLink | None = None
        for u, v, wanted in ((b, a, ImpactDirection.END_TO_START),
                             (a, b, ImpactDirection.START_TO_END)):
            edges = self._graph.get_edge_data(u, v)
            for key, data in (edges or {}).items():
                rel_type = str(data.get("rel_type", key))
                if directions.get(rel_type) is not wanted:
                    continue
                basis, confidence = link_trust(data)
                if best is not None and (-confidence, rel_type) >= best:
                    continue
                best = (-confidence, rel_type)
                props = data.get("properties") or {}
                file = props.get("evidence_file")
                evidence = data.get("evidence")
                found = PathLink(source=u, target=v, rel_type=rel_type, basis=basis,
                                 confidence=confidence,
                                 evidence=None if evidence is None else str(evidence),
                                 evidence_file=None if file is None else str(file))
        return found

    def rel_types_between(self, a: str, b: str) -> set[str]:
        """The types of the relationships stored between ``a`` and ``b``, either way."""
        found: set[str] = set()
        for u, v in ((a, b), (b, a)):
            if self._graph.has_edge(u, v):
                found.update(str(data.get("rel_type", key))
                             for key, data in self._graph[u][v].items())
        return found
