"""GraphQL under load: the ``ChangeImpact`` operation from N concurrent HTTP/1.1 clients."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

try:  # the client shares the cores with the server it measures: decode as cheaply as we can
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

__all__ = ["ApiServer", "LoadResult", "run_load", "OPERATION"]

#: The documented operation ITSM integrations send.
OPERATION = Path(__file__).resolve().parents[1] / "graphql" / "operations" / "ChangeImpact.graphql"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ApiServer:
    """``python -m bench.serve`` in a subprocess, with the store given by ``env``."""

    def __init__(self, env: Mapping[str, str], *, timeout: float = 120.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.serve", "--port", str(self.port)],
            env=full_env, cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"API server exited: {err[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("API server did not come up")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class LoadResult:
    """Latencies (seconds) of the successful requests, errors and wall time."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    answers: dict[str, set[str]] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return len(self.latencies) / self.wall if self.wall else 0.0


def _impacted(body: dict[str, Any]) -> set[str]:
    data = body["data"]["changeImpact"]
    if data.get("__typename") != "ChangeImpact":
        raise ValueError(f"{data.get('__typename')}: {data.get('message')}")
    return {item["ciId"] for item in data["impacted"]}


class HttpError(Exception):
    """A malformed or unexpected HTTP response."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: status, body (Content-Length or chunked), keep-alive."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    else:
        raise HttpError("response without Content-Length or chunked body")
    return status, body, headers.get("connection", "").lower() != "close"


def _request(host: str, port: int, body: bytes) -> bytes:
    return (
        f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("ascii") + body


async def _load(
    url: str, seeds: Sequence[str], clients: int, max_requests: int, max_seconds: float,
    keep_answers: set[str],
) -> LoadResult:
    """``clients`` concurrent HTTP/1.1 keep-alive connections, one asyncio task each.

    The client is deliberately light (raw HTTP/1.1 on asyncio streams, request bytes built
    once per seed) because it shares the machine's cores with the server it measures. Every
    response is still read in full, decoded as JSON and checked: status 200, no GraphQL
    errors, a ``ChangeImpact`` result; the impacted ids of ``keep_answers`` seeds are kept.
    """
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    query = OPERATION.read_text()
    requests = {
        seed: _request(host, port, json.dumps({
            "query": query, "operationName": "ChangeImpact", "variables": {"ciIds": [seed]},
        }).encode())
        for seed in dict.fromkeys(seeds)
    }
    res = LoadResult()
    counter = 0
    stop_at = time.monotonic() + max_seconds

    async def client() -> None:
        nonlocal counter
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while counter < max_requests and time.monotonic() < stop_at:
                seed = seeds[counter % len(seeds)]
                counter += 1
                t0 = time.perf_counter()
                try:
                    if writer is None or reader is None:
                        reader, writer = await asyncio.open_connection(host, port)
                        sock = writer.get_extra_info("socket")
                        if sock is not None:
                            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    writer.write(requests[seed])
                    status, raw, keep = await _read_response(reader)
                    elapsed = time.perf_counter() - t0
                    if not keep:
                        writer.close()
                        reader = writer = None
                    body = _loads(raw)
                    if status != 200 or body.get("errors"):
                        res.errors.append(f"{status}: {str(body)[:300]}")
                        continue
                    ids = _impacted(body)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        HttpError, ValueError, KeyError, TypeError) as exc:
                    res.errors.append(f"{type(exc).__name__}: {exc}")
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    continue
                res.latencies.append(elapsed)
                if seed in keep_answers:
                    res.answers[seed] = ids
        finally:
            if writer is not None:
                writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    res.wall = time.perf_counter() - t0
    return res


def run_load(
    url: str,
    seeds: Sequence[str],
    *,
    clients: int = 16,
    max_requests: int = 800,
    max_seconds: float = 30.0,
    check: Sequence[str] = (),
) -> LoadResult:
    """Send ``ChangeImpact`` for the seeds round-robin from ``clients`` concurrent clients.

    One warm-up request first (the server builds its caches), not counted. Stops after
    ``max_requests`` or ``max_seconds``, whichever comes first.
    """
    warm = asyncio.run(_load(url, seeds[:1], 1, 1, 600.0, set()))
    if warm.errors:
        res = LoadResult(errors=warm.errors)
        return res
    return asyncio.run(_load(url, seeds, clients, max_requests, max_seconds, set(check)))
