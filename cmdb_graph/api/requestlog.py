"""One log line and the metrics of every HTTP request, and its request id.

:class:`RequestLog` is the outermost middleware of the application. For each request it

- takes the client's ``X-Request-ID`` when it is a plausible id (1 to 128 letters, digits,
  ``.``, ``_``, ``:``, ``-``, starting with a letter or digit), else makes one (32 hex
  digits), and returns it in the response's ``X-Request-ID`` header; the id is in every log
  record made while the request is served (:data:`cmdb_graph.logs.REQUEST_ID`) and in the
  change records of the writes it makes (``Actor.request_id``);
- authenticates the caller once (:func:`~cmdb_graph.api.auth.authenticate`; the GraphQL
  context reuses it);
- when the response is sent, writes one line to the ``cmdb_graph.request`` logger at INFO
  with these fields:

  ==============  ==========================================================================
  field           meaning
  ==============  ==========================================================================
  request_id      as above
  method, path    the HTTP request line (path without the query string)
  status          the HTTP status sent (500 when the application failed before answering)
  duration_ms     from the request's arrival to its last byte, in milliseconds
  caller, role    the API key's name and role (``local``/``admin`` in local mode,
                  ``anonymous`` and no role without a valid key)
  operation       the GraphQL operation's name (the metrics' label, see
                  :func:`cmdb_graph.metrics.operation_label`); other paths: see there
  outcome         ``ok`` or ``error``
  error_kind      with ``error``: ``unauthorized`` (401: no or an unknown key),
                  ``invalid_request`` (the GraphQL document does not parse or validate, its
                  variables do not coerce, or it is over a query limit), ``user_error`` (a
                  ``UserError`` answer or an error of ours: bad input, not found, forbidden
                  role...; ``error_code`` holds its code), ``internal`` (an unexpected error,
                  masked for the client: strawberry logs its traceback with the same
                  ``request_id``), ``http`` (refused before GraphQL: Host, body size or
                  time, unknown path)
  error_code      the ``UserError`` code (``FORBIDDEN``, ``INVALID_RECORD``, ...)
  ==============  ==========================================================================

- observes ``cmdb_request_duration_seconds{operation}`` and, on error,
  ``cmdb_request_errors_total{operation, kind}`` (:mod:`cmdb_graph.metrics`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmdb_graph.api.auth import Principal, authenticate
from cmdb_graph.logs import REQUEST_ID
from cmdb_graph.metrics import REQUEST_ERRORS, REQUEST_SECONDS, operation_label
from cmdb_graph.settings import Settings

__all__ = ["ERROR_KINDS", "FACTS_KEY", "RequestFacts", "RequestLog", "request_id_of"]

log = logging.getLogger("cmdb_graph.request")

#: The key of a request's :class:`RequestFacts` in the ASGI scope's ``state``.
FACTS_KEY = "cmdb_request"
#: Error kinds, the most telling last (a request keeps the most telling one noted).
ERROR_KINDS = ("http", "invalid_request", "unauthorized", "user_error", "internal")

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_of(header: str | None) -> str:
    """The client's request id when it is plausible (see the module), else a new one.

    Examples
    --------
    >>> request_id_of("req-42:a.b_c")
    'req-42:a.b_c'
    >>> len(request_id_of("bad id\\n")), len(request_id_of(None))
    (32, 32)
    """
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


@dataclass(slots=True)
class RequestFacts:
    """What the request log says about one request, filled in while it is served.

    Attributes
    ----------
    request_id : str
    principal : Principal
        The caller.
    operation : str, optional
        The GraphQL operation's name, as the client named it.
    error_kind, error_code : str, optional
        The most telling error noted (see :data:`ERROR_KINDS`) and its code.
    """

    request_id: str
    principal: Principal
    operation: str | None = None
    error_kind: str | None = None
    error_code: str | None = None

    def note_error(self, kind: str, code: str | None = None) -> None:
        """Note an error of ``kind`` (kept unless a more telling one was noted)."""
        if self.error_kind is None or ERROR_KINDS.index(kind) > ERROR_KINDS.index(
                self.error_kind):
            self.error_kind, self.error_code = kind, code


class RequestLog:
    """ASGI middleware: request id, caller, one log line and the metrics per request.

    Parameters
    ----------
    app : ASGI application
        The application (behind its request guard).
    settings : Settings
        The API keys the caller is authenticated against.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        facts = RequestFacts(request_id_of(headers.get("x-request-id")),
                             authenticate(self.settings, headers))
        scope.setdefault("state", {})[FACTS_KEY] = facts
        token = REQUEST_ID.set(facts.request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = facts.request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            facts.note_error("internal")
            status = 500
            raise
        finally:
            self._finish(scope, facts, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    def _finish(self, scope: Scope, facts: RequestFacts, status: int, seconds: float) -> None:
        if status == 401:
            facts.note_error("unauthorized")
        elif status >= 400 and facts.error_kind is None:
            facts.note_error("internal" if status >= 500 else "http")
        path = scope.get("path", "")
        operation = operation_label(path, facts.operation)
        REQUEST_SECONDS.labels(operation).observe(seconds)
        if facts.error_kind is not None:
            REQUEST_ERRORS.labels(operation, facts.error_kind).inc()
        role = facts.principal.role
        outcome = "ok" if facts.error_kind is None else "error"
        ms = round(seconds * 1000, 3)
        log.info(
            "%s %s %s %d %s %.1f ms", scope.get("method", ""), path, operation, status,
            outcome if facts.error_kind is None else f"{outcome} {facts.error_kind}", ms,
            extra={
                "request_id": facts.request_id, "method": scope.get("method"), "path": path,
                "status": status, "duration_ms": ms, "caller": facts.principal.name,
                "role": str(role) if role is not None else None,
                "operation": operation, "outcome": outcome, "error_kind": facts.error_kind,
                "error_code": facts.error_code,
            },
        )
