"""The FastAPI application: ``/graphql`` (GraphiQL in a browser), ``/healthz``, ``/readyz``, and
the web UI (the dependency map at ``/``, see :mod:`cmdb_graph.web`)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from cross_web import HTTPException
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from cmdb_graph.api.auth import authenticate
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.errors import CmdbError
from cmdb_graph.model import Registry
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore
from cmdb_graph.web import graphiql_html, mount_web

__all__ = ["GraphQLApp", "app_from_environment", "create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, store: GraphStore, registry: Registry | None = None
) -> FastAPI:
    """Build the application around an open store.

    Parameters
    ----------
    settings : Settings
        Limits, API keys.
    store : GraphStore
        The store the API serves; closed when the application shuts down.
    registry : Registry, optional
        Defaults to the store's registry.
    """
    state = AppState(settings=settings, registry=registry or store.registry, store=store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(store.close)

    app = FastAPI(title="cmdb-graph", version="0.1.0", lifespan=lifespan)
    app.state.cmdb = state

    graphql = GraphQLApp(state)
    # a plain Starlette route to strawberry's ASGI view, ahead of FastAPI's own routes: the
    # same view as strawberry's FastAPI router without FastAPI's per-request dependency
    # resolution (about 1 ms of CPU per request)
    app.router.routes[:0] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: the store is reachable."""
        try:
            await asyncio.to_thread(store.ping)
        except CmdbError as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    mount_web(app)
    return app


def app_from_environment() -> FastAPI:
    """The application on the store the environment configures (``CMDB_*`` settings).

    The factory each worker process of ``cmdb-graph serve --workers N`` calls: every worker
    opens its own store connection and keeps its own engine, current by following the
    store's change feed.

    Raises
    ------
    StoreUnavailableError
        The configured store cannot be reached.
    """
    from cmdb_graph.store.factory import open_store

    settings = Settings()
    return create_app(settings, open_store(settings))


class GraphQLApp(GraphQL[Context, None]):
    """``/graphql``: strawberry's ASGI view with our context and API-key check.

    GET without a query serves GraphiQL. A request that carries an operation and no valid
    key, when keys are configured, is refused with 401 and ``{"detail": ...}`` (nothing is
    served, not even reads).

    Parameters
    ----------
    state : AppState
        The server's settings, store and engine.
    """

    def __init__(self, state: AppState) -> None:
        super().__init__(build_schema(state.settings), graphql_ide="graphiql")
        self.state = state

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL, with its scripts and styles served by us (works offline)."""
        return graphiql_html()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            response = await self.run(request)
        except _Unauthorized as exc:
            response = JSONResponse({"detail": exc.reason}, status_code=exc.status_code)
        except HTTPException as exc:
            response = PlainTextResponse(exc.reason, status_code=exc.status_code)
        await response(scope, receive, send)

    def encode_json(self, data: object) -> bytes:
        """The response body: orjson, or the standard library for what orjson refuses."""
        try:
            return orjson.dumps(data)
        except TypeError:  # orjson.JSONEncodeError: a value orjson cannot encode
            return json.dumps(data, separators=(",", ":")).encode()

    def decode_json(self, data: str | bytes) -> object:
        """The request body: orjson, or the standard library for what orjson refuses (it
        raises :class:`json.JSONDecodeError` as before on malformed input)."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        """The request's :class:`Context`; raises 401 when a key is required and missing."""
        principal = authenticate(self.state.settings, request.headers)
        if principal.role is None and _carries_operation(request):
            # keys are configured and none (or an unknown one) was sent: nothing is served,
            # not even reads; the GraphiQL page itself (a GET without a query) still loads
            raise _Unauthorized(
                401, "an API key is required (Authorization: Bearer <key> or X-API-Key)"
            )
        ctx = Context(self.state, principal)
        ctx.request = request
        ctx.response = response  # type: ignore[assignment]
        return ctx


class _Unauthorized(HTTPException):
    """No or an unknown API key on a request that needs one (answered as JSON)."""


def _carries_operation(request: Request | WebSocket) -> bool:
    """Whether a request asks for a GraphQL operation (anything but the GraphiQL page)."""
    if isinstance(request, WebSocket):
        return True
    return request.method != "GET" or "query" in request.query_params
