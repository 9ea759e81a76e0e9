"""Graph stores: the ``GraphStore`` protocol, ``MemoryStore`` (networkx) and ``Neo4jStore``."""

from cmdb_graph.store.base import (
    IDENTIFIER_FIELDS,
    MAX_PAGE_SIZE,
    CIFilter,
    Direction,
    GraphStore,
    Page,
    WriteBatch,
)

__all__ = [
    "IDENTIFIER_FIELDS",
    "MAX_PAGE_SIZE",
    "CIFilter",
    "Direction",
    "GraphStore",
    "Page",
    "WriteBatch",
]
