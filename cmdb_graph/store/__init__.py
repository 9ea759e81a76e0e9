"""Graph stores: the ``GraphStore`` protocol, ``MemoryStore`` (networkx) and ``Neo4jStore``.

Modules: ``base`` (the protocol and ``BaseStore``, what both stores share), ``rows`` (models
as lean rows and back), ``batch`` (write batches and their validation), ``paging`` (pages,
cursors, reading whole listings), ``query`` (read arguments: filters, identifiers,
directions), ``memory``, ``layout`` and ``database`` (the embedded store: its API, its
in-memory graph, its SQLite database), ``snapshot`` (old snapshot files, migrated once),
``neo4j`` (the Neo4j store), ``factory`` (the store the settings name).
"""

from cmdb_graph.store.base import (
    IDENTIFIER_FIELDS,
    MAX_PAGE_SIZE,
    CIFilter,
    Direction,
    GraphStore,
    Page,
    WriteBatch,
)
from cmdb_graph.store.paging import iter_cis, iter_nodes, iter_pages

__all__ = [
    "IDENTIFIER_FIELDS",
    "MAX_PAGE_SIZE",
    "CIFilter",
    "Direction",
    "GraphStore",
    "Page",
    "WriteBatch",
    "iter_cis",
    "iter_nodes",
    "iter_pages",
]
