"""``cmdb-graph demo``: generate a seeded synthetic estate into the embedded store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cmdb_graph.cli import app
from cmdb_graph.errors import CmdbError
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.factory import load_registry
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import MAX_SIZE, MIN_SIZE, REL, CIIndex, generate_rows, models_from_rows

__all__ = ["demo", "load_demo_estate"]

err = Console(stderr=True)
out = Console()

#: Totals printed under the per-class table: (label in ``store.counts()``, caption).
_TOTALS: tuple[tuple[str, str], ...] = (
    ("CI", "configuration items"),
    ("relationships", "CI-to-CI relationships"),
    ("Asset", "assets"),
    ("SupportGroup", "support groups"),
    ("Person", "people"),
    ("Location", "locations"),
    ("Change", "changes"),
    ("Window", "windows"),
    ("Incident", "incidents"),
)


def load_demo_estate(
    store: MemoryStore, size: int, *, seed: int = 42, progress: Progress | None = None
) -> CIIndex:
    """Generate the synthetic estate and write it into ``store``, batch by batch.

    Parameters
    ----------
    store : MemoryStore
        The (empty) store to fill; not saved here.
    size : int
        Number of CIs (see :func:`cmdb_graph.synthetic.generate_rows`).
    seed : int
        Seed of the generator.
    progress : rich.progress.Progress, optional
        Shows how many CIs are written.

    Returns
    -------
    CIIndex
        The CI ids by class and the landmarks (core switch, Payments and its database).

    Raises
    ------
    ValueError
        ``size`` out of range.
    InvalidRecordError
        The store refused a batch (a generator bug: every row is valid by construction).
    """
    index = CIIndex()
    task = progress.add_task("writing CIs", total=size) if progress is not None else None
    for label, rows in generate_rows(size, seed=seed):
        models = models_from_rows(label, rows)
        if label == REL:
            store.apply(WriteBatch(relationships=models))
        else:
            store.apply(WriteBatch(nodes=models))
        if label == "CI":
            index.add(rows)
            if progress is not None and task is not None:
                progress.advance(task, len(rows))
    return index


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _report(
    store: MemoryStore,
    index: CIIndex,
    settings: Settings,
    size: int,
    seed: int,
    *,
    serving: bool = False,
) -> None:
    snapshot = settings.snapshot_path
    counts = store.counts()
    table = Table(title=f"Synthetic estate: {size} CIs, seed {seed}")
    table.add_column("CI class")
    table.add_column("count", justify="right")
    for key in sorted(k for k in counts if k.startswith("CI:")):
        table.add_row(key.removeprefix("CI:"), str(counts[key]))
    out.print(table)
    totals = Table(title="Totals")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    for key, caption in _TOTALS:
        totals.add_row(caption, str(counts.get(key, 0)))
    out.print(totals)
    core = index.core_switch
    db = index.payments_database
    _say(f"Snapshot written to {snapshot}.")
    site = f"http://{settings.host}:{settings.port}"
    url = f"{site}/graphql"
    if serving:
        out.print(f"\n[bold]Serving[/bold] it now: open {site}/ for the dependency map, {url} "
                  "for GraphiQL (Ctrl-C stops)", highlight=False)
    else:
        out.print(f"\n[bold]Next[/bold]: serve it, then open {site}/ for the dependency map, "
                  f"{url} for GraphiQL", highlight=False)
        _say(f"  cmdb-graph serve --snapshot {snapshot}")
    _say(f"Blast radius of the core switch {index.name_of(core)} ({core}):")
    _say(
        f'  query {{ changeImpact(ciIds: ["{core}"], servicesOnly: true) {{ __typename '
        "... on ChangeImpact { summary { total servicesHit mostCriticalService } } } }",
    )
    _say(f'or of the Payments database {index.name_of(db)} ({db}): ciIds: ["{db}"]')
    _say("More operations: graphql/operations/*.graphql")


@app.command()
def demo(
    size: Annotated[
        int, typer.Option(min=MIN_SIZE, max=MAX_SIZE, help="Number of configuration items.")
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same estate.")] = 42,
    snapshot: Annotated[
        Path | None,
        typer.Option(help="Snapshot file to write (default CMDB_SNAPSHOT_PATH)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite an existing snapshot file.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the GraphQL API on it afterwards.")
    ] = False,
) -> None:
    """Generate a seeded synthetic estate into the embedded store and save its snapshot.

    The estate runs from business services (Payments, Online Shop, ...) through application
    services, applications, databases and clusters to virtual machines, hypervisors, servers,
    switches, storage and datacenters, with assets, support groups, owners, changes, windows
    and incidents, and with the data-quality problems the reports look for.

    Exit codes: 0 done, 1 the snapshot exists (without --replace) or cannot be written,
    2 bad options.
    """
    settings = Settings()
    if snapshot is not None:
        settings.snapshot_path = snapshot
    path = settings.snapshot_path
    if path.exists() and not replace:
        err.print(
            f"[red]error:[/red] {path} already exists; pass --replace to overwrite it with the "
            "demo estate, or --snapshot to write elsewhere"
        )
        raise typer.Exit(1)
    try:
        registry = load_registry(settings)
        # No snapshot path at first: the old file is neither read nor touched until the new
        # estate is complete, and then replaced atomically.
        store = MemoryStore(registry=registry)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"),
            TimeElapsedColumn(), console=err, transient=True,
        ) as progress:  # fmt: skip
            index = load_demo_estate(store, size, seed=seed, progress=progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        store.snapshot_path = path
        store.save()
    except (CmdbError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    _report(store, index, settings, size, seed, serving=serve)
    if serve:
        from cmdb_graph.cli.serve import run_server

        settings.store = "memory"
        try:
            run_server(settings, host=settings.host, port=settings.port)
        except CmdbError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
