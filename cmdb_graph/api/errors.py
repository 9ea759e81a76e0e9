"""Expected failures as typed GraphQL results; everything else is masked."""

from __future__ import annotations

from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from cmdb_graph.errors import CmdbError

__all__ = ["ErrorCodes", "PublicError", "UserError", "should_mask", "user_error"]


@strawberry.type(description="An expected failure: bad input, not found, over a limit, forbidden.")
class UserError:
    code: str = strawberry.field(
        description="Stable code: INVALID_RECORD, CI_NOT_FOUND, TRAVERSAL_LIMIT, FORBIDDEN, ..."
    )
    message: str = strawberry.field(description="What went wrong, naming the field or record.")
    field: str | None = strawberry.field(description="The offending input field, if known.")


def user_error(exc: CmdbError) -> UserError:
    """The typed result for one of our own errors."""
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
    """Give every GraphQL error raised from one of our own errors its ``code`` extension.

    Resolvers that raise :class:`PublicError` set the code themselves; an error of ours raised
    elsewhere (a DataLoader's store call, a nested field) reaches the client unmasked (see
    :func:`should_mask`) and gets the same ``{"code": ...}`` here.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
            if isinstance(error, GraphQLError) and isinstance(error.original_error, CmdbError):
                error.extensions = {**(error.extensions or {}),
                                    "code": error.original_error.code}
