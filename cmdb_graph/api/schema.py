"""The strawberry schema: query and mutation types merged from the per-domain modules."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
)
from strawberry.tools import merge_types

from cmdb_graph.api.errors import ErrorCodes, should_mask
from cmdb_graph.api.queries import EntityQuery
from cmdb_graph.settings import Settings

__all__ = ["build_schema", "export_sdl"]

_QUERY_PARTS: list[type] = [EntityQuery]
_MUTATION_PARTS: list[type] = []


def _parts() -> tuple[list[type], list[type]]:
    queries = list(_QUERY_PARTS)
    mutations = list(_MUTATION_PARTS)
    try:
        from cmdb_graph.api.analysis import AnalysisQuery

        queries.append(AnalysisQuery)
    except ModuleNotFoundError as exc:
        if exc.name != "cmdb_graph.api.analysis":
            raise
    try:
        from cmdb_graph.api.mutations import Mutation

        mutations.append(Mutation)
    except ModuleNotFoundError as exc:
        if exc.name != "cmdb_graph.api.mutations":
            raise
    return queries, mutations


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The GraphQL schema with the query limits of ``settings``.

    Limits: query depth (``max_query_depth``), aliases (``max_aliases``) and tokens
    (``max_tokens``); unexpected errors are masked as "Unexpected error.", our own keep their
    message and carry ``extensions.code``.
    """
    s = settings or Settings()
    queries, mutations = _parts()
    query = merge_types("Query", tuple(queries))
    mutation = merge_types("Mutation", tuple(mutations)) if mutations else None
    return strawberry.Schema(
        query=query,
        mutation=mutation,
        # factories: a fresh extension per request (instances are deprecated by strawberry)
        extensions=[
            # parsed documents are shared across requests (an LRU of 256 query texts): ITSM
            # tools send the same few operations over and over
            lambda: ParserCache(maxsize=256),
            lambda: QueryDepthLimiter(max_depth=s.max_query_depth),
            lambda: MaxAliasesLimiter(max_alias_count=s.max_aliases),
            lambda: MaxTokensLimiter(max_token_count=s.max_tokens),
            lambda: MaskErrors(should_mask_error=should_mask),
            ErrorCodes,
        ],
    )


def export_sdl() -> str:
    """The schema's SDL, as committed in ``graphql/schema.graphql``."""
    return build_schema().as_str() + "\n"
