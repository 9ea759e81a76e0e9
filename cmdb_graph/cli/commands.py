"""Imports every command module so that each registers its commands on the app."""

from __future__ import annotations

from cmdb_graph.cli import (
    demo,
    events,
    history,
    imports,
    neo4j,
    query,
    records,
    runs,
    serve,
    sync,
)

__all__ = ["demo", "events", "history", "imports", "neo4j", "query", "records", "runs", "serve",
           "sync"]
