"""Expected failures as typed GraphQL results; everything else is masked."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from cmdb_graph.errors import CmdbError

__all__ = ["PublicError", "UserError", "should_mask", "user_error"]


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
