"""The service layer: answers questions about the estate in a store, for the API and the CLI.

:class:`~cmdb_graph.service.engine.Engine` composes a store and the impact engine
(:mod:`impact`): it decides which part of the graph each question needs, builds the
:class:`impact.ImpactGraph` once per state of the store, and calls the impact functions with
the server's caps.
"""

from cmdb_graph.service.engine import Engine, ProposedChange, list_all

__all__ = ["Engine", "ProposedChange", "list_all"]
