"""GraphQL under load: the ``ChangeImpact`` operation from N concurrent httpx clients."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

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


async def _load(
    url: str, seeds: Sequence[str], clients: int, max_requests: int, max_seconds: float,
    keep_answers: set[str],
) -> LoadResult:
    query = OPERATION.read_text()
    res = LoadResult()
    counter = 0
    stop_at = time.monotonic() + max_seconds

    async def client() -> None:
        nonlocal counter
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while counter < max_requests and time.monotonic() < stop_at:
                seed = seeds[counter % len(seeds)]
                counter += 1
                t0 = time.perf_counter()
                try:
                    r = await http.post("/graphql", json={
                        "query": query, "operationName": "ChangeImpact",
                        "variables": {"ciIds": [seed]},
                    })
                    elapsed = time.perf_counter() - t0
                    body = r.json()
                    if r.status_code != 200 or body.get("errors"):
                        res.errors.append(f"{r.status_code}: {str(body)[:300]}")
                        continue
                    ids = _impacted(body)
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    res.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                res.latencies.append(elapsed)
                if seed in keep_answers:
                    res.answers[seed] = ids

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
