"""Imports every command module so that each registers its commands on the app."""

from __future__ import annotations

import importlib

_MODULES = ("demo", "imports", "neo4j", "query", "records", "serve", "sync")

for _name in _MODULES:
    try:
        importlib.import_module(f"cmdb_graph.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command group not written yet
        if exc.name != f"cmdb_graph.cli.{_name}":
            raise
