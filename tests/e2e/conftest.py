"""Serve the API over real HTTP (uvicorn on 127.0.0.1) around a store fixture."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from cmdb_graph.api.app import create_app
from cmdb_graph.api.server import server_config
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore


@dataclass
class LiveServer:
    """A running API server: its base URL and a helper to post GraphQL."""

    url: str
    server: uvicorn.Server
    app: Any
    client: httpx.Client

    def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        resp = self.client.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=60,
        )
        assert resp.status_code in (200, 400), resp.text
        body: dict[str, Any] = resp.json()
        return body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(store: GraphStore, settings: Settings | None = None) -> Iterator[LiveServer]:
    """Run uvicorn in a thread, configured as ``cmdb-graph serve`` does; stop it afterwards
    (the store is left open for the caller)."""
    settings = settings or Settings()
    app = create_app(settings, store)
    # the app closes its store on shutdown; tests own the store, so keep it open
    app.router.lifespan_context = _no_lifespan
    port = _free_port()
    config = server_config(app, settings, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 30 s")
        time.sleep(0.02)
    client = httpx.Client(timeout=60)  # one client: a new one per call costs ~0.3 s of TLS setup
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", server=server, app=app, client=client)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


from contextlib import asynccontextmanager  # noqa: E402


@asynccontextmanager
async def _no_lifespan(_: Any) -> Any:
    yield


@pytest.fixture
def live_server(store: GraphStore) -> Iterator[LiveServer]:
    """The API over HTTP around the (empty) parametrised ``store``."""
    yield from serve(store)
