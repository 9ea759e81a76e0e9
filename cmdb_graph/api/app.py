"""The FastAPI application: ``/graphql`` (GraphiQL in a browser), ``/healthz``, ``/readyz``,
``/metrics`` (Prometheus) and the web UI (the dependency map at ``/``, see
:mod:`cmdb_graph.web`), behind the request guard (:mod:`cmdb_graph.api.guard`) and the request
log (:mod:`cmdb_graph.api.requestlog`: request ids, one log line and the metrics per request).

``/graphql`` follows the GraphQL-over-HTTP specification
(https://graphql.github.io/graphql-over-http/draft/): a client whose ``Accept`` header prefers
``application/graphql-response+json`` gets that media type, and a request error (the document
does not parse or validate, or the variables do not coerce: nothing was executed) answers it
with 400; a client that accepts ``application/json`` (or sends no ``Accept``, or ``*/*``) gets
``application/json`` and 200, as the specification asks for it. A request error's response has
no ``data`` entry, whichever the media type (the GraphQL specification's rule).
"""

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
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from cmdb_graph.api.auth import authenticate
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.guard import RequestGuard
from cmdb_graph.api.requestlog import FACTS_KEY, RequestFacts, RequestLog
from cmdb_graph.api.schema import build_schema
from cmdb_graph.errors import CmdbError
from cmdb_graph.logs import configure_logging
from cmdb_graph.metrics import CONTENT_TYPE_LATEST, process_exited, render
from cmdb_graph.model import Registry
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore
from cmdb_graph.web import graphiql_html, mount_web

__all__ = [
    "GRAPHQL_RESPONSE_JSON", "GraphQLApp", "app_from_environment", "create_app",
    "prefers_graphql_response",
]

log = logging.getLogger(__name__)

