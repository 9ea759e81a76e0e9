"""The request guard: an ASGI middleware in front of the whole application.

It refuses, each with one plain-text line, before any route sees the request:

- a ``Host`` header that is not allowed (400). Loopback names (``localhost``, ``*.localhost``,
  ``127.0.0.0/8``, ``::1``) are always allowed; so are the names in
  ``Settings.allowed_hosts``. With no API keys configured (local mode) nothing else is: a web
  page that rebinds its own DNS name to 127.0.0.1 cannot reach the local server from a
  developer's browser. With keys configured and no allowed hosts set, any host is answered
  (the keys protect the server). ``/healthz`` and ``/readyz`` answer whatever the host, for
  probes that address the server by its IP;
- a request body larger than ``Settings.max_body_bytes`` (413), by its ``Content-Length``
  before a byte of it is read, or while it is read (chunked bodies);
- a body that does not arrive whole within ``Settings.body_timeout`` seconds (408).

The body is read here, whole, before the application runs, and handed on unchanged; a
WebSocket handshake gets the same Host check (refused with 403, as ASGI servers answer a
handshake closed before it is accepted).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmdb_graph.settings import Settings

__all__ = ["RequestGuard", "HostRule", "host_of"]

log = logging.getLogger(__name__)

#: Paths answered whatever the Host header (liveness and readiness probes).
_PROBES = frozenset({"/healthz", "/readyz"})


def host_of(header: str) -> str:
    """The host name of a ``Host`` header value, lower-case, without port or brackets.

    Examples
    --------
    >>> host_of("Example.COM:8000")
    'example.com'
    >>> host_of("[::1]:8000")
    '::1'
    >>> host_of("127.0.0.1")
    '127.0.0.1'
    """
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else ""
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostRule:
    """Which ``Host`` header values a server answers.

    Parameters
    ----------
    allowed : iterable of str
        Host names besides the loopback ones: exact names, ``*.example.com`` (any subdomain
        of example.com) or ``*`` (any host).
    any_host : bool
        Answer every host (keys configured and no names given).
    """

    def __init__(self, allowed: Iterable[str], *, any_host: bool = False) -> None:
        names = [host_of(a) if a != "*" and not a.startswith("*.") else a.lower()
                 for a in allowed]
        self.any_host = any_host or "*" in names
        self.exact = frozenset(n for n in names if not n.startswith("*"))
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))

    @classmethod
    def from_settings(cls, settings: Settings) -> HostRule:
        """The rule of ``settings``: loopback and ``allowed_hosts``; any host when API keys
        are configured and ``allowed_hosts`` is empty."""
        return cls(settings.allowed_hosts,
                   any_host=bool(settings.api_keys) and not settings.allowed_hosts)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header value (None: none sent) is answered."""
        if self.any_host:
            return True
        if not header:
            return False
        host = host_of(header)
        return (_is_loopback(host) or host in self.exact
                or any(host.endswith(s) for s in self.suffixes))


class _TooLarge(Exception):
    pass


class RequestGuard:
    """ASGI middleware: Host check, body size limit and body read timeout (see the module).

    Parameters
    ----------
    app : ASGI application
        What the guarded requests go on to.
    settings : Settings
        ``allowed_hosts``, ``api_keys``, ``max_body_bytes``, ``body_timeout``.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = HostRule.from_settings(settings)
        self.max_body = settings.max_body_bytes
        self.body_timeout = settings.body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if not self.hosts.allows(host) and scope.get("path") not in _PROBES:
            log.warning("refused a request for host %r", host)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _plain(send, 400, f"Host header {host!r} is not allowed: this server answers "
                                    "loopback names and CMDB_ALLOWED_HOSTS only")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            await _plain(send, 413, self._too_large())
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.body_timeout)
        except _TooLarge:
            await _plain(send, 413, self._too_large())
            return
        except TimeoutError:
            await _plain(send, 408, f"request body not received within {self.body_timeout:g} s "
                                    "(CMDB_BODY_TIMEOUT)")
            return
        if body is None:  # the client went away
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_body} bytes (CMDB_MAX_BODY_BYTES)"

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        started = time.monotonic()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                log.info("client left after %.1f s, %d body bytes", time.monotonic() - started,
                         size)
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the whole body once, then the server's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
