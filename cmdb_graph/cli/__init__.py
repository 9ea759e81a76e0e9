"""The ``cmdb-graph`` command line.

Each group of commands lives in its own module and registers itself on :data:`app`.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="cmdb-graph",
    help="Graph-based CMDB and service-impact engine.",
    no_args_is_help=True,
    add_completion=False,
)


def _register() -> None:
    # Importing the modules registers their commands on ``app``.
    from cmdb_graph.cli import commands  # noqa: F401


def main() -> None:
    """Entry point of the ``cmdb-graph`` console script."""
    _register()
    app()
