"""``cmdb-graph runs list | undo``: the store's import runs, and undoing an interrupted one.

Exit codes: 0 done (also when the run had been undone already), 1 no such run, a run that is
not interrupted or failed, or a store error.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cmdb_graph.cli import app
from cmdb_graph.cli.paths import DbOption, store_settings
from cmdb_graph.cli.query import err, out
from cmdb_graph.errors import CmdbError
from cmdb_graph.ingest.undo import undo_run
from cmdb_graph.model import ImportRun
from cmdb_graph.store.paging import iter_nodes

__all__ = ["list_runs", "undo"]

runs_app = typer.Typer(help="Import runs: list them, undo an interrupted one.",
                       no_args_is_help=True)
app.add_typer(runs_app, name="runs")

AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]


@runs_app.command("list")
def list_runs(
    source: Annotated[str | None, typer.Option(help="Only this data source's runs.")] = None,
    db: DbOption = None,
    as_json: AsJson = False,
) -> None:
    """Import runs, newest first: id, source, importer, status, started (UTC), error."""
    from cmdb_graph.store.factory import open_store

    try:
        store = open_store(store_settings(db))
        try:
            where = {"source": source} if source else None
            found = [r for r in iter_nodes(store, ImportRun.LABEL, where)
                     if isinstance(r, ImportRun)]
        finally:
            store.close()
    except CmdbError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    found.sort(key=lambda r: (r.started_at, r.run_id), reverse=True)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in found], indent=2))
        return
    table = Table()
    # the id is what `runs undo` takes: never cut or wrapped, the other columns give way
    table.add_column("run", no_wrap=True,
                     min_width=max((len(r.run_id) for r in found), default=3))
    for title in ("source", "importer", "status", "started", "error"):
        table.add_column(title, overflow="fold")
    for r in found:
        table.add_row(r.run_id, r.source, r.importer, r.status.value,
                      r.started_at.strftime("%Y-%m-%d %H:%M:%S"), escape(r.error or ""))
    out.print(table)


@runs_app.command()
def undo(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run's id (runs list).")],
    db: DbOption = None,
    as_json: AsJson = False,
) -> None:
    """Undo what an interrupted or failed import run wrote, and mark it failed and undone.

    Takes the import lock (waits for a running import), then puts back every node and
    relationship the run changed, in one write recorded in the change feed (what another
    writer changed since is left as it is). The next import run does this by itself for every
    run an interrupted process left running.
    """
    from cmdb_graph.store.factory import open_store

    try:
        store = open_store(store_settings(db))
        try:
            with store.import_lock():
                result = undo_run(store, run_id)
        finally:
            store.close()
    except CmdbError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps({
            "run_id": result.run.run_id, "already": result.already, "records": result.records,
            "nodes_deleted": result.nodes_deleted, "nodes_restored": result.nodes_restored,
            "relationships_removed": result.relationships_removed,
            "relationships_restored": result.relationships_restored, "kept": result.kept,
        }, indent=2))
        return
    if result.already:
        out.print(f"run {escape(run_id)} was undone already: {escape(result.run.error or '')}")
    else:
        out.print(f"run {escape(run_id)} undone: {escape(result.summary())}")
