"""Helpers shared by the impact modules (not public API)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from cmdb_graph.errors import CINotFoundError
from cmdb_graph.model import ImpactDirection, Registry
from impact.topology import Topology

__all__ = ["attr", "get_topology", "impact_edge_types", "kind_of", "require_cis"]


def get_topology(
    graph: nx.MultiDiGraph, registry: Registry | None, topology: Topology | None
) -> tuple[Registry, Topology]:
    """The registry and topology to use: the given ones, else built from ``graph``."""
    reg = registry or Registry()
    return reg, topology if topology is not None else Topology.from_graph(graph, reg)


def require_cis(graph: nx.MultiDiGraph, ci_ids: Iterable[str]) -> list[str]:
    """``ci_ids`` deduplicated and sorted.

    Raises
    ------
    CINotFoundError
        One of them is not a node of ``graph``.
    """
    ids = sorted(set(ci_ids))
    missing = [c for c in ids if c not in graph]
    if missing:
        raise CINotFoundError(f"unknown CI(s): {', '.join(missing[:5])}")
    return ids


def attr(graph: nx.MultiDiGraph, ci_id: str, name: str, default: Any = None) -> Any:
    """A node attribute, ``default`` when missing or ``None``."""
    data: Mapping[str, Any] = graph.nodes[ci_id]
    value = data.get(name)
    return default if value is None else value


def kind_of(graph: nx.MultiDiGraph, registry: Registry, ci_id: str) -> str:
    """The service kind (string) of a CI's class."""
    return str(registry.kind_of(str(attr(graph, ci_id, "ci_class", ""))))


def impact_edge_types(
    graph: nx.MultiDiGraph, registry: Registry, failing: str, impacted: str
) -> list[str]:
    """Relationship types through which a failure of ``failing`` reaches ``impacted``."""
    directions = registry.impacting_types()
    out: list[str] = []
    if graph.has_edge(impacted, failing):
        for key, data in graph[impacted][failing].items():
            rel = data.get("rel_type", key)
            if directions.get(rel) is ImpactDirection.END_TO_START:
                out.append(str(rel))
    if graph.has_edge(failing, impacted):
        for key, data in graph[failing][impacted].items():
            rel = data.get("rel_type", key)
            if directions.get(rel) is ImpactDirection.START_TO_END:
                out.append(str(rel))
    return sorted(out)
