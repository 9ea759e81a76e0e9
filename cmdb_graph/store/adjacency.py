"""Edges of the dependency graphs with shared, read-only dicts where they hold nothing.

A ``networkx.MultiDiGraph`` keeps, for every ordered pair of nodes with an edge, one *key dict*
``{edge key: attribute dict}`` (the same object under ``_succ[u][v]`` and ``_pred[v][u]``).
In the graphs this project keeps for a whole estate (the embedded store's working graph, the
engine's graph) almost every pair holds one relationship with no attribute left after its
defaults are dropped: at 1M CIs that is 1.7M key dicts and 1.7M empty attribute dicts per graph,
about 0.4 GB each. Here every such pair points to one shared key dict per relationship type,
``{rel_type: EMPTY}``; the rest are plain dicts as networkx makes them.

The shared dicts are read-only (:class:`ReadOnlyDict`: any change raises ``TypeError``, so
nothing can change every edge of a type by mistake) and pickle as a reference to the shared
object of the process that loads them. A graph holding them is changed only through
:func:`put_edge` and :func:`drop_edge` (``add_edge``/``remove_edge`` of networkx would change
a shared key dict and raise); reading it is plain networkx. ``graph.copy()`` gives plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import networkx as nx

__all__ = ["EMPTY", "ReadOnlyDict", "drop_edge", "put_edge", "put_edge_dicts", "shared_keys"]


class ReadOnlyDict(dict[str, Any]):
    """A dict that refuses every change (the shared attribute and key dicts of edges).

    Raises
    ------
    TypeError
        On any change (``d[k] = v``, ``del d[k]``, ``update``, ``pop``, ``clear``, ...).
    """

    __slots__ = ()

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a shared edge dict is read-only: change edges with "
                        "cmdb_graph.store.adjacency.put_edge / drop_edge")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def copy(self) -> dict[str, Any]:
        """A plain (changeable) copy."""
        return dict(self)

    def __copy__(self) -> ReadOnlyDict:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> ReadOnlyDict:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        if not self:
            return (_empty, ())
        (key,) = self
        return (shared_keys, (key,))


def _empty() -> ReadOnlyDict:
    return EMPTY


#: The attribute dict of every edge that has none (read-only, one per process).
EMPTY = ReadOnlyDict()

_SHARED: dict[str, ReadOnlyDict] = {}


def shared_keys(key: str) -> ReadOnlyDict:
    """The key dict ``{key: EMPTY}`` every pair with only an attribute-less ``key`` edge
    shares (one per edge key and process)."""
    found = _SHARED.get(key)
    if found is None:
        found = _SHARED[key] = ReadOnlyDict({key: EMPTY})
    return found


def put_edge_dicts(
    succ: dict[str, dict[str, Any]],
    pred: dict[str, dict[str, Any]],
    u: str,
    v: str,
    key: str,
    attrs: Mapping[str, Any],
) -> None:
    """Set edge ``(u, v, key)`` to ``attrs`` in a graph's ``_succ``/``_pred`` dicts, both ends
    present (the bulk form of :func:`put_edge`: no checks, no cache clearing).

    ``attrs`` is kept as given when it holds anything (do not change it afterwards), replaced
    by :data:`EMPTY` when empty.
    """
    value = attrs if attrs else EMPTY
    nbrs = succ[u]
    keys = nbrs.get(v)
    if keys is None or (len(keys) == 1 and key in keys):
        new: dict[str, Any] = shared_keys(key) if value is EMPTY else {key: value}
        nbrs[v] = pred[v][u] = new
    elif type(keys) is ReadOnlyDict:
        nbrs[v] = pred[v][u] = {**keys, key: value}
    else:
        keys[key] = value


def put_edge(graph: nx.MultiDiGraph, u: str, v: str, key: str, attrs: Mapping[str, Any]) -> None:
    """Set edge ``(u, v, key)`` of ``graph`` to ``attrs`` (replacing what it held; ends added
    when missing), sharing the key dict when ``attrs`` is empty (see the module docstring).

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        The graph (its shared dicts stay unchanged).
    u, v : str
        Source and target node.
    key : str
        Edge key (the relationship type).
    attrs : Mapping
        The edge's attributes; kept as given when not empty: do not change it afterwards.
    """
    for node in (u, v):
        if node not in graph._succ:  # noqa: SLF001
            graph.add_node(node)
    put_edge_dicts(graph._succ, graph._pred, u, v, key, attrs)  # noqa: SLF001
    nx._clear_cache(graph)  # noqa: SLF001 - as networkx's add_edge does


def drop_edge(graph: nx.MultiDiGraph, u: str, v: str, key: str) -> bool:
    """Remove edge ``(u, v, key)`` from ``graph``; whether it was there.

    The pair's key dict is replaced, never changed (it may be shared); a pair left with one
    attribute-less edge shares its key dict again.
    """
    nbrs = graph._succ.get(u)  # noqa: SLF001
    keys = None if nbrs is None else nbrs.get(v)
    if keys is None or key not in keys:
        return False
    assert nbrs is not None
    pred = graph._pred[v]  # noqa: SLF001
    if len(keys) == 1:
        del nbrs[v]
        del pred[u]
    else:
        rest = {k: d for k, d in keys.items() if k != key}
        if len(rest) == 1:
            ((k, d),) = rest.items()
            if not d:
                rest = shared_keys(k)
        nbrs[v] = pred[u] = rest
    nx._clear_cache(graph)  # noqa: SLF001
    return True
