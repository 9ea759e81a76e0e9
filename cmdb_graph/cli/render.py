"""The formats of ``cmdb-graph export``: a dependency graph as GraphML, Mermaid, DOT or JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import networkx as nx

__all__ = ["RENDERERS", "ExportFormat", "render_dot", "render_graphml", "render_json",
           "render_mermaid"]


class ExportFormat(StrEnum):
    """Formats of ``cmdb-graph export``."""

    GRAPHML = "graphml"
    MERMAID = "mermaid"
    DOT = "dot"
    JSON = "json"


#: Characters XML 1.0 cannot hold, even escaped (C0 controls but tab and line breaks, lone
#: surrogates, U+FFFE, U+FFFF): left out of GraphML, so that every export parses.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _scalar(value: Any) -> str | int | float | bool | None:
    if isinstance(value, str):
        return _NOT_XML.sub("", value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, list | tuple | dict):
        return _NOT_XML.sub("", json.dumps(value, sort_keys=True, default=str)) if value else None
    return _NOT_XML.sub("", str(value))


def _flat(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy whose attributes GraphML can hold: scalars, lists and dicts as JSON text."""
    flat = nx.MultiDiGraph()
    for n, data in graph.nodes(data=True):
        flat.add_node(n, **{k: v for k, v in ((k, _scalar(x)) for k, x in data.items())
                            if v is not None})
    for s, t, k, data in graph.edges(keys=True, data=True):
        flat.add_edge(s, t, key=k, **{a: v for a, v in ((a, _scalar(x)) for a, x in data.items())
                                      if v is not None})
    return flat


def render_graphml(graph: nx.MultiDiGraph) -> str:
    """GraphML of a dependency graph (``networkx.write_graphml``); lists and dicts as JSON."""
    return "\n".join(nx.generate_graphml(_flat(graph))) + "\n"


def _label(graph: nx.MultiDiGraph, n: str) -> str:
    data = graph.nodes[n]
    return f"{data.get('name') or n} ({data.get('ci_class') or 'CI'})"


def render_mermaid(graph: nx.MultiDiGraph) -> str:
    """A Mermaid flowchart: one node per CI (name and class), one arrow per relationship."""
    ids = {n: f"n{i}" for i, n in enumerate(sorted(graph.nodes))}

    def esc(text: str) -> str:
        return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
                .replace(">", "#gt;"))

    lines = ["flowchart LR"]
    for n in sorted(graph.nodes):
        lines.append(f'  {ids[n]}["{esc(n)}<br/>{esc(_label(graph, n))}"]')
    for s, t, k, data in sorted(graph.edges(keys=True, data=True), key=lambda e: e[:3]):
        arrow = "-.->" if data.get("optional") else "-->"
        lines.append(f"  {ids[s]} {arrow}|{esc(str(k))}| {ids[t]}")
    return "\n".join(lines) + "\n"


def render_dot(graph: nx.MultiDiGraph) -> str:
    """Graphviz DOT: one node per CI, one edge per relationship (dashed when optional)."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = ["digraph cmdb {", "  rankdir=LR;", "  node [shape=box];"]
    for n in sorted(graph.nodes):
        lines.append(f"  {q(n)} [label={q(_label(graph, n))}];")
    for s, t, k, data in sorted(graph.edges(keys=True, data=True), key=lambda e: e[:3]):
        style = ", style=dashed" if data.get("optional") else ""
        lines.append(f"  {q(s)} -> {q(t)} [label={q(str(k))}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_json(graph: nx.MultiDiGraph) -> str:
    """JSON: ``{"nodes": [CI attributes...], "relationships": [...]}``, sorted."""
    nodes = [{"ci_id": n, **{k: v for k, v in d.items() if k != "ci_id"}}
             for n, d in sorted(graph.nodes(data=True))]
    rels = [{"rel_type": k, "source": s, "target": t,
             **{a: v for a, v in d.items() if a not in ("rel_type", "source", "target")}}
            for s, t, k, d in sorted(graph.edges(keys=True, data=True), key=lambda e: e[:3])]
    return json.dumps({"nodes": nodes, "relationships": rels}, indent=2, sort_keys=True,
                      default=str) + "\n"


#: The renderer of each export format.
RENDERERS: dict[ExportFormat, Callable[[nx.MultiDiGraph], str]] = {
    ExportFormat.GRAPHML: render_graphml,
    ExportFormat.MERMAID: render_mermaid,
    ExportFormat.DOT: render_dot,
    ExportFormat.JSON: render_json,
}
