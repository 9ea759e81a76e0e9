"""The impact topology: the compressed arrays of the impact edges and the passes over them.

Closure and status propagation never walk networkx objects: :class:`Topology` holds the
impact edges of a dependency graph as compressed sparse row (CSR) arrays oriented in the
impact direction (:mod:`impact.csr`: construction and incremental maintenance), and runs the
array passes on them (:mod:`impact.passes`: closure and status propagation;
:mod:`impact.explain`: the inputs and paths that explain a status). Impact functions reach it
through :class:`impact.graph.ImpactGraph`.

Keeping it in step with a store
-------------------------------
Node indexes are append-only: :meth:`Topology.add_nodes` gives new CIs the next indexes and
:meth:`Topology.add_edges` appends impact edges; :meth:`Topology.remove_edges`,
:meth:`Topology.set_redundancy` and :meth:`Topology.set_attributes` (class, criticality,
operational status: whether the CI is in service, which the redundancy slack follows) do the
rest. The CSR arrays are rebuilt lazily, on the first query after a change (or on
:meth:`Topology.refresh`; read the array attributes only after one of them). When few edge pairs
changed since the last build (up to ``max(1024, E/16)``) the build *patches* the previous
arrays: the changed pairs' entries are spliced out of and into every CSR array at positions
found by binary search (one memory copy of each array, no pass over the edges and no sort of
the edge list), the row pointers and required-input counts shifted for the rows changed,
thresholds recomputed vectorised, and the strongly connected components kept (new CIs get
their own) unless a removed edge lay on a cycle or an added one closes one; otherwise it sorts
everything (``O(E log E)`` numpy).
Retiring a CI needs no index change. When in doubt, ``Topology.from_graph(G, registry)``
rebuilds from scratch. ``cmdb_graph.service.follow`` drives all this from the change feed.

Concurrency: queries may run in parallel threads (each thread has its own working arrays);
changes must not run concurrently with queries on the same object. :meth:`Topology.fork`
gives a copy-on-write copy to change while queries (and results built lazily later) keep
reading the original; swap it in when done. The node list and index are not copied: a fork
appends its new CIs to the shared ones (``O(added)``, not a copy of a million entries), and
every version reads only its first :attr:`~Topology.n` (``indexes`` refuses a later CI).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from impact import explain, passes
from impact.csr import (
    NO_CRITICALITY,
    OTHER_CRITICALITY,
    UNKNOWN_CLASS,
    TopologyArrays,
    parse_redundancy,
)
from impact.passes import DEGRADED, DOWN, OPERATIONAL, Propagation
from impact.scratch import IntArray

__all__ = [
    "DEGRADED",
    "DOWN",
    "NO_CRITICALITY",
    "OPERATIONAL",
    "OTHER_CRITICALITY",
    "UNKNOWN_CLASS",
    "Propagation",
    "Topology",
    "parse_redundancy",
]


class Topology(TopologyArrays):
    """Impact edges of a dependency graph as CSR arrays, with the passes that run on them.

    Parameters and attributes are those of :class:`~impact.csr.TopologyArrays`; build one
    with :meth:`from_graph`.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.MultiDiGraph()
    >>> g.add_nodes_from(["app", "vm"])
    >>> _ = g.add_edge("app", "vm", key="RUNS_ON", optional=False)
    >>> topo = Topology.from_graph(g)
    >>> prop = topo.propagate(topo.indexes(["vm"]))
    >>> [topo.ids[i] for i in prop.down.tolist()]
    ['vm', 'app']
    """

    def closure(
        self,
        seeds: IntArray,
        *,
        reverse: bool = False,
        max_depth: int | None = None,
        required_only: bool = False,
    ) -> tuple[IntArray, npt.NDArray[np.int32]]:
        """Breadth-first closure from ``seeds`` (see :func:`impact.passes.closure`).

        Raises
        ------
        CINotFoundError
            A seed index is outside the topology.
        """
        return passes.closure(self, seeds, reverse=reverse, max_depth=max_depth,
                              required_only=required_only)

    def propagate(self, seeds: IntArray) -> Propagation:
        """Status of every CI when ``seeds`` are down (see :func:`impact.passes.propagate`).

        Raises
        ------
        CINotFoundError
            A seed index is outside the topology.
        """
        return passes.propagate(self, seeds)

    def explaining_inputs(
        self, prop: Propagation, owners: IntArray | None = None
    ) -> dict[int, list[int]]:
        """The inputs that explain each reached CI's status (see
        :func:`impact.explain.explaining_inputs`)."""
        return explain.explaining_inputs(self, prop, owners)
