"""A live estate behind a real ``cmdb-graph serve`` process, and light GraphQL clients for it.

Shared by :mod:`bench.mixed` and :mod:`bench.table13`: both measure the product as a user
runs it, over HTTP, on a synthetic estate written the way a user writes one.

* Embedded store: ``cmdb-graph demo --size N --seed S --now 2026-01-01T00:00:00+00:00`` into a
  fresh folder (``CMDB_DATABASE_PATH`` names the store file), then ``cmdb-graph serve`` on it.
* Neo4j: a fresh server from ``cmdb_graph.devserver`` (or the one ``NEO4J_URI`` names), the same
  estate loaded through ``Neo4jStore.apply`` (as ``python -m bench run`` loads it), then
  ``cmdb-graph serve`` with ``CMDB_STORE=neo4j``.

The bench regenerates the same seeded estate in its own process only to know the CI ids per
class (the seeds of its questions); it never reads the server's store directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from orjson import loads as _loads  # the clients share the cores: decode cheaply

from bench.graphql_load import HttpError, _read_response, free_port
from bench.neo4j_server import Neo4jServer
from cmdb_graph.synthetic import CIIndex, generate_rows

__all__ = [
    "ESTATE_NOW",
    "Estate",
    "GqlClient",
    "GqlError",
    "ServeProcess",
    "build_estate",
    "latency_stats",
    "log",
    "parse_size",
    "rss_bytes",
]

REPO = Path(__file__).resolve().parents[1]

#: The estate is dated from this time (``cmdb-graph demo --now``), so runs are comparable.
ESTATE_NOW = datetime(2026, 1, 1, tzinfo=UTC)

#: Seconds after which an idle keep-alive connection is opened again (uvicorn closes at 5 s).
IDLE_REOPEN_S = 3.0

#: VMs kept (with name and FQDN) for the writer's discovery updates.
VM_POOL = 20_000


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[bench {datetime.now(UTC).strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    """``2k``, ``100k``, ``1m`` or a plain number of CIs."""
    t = text.strip().lower().replace("_", "").replace(",", "")
    mult = 1
    if t.endswith("k"):
        mult, t = 1_000, t[:-1]
    elif t.endswith("m"):
        mult, t = 1_000_000, t[:-1]
    return int(float(t) * mult)


def size_label(n: int) -> str:
    """``100k``, ``1m``, ``2k`` (for file names)."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def latency_stats(samples: Sequence[float]) -> dict[str, Any]:
    """p50 / p95 / p99 / max / mean in milliseconds and the count (``None`` when empty)."""
    if not samples:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    arr = np.asarray(samples) * 1000.0
    return {
        "n": len(samples),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
    }


