"""``cmdb-graph serve``, ``cmdb-graph apikey`` and ``cmdb-graph schema``."""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from cmdb_graph.cli import app
from cmdb_graph.cli.paths import DbOption, SnapshotOption, store_settings
from cmdb_graph.errors import CmdbError, ConfigurationError
from cmdb_graph.logs import configure_logging
from cmdb_graph.settings import Settings

console = Console(stderr=True, soft_wrap=True)  # an error stays one line


def run_server(settings: Settings, *, host: str, port: int,
               schedule: Path | None = None, workers: int = 1) -> None:
    """Open the configured store and serve the API with uvicorn until interrupted; with
    ``schedule``, also run that sources file's sync schedules in this process.

    With ``workers`` above 1 (Neo4j only), uvicorn starts that many worker processes, each
    with its own store connection and engine (:func:`cmdb_graph.api.app.app_from_environment`,
    reading the same ``CMDB_*`` environment); each follows the store's change feed, so a write
    through one is seen by the next question through any other.

    Raises
    ------
    ConfigurationError
        ``host`` is beyond loopback and no API keys are configured, the sources file or the
        webhooks file is wrong, several workers are asked for on the embedded store or
        with schedules, or ``host``:``port`` cannot be listened on (already in use).
    """
    if settings.store == "memory" and workers == 1:
        from cmdb_graph.store.checkpoint import prefetch

        prefetch(settings.embedded_database())  # read while the API's modules are imported
    import uvicorn

    from cmdb_graph.api.app import create_app
    from cmdb_graph.api.auth import check_bind_address
    from cmdb_graph.api.server import server_config
    from cmdb_graph.store.factory import open_store

    check_workers(settings, workers, schedule)
    check_bind_address(settings, host)
    if settings.webhooks_file is not None:
        from cmdb_graph.events import load_webhooks

        load_webhooks(settings.webhooks_file)  # a mistake ends the start with one line
    sources = None
    if schedule is not None:
        from cmdb_graph.connectors.config import load_sources

        sources = load_sources(schedule)  # likewise, before the server's log is set up
    configure_logging(settings)
    # our handler writes uvicorn's records too; the request log replaces its access log
    quiet: dict[str, Any] = {"log_level": "warning", "log_config": None, "access_log": False}
    # bound before "Serving ..." is printed: a port in use ends the start with one error
    listener = bind_listener(host, port)
    if not settings.api_keys:
        console.print(
            "[yellow]No API keys configured (CMDB_API_KEYS): local mode, binding loopback "
            f"only ({host}); every caller is an admin.[/yellow]"
        )
    if workers > 1:
        listener.close()  # uvicorn binds again for its worker processes (a probe)
        console.print(f"Serving the dependency map at http://{host}:{port}/ and GraphQL at "
                      f"http://{host}:{port}/graphql (store: neo4j, {workers} worker "
                      "processes, each following the change feed)")
        with multiprocess_metrics():
            uvicorn.run("cmdb_graph.api.app:app_from_environment", factory=True,
                        workers=workers, host=host, port=port, **quiet)
        return
    try:
        store = open_store(settings)
    except BaseException:
        listener.close()
        raise
    scheduler = None
    if sources is not None:
        from cmdb_graph.connectors.schedule import start_schedules

        scheduler = start_schedules(store, sources)
        console.print(f"Running the sync schedules of {schedule}")
    console.print(f"Serving the dependency map at http://{host}:{port}/ and GraphQL at "
                  f"http://{host}:{port}/graphql (store: {settings.store})")
    try:
        config = server_config(create_app(settings, store), settings, host=host, port=port,
                               **quiet)
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
        if scheduler is not None:
            scheduler.shutdown(wait=False)


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind the server's TCP socket on ``host``:``port``, as uvicorn would (``SO_REUSEADDR``,
    inheritable); uvicorn listens on it.

    Parameters
    ----------
    host : str
        Address to bind (an IPv6 address when it holds ``:``).
    port : int
        Port to bind.

    Returns
    -------
    socket.socket
        The bound socket; the caller closes it.

    Raises
    ------
    ConfigurationError
        The address is already in use (another server listens there), or cannot be bound
        for another reason (no such address, a privileged port).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {host} is already in use (is another server running?): "
                "stop it, or pick another port with --port or CMDB_PORT"
            ) from exc
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    sock.set_inheritable(True)
    return sock


@contextmanager
def multiprocess_metrics() -> Iterator[None]:
    """Point prometheus_client's multiprocess mode at a fresh folder for the worker processes
    started inside the block (they inherit the environment), and remove it afterwards; a
    ``PROMETHEUS_MULTIPROC_DIR`` already set is used as it is (empty it before each start)."""
    from cmdb_graph.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="cmdb-metrics-") as folder:
        os.environ[MULTIPROC_ENV] = folder
        try:
            yield
        finally:
            del os.environ[MULTIPROC_ENV]


