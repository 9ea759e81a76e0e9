"""``cmdb-graph import``: parse source files, identify and reconcile, apply as one import run."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cmdb_graph.cli import app
from cmdb_graph.cli.paths import DbOption, SnapshotOption, store_settings
from cmdb_graph.errors import (
    CmdbError,
    ConfigurationError,
    ImportAbortedError,
    InvalidRecordError,
    NotFoundError,
)
from cmdb_graph.ingest import COUNT_KEYS, ImportResult, ReconciliationPolicy, run_import
from cmdb_graph.model import DataSource, RunMode
from cmdb_graph.store.base import GraphStore
from importers import IMPORTERS

__all__ = ["import_command", "parse_options"]

err = Console(stderr=True)
out = Console()

#: Most lines of each list (skips, creates, ...) printed; the rest is counted.
MAX_LINES = 50

_KINDS = "Importer kind: " + ", ".join(IMPORTERS) + "."


def _records(importer: Any, paths: Sequence[Path], progress: Progress | None) -> Iterator[Any]:
    """The records of the run's files (:meth:`~importers.base.Importer.parse_files`: folders
    walked and files folded where the kind does it)."""
    task = progress.add_task("parsing", total=None, count=0) if progress else None
    count = 0
    if progress is not None and task is not None:
        progress.update(task, description=f"parsing {len(paths)} file(s)")
    for rec in importer.parse_files(paths):
        count += 1
        if progress is not None and task is not None and count % 100 == 0:
            progress.update(task, count=count)
        yield rec
    if progress is not None and task is not None:
        progress.update(task, description="identifying and reconciling", count=count)


def _source(store: GraphStore, name: str, priority: int | None) -> DataSource | str:
    if priority is None:
        return name
    try:
        found = store.get_node("DataSource", name)
    except NotFoundError:
        return DataSource(name=name, priority=priority)
    assert isinstance(found, DataSource)
    return found.model_copy(update={"priority": priority})


def _lines(title: str, items: Sequence[str]) -> None:
    if not items:
        return
    out.print(f"[bold]{title}[/bold] ({len(items)})")
    for line in items[:MAX_LINES]:
        # One line per item, never wrapped: each names a file and record to grep for.
        out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    if len(items) > MAX_LINES:
        out.print(f"  ... and {len(items) - MAX_LINES} more")


def print_result(result: ImportResult) -> None:
    """Print the summary table, the plan (dry runs) and every skip with reason and location."""
    plan = result.plan
    title = f"Import {result.run.run_id}: source {result.source.name} ({result.run.mode.value})"
    if result.dry_run:
        title += " - DRY RUN, nothing written"
    table = Table(title=title)
    table.add_column("kind")
    for key in COUNT_KEYS:
        table.add_column(key, justify="right")
    for kind in sorted(plan.by_kind):
        c = plan.by_kind[kind]
        table.add_row(kind, *(str(c.get(k, 0)) for k in COUNT_KEYS))
    counts = result.counts
    table.add_row("[bold]total[/bold]", *(f"[bold]{counts[k]}[/bold]" for k in COUNT_KEYS))
    out.print(table)
    if result.dry_run:
        _lines("Would create", [f"{c.label} {c.key} {c.name or ''}".rstrip()
                                for c in plan.creates])
        _lines("Would update", [
            f"{c.label} {c.key} {c.name or ''}: "
            + ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in c.changes.items())
            for c in plan.updates])
    _lines("Merged", [f"{m.duplicate} into {m.survivor} (rule {m.rule}; {m.origin})"
                      for m in plan.merges])
    _lines("Retired", [f"{r.ci_id} {r.name} (missed {r.missed_full_runs} full runs)"
                       for r in plan.retirements])
    _lines("Skipped", [str(s) for s in plan.skips])
    _lines("Warnings", [str(w) for w in plan.warnings])
    if plan.breaker_tripped:
        out.print("[yellow]This full run would retire more than the allowed share of the "
                  "source's CIs: a real run needs --force.[/yellow]")


def parse_options(items: Sequence[str]) -> dict[str, str]:
    """Importer keyword options from ``KEY=VALUE`` strings (values stay strings).

    Raises
    ------
    ConfigurationError
        An item without ``=``, with an empty or non-identifier key, or a key given twice.
    """
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigurationError(f"--option {item!r}: expected KEY=VALUE, e.g. host=web01")
        if key in found:
            raise ConfigurationError(f"--option {key}: given twice")
        found[key] = value
    return found


def _fail(exc: Exception, code: int) -> typer.Exit:
    message = " ".join(str(exc).split())
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command("import")
def import_command(
    kind: Annotated[str, typer.Argument(metavar="KIND", help=_KINDS, show_default=False)],
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH", help="Input files, read in order; a "
                                   "folder is walked for the kinds that read one (kubernetes).")
    ],
    source: Annotated[str, typer.Option("--source", help="Data source name, e.g. sccm.")],
    priority: Annotated[
        int | None,
        typer.Option(help="Data source priority (higher wins reconciliation); stored."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Full run: CIs this source no longer sends may retire.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan, write nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Let a full run through the retirement breaker.")
    ] = False,
    mapping: Annotated[
        Path | None, typer.Option(help="Field mapping file (mapped importers: csv, json, ...).")
    ] = None,
    retire_after: Annotated[
        int, typer.Option(min=1, help="Missed full runs after which a CI is retired.")
    ] = 3,
    policy: Annotated[
        Path | None,
        typer.Option(help="Reconciliation policy YAML: CI class -> attribute -> sources, "
                          "highest first."),
    ] = None,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    options: Annotated[
        list[str] | None,
        typer.Option("--option", metavar="KEY=VALUE",
                     help="Importer option (repeatable), e.g. host=web01 (swid), "
                          "project=shop (compose), default_namespace=prod (kubernetes), "
                          "date_format=%d/%m/%Y (snipeit-licenses)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import files of one data source: identify, reconcile, and apply them as one run.

    Exit codes: 0 done; 1 bad input or configuration (the message names file, line, field);
    2 refused by the retirement circuit breaker (nothing written).
    """
    from cmdb_graph.store.factory import open_store
    from importers import get_importer

    settings = store_settings(db, snapshot)
    try:
        kwargs: dict[str, Any] = parse_options(options or [])
        if mapping is not None:
            kwargs["mapping"] = mapping
        importer = get_importer(kind, **kwargs)
        paths = importer.files(paths)
        pol = ReconciliationPolicy.from_file(policy) if policy is not None else None
        store = open_store(settings)
    except CmdbError as exc:
        raise _fail(exc, 1) from exc
    try:
        try:
            ds = _source(store, source, priority)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid data source {source!r}: {exc.errors()[0]['msg']}"
                                     ) from exc
        with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                      TextColumn("{task.fields[count]} records"), TimeElapsedColumn(),
                      console=err, transient=True, disable=as_json) as progress:
            result = run_import(
                store,
                _records(importer, paths, progress),
                source=ds,
                importer=kind,
                mode=RunMode.FULL if full else RunMode.DELTA,
                dry_run=dry_run,
                force=force,
                retire_after=retire_after,
                files=paths,
                policy=pol,
            )
    except ImportAbortedError as exc:
        store.close()
        raise _fail(exc, 2) from exc
    except (InvalidRecordError, CmdbError) as exc:
        store.close()
        raise _fail(exc, 1) from exc
    store.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        print_result(result)
