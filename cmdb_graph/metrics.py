"""Prometheus metrics (prometheus_client), served at ``/metrics`` by the API.

========================================  =========  ======================================
metric                                    type       labels, meaning
========================================  =========  ======================================
``cmdb_request_duration_seconds``         histogram  ``operation``: seconds per request
``cmdb_request_errors_total``             counter    ``operation``, ``kind``: failed requests
``cmdb_import_runs_total``                counter    ``importer``, ``status``: import runs
``cmdb_import_changes_total``             counter    ``importer``, ``change``: their counts
``cmdb_engine_feed_seq``                  gauge      the last change record the engine applied
``cmdb_feed_head_seq``                    gauge      the store's feed head (read at scrape)
``cmdb_feed_lag_records``                 gauge      head minus what the engine applied
``cmdb_webhook_deliveries_total``         counter    ``outcome``: webhook deliveries
========================================  =========  ======================================

``operation`` is the GraphQL operation's name (``anonymous`` without one; past
:data:`MAX_OPERATIONS` distinct names, or a name that is not a GraphQL name, ``other``), or
``/healthz``, ``/readyz``, ``/metrics``, ``web`` (the map and its files) for other paths.
``kind`` is a request's error kind (see :mod:`cmdb_graph.api.requestlog`). ``status`` of an
import run is ``succeeded``, ``failed``, ``aborted`` or ``dry_run``; ``change`` is
``created``, ``updated``, ``merged``, ``retired``, ``unchanged`` or ``skipped`` (real runs
only). The webhook dispatcher (:mod:`cmdb_graph.events.dispatch`) increments
:data:`WEBHOOK_DELIVERIES` with ``outcome`` ``delivered``, ``retried`` (an attempt failed and
will be retried) or ``dead_lettered`` (given up: a dead letter an admin can replay).

Several worker processes (``cmdb-graph serve --workers N``) use prometheus_client's
multiprocess mode: ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the
workers start, each worker writes its values there, and whichever worker answers a scrape
sums them (counters and histograms over all workers; ``cmdb_engine_feed_seq`` and
``cmdb_feed_lag_records`` per worker, with a ``pid`` label).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

__all__ = [
    "CONTENT_TYPE_LATEST", "ENGINE_FEED_SEQ", "FEED_HEAD", "IMPORT_CHANGES", "IMPORT_RUNS",
    "MAX_OPERATIONS", "MULTIPROC_ENV", "REQUEST_ERRORS", "REQUEST_SECONDS",
    "WEBHOOK_DELIVERIES", "operation_label", "process_exited", "record_import", "render",
]

#: The environment variable that turns prometheus_client's multiprocess mode on.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Distinct GraphQL operation names labelled per process; later ones are ``other``.
MAX_OPERATIONS = 200

REQUEST_SECONDS = Histogram(
    "cmdb_request_duration_seconds", "Seconds from a request's arrival to its last byte.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REQUEST_ERRORS = Counter(
    "cmdb_request_errors_total", "Requests that ended in an error, by error kind.",
    ["operation", "kind"],
)
IMPORT_RUNS = Counter(
    "cmdb_import_runs_total", "Import runs (files, sync, importRun, ciUpsert, ...) by status.",
    ["importer", "status"],
)
IMPORT_CHANGES = Counter(
    "cmdb_import_changes_total", "What the import runs did to records (their counts).",
    ["importer", "change"],
)
ENGINE_FEED_SEQ = Gauge(
    "cmdb_engine_feed_seq", "The last change record the engine's graph has applied.",
    multiprocess_mode="liveall",
)
ENGINE_FEED_SEQ.set(-1)  # no graph built yet (no lag is reported for it)
FEED_HEAD = Gauge(
    "cmdb_feed_head_seq", "The store's latest change record (read at each scrape).",
    multiprocess_mode="livemax",
)
WEBHOOK_DELIVERIES = Counter(
    "cmdb_webhook_deliveries_total", "Webhook deliveries by outcome.", ["outcome"],
)

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_seen: set[str] = set()
_seen_lock = threading.Lock()


def operation_label(path: str, operation: str | None) -> str:
    """The ``operation`` label of a request (see the module), bounded in number.

    Examples
    --------
    >>> operation_label("/graphql", "ChangeImpact"), operation_label("/graphql", None)
    ('ChangeImpact', 'anonymous')
    >>> operation_label("/graphql", "x y"), operation_label("/static/app.js", None)
    ('other', 'web')
    """
    if path != "/graphql":
        return path if path in _PATHS else "web"
    if not operation:
        return "anonymous"
    if not _NAME.fullmatch(operation):
        return "other"
    with _seen_lock:
        if operation not in _seen:
            if len(_seen) >= MAX_OPERATIONS:
                return "other"
            _seen.add(operation)
    return operation


def record_import(importer: str, status: str, counts: Mapping[str, int] | None = None) -> None:
    """Count one import run and, for a run that wrote, what it did (``counts``)."""
    IMPORT_RUNS.labels(importer, status).inc()
    for change, n in (counts or {}).items():
        if n:
            IMPORT_CHANGES.labels(importer, change).inc(n)


def render(feed_head: int | None) -> bytes:
    """The exposition text of every metric of this process (or of all worker processes in
    multiprocess mode), with the feed head and lag as of ``feed_head``.

    Parameters
    ----------
    feed_head : int, optional
        The store's feed head now (``None``: the store keeps no feed).
    """
    if feed_head is not None:
        FEED_HEAD.set(feed_head)
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        families = list(registry.collect())
    else:
        families = list(REGISTRY.collect())
    if feed_head is not None:
        families.append(_lag(feed_head, families))
    return generate_latest(_Families(families))


def process_exited() -> None:
    """Drop this process's live gauges from the multiprocess folder (a worker that stops);
    nothing outside multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _lag(head: int, families: Iterable[Metric]) -> Metric:
    """``cmdb_feed_lag_records``: the head minus each engine's applied record."""
    lag = GaugeMetricFamily("cmdb_feed_lag_records",
                            "Change records the engine has yet to apply (at its next question).",
                            labels=["pid"])
    for family in families:
        if family.name != "cmdb_engine_feed_seq":
            continue
        for sample in family.samples:
            if sample.value >= 0:
                lag.add_metric([sample.labels.get("pid", str(os.getpid()))],
                               max(0.0, head - sample.value))
    return lag


class _Families:
    """A collector of already collected metric families."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families
