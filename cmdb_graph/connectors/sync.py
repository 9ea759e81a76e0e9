"""One sync of a data source: fetch every page, read it with the importer, import as one run.

:func:`sync_source` is what ``cmdb-graph sync`` and the schedules of ``serve --schedule`` run:

1. The delta window: a delta run of a connector whose API filters by modification time asks
   only for what changed since the start of the source's last successful import run (an
   ``ImportRun`` of the store); a full run, or a first one, asks for everything.
2. Fetch: the connector reads every page (retries, backoff and ``Retry-After`` in
   :mod:`cmdb_graph.connectors.http`). A page that still fails fails the run here, before
   a single record is read: nothing is written but the failed ``ImportRun`` (its error names
   the source and the page), and nothing is retired.
3. Read: each page goes to its importer's :meth:`~importers.base.Importer.records` (the same
   transform and guard as a file), with the source's importer options.
4. Import: :func:`cmdb_graph.ingest.run_import` identifies, reconciles and writes one run
   (retirement only after a full run), as the data source's import actor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cmdb_graph.connectors.base import Connector, connector_for
from cmdb_graph.connectors.config import SourceConfig, SourcesFile
from cmdb_graph.connectors.http import Progress
from cmdb_graph.errors import CmdbError, NotFoundError
from cmdb_graph.ingest import ImportResult, run_import
from cmdb_graph.model import DataSource, ImportRun, RunMode, RunStatus
from cmdb_graph.store.base import GraphStore

__all__ = ["SyncOutcome", "last_success", "sync_all", "sync_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOutcome:
    """What one source's sync came to: its import result, or the error line."""

    source: str
    result: ImportResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the sync succeeded."""
        return self.error is None


def last_success(store: GraphStore, source: str) -> datetime | None:
    """When the source's last successful import run started (UTC), or ``None``."""
    latest: datetime | None = None
    after: str | None = None
    while True:
        page = store.list_nodes("ImportRun", where={"source": source,
                                                    "status": RunStatus.SUCCEEDED.value},
                                after=after, limit=500)
        for run in page.items:
            if isinstance(run, ImportRun) and (latest is None or run.started_at > latest):
                latest = run.started_at
        if page.next_cursor is None:
            return latest
        after = page.next_cursor


def _records(connector: Connector, config: SourceConfig,
             since: datetime | None) -> Iterator[Any]:
    """Every record of the run: all pages are fetched before the first is read."""
    from importers import get_importer

    try:
        pages = connector.fetch(since)
    finally:
        connector.close()
    readers: dict[str, Any] = {}
    for page in pages:
        if page.importer not in readers:
            readers[page.importer] = get_importer(page.importer,
                                                  **config.importer_options(page.importer))
        yield from readers[page.importer].records(page.doc, page.origin)


def _data_source(store: GraphStore, name: str, config: SourceConfig) -> DataSource:
    try:
        found = store.get_node("DataSource", name)
    except NotFoundError:
        return DataSource(name=name, kind=config.kind, priority=config.priority)
    assert isinstance(found, DataSource)
    return found.model_copy(update={"priority": config.priority})


def sync_source(
    store: GraphStore,
    name: str,
    config: SourceConfig,
    *,
    full: bool | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Fetch one data source from its API and import it as one run (module docstring).

    Parameters
    ----------
    store : GraphStore
        Where the CMDB lives.
    name : str
        The data source's name (its key in the sources file).
    config : SourceConfig
        The source's settings.
    full : bool, optional
        Override the configured mode (``True`` full, ``False`` delta).
    dry_run : bool
        Fetch and plan, write nothing.
    progress : callable, optional
        ``progress(source, message)`` per page fetched and per step.
    now : datetime, optional
        The run's time (UTC).

    Returns
    -------
    ImportResult
        The written ``ImportRun`` with its counts, and the plan.

    Raises
    ------
    ConnectorError
        A page failed (after retries) or the credentials were refused: recorded as a failed
        ``ImportRun``; nothing else written, nothing retired.
    InvalidRecordError
        A page holds what its importer refuses (naming the page URL, record and field).
    ImportAbortedError
        The full run would retire more than the breaker allows (``force`` not set).
    """
    mode = RunMode.FULL if (full if full is not None else config.mode is RunMode.FULL) \
        else RunMode.DELTA
    connector = connector_for(name, config, progress=progress)
    since = last_success(store, name) if mode is RunMode.DELTA and connector.delta else None
    if progress is not None:
        window = f"changes since {since:%Y-%m-%d %H:%M:%S}Z" if since else "everything"
        progress(name, f"{mode.value} run of {config.kind} at {config.url}: {window}")
    result = run_import(
        store, _records(connector, config, since), source=_data_source(store, name, config),
        importer=f"{config.kind}-api", mode=mode, dry_run=dry_run, force=config.force,
        files=[config.url], now=now)
    log.info("sync %s: run %s %s", name, result.run.run_id, result.counts)
    return result


def sync_all(
    store: GraphStore,
    sources: SourcesFile,
    *,
    names: list[str] | None = None,
    full: bool | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[SyncOutcome]:
    """Sync each source (all, or those named) in turn; one failing source does not stop the
    others. Each outcome holds the result or the one-line error."""
    outcomes: list[SyncOutcome] = []
    for name in names or list(sources.sources):
        config = sources.source(name)
        try:
            result = sync_source(store, name, config, full=full, dry_run=dry_run,
                                 progress=progress)
        except CmdbError as exc:
            outcomes.append(SyncOutcome(name, error=" ".join(str(exc).split())))
            continue
        outcomes.append(SyncOutcome(name, result=result))
    return outcomes
