"""``cmdb-graph neo4j start|stop|status``: a local Neo4j without Docker (see devserver)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cmdb_graph import devserver
from cmdb_graph.cli import app

console = Console(stderr=True)
neo4j_app = typer.Typer(
    help="Run a local Neo4j Community 5.26 (from Maven Central, on Java 17, 127.0.0.1 only).",
    no_args_is_help=True,
)
app.add_typer(neo4j_app, name="neo4j")


def _exports(info: devserver.ServerInfo) -> str:
    """Shell exports for both the test variables and cmdb-graph's own settings."""
    pairs = [
        ("CMDB_STORE", "neo4j"),
        ("CMDB_NEO4J_URI", info.uri),
        ("CMDB_NEO4J_USER", info.user),
        ("CMDB_NEO4J_PASSWORD", info.password),
    ]
    return info.exports() + "".join(f"export {k}={shlex.quote(v)}\n" for k, v in pairs)


@neo4j_app.command("start")
def start(
    port: Annotated[int, typer.Option(help="Bolt port on 127.0.0.1; 0 picks a free one.")] = 7687,
    home: Annotated[Path | None, typer.Option(help="Instance folder (data, logs).")] = None,
) -> None:
    """Install Java/Maven if needed (root on Debian), fetch Neo4j, start it, print exports.

    Use as ``eval "$(cmdb-graph neo4j start)"``: later cmdb-graph commands then use Neo4j.
    """
    try:
        devserver.ensure_java_and_maven()
        console.print("Fetching Neo4j jars (cached after the first time)...")
        devserver.provision()
        console.print("Starting Neo4j on 127.0.0.1 ...")
        info = devserver.start(port=port, home=home)
    except (devserver.DevServerError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"Neo4j is up at {info.uri} (pid {info.pid}, home {info.home})")
    typer.echo(_exports(info), nl=False)


@neo4j_app.command("stop")
def stop(
    home: Annotated[Path | None, typer.Option(help="Instance folder.")] = None,
) -> None:
    """Stop the local Neo4j (SIGTERM, then SIGKILL after a grace period)."""
    if devserver.stop(home):
        console.print("Neo4j stopped.")
    else:
        console.print("No Neo4j was running.")
        raise typer.Exit(3)


@neo4j_app.command("status")
def status(
    home: Annotated[Path | None, typer.Option(help="Instance folder.")] = None,
) -> None:
    """Print the exports of the running local Neo4j (exit 3 when none runs)."""
    info = devserver.status(home)
    if info is None:
        console.print("No Neo4j is running.")
        raise typer.Exit(3)
    typer.echo(_exports(info), nl=False)
