"""``cmdb-graph sync`` (sources' APIs into the CMDB) and ``cmdb-graph push`` (the CMDB into an
ITSM tool's), both driven by a sources file (:mod:`cmdb_graph.connectors.config`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cmdb_graph.cli import app
from cmdb_graph.cli.paths import DbOption, SnapshotOption, store_settings
from cmdb_graph.connectors.config import SourcesFile
from cmdb_graph.connectors.http import Progress
from cmdb_graph.errors import CmdbError
from cmdb_graph.store.base import GraphStore

__all__ = ["sync_command", "push_command"]

err = Console(stderr=True)
out = Console()

SourcesOption = Annotated[
    Path, typer.Option("--sources", envvar="CMDB_SOURCES",
                       help="Sources file (YAML; default CMDB_SOURCES or sources.yaml).")]


def _fail(exc: Exception, code: int = 1) -> typer.Exit:
    for line in str(exc).splitlines() or [""]:
        err.print(f"[red]error:[/red] {' '.join(line.split())}", highlight=False,
                  soft_wrap=True, markup=True)
    return typer.Exit(code)


def _open(sources: Path, db: Path | None, snapshot: Path | None
          ) -> tuple[SourcesFile, GraphStore]:
    """The sources file and the configured store (``ConfigurationError`` etc. raised)."""
    from cmdb_graph.connectors.config import load_sources
    from cmdb_graph.store.factory import open_store

    settings = store_settings(db, snapshot)
    config = load_sources(sources)
    return config, open_store(settings)


def _progress(quiet: bool) -> Progress | None:
    def report(source: str, message: str) -> None:
        err.print(f"[cyan]{source}[/cyan] {message}", highlight=False, soft_wrap=True)
    return None if quiet else report


@app.command("sync")
def sync_command(
    source: Annotated[str | None, typer.Argument(help="Data source name in the sources file.")
                      ] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Sync every source.")] = False,
    sources: SourcesOption = Path("sources.yaml"),
    full: Annotated[bool | None, typer.Option("--full/--delta",
                                              help="Override the configured mode.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Fetch and plan, write nothing.")
                       ] = False,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Read data sources from their APIs and import them (one run per source).

    Exit codes: 0 every source synced; 1 a source failed or the sources file is wrong (one
    line per mistake).
    """
    from cmdb_graph.cli.imports import print_result
    from cmdb_graph.connectors.sync import sync_all

    if (source is None) == (not all_sources):
        err.print("[red]error:[/red] name one SOURCE or give --all")
        raise typer.Exit(2)
    names = [source] if source is not None else None
    try:
        config, store = _open(sources, db, snapshot)
        if source is not None:
            config.source(source)
    except CmdbError as exc:
        raise _fail(exc) from exc
    try:
        outcomes = sync_all(store, config, names=names, full=full, dry_run=dry_run,
                            progress=_progress(as_json))
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([{"source": o.source, "error": o.error,
                                "result": o.result.to_dict() if o.result else None}
                               for o in outcomes], indent=2, sort_keys=True, default=str))
    for outcome in outcomes:
        if outcome.result is not None and not as_json:
            print_result(outcome.result)
        elif outcome.error is not None:
            err.print(f"[red]error:[/red] {outcome.error}", highlight=False, soft_wrap=True)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@app.command("push")
def push_command(
    target: Annotated[str | None, typer.Argument(help="Target name in the sources file.")
                      ] = None,
    all_targets: Annotated[bool, typer.Option("--all", help="Push to every target.")] = False,
    sources: SourcesOption = Path("sources.yaml"),
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Print what would be sent, send nothing.")
                       ] = False,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
) -> None:
    """Send the CIs and relationships that changed since the last push to an ITSM tool's
    CMDB (ServiceNow IRE, JSM Assets import).

    Exit codes: 0 everything accepted; 1 a CI was rejected (each printed with the target's
    reason), the target failed, or the sources file is wrong.
    """
    from cmdb_graph.connectors.push import push

    if (target is None) == (not all_targets):
        err.print("[red]error:[/red] name one TARGET or give --all")
        raise typer.Exit(2)
    try:
        config, store = _open(sources, db, snapshot)
        names = [target] if target is not None else list(config.targets)
        for name in names:
            config.target(name)
    except CmdbError as exc:
        raise _fail(exc) from exc
    failed = False
    try:
        for name in names:
            try:
                result = push(store, name, config.target(name), state_dir=config.state_path(),
                              dry_run=dry_run, progress=_progress(False))
            except CmdbError as exc:
                err.print(f"[red]error:[/red] {' '.join(str(exc).split())}", highlight=False,
                          soft_wrap=True)
                failed = True
                continue
            verb = "would send" if dry_run else "sent"
            out.print(f"{name}: {verb} {len(result.sent)} CIs and {len(result.links_sent)} "
                      f"relationships; {result.unchanged} unchanged, {result.unmapped} not "
                      f"mapped, {len(result.rejected)} rejected", highlight=False)
            if dry_run:
                for line in [*result.sent, *result.links_sent]:
                    out.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
            for rejected in result.rejected:
                out.print(f"  rejected: {rejected}", highlight=False, markup=False,
                          soft_wrap=True)
            failed = failed or not result.ok
    finally:
        store.close()
    if failed:
        raise typer.Exit(1)
