"""Keeping the engine's whole graph current by applying the change feed.

:class:`FeedFollower` holds the engine's copy of the dependency graph (a networkx graph in
the shape of :mod:`cmdb_graph.store.base`) and its :class:`impact.Topology`, and applies the
store's change records (:mod:`cmdb_graph.feed`) to both, in time proportional to what
changed:

=====================================  ======================================================
record part                            what it does here
=====================================  ======================================================
a node that is not a CI (ITSM records,  nothing (the dependency graph holds only CIs)
assets, groups, people, ...)
CI created                             a node (the store's row expanded to the graph shape);
                                       a new topology index, class, criticality, rule,
                                       whether in service
CI updated / retired / merged          the changed attributes patched in a copy of the node's
                                       attributes (the old dict may be the store's row); the
                                       topology only when ``ci_class``,
                                       ``business_criticality``, ``redundancy`` or
                                       ``operational_status`` changed (the last changes
                                       the redundancy thresholds of the groups the CI is a
                                       required input of)
CI deleted                             not applied: the caller rebuilds from the store
CI-to-CI relationship added, changed,  the edge added, patched or removed; the topology's
removed                                impact edges between its two ends recomputed from the
                                       graph (only when the type carries impact and the
                                       change is an addition, a removal or a change of
                                       ``optional``)
any other relationship                 nothing
a reset record (``clear``)             not applied: the caller rebuilds
=====================================  ======================================================

Applying a record is idempotent (it *sets* the state the record describes), so a follower
may start from a graph read at or after the feed position it notes, and replay records that
the graph already holds.

The topology is changed on a :meth:`impact.Topology.fork` (copy-on-write), never in place, so
questions and lazily built results that hold the previous topology keep reading it; its CSR
arrays are rebuilt once per applied batch of records, on the first question after it
(vectorised numpy, no Python loop over edges). The networkx graph is changed in place: the
caller (:class:`cmdb_graph.service.engine.Engine`) applies records only while no question
reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

import impact
from cmdb_graph.feed import ChangeRecord, NodeChange, NodeOp, RelChange, RelOp
from cmdb_graph.model import ConfigurationItem, ImpactDirection, Registry
from cmdb_graph.store.adjacency import ReadOnlyDict, drop_edge, put_edge, put_edge_dicts
from cmdb_graph.store.rows import CI_LABEL, EDGE_DEFAULTS, edge_attrs, field_kinds, lean_ci
from impact.graph import READ_DEFAULTS

__all__ = ["FeedFollower", "TOPOLOGY_FIELDS", "NeedsRebuild", "copy_graph", "lean", "lean_edge",
           "lean_graph"]

log = logging.getLogger(__name__)

#: CI fields the topology keeps a copy of: a change to any other field leaves it as it is.
TOPOLOGY_FIELDS = frozenset({"ci_class", "business_criticality", "redundancy",
                             "operational_status"})

#: Edge fields the graph shape keeps (see :func:`cmdb_graph.store.rows.edge_attrs`).
_EDGE_FIELDS = frozenset(EDGE_DEFAULTS)


class NeedsRebuild(Exception):  # noqa: N818 - a signal, not an error
    """The records cannot be applied incrementally (a reset, a deleted CI, an unknown end):
    the caller rebuilds from the store. The follower may be half-changed: drop it."""


class FeedFollower:
    """The engine's dependency graph and topology, kept current from change records.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        The whole dependency graph as the store gave it (``GraphStore.dependency_graph``),
        read at or after feed position ``seq``.
    registry : Registry
        Relationship types (which enter the graph, which carry impact) and CI classes.
    seq : int
        The feed position the graph holds at least (the head read before the graph).
    topology : impact.Topology, optional
        The graph's topology (default: built now).
    is_lean : bool, optional
        Whether ``graph`` is lean already (:func:`lean_graph`; default: make it so).
    """

    def __init__(
        self,
        graph: nx.MultiDiGraph,
        registry: Registry,
        seq: int,
        topology: impact.Topology | None = None,
        *,
        is_lean: bool = False,
    ) -> None:
        self.graph = graph
        self.registry = registry
        self.seq = seq
        self.topology = topology or impact.Topology.from_graph(graph, registry)
        if not is_lean:
            lean_graph(graph)
        self._ci_types = frozenset(registry.ci_relationship_types())
        self._directions = registry.impacting_types()
        kinds = field_kinds(ConfigurationItem)
        self._defaults = kinds.defaults
        self._fields = frozenset(kinds.fields)

    # -- applying ---------------------------------------------------------------------------
    def apply(self, records: Iterable[ChangeRecord],
              rows: Mapping[str, Mapping[str, Any]] | None = None) -> bool:
        """Apply ``records`` (in sequence order) to the graph and the topology.

        Parameters
        ----------
        records : iterable of ChangeRecord
            The change records after :attr:`seq`, in order.
        rows : Mapping, optional
            The embedded store's live CI rows (``MemoryStore.live_rows``): a CI the records
            change takes the store's row as its attributes (shared, not copied) when that row
            reads the same as the attributes the records give it, so the graph keeps sharing
            the store's rows as the estate changes.

        Returns
        -------
        bool
            Whether the topology changed (a new :attr:`topology` object).

        Raises
        ------
        NeedsRebuild
            A record cannot be applied incrementally; the follower is then unusable.
        """
        pairs: set[tuple[str, str]] = set()
        new_nodes: dict[str, Mapping[str, Any]] = {}
        touched: dict[str, Mapping[str, Any]] = {}
        for record in records:
            if record.reset:
                raise NeedsRebuild(f"record {record.seq} resets the store")
            for change in record.nodes:
                if change.label == CI_LABEL:
                    self._apply_ci(change, new_nodes, touched, rows)
            for rel in record.relationships:
                self._apply_rel(rel, pairs)
            self.seq = record.seq
        if not (pairs or new_nodes or touched):
            return False
        self._apply_topology(new_nodes, touched, pairs)
        return True

    def _apply_ci(
        self,
        change: NodeChange,
        new_nodes: dict[str, Mapping[str, Any]],
        touched: dict[str, Mapping[str, Any]],
        rows: Mapping[str, Mapping[str, Any]] | None,
    ) -> None:
        g = self.graph
        key = change.key
        if change.op is NodeOp.DELETED:
            raise NeedsRebuild(f"CI {key} was deleted")
        nodes = g._node  # noqa: SLF001 - attributes are replaced, never changed (shared rows)
        if change.op is NodeOp.CREATED or key not in g:
            if change.op is not NodeOp.CREATED:
                raise NeedsRebuild(f"CI {key} updated before it was created")
            if key not in g:
                g.add_node(key)
            attrs = nodes[key] = _shared(lean_ci(key, change.new or {}), rows, key)
            if key in self.topology.index:
                touched[key] = attrs
            else:
                new_nodes[key] = attrs
            return
        attrs = nodes[key] = dict(nodes[key])
        values = change.new or {}
        for name, value in values.items():
            if name == "lineage" or name not in self._fields:
                continue
            if value is None:
                value = self._defaults.get(name)
            if _empty(value):
                attrs.pop(name, None)
            else:
                attrs[name] = value
        attrs = nodes[key] = _shared(attrs, rows, key)
        if not TOPOLOGY_FIELDS.isdisjoint(values) and key not in new_nodes:
            touched[key] = attrs

    def _apply_rel(self, rel: RelChange, pairs: set[tuple[str, str]]) -> None:
        if (rel.source_label, rel.target_label) != (CI_LABEL, CI_LABEL):
            return
        rel_type = rel.rel_type
        if rel_type not in self._ci_types:
            return
        g = self.graph
        s, t = rel.source, rel.target
        if s not in g or t not in g:
            raise NeedsRebuild(f"relationship {rel.key} has an end the graph does not hold")
        impacting = rel_type in self._directions
        if rel.op is RelOp.REMOVED:
            drop_edge(g, s, t, rel_type)
        elif rel.op is RelOp.ADDED or not g.has_edge(s, t, key=rel_type):
            put_edge(g, s, t, rel_type, lean_edge(rel_type, edge_attrs(rel_type, rel.new or {})))
        else:
            put_edge(g, s, t, rel_type, patched_edge(g.edges[s, t, rel_type], rel_type,
                                                     rel.new or {}))
            impacting = impacting and "optional" in (rel.new or {})
        if impacting:
            pairs.add((s, t) if s <= t else (t, s))

    def _apply_topology(
        self,
        new_nodes: Mapping[str, Mapping[str, Any]],
        touched: Mapping[str, Mapping[str, Any]],
        pairs: set[tuple[str, str]],
    ) -> None:
        topo = self.topology.fork()
        if new_nodes:
            topo.add_nodes(
                new_nodes,
                rules=_rules(new_nodes),
                classes={ci: str(a.get("ci_class") or "") for ci, a in new_nodes.items()},
                criticality={ci: a["business_criticality"] for ci, a in new_nodes.items()
                             if a.get("business_criticality") is not None},
                statuses={ci: a["operational_status"] for ci, a in new_nodes.items()
                          if a.get("operational_status") is not None},
            )
        for ci, attrs in touched.items():
            crit = attrs.get("business_criticality")
            status = attrs.get("operational_status")
            topo.set_attributes(ci, ci_class=str(attrs.get("ci_class") or ""),
                                business_criticality=crit,
                                operational_status=None if status is None else str(status))
            rule = attrs.get("redundancy")
            topo.set_redundancy(ci, None if rule in (None, "") else str(rule))
        if pairs:
            topo.remove_edges([*pairs, *((t, s) for s, t in pairs)])
            topo.add_edges(self._impact_edges(pairs))
        self.topology = topo

    def _impact_edges(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str, bool]]:
        """``(failing, impacted, required)`` of every impact-carrying relationship stored
        between the two ends of each pair, either way (as ``Topology.from_graph`` has them)."""
        g = self.graph
        out: list[tuple[str, str, bool]] = []
        for a, b in pairs:
            for u, v in ((a, b), (b, a)) if a != b else ((a, a),):
                if not g.has_edge(u, v):
                    continue
                for key, data in g[u][v].items():
                    direction = self._directions.get(key)
                    required = not bool(data.get("optional", False))
                    if direction is ImpactDirection.END_TO_START:
                        out.append((v, u, required))
                    elif direction is ImpactDirection.START_TO_END:
                        out.append((u, v, required))
        return out


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, list | dict) and not value)


def _read(attrs: Mapping[str, Any], name: str) -> Any:
    """A node attribute as :class:`impact.ImpactGraph` reads it (absent, ``None`` and empty
    alike; the model's default status when left out)."""
    value = attrs.get(name)
    if _empty(value):
        return READ_DEFAULTS.get(name)
    return value

_NOT_READ = frozenset({"lineage", "ci_id"})


def _shared(attrs: dict[str, Any], rows: Mapping[str, Mapping[str, Any]] | None,
            key: str) -> Mapping[str, Any]:
    """The store's live row of ``key`` when it reads the same as ``attrs`` (every field but
    ``lineage``), else ``attrs``."""
    row = None if rows is None else rows.get(key)
    if row is None or row is attrs:
        return attrs
    names = (attrs.keys() | row.keys()) - _NOT_READ
    if all(_read(attrs, n) == _read(row, n) for n in names):
        return row
    return attrs


def lean(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A CI's node attributes without the ones that read as absent (``None``, empty lists and
    dicts): :class:`impact.ImpactGraph` reads a missing attribute as ``None``."""
    return {k: v for k, v in attrs.items() if not _empty(v)}


def lean_edge(rel_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """An edge's attributes without the ones at their default (``rel_type`` equal to the
    key, ``optional`` and ``inferred`` false, a basis ``inferred`` implies or ``declared``, no
    confidence, no evidence, no properties), in place. A ``basis`` present decides
    ``inferred`` (a changed basis comes without it)."""
    if "basis" in data:
        data["inferred"] = data["basis"] == "inferred"
    for name in ("optional", "inferred", "confidence", "evidence"):
        if name in data and data[name] == EDGE_DEFAULTS[name]:
            del data[name]
    if "basis" in data and (data["basis"] == "declared" or data.get("inferred")):
        del data["basis"]
    if "properties" in data and not data["properties"]:
        del data["properties"]
    if data.get("rel_type") == rel_type:
        del data["rel_type"]
    return data


def patched_edge(data: Mapping[str, Any], rel_type: str,
                 values: Mapping[str, Any]) -> dict[str, Any]:
    """A lean edge's attributes ``data`` with the relationship fields in ``values`` (a change
    record's new or old values) set, lean again (see :func:`lean_edge`); a new dict."""
    out = dict(data)
    for name, value in values.items():
        if name in _EDGE_FIELDS:
            out[name] = edge_attrs(rel_type, {} if value is None else {name: value})[name]
    return lean_edge(rel_type, out)