def rss_bytes(pid: int) -> int | None:
    """Resident set size of process ``pid`` (Linux ``/proc``), or ``None``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cmdb_graph() -> list[str]:
    """The ``cmdb-graph`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("cmdb-graph")
    if script.exists():
        return [str(script)]
    found = shutil.which("cmdb-graph")
    if found:
        return [found]
    return [sys.executable, "-c", "from cmdb_graph.cli import main; main()"]


# -- the estate ------------------------------------------------------------------------------
@dataclass
class Estate:
    """A written estate: how to serve it and which CIs to ask about."""

    store: str  # "embedded" or "neo4j"
    size: int
    seed: int
    env: dict[str, str]
    index: CIIndex
    all_ids: list[str]
    #: (ci_id, name, fqdn) of up to VM_POOL virtual machines, for discovery updates
    vm_pool: list[tuple[str, str, str]]
    build_seconds: float
    command: str
    neo4j: Neo4jServer | None = None

    @property
    def hypervisors(self) -> list[str]:
        """Hypervisor ids (new VMs are hosted on them)."""
        return self.index.by_class.get("Hypervisor", [])

    @property
    def vms(self) -> list[str]:
        """Virtual machine ids."""
        return self.index.by_class.get("VirtualMachine", [])

    def close(self) -> None:
        """Stop the Neo4j this bench started (nothing for the embedded store)."""
        if self.neo4j is not None:
            self.neo4j.release()
            self.neo4j = None


def _index(size: int, seed: int) -> tuple[CIIndex, list[str], list[tuple[str, str, str]]]:
    """The CI index of the seeded estate, every CI id, and a random pool of VMs with FQDN."""
    idx = CIIndex()
    vms: list[tuple[str, str, str]] = []
    for label, rows in generate_rows(size, seed=seed, now=ESTATE_NOW):
        if label != "CI":
            continue
        idx.add(rows)
        for r in rows:
            if r["ci_class"] == "VirtualMachine" and r.get("fqdn") and r["duplicate_of"] is None:
                vms.append((r["ci_id"], r["name"], r["fqdn"]))
    all_ids = [ci for ids in idx.by_class.values() for ci in ids]
    rng = random.Random(f"{seed}-vm-pool")
    pool = rng.sample(vms, min(VM_POOL, len(vms)))
    return idx, all_ids, pool


def build_estate(store: str, size: int, seed: int, workdir: Path, *,
                 clear_neo4j: bool = False) -> Estate:
    """Write the seeded estate of ``size`` CIs into a fresh store of kind ``store``.

    Parameters
    ----------
    store : {"embedded", "neo4j"}
        Which store the server will use.
    size, seed : int
        The estate (see :func:`cmdb_graph.synthetic.generate_rows`).
    workdir : Path
        A fresh folder for the embedded store's file.
    clear_neo4j : bool
        Allow clearing a non-empty database that ``NEO4J_URI`` names.
    """
    t0 = time.perf_counter()
    if store == "embedded":
        path = workdir / "estate.db"
        env = {"CMDB_STORE": "memory", "CMDB_DATABASE_PATH": str(path), "CMDB_API_KEYS": "[]"}
        cmd = [*_cmdb_graph(), "demo", "--size", str(size), "--seed", str(seed),
               "--now", ESTATE_NOW.isoformat()]
        log(f"estate: {' '.join(cmd[-7:])} (CMDB_DATABASE_PATH={path})")
        proc = subprocess.run(cmd, env={**os.environ, **env}, cwd=REPO, capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"cmdb-graph demo failed: {proc.stderr[-2000:]}")
        command = "CMDB_DATABASE_PATH=<tmp>/estate.db " + " ".join(["cmdb-graph",
                                                                          *cmd[-7:]])
        server = None
    elif store == "neo4j":
        from bench.workload import build_workload, bulk_load
        from cmdb_graph.store.neo4j import Neo4jStore

        log("estate: Neo4j from NEO4J_URI or a fresh devserver")
        server = Neo4jServer.acquire()
        neo = Neo4jStore(server.uri, server.user, server.password)
        try:
            if server.home is None and not clear_neo4j and neo.counts().get("CI", 0):
                raise RuntimeError(f"the Neo4j at {server.uri} holds CIs: pass --clear-neo4j "
                                   "to allow clearing it, or unset NEO4J_URI")
            neo.clear()
            log(f"estate: generating {size:,} CIs and loading them into Neo4j")
            wl = build_workload(size, seed)
            bulk_load(neo, wl, chunk=neo.batch_size)
            del wl
        finally:
            neo.close()
        env = {"CMDB_STORE": "neo4j", "CMDB_NEO4J_URI": server.uri,
               "CMDB_NEO4J_USER": server.user, "CMDB_NEO4J_PASSWORD": server.password,
               "CMDB_API_KEYS": "[]"}
        command = "bench.workload.bulk_load(Neo4jStore, build_workload(size, seed))"
    else:
        raise ValueError(f"unknown store {store!r}")
    build = time.perf_counter() - t0
    log(f"estate: written in {build:.1f} s; indexing the CI ids")
    idx, all_ids, pool = _index(size, seed)
    return Estate(store=store, size=size, seed=seed, env=env, index=idx, all_ids=all_ids,
                  vm_pool=pool, build_seconds=build, command=command, neo4j=server)


# -- the server ------------------------------------------------------------------------------
class ServeProcess:
    """``cmdb-graph serve --port P`` in a subprocess on the estate that ``env`` names.

    ``start_seconds`` is the time from launching the process to the first ``200`` from
    ``/healthz`` (the store is opened before the server listens).
    """

    def __init__(self, env: Mapping[str, str], log_path: Path, *,
                 timeout: float = 900.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [*_cmdb_graph(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, **env}, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._log.close()
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"cmdb-graph serve exited: {tail}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("cmdb-graph serve did not come up")
            time.sleep(0.1)
        self.start_seconds = time.perf_counter() - t0
        self.peak_rss = 0

    def rss(self) -> int | None:
        """The server's resident memory now (and remember the peak)."""
        value = rss_bytes(self.proc.pid)
        if value is not None:
            self.peak_rss = max(self.peak_rss, value)
        return value

    def stop(self, grace: float = 30.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``grace`` seconds)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- the clients -----------------------------------------------------------------------------
class GqlError(Exception):
    """A failed GraphQL request: transport error, HTTP status, GraphQL errors or a bad answer."""


@dataclass
class GqlClient:
    """One HTTP/1.1 keep-alive connection sending GraphQL requests (asyncio streams).

    Deliberately light (request bytes built by hand, orjson to decode) because the clients
    share the machine's cores with the server they measure. Each answer is read in full and
    decoded; a transport error, a status other than 200 or GraphQL ``errors`` raise
    :class:`GqlError`, and the connection is opened again for the next request.
    """

    url: str
    timeout: float = 300.0
    _reader: asyncio.StreamReader | None = field(default=None, repr=False)
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)
    _last_used: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        host, _, port = self.url.removeprefix("http://").partition(":")
        self._host, self._port = host, int(port or 80)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # uvicorn closes a keep-alive connection after 5 s idle: open a new one before that
        # (as HTTP client libraries do), never send on one the server may have closed
        if self._writer is not None and time.monotonic() - self._last_used > IDLE_REOPEN_S:
            self.close()
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._reader, self._writer

    def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _post(self, body: bytes) -> tuple[int, bytes, bool]:
        reader, writer = await self._connect()
        writer.write(
            (f"POST /graphql HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
             "Content-Type: application/json\r\nAccept: application/json\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode("ascii") + body
        )
        try:
            return await _read_response(reader)
        finally:
            self._last_used = time.monotonic()

    async def query(self, query: str, variables: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
        """Send one request; the ``data`` of its answer."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        try:
            status, raw, keep = await asyncio.wait_for(self._post(body), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError,
                TimeoutError) as exc:
            self.close()
            raise GqlError(f"{type(exc).__name__}: {exc}") from exc
        if not keep:
            self.close()
        try:
            answer = _loads(raw)
        except ValueError as exc:
            raise GqlError(f"HTTP {status}: undecodable answer {raw[:200]!r}") from exc
        if status != 200 or answer.get("errors") or not isinstance(answer.get("data"), dict):
            raise GqlError(f"HTTP {status}: {str(answer)[:300]}")
        data: dict[str, Any] = answer["data"]
        return data
