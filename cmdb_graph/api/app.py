"""The FastAPI application: ``/graphql`` (GraphiQL in a browser), ``/healthz``, ``/readyz``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from strawberry.fastapi import GraphQLRouter

from cmdb_graph.api.auth import authenticate
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.errors import CmdbError
from cmdb_graph.model import Registry
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore

__all__ = ["create_app"]

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

    async def get_context(request: Request) -> Context:
        principal = authenticate(settings, request.headers)
        if principal.role is None and _carries_operation(request):
            # keys are configured and none (or an unknown one) was sent: nothing is served,
            # not even reads; the GraphiQL page itself (a GET without a query) still loads
            raise HTTPException(
                status_code=401,
                detail="an API key is required (Authorization: Bearer <key> or X-API-Key)",
            )
        return Context(state, principal)

    router: GraphQLRouter[Any, None] = GraphQLRouter(
        build_schema(settings), context_getter=get_context, graphql_ide="graphiql"
    )
    app.include_router(router, prefix="/graphql")

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

    return app


def _carries_operation(request: Request) -> bool:
    """Whether a request asks for a GraphQL operation (anything but the GraphiQL page)."""
    return request.method != "GET" or "query" in request.query_params