def lean_graph(graph: nx.MultiDiGraph) -> None:
    """Drop, in place, the node and edge attributes that read as absent (see :func:`lean`
    and :func:`lean_edge`; attribute-less edges share their dicts, see
    :mod:`cmdb_graph.store.adjacency`): the engine keeps one whole graph for as long as it
    runs, and most CIs leave most fields at their default."""
    for _, attrs in graph.nodes(data=True):
        kept = lean(attrs)
        attrs.clear()
        attrs.update(kept)
    succ, pred = graph._succ, graph._pred  # noqa: SLF001
    for u, v, key, data in list(graph.edges(keys=True, data=True)):
        put_edge_dicts(succ, pred, u, v, key, lean_edge(str(key), dict(data)))


def copy_graph(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of a dependency graph that shares no changeable dict with it (node and edge
    attributes copied, values and the read-only shared edge dicts of
    :mod:`cmdb_graph.store.adjacency` shared), built from its adjacency dicts in one pass:
    ``graph.copy()`` adds the edges one by one, several times slower.

    Examples
    --------
    >>> g = nx.MultiDiGraph()
    >>> _ = g.add_edge("a", "b", key="RUNS_ON", optional=True)
    >>> h = copy_graph(g)
    >>> h.edges["a", "b", "RUNS_ON"]["optional"] = False
    >>> list(h.predecessors("b")), g.edges["a", "b", "RUNS_ON"]["optional"]
    (['a'], True)
    """
    out = nx.MultiDiGraph()
    out.graph.update(graph.graph)
    out._node = {n: dict(d) for n, d in graph._node.items()}  # noqa: SLF001
    succ = {u: {v: keys if type(keys) is ReadOnlyDict else
                {k: d if type(d) is ReadOnlyDict else dict(d) for k, d in keys.items()}
                for v, keys in nbrs.items()}
            for u, nbrs in graph._succ.items()}  # noqa: SLF001
    out._adj = out._succ = succ  # noqa: SLF001 - networkx resets its cached views
    out._pred = {v: {u: succ[u][v] for u in nbrs}  # noqa: SLF001
                 for v, nbrs in graph._pred.items()}  # noqa: SLF001
    return out


def _rules(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {ci: str(a["redundancy"]) for ci, a in nodes.items()
            if a.get("redundancy") not in (None, "")}
