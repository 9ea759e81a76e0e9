"""The server's log: one record per line on stderr, JSON by default (python-json-logger).

:func:`configure_logging` installs one handler on the root logger, so every logger (ours,
strawberry's, uvicorn's) writes through it. Each record made while a request is being served
carries that request's id (``request_id``, from :data:`REQUEST_ID`), so the detail of an
unexpected error (logged by strawberry with its traceback) can be found from the request's
line. The request lines themselves are written by :mod:`cmdb_graph.api.requestlog`.

A JSON line has ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``pid`` (the process: one
per worker) and ``message``, then the record's own fields (``extra``), e.g.::

    {"time": "2026-12-05T12:00:00.123456+00:00", "level": "INFO",
     "logger": "cmdb_graph.request", "pid": 4242,
     "message": "POST /graphql ChangeImpact 200 ok 12.3 ms",
     "request_id": "4f1c...", "caller": "servicenow", "role": "reader", ...}
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from cmdb_graph.settings import Settings

__all__ = ["REQUEST_ID", "RequestIdFilter", "configure_logging"]

#: The id of the request being served in this context (``None`` outside requests).
REQUEST_ID: ContextVar[str | None] = ContextVar("cmdb_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (from :data:`REQUEST_ID`) to records made during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record``; never drops it."""
        if getattr(record, "request_id", None) is None:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                record.request_id = request_id
        return True


class _UtcJsonFormatter(JsonFormatter):
    """python-json-logger's formatter: ``time`` (ISO 8601, UTC) first, then ``level``,
    ``logger``, ``pid``, ``message`` and the record's own fields."""

    def __init__(self) -> None:
        super().__init__("{levelname}{name}{process}{message}", style="{",
                         rename_fields={"levelname": "level", "name": "logger",
                                        "process": "pid"},
                         timestamp="time")

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        """The record's fields, ``time`` first."""
        super().add_fields(log_data, record, message_dict)
        rest = {k: v for k, v in log_data.items() if k != "time"}
        when = log_data["time"]
        log_data.clear()
        log_data["time"] = when
        log_data.update(rest)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (as logging's last-resort
    handler does): a stream swapped and closed later (a test runner's capture, a CLI runner)
    never leaves the handler writing to a closed file."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return _UtcJsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (default stderr) in ``settings.log_format``, at
    ``settings.log_level`` and above.

    Replaces the handler a previous call installed (not other handlers). httpx's own
    per-request lines (the webhook POSTs) are kept at WARNING and above.

    Parameters
    ----------
    settings : Settings
        ``log_level`` and ``log_format``.
    stream : text stream, optional
        Where lines go (default ``sys.stderr``).

    Returns
    -------
    logging.Handler
        The installed handler.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_cmdb_graph", False)]:
        root.removeHandler(old)
    handler: logging.Handler = (
        _CurrentStderr() if stream is None else logging.StreamHandler(stream))
    handler._cmdb_graph = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter(settings.log_format))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # httpx logs every webhook POST at INFO; the delivery's outcome is ours to log (one line)
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    return handler
