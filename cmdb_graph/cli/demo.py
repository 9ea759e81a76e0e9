"""``cmdb-graph demo``: generate a seeded synthetic estate into the embedded store.

The estate is dated relative to ``--now`` (default: the start of today, UTC), so that its CIs
were seen recently and its changes lie ahead; the same seed and ``--now`` give the same
estate. It is marked by a data source named ``demo``: a store that holds only a demo estate
(or nothing) is replaced without asking, any other estate only with ``--replace``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cmdb_graph.cli import app
from cmdb_graph.cli.paths import SnapshotOption, store_settings
from cmdb_graph.errors import CmdbError
from cmdb_graph.model import Change, DataSource
from cmdb_graph.service.engine import list_all
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.factory import load_registry
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import MAX_SIZE, MIN_SIZE, REL, CIIndex, generate_rows, models_from_rows

__all__ = ["DEMO_SOURCE", "demo", "existing_estate", "load_demo_estate"]

#: The data source that marks a store's estate as the demo's.
DEMO_SOURCE = DataSource(name="demo", kind="synthetic", priority=0)

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
    store: MemoryStore,
    size: int,
    *,
    seed: int = 42,
    now: datetime | None = None,
    progress: Progress | None = None,
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
    now : datetime, optional
        The time the estate is dated from (see :func:`cmdb_graph.synthetic.generate_rows`;
        default its ``DEFAULT_NOW``).
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
    store.apply(WriteBatch(nodes=[DEMO_SOURCE]))
    for label, rows in generate_rows(size, seed=seed, now=now):
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
    option: str = "",
    serving: bool = False,
) -> None:
    """The counts, then what to try: commands (with ``option`` to name the store) and GraphQL."""
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
    _say(f"Database written to {settings.embedded_database()}.")
    changes = sorted((n for n in list_all(store, "Change") if isinstance(n, Change)),
                     key=lambda c: c.change_id)
    out.print("\n[bold]Try[/bold] (`cmdb-graph --help` lists every command; a CI is named by "
              "its name, any identifier or its ci_id):", highlight=False)
    tries = [
        (f"impact {index.name_of(core)} --services-only", "blast radius of a core switch"),
        (f"route {index.name_of(db)}", "who gets an incident on the Payments database"),
        ("map Payments", "a service down to its infrastructure"),
        ("changes", "the recorded changes: "
         + ", ".join(c.change_id for c in changes[:3]) + (" ..." if len(changes) > 3 else "")),
    ]
    clash = next((c for c in changes if c.title == "Kernel update, first node"), None)
    if clash is not None:
        tries.append((f"conflicts {clash.change_id}", f"conflicts of '{clash.title}'"))
    tries += [("incidents --open", "open incidents"), ("orphans", "orphaned assets and CIs")]
    width = max(len(c) + len(option) for c, _ in tries)
    for command, why in tries:
        _say(f"  cmdb-graph {(command + option).ljust(width)}  # {why}")
    site = f"http://{settings.host}:{settings.port}"
    url = f"{site}/graphql"
    if serving:
        out.print(f"\n[bold]Serving[/bold] it now: open {site}/ for the dependency map, {url} "
                  "for GraphiQL (Ctrl-C stops)", highlight=False)
    else:
        out.print(f"\n[bold]Serve[/bold] it, then open {site}/ for the dependency map, "
                  f"{url} for GraphiQL:", highlight=False)
        _say(f"  cmdb-graph serve{option}")
    _say(f"Blast radius of the core switch {index.name_of(core)} ({core}) over GraphQL:")
    _say(
        f'  query {{ changeImpact(ciIds: ["{core}"], servicesOnly: true) {{ __typename '
        "... on ChangeImpact { summary { total servicesHit mostCriticalService } } } }",
    )
    _say(f'or of the Payments database {index.name_of(db)} ({db}): ciIds: ["{db}"]')
    _say("More operations: graphql/operations/*.graphql")


def existing_estate(path: Path, settings: Settings) -> tuple[Literal["none", "demo", "other"], int]:
    """What the embedded store at ``path`` holds: nothing (no file, or an empty store, as
    ``serve`` leaves one), a demo estate (:data:`DEMO_SOURCE` and no import run) or another
    estate; and its number of CIs.

    Raises
    ------
    StoreError
        The file is not a readable store.
    """
    legacy = settings.legacy_snapshot()
    if not path.exists() and (legacy is None or not legacy.exists()):
        return "none", 0
    # Reading writes nothing (but migrates an old snapshot into the database, once).
    store = MemoryStore(registry=load_registry(settings), database_path=path,
                        snapshot_path=legacy)
    try:
        counts = {k: v for k, v in store.counts().items() if ":" not in k}
        sources = {str(n.name) for n in list_all(store, "DataSource")
                   if isinstance(n, DataSource)}
    finally:
        store.close()
    if not any(counts.values()):
        return "none", 0
    if sources == {DEMO_SOURCE.name} and not counts.get("ImportRun"):
        return "demo", counts.get("CI", 0)
    return "other", counts.get("CI", 0)


def _may_write(path: Path, settings: Settings, *, replace: bool) -> None:
    """Say what writing the demo to ``path`` replaces; exit 1 when it is not a demo estate
    (or not a store at all) and ``replace`` is off."""
    try:
        found, cis = existing_estate(path, settings)
    except (CmdbError, OSError) as exc:
        if not replace:
            err.print(f"[red]error:[/red] {path} is not a store cmdb-graph can read ({exc}); "
                      "pass --replace to overwrite it with the demo estate, or --db to "
                      "write elsewhere", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc
        found, cis = "other", 0
    if found == "other" and not replace:
        err.print(
            f"[red]error:[/red] {path} holds an estate of {cis} CI(s) that is not a demo "
            "estate; pass --replace to replace it with the demo estate, or --db to "
            "write elsewhere", highlight=False, soft_wrap=True,
        )
        raise typer.Exit(1)
    if found != "none":
        err.print(f"Replacing the {'demo ' if found == 'demo' else ''}estate of {cis} CI(s) "
                  f"in {path}.", highlight=False, soft_wrap=True)


def _start_of_today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@app.command()
def demo(
    size: Annotated[
        int, typer.Option(min=MIN_SIZE, max=MAX_SIZE, help="Number of configuration items.")
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same estate.")] = 42,
    now: Annotated[
        str | None,
        typer.Option(help="Date the estate from this ISO 8601 time (default: the start of "
                          "today, UTC): last seen, warranties, changes, windows, incidents."),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Database to write (default CMDB_DATABASE_PATH, "
                                  ".cmdb/estate.db)."),
    ] = None,
    snapshot: SnapshotOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an estate that is not a demo estate.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the GraphQL API on it afterwards.")
    ] = False,
) -> None:
    """Generate a seeded synthetic estate into the embedded store's database.

    The estate runs from business services (Payments, Online Shop, ...) through application
    services, applications, databases and clusters to virtual machines, hypervisors, servers,
    switches, storage and datacenters, with assets, support groups, owners, changes, windows
    and incidents, and with the data-quality problems the reports look for.

    It goes where the other commands read (CMDB_DATABASE_PATH, or --db). An empty store
    or an earlier demo estate there is replaced; any other estate only with --replace.

    It then writes the database's checkpoint (as `cmdb-graph checkpoint` does), so that the
    server's first start reads it instead of every row (at 1M CIs: seconds, not a minute).

    Exit codes: 0 done, 1 another estate is there (without --replace) or the database cannot
    be written, 2 bad options.
    """
    settings = store_settings(db, snapshot)
    path = settings.embedded_database()
    try:
        when = _start_of_today() if now is None else datetime.fromisoformat(now)
    except ValueError:
        err.print(f"[red]error:[/red] --now: not an ISO 8601 time: {now!r}")
        raise typer.Exit(2) from None
    _may_write(path, settings, replace=replace)
    try:
        registry = load_registry(settings)
        # In memory at first: the old database is neither read nor touched until the new
        # estate is complete, and then replaced by the new file.
        store = MemoryStore(registry=registry)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"),
            TimeElapsedColumn(), console=err, transient=True,
        ) as progress:  # fmt: skip
            index = load_demo_estate(store, size, seed=seed, now=when, progress=progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        store.save_to(path)
    except (CmdbError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    option = f" --db {path}" if db is not None or snapshot is not None else ""
    _report(store, index, settings, size, seed, option=option, serving=serve)
    del store  # the checkpoint opens the database as a server would
    from cmdb_graph.cli.serve import run_server, write_estate_checkpoint

    settings.store = "memory"
    try:
        _, _, opened_s, written_s = write_estate_checkpoint(settings)
    except CmdbError as exc:  # the estate is written; only the first start is slower
        err.print(f"[yellow]warning:[/yellow] no checkpoint written: {exc}")
    else:
        _say(f"Checkpoint written beside the database in {opened_s + written_s:.1f} s: the "
             "first start of the server reads it instead of every row.")
    if serve:
        try:
            run_server(settings, host=settings.host, port=settings.port)
        except CmdbError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
