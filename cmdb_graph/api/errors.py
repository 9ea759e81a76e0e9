"""Expected failures as typed GraphQL results; everything else is masked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from cmdb_graph.errors import CmdbError

if TYPE_CHECKING:
    from cmdb_graph.api.requestlog import RequestFacts

__all__ = ["ErrorCodes", "PublicError", "UserError", "should_mask", "user_error"]


@strawberry.type(description="An expected failure: bad input, not found, over a limit, forbidden.")
class UserError:
    code: str = strawberry.field(
        description="Stable code: INVALID_RECORD, CI_NOT_FOUND, TRAVERSAL_LIMIT, FORBIDDEN, ..."
    )
    message: str = strawberry.field(description="What went wrong, naming the field or record.")
    field: str | None = strawberry.field(description="The offending input field, if known.")


def user_error(exc: CmdbError, facts: RequestFacts | None = None) -> UserError:
    """The typed result for one of our own errors (noted in the request's ``facts``)."""
    if facts is not None:
        facts.note_error("user_error", exc.code)
    return UserError(code=exc.code, message=str(exc), field=getattr(exc, "field", None))


class PublicError(Exception):
    """Raised by resolvers for our own errors; it carries a code and is never masked."""

    def __init__(self, exc: CmdbError) -> None:
        super().__init__(str(exc))
        self.code = exc.code
        self.extensions = {"code": exc.code}


def should_mask(error: object) -> bool:
    """Mask every error except our own public ones and the client's own query errors.

    Syntax, validation and variable-coercion errors (e.g. an unknown input field) describe
    the request, not the server, so they pass through; anything else unexpected is masked.
    """
    original = getattr(error, "original_error", None)
    if original is None or isinstance(original, GraphQLError):
        return False
    return not isinstance(original, PublicError | CmdbError)


class ErrorCodes(SchemaExtension):
    """Give every GraphQL error raised from one of our own errors its ``code`` extension, and
    note the operation's name and its most telling error for the request log
    (:class:`~cmdb_graph.api.requestlog.RequestFacts`).

    Resolvers that raise :class:`PublicError` set the code themselves; an error of ours raised
    elsewhere (a DataLoader's store call, a nested field) reaches the client unmasked (see
    :func:`should_mask`) and gets the same ``{"code": ...}`` here. Runs before the errors are
    masked, so it still sees what an unexpected error was.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        facts = getattr(ctx.context, "facts", None)
        if facts is not None:
            try:
                facts.operation = ctx.operation_name
            except RuntimeError:  # the document did not parse
                pass
        errors = getattr(ctx.result, "errors", None) or ctx.pre_execution_errors or ()
        for error in errors:
            if not isinstance(error, GraphQLError):
                continue
            original = error.original_error
            if isinstance(original, CmdbError):
                error.extensions = {**(error.extensions or {}), "code": original.code}
            if facts is None:
                continue
            if original is None or isinstance(original, GraphQLError):
                facts.note_error("invalid_request")
            elif isinstance(original, PublicError | CmdbError):
                facts.note_error("user_error", original.code)
            else:
                facts.note_error("internal")
