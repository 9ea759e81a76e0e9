"""The strawberry schema: the query and mutation types merged from the per-domain modules
(``cis``, ``itsm``, ``impact``, ``exploration``, ``quality``, ``licences``, ``imports``,
``events``), and the subscription type (``events``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from functools import lru_cache

import strawberry
from graphql import ASTValidationRule, NoSchemaIntrospectionCustomRule, parse
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.schema import validate_document
from strawberry.tools import merge_types

from cmdb_graph.api.cis.mutations import CIMutation
from cmdb_graph.api.cis.queries import EntityQuery
from cmdb_graph.api.errors import ErrorCodes, should_mask
from cmdb_graph.api.events import EventMutation, EventQuery, EventSubscription
from cmdb_graph.api.exploration import ExplorationQuery
from cmdb_graph.api.history import HistoryQuery
from cmdb_graph.api.impact.queries import ImpactQuery
from cmdb_graph.api.imports import ImportMutation
from cmdb_graph.api.itsm.mutations import ITSMMutation
from cmdb_graph.api.itsm.queries import ITSMQuery
from cmdb_graph.api.licences import LicenceQuery
from cmdb_graph.api.quality import QualityFlagsQuery, QualityQuery
from cmdb_graph.settings import Settings

__all__ = ["ValidDocuments", "build_schema", "export_sdl"]

#: The root fields of each domain, merged in this order: the order of the published SDL
#: (``graphql/schema.graphql``), which lists root fields as they were added.
QUERY_PARTS: tuple[type, ...] = (
    EntityQuery, QualityFlagsQuery, ITSMQuery, ImpactQuery, QualityQuery, LicenceQuery,
    EventQuery, ExplorationQuery, HistoryQuery,
)
MUTATION_PARTS: tuple[type, ...] = (CIMutation, ITSMMutation, ImportMutation, EventMutation)


class ValidDocuments:
    """The query texts one schema has found valid, under its limits (a bounded LRU).

    Validation (graphql-core's rules plus the depth and alias limits) is a pure function of
    the schema, its rules and the query text, and it costs far more than executing a small
    operation; ITSM tools send the same few documents over and over. A text that passed once
    is not validated again. Only successes are remembered: an invalid text is validated (and
    refused) every time, so no error object is shared between requests and an attacker gains
    nothing from repeating one.

    Parameters
    ----------
    maxsize : int
        Query texts remembered (least recently used ones are forgotten).
    """

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._texts: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, query: object) -> bool:
        with self._lock:
            if query not in self._texts:
                return False
            self._texts.move_to_end(query)  # type: ignore[arg-type]
            return True

    def add(self, query: str) -> None:
        """Remember ``query`` as valid (forgetting the least recently used beyond maxsize)."""
        with self._lock:
            self._texts[query] = None
            self._texts.move_to_end(query)
            while len(self._texts) > self.maxsize:
                self._texts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._texts)


def _prepare_once(
    max_tokens: int, valid: ValidDocuments, rules: tuple[type[ASTValidationRule], ...]
) -> type[SchemaExtension]:
    """One extension for the token limit, the parser cache and validation once per text.

    The same steps as strawberry's ``MaxTokensLimiter``, ``ParserCache`` and
    ``AddValidationRules`` (depth and alias rules built once), in one extension instead of
    three: each extension costs hook set-up on every request.
    """
    # parsed documents are shared across requests (an LRU of 256 query texts; the token
    # limit is an argument, so part of the key): ITSM tools send the same few operations
    cached_parse = lru_cache(maxsize=256)(parse)

    class PrepareOnce(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            ctx = self.execution_context
            ctx.parse_options["max_tokens"] = max_tokens
            ctx.validation_rules = ctx.validation_rules + rules
            yield

        def on_parse(self) -> Iterator[None]:
            ctx = self.execution_context
            ctx.graphql_document = cached_parse(ctx.query, **ctx.parse_options)
            yield

        def on_validate(self) -> Iterator[None]:
            ctx = self.execution_context
            query = ctx.query
            if query is not None and query in valid:
                ctx.pre_execution_errors = []
            else:
                assert ctx.graphql_document is not None
                errors = validate_document(ctx.schema._schema, ctx.graphql_document,
                                           ctx.validation_rules)
                ctx.pre_execution_errors = errors
                if not errors and query is not None:
                    valid.add(query)
            yield

    return PrepareOnce


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The GraphQL schema with the query limits of ``settings``.

    Limits: query depth (``max_query_depth``), aliases (``max_aliases``) and tokens
    (``max_tokens``); introspection refused when ``introspection`` is off (``__typename``
    still answers); unexpected errors are masked as "Unexpected error.", our own keep their
    message and carry ``extensions.code``.

    Parsing and validation are done once per distinct query text (LRUs of 256 texts; the
    token limit is a parse option, so it is part of the parser cache's key): the depth and
    alias rules are built once here and validated with graphql-core's own rules, and a text
    that passed is not validated again by this schema (see :class:`ValidDocuments`).
    """
    s = settings or Settings()
    query = merge_types("Query", QUERY_PARTS)
    mutation = merge_types("Mutation", MUTATION_PARTS)
    rules: tuple[type[ASTValidationRule], ...] = (
        depth_rule(s.max_query_depth, None, None), alias_rule(s.max_aliases))
    if not s.introspection:
        rules += (NoSchemaIntrospectionCustomRule,)
    prepare = _prepare_once(s.max_tokens, ValidDocuments(256), rules)
    return strawberry.Schema(
        query=query,
        mutation=mutation,
        subscription=EventSubscription,
        # factories: a fresh extension per request (instances are deprecated by strawberry)
        extensions=[
            prepare,
            lambda: MaskErrors(should_mask_error=should_mask),
            ErrorCodes,
        ],
    )


def export_sdl() -> str:
    """The schema's SDL, as committed in ``graphql/schema.graphql``."""
    return build_schema().as_str() + "\n"
