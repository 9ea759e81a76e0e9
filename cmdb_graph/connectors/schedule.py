"""Schedules of the sources file, run inside ``cmdb-graph serve --schedule`` (APScheduler).

One background scheduler thread with a single worker: syncs never overlap (a run still going
when its next time comes is skipped, ``max_instances=1``; missed runs are coalesced into one).
Each source with a ``schedule`` (crontab, UTC) gets one job that calls
:func:`~cmdb_graph.connectors.sync.sync_source`; a failing sync is logged as one line and
recorded as a failed ``ImportRun``, and the schedule goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from cmdb_graph.connectors.config import SourceConfig, SourcesFile, cron_trigger
from cmdb_graph.connectors.sync import sync_source
from cmdb_graph.errors import CmdbError
from cmdb_graph.store.base import GraphStore

__all__ = ["start_schedules", "run_scheduled"]

log = logging.getLogger(__name__)


def run_scheduled(store: GraphStore, name: str, config: SourceConfig) -> None:
    """One scheduled sync; errors are logged (one line), never raised into the scheduler."""
    try:
        result = sync_source(store, name, config)
    except CmdbError as exc:
        log.error("scheduled sync of %s failed: %s", name, " ".join(str(exc).split()))
        return
    except Exception:  # a bug must not stop the other schedules
        log.exception("scheduled sync of %s failed", name)
        return
    log.info("scheduled sync of %s: run %s %s", name, result.run.run_id, result.counts)


def start_schedules(store: GraphStore, sources: SourcesFile) -> Any:
    """Start a background scheduler with one job per scheduled source; returns it (call
    ``shutdown()`` to stop).

    Raises
    ------
    ConfigurationError
        No source of the file has a schedule.
    """
    from cmdb_graph.errors import ConfigurationError

    scheduled = {n: c for n, c in sources.sources.items() if c.schedule}
    if not scheduled:
        raise ConfigurationError(f"{sources.path}: no source has a schedule")
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 600},
        timezone="UTC")
    for name, config in scheduled.items():
        assert config.schedule is not None
        scheduler.add_job(run_scheduled, trigger=cron_trigger(config.schedule),
                          args=[store, name, config], id=f"sync:{name}", name=f"sync {name}")
    scheduler.start()
    log.info("schedules started: %s", ", ".join(f"{n} ({c.schedule})"
                                               for n, c in scheduled.items()))
    return scheduler
