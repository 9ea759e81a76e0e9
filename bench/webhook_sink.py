"""Webhook receivers for the benches: ``python -m bench.webhook_sink --secret S PORT...``.

One process (apart from the bench's clients, so its work does not slow their measurements)
serving a ThreadingHTTPServer on each 127.0.0.1 port. Every POST is verified with the
``standardwebhooks`` library and counted once per ``webhook-id``; ``GET /stats`` answers
``{"handled", "duplicates", "bad_signatures", "last_seq"}`` for that port. It stops when its
standard input closes (the bench ends) or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.handled = 0
        self.duplicates = 0
        self.bad = 0
        self.last_seq = 0


def _handler(secret: str, stats: _Stats) -> type[BaseHTTPRequestHandler]:
    hook = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            with stats.lock:
                body = json.dumps({"handled": stats.handled, "duplicates": stats.duplicates,
                                   "bad_signatures": stats.bad,
                                   "last_seq": stats.last_seq}).encode()
            self._answer(200, body)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                payload = hook.verify(body, {k.lower(): v for k, v in self.headers.items()})
            except WebhookVerificationError:
                with stats.lock:
                    stats.bad += 1
                self._answer(401)
                return
            wid = self.headers["webhook-id"]
            with stats.lock:
                if wid in stats.seen:
                    stats.duplicates += 1
                else:
                    stats.seen.add(wid)
                    stats.handled += 1
                    stats.last_seq = max(stats.last_seq, int(payload["data"]["seq"]))
            self._answer(204)

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve until standard input closes."""
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_sink")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--max-seconds", type=float, default=3600)
    parser.add_argument("ports", type=int, nargs="+")
    args = parser.parse_args(argv)
    servers = []
    for port in args.ports:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(args.secret, _Stats()))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    print("ready", flush=True)
    done = threading.Event()

    def wait_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    done.wait(args.max_seconds)
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
