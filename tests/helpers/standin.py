"""A stand-in for a vendor's API: a real HTTP server on 127.0.0.1 in a thread.

Routes answer canned documents (real API answers from ``../shared/realdata``, or written from
the vendor's documentation); ``fail`` queues faults on a path (a 429 with ``Retry-After``, a
500); ``token`` is the credential the server expects in ``Authorization`` (anything else gets
a 401, as the real APIs answer). Every request is recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


Handler = Callable[[Request], Reply]


@dataclass
class StandIn:
    """Routes by (method, path); faults queued per path; the expected Authorization."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    faults: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    auth: str | None = None
    url: str = ""

    def route(self, method: str, path: str, handler: Handler | Any) -> None:
        self.routes[(method, path)] = handler if callable(handler) else (
            lambda _r, body=handler: Reply(body=body))

    def fail(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with ``replies``, in order, then normally."""
        self.faults.setdefault(path, []).extend(replies)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def answer(self, request: Request) -> Reply:
        self.requests.append(request)
        if self.auth is not None and request.headers.get("authorization") != self.auth:
            return Reply(401, {"detail": "Invalid token."})
        queued = self.faults.get(request.path)
        if queued:
            return queued.pop(0)
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return Reply(404, {"detail": f"no route {request.method} {request.path}"})
        return handler(request)


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class _H(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(length) if length else b"")
            reply = standin.answer(request)
            body = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    return _H


@contextmanager
def serve(standin: StandIn) -> Iterator[StandIn]:
    """Run the stand-in on a free port of 127.0.0.1 for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()


def pages(items: list[Any], size: int, offset: int) -> list[Any]:
    """The slice of ``items`` one limit/offset page holds."""
    return items[offset:offset + size]