def check_workers(settings: Settings, workers: int, schedule: Path | None) -> None:
    """Refuse worker counts the configuration cannot serve.

    Raises
    ------
    ConfigurationError
        ``workers`` below 1; above 1 on the embedded store (one process holds it: its
        writes would not reach the other processes), or together with ``schedule`` (every
        worker would run the schedules).
    """
    if workers < 1:
        raise ConfigurationError("--workers must be at least 1")
    if workers == 1:
        return
    if settings.store != "neo4j":
        raise ConfigurationError(
            f"--workers {workers}: the embedded store is single-process (one process holds "
            "the estate in memory and writes its file); serve it with one worker, or use "
            "Neo4j (CMDB_NEO4J_URI) for several worker processes or replicas"
        )
    if schedule is not None:
        raise ConfigurationError(
            "--schedule runs the sync schedules in the serving process: with several workers "
            "each would run them; run `cmdb-graph serve --schedule` (one worker) or "
            "`cmdb-graph sync` from a timer apart from the API workers"
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default CMDB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CMDB_PORT, 8000).")] = None,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    schedule: Annotated[
        Path | None, typer.Option(help="Sources file whose sync schedules run in the server.")
    ] = None,
    workers: Annotated[int, typer.Option(
        help="Worker processes (Neo4j only; each follows the change feed).", min=1,
    )] = 1,
) -> None:
    """Serve the dependency map (/) and the GraphQL API (/graphql with GraphiQL, /healthz,
    /readyz, Prometheus metrics at /metrics); with --schedule, also sync the data sources on
    their schedules.

    Who may read /metrics: in local mode (no API keys) loopback callers, as every path; with
    API keys (CMDB_API_KEYS) any valid key (401 without one), or anyone when
    CMDB_METRICS_PUBLIC=true (then restrict the port in the network). See docs/security.md.
    """
    try:
        settings = store_settings(db, snapshot)
        run_server(settings, host=host or settings.host, port=port or settings.port,
                   schedule=schedule, workers=workers)
    except CmdbError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


@app.command()
def apikey(
    name: Annotated[str, typer.Argument(help="A name for the key (shown in logs).")],
    role: Annotated[str, typer.Option(help="reader, writer or admin.")] = "reader",
) -> None:
    """Create an API key: prints the key once, and the CMDB_API_KEYS entry to configure."""
    from cmdb_graph.api.auth import new_api_key

    if role not in ("reader", "writer", "admin"):
        console.print("[red]error:[/red] --role must be reader, writer or admin")
        raise typer.Exit(2)
    key, entry = new_api_key(name, role)  # type: ignore[arg-type]
    typer.echo(f"key: {key}")
    typer.echo("CMDB_API_KEYS entry: " + json.dumps(entry.model_dump()))


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the SDL here.")
    ] = None,
) -> None:
    """Print (or write) the GraphQL schema SDL exported from the code."""
    from cmdb_graph.api.schema import export_sdl

    sdl = export_sdl()
    if output is None:
        typer.echo(sdl, nl=False)
    else:
        output.write_text(sdl, encoding="utf-8")


@app.command()
def checkpoint(db: DbOption = None) -> None:
    """Write the embedded store's checkpoint: its working graph and the impact engine's
    topology, as of the newest change, in DATABASE.checkpoint beside the database.

    The next process that opens the database (the server, any command) starts from it and
    applies only the changes made after it, instead of reading every row: at 1M CIs, about
    15 s to the first answer instead of 45 s. The server writes one when it stops
    (CMDB_CHECKPOINT_ON_EXIT); run this after a large import. The database stays the record:
    a checkpoint that does not match it (another version of cmdb-graph, a replaced, restored
    or pruned database, a damaged file) is ignored with a warning and removed.

    Exit codes: 0 written (or nothing to write yet), 2 no embedded database there, or the
    file cannot be written.
    """
    try:
        settings = store_settings(db)
        if settings.store != "memory":
            raise ConfigurationError("checkpoints are for the embedded store (CMDB_STORE="
                                     "memory); Neo4j keeps its own files")
        from cmdb_graph.cli.paths import estate_exists

        if not estate_exists(settings):
            raise ConfigurationError(f"{settings.embedded_database()}: no database here")
        path, cis, opened_s, written_s = write_estate_checkpoint(settings)
    except CmdbError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if path is None:
        typer.echo("Nothing to checkpoint: the database holds no change yet.")
        return
    typer.echo(f"Wrote {path} ({cis:,} CIs) in {written_s:.1f} s (the estate opened and the "
               f"engine built before it in {opened_s:.1f} s).")


def write_estate_checkpoint(settings: Settings) -> tuple[Path | None, int, float, float]:
    """Open the embedded store of ``settings``, build the engine, write the checkpoint.

    Returns
    -------
    tuple
        ``(path, cis, opened_s, written_s)``: the checkpoint (``None`` before the first
        write), the number of CIs, the seconds the store's opening and the engine's build
        took, and the seconds the file took.

    Raises
    ------
    CmdbError
        The store cannot be opened or the file cannot be written.
    """
    import time

    from cmdb_graph.service.engine import Engine
    from cmdb_graph.store.factory import open_store

    t0 = time.perf_counter()
    store = open_store(settings)
    try:
        engine = Engine(store, settings)
        cis = len(engine.whole_graph())
        t1 = time.perf_counter()
        path = engine.save_checkpoint()
        t2 = time.perf_counter()
    finally:
        store.close()
    return path, cis, t1 - t0, t2 - t1