#: The GraphQL-over-HTTP specification's own media type.
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def create_app(
    settings: Settings, store: GraphStore, registry: Registry | None = None
) -> FastAPI:
    """Build the application around an open store.

    Parameters
    ----------
    settings : Settings
        Limits, API keys, allowed hosts, body limits.
    store : GraphStore
        The store the API serves; closed when the application shuts down.
    registry : Registry, optional
        Defaults to the store's registry.
    """
    state = AppState(settings=settings, registry=registry or store.registry, store=store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.events_dispatch:
            await asyncio.to_thread(state.events.start)
        yield
        await asyncio.to_thread(state.events.stop)
        if settings.checkpoint_on_exit:
            await asyncio.to_thread(_save_checkpoint, state)
        process_exited()
        await asyncio.to_thread(store.close)

    app = FastAPI(title="cmdb-graph", version="0.1.0", lifespan=lifespan)
    app.state.cmdb = state
    app.add_middleware(RequestGuard, settings=settings)
    app.add_middleware(RequestLog, settings=settings)  # outermost: sees every answer

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

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (see :mod:`cmdb_graph.metrics`): any API key when keys are
        configured, unless ``Settings.metrics_public``; loopback callers in local mode."""
        facts: RequestFacts | None = request.scope.get("state", {}).get(FACTS_KEY)
        principal = (facts.principal if facts is not None
                     else authenticate(settings, request.headers))
        if principal.role is None and not settings.metrics_public:
            return JSONResponse({"detail": "an API key is required to read /metrics "
                                           "(or CMDB_METRICS_PUBLIC=true)"}, status_code=401)
        body = await asyncio.to_thread(lambda: render(_feed_head(store)))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    mount_web(app)
    return app


def _save_checkpoint(state: AppState) -> None:
    """Write the embedded store's checkpoint on the way out (a failure is logged: the
    database is the record, the next start reads it in full)."""
    try:
        state.engine.save_checkpoint()
    except CmdbError as exc:
        log.warning("no checkpoint written: %s", exc)


def _feed_head(store: GraphStore) -> int | None:
    """The store's feed head, or ``None`` when it keeps no feed or cannot be reached (the
    scrape still answers, without the feed metrics)."""
    try:
        return store.feed_head()
    except (NotImplementedError, CmdbError):
        return None


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
    configure_logging(settings)
    return create_app(settings, open_store(settings))


class GraphQLApp(GraphQL[Context, None]):
    """``/graphql``: strawberry's ASGI view with our context and API-key check.

    GET without a query serves GraphiQL. A request that carries an operation and no valid
    key, when keys are configured, is refused with 401 and ``{"detail": ...}`` (nothing is
    served, not even reads); a WebSocket handshake (the ``events`` subscription over
    graphql-transport-ws) without a valid key is closed before it is accepted (403). Media
    types and status codes as the module says.

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
        if scope["type"] == "websocket":
            # the handshake carries the key (Authorization or X-API-Key): without a valid
            # one, when keys are configured, it is refused before it is accepted (HTTP 403)
            principal = authenticate(self.state.settings, WebSocket(scope, receive, send).headers)
            if principal.role is None:
                log.warning("refused a WebSocket without a valid API key")
                await send({"type": "websocket.close", "code": 1008})
                return
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
        else:
            if response.media_type == "application/json" and prefers_graphql_response(
                request.headers.get("accept")
            ):
                response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
                if getattr(request.state, "graphql_request_error", False):
                    response.status_code = 400
        await response(scope, receive, send)

    async def process_result(self, request: Request, result: ExecutionResult
                             ) -> GraphQLHTTPResponse:
        """The response body of one result; a request error's has no ``data`` entry (and is
        noted on the request for the status code)."""
        body = await super().process_result(request, result)
        if _is_request_error(result):
            body.pop("data", None)
            request.state.graphql_request_error = True
        return body

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
        facts: RequestFacts | None = request.scope.get("state", {}).get(FACTS_KEY)
        principal = (facts.principal if facts is not None
                     else authenticate(self.state.settings, request.headers))
        if principal.role is None and _carries_operation(request):
            # keys are configured and none (or an unknown one) was sent: nothing is served,
            # not even reads; the GraphiQL page itself (a GET without a query) still loads
            raise _Unauthorized(
                401, "an API key is required (Authorization: Bearer <key> or X-API-Key)"
            )
        ctx = Context(self.state, principal, facts)
        ctx.request = request
        ctx.response = response  # type: ignore[assignment]
        return ctx


def prefers_graphql_response(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for ``application/graphql-response+json`` at least as
    much as for ``application/json``.

    No header, ``*/*`` or ``application/*`` alone mean ``application/json`` (the
    specification's default for clients that do not name the new type).

    Examples
    --------
    >>> prefers_graphql_response("application/graphql-response+json, application/json;q=0.9")
    True
    >>> prefers_graphql_response("application/json")
    False
    >>> prefers_graphql_response(None)
    False
    """
    if not accept or "graphql-response" not in accept.lower():
        return False
    best = {GRAPHQL_RESPONSE_JSON: -1.0, "application/json": -1.0}
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        media = media.lower()
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in ("*/*", "application/*"):
            media = "application/json"
        if media in best:
            best[media] = max(best[media], q)
    return best[GRAPHQL_RESPONSE_JSON] > 0 and (
        best[GRAPHQL_RESPONSE_JSON] >= best["application/json"])


def _is_request_error(result: ExecutionResult) -> bool:
    """Whether nothing was executed: the document did not parse or validate (strawberry's
    :class:`PreExecutionError`), or the variables did not coerce (no data, no error path)."""
    if isinstance(result, PreExecutionError):
        return True
    return result.data is None and bool(result.errors) and all(
        e.path is None for e in result.errors or ())


class _Unauthorized(HTTPException):
    """No or an unknown API key on a request that needs one (answered as JSON)."""


def _carries_operation(request: Request | WebSocket) -> bool:
    """Whether a request asks for a GraphQL operation (anything but the GraphiQL page)."""
    if isinstance(request, WebSocket):
        return True
    return request.method != "GET" or "query" in request.query_params
