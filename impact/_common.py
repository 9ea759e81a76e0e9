"""Helpers shared by the impact modules (not public API)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from cmdb_graph.errors import CINotFoundError
from cmdb_graph.model import Registry
from impact.topology import Topology

__all__ = ["attr", "get_topology", "kind_of", "require_cis"]


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
