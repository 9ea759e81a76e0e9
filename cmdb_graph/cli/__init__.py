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
    """Entry point of the ``cmdb-graph`` console script.

    A configuration error that reaches here (malformed settings such as ``CMDB_API_KEYS``,
    read by every command) ends the command with one line on stderr and exit code 2.
    """
    from cmdb_graph.errors import ConfigurationError

    _register()
    try:
        app()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
