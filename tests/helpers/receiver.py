"""A webhook receiver: a real HTTP server on 127.0.0.1 that verifies Standard Webhooks
signatures with the ``standardwebhooks`` library and handles each ``webhook-id`` once.

``start()`` / ``stop()`` bring it up and down on the same port (down: the port refuses
connections). ``status`` is what it answers (e.g. 400 to make dead letters). ``handled`` holds
the bodies it processed, in arrival order, once per id; ``duplicates`` counts ids it saw again
(at-least-once re-sends it ignored); ``bad_signatures`` counts requests that failed
verification.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    def __init__(self, secret: str, port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.status = 204
        self.handled: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.duplicates = 0
        self.bad_signatures = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.requests += 1
                    status = receiver.status
                    try:
                        payload = Webhook(receiver.secret).verify(body, headers)
                    except WebhookVerificationError:
                        receiver.bad_signatures += 1
                        status = 401
                    else:
                        if 200 <= status < 300:
                            wid = headers["webhook-id"]
                            assert payload["data"]["id"] == wid
                            if wid in receiver.seen:
                                receiver.duplicates += 1
                            else:
                                receiver.seen.add(wid)
                                receiver.handled.append(payload)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        return Handler

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def types(self) -> list[str]:
        with self._lock:
            return [p["type"] for p in self.handled]

    def ids(self) -> list[str]:
        with self._lock:
            return [p["data"]["id"] for p in self.handled]

    def dump(self) -> str:
        return json.dumps(self.handled, indent=1)[:4000]
