"""How the API is served: uvicorn with our limits.

:func:`server_config` is the one place the served server is configured (``cmdb-graph serve``,
the end-to-end tests and the benchmark's server use it):

- the application as :func:`~cmdb_graph.api.app.create_app` builds it, behind its
  :class:`~cmdb_graph.api.guard.RequestGuard` (Host check, body size limit and body read
  timeout);
- a *header deadline*: a connection must send a request's whole header section within
  ``Settings.header_timeout`` seconds of being opened, or of the previous response; a client
  that sends its headers slowly (or nothing at all) is answered 408 and closed, so slow
  clients cannot hold the server's connections. uvicorn has no such timeout of its own (its
  keep-alive timer stops at the first byte); :class:`HeaderDeadline` adds it to uvicorn's HTTP
  protocol classes;
- idle keep-alive connections closed after :data:`KEEP_ALIVE_TIMEOUT` seconds, header sections
  over :data:`MAX_HEADER_BYTES` refused (h11), no ``Server`` header;
- WebSockets (the GraphQL ``events`` subscription) served by the ``websockets`` library's
  sans-I/O protocol, without per-message compression (events are small; the legacy protocol
  with compression sent frames a client refused as malformed).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from cmdb_graph.settings import Settings

__all__ = ["KEEP_ALIVE_TIMEOUT", "MAX_HEADER_BYTES", "HeaderDeadline", "ServerConfig",
           "server_config"]

#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_TIMEOUT = 5
#: Largest request header section accepted by the h11 protocol, in bytes.
MAX_HEADER_BYTES = 16 * 1024

_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8"
                     b"\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s")


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration plus the header deadline (:attr:`header_timeout`, seconds)."""

    header_timeout: float = 10.0


class HeaderDeadline:
    """The header deadline of one connection, for a uvicorn HTTP protocol (see the module).

    Armed when the connection is made and after each response; disarmed when a request's
    headers are complete (the protocol then starts a new request cycle). When it fires on a
    connection still waiting for headers, the client gets a 408 if it had sent part of them,
    and the connection is closed.
    """

    def __init__(self, protocol: Any, timeout: float) -> None:
        self.protocol = protocol
        self.timeout = timeout
        self.handle: asyncio.TimerHandle | None = None
        self.cycle: object = None
        self.partial = False

    def arm(self) -> None:
        """Start the deadline if the connection now waits for a request's headers."""
        self.cancel()
        cycle = self.protocol.cycle
        if cycle is not None and not cycle.response_complete:
            return  # a (pipelined) request is already being answered
        self.cycle = cycle
        self.partial = False
        self.handle = asyncio.get_running_loop().call_later(self.timeout, self._expire)

    def received(self) -> None:
        """Note that bytes arrived (part of a request's headers, if no request is running)."""
        self.partial = True

    def cancel(self) -> None:
        """Stop the deadline (the connection closed)."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _expire(self) -> None:
        self.handle = None
        transport = self.protocol.transport
        if self.protocol.cycle is not self.cycle or transport.is_closing():
            return  # the headers arrived in time: that request is being answered
        if self.partial:
            text = f"request headers not received within {self.timeout:g} s\n".encode()
            transport.write(_TIMEOUT_RESPONSE % (len(text), text))
        transport.close()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a :class:`HeaderDeadline`."""

    def __init__(self, config: ServerConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.deadline = HeaderDeadline(self, config.header_timeout)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline.arm()

    def data_received(self, data: bytes) -> None:
        self.deadline.received()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.deadline.arm()


def server_config(app: ASGIApp, settings: Settings, *, host: str, port: int,
                  **options: Any) -> ServerConfig:
    """The uvicorn configuration that serves ``app`` under the limits of ``settings``.

    Parameters
    ----------
    app : ASGI application
        The API (:func:`cmdb_graph.api.app.create_app`).
    settings : Settings
        ``header_timeout``.
    host, port : str, int
        Where to listen.
    **options
        Further :class:`uvicorn.Config` arguments (``log_level``, ...).
    """
    config = ServerConfig(
        app, host=host, port=port, http=GuardedH11Protocol,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        server_header=False, ws="websockets-sansio", ws_per_message_deflate=False, **options,
    )
    config.header_timeout = settings.header_timeout
    return config
