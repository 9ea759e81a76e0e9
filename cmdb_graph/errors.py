"""The one exception tree of cmdb-graph.

Every error we raise on purpose derives from :class:`CmdbError`. Driver and library errors are
wrapped at the boundary (``raise StoreError(...) from exc``) so callers never need to know which
store or parser sat underneath.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cmdb_graph.service.search import SearchHit

__all__ = [
    "CmdbError",
    "ConfigurationError",
    "InvalidRecordError",
    "UnknownCIClassError",
    "UnknownRelationshipTypeError",
    "NotFoundError",
    "CINotFoundError",
    "AmbiguousCIError",
    "StoreError",
    "StoreUnavailableError",
    "FeedGapError",
    "HistoryUnavailableError",
    "TraversalLimitError",
    "ReconciliationConflict",
    "ImportAbortedError",
    "AuthorizationError",
]


class CmdbError(Exception):
    """Root of every error cmdb-graph raises on purpose.

    Attributes
    ----------
    code : str
        A stable machine-readable code, e.g. ``"INVALID_RECORD"``; the API exposes it.
    """

    code = "CMDB_ERROR"


class ConfigurationError(CmdbError):
    """Settings or a registry configuration file are wrong (unknown key, bad name, bad value)."""

    code = "CONFIGURATION_ERROR"


class InvalidRecordError(CmdbError, ValueError):
    """A record (from an import file, an API call or a store write) is invalid.

    The message always names where the bad input is: the file, the line or record number and
    the field, when they are known.

    Parameters
    ----------
    message : str
        What is wrong, in words a user can act on.
    file : str, optional
        Path of the input file.
    line : int, optional
        1-based line number in the file.
    record : str or int, optional
        Record index (1-based) or identifier (e.g. a native key or a JSON pointer).
    field : str, optional
        The offending field, column or element.
    """

    code = "INVALID_RECORD"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        record: str | int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.line = line
        self.record = record
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class UnknownCIClassError(InvalidRecordError):
    """A record names a CI class that the registry does not know."""

    code = "UNKNOWN_CI_CLASS"


class UnknownRelationshipTypeError(InvalidRecordError):
    """A record names a relationship type that the registry does not know."""

    code = "UNKNOWN_RELATIONSHIP_TYPE"


class NotFoundError(CmdbError, LookupError):
    """A node asked for by key does not exist."""

    code = "NOT_FOUND"


class CINotFoundError(NotFoundError):
    """A configuration item asked for by ``ci_id`` does not exist."""

    code = "CI_NOT_FOUND"


class AmbiguousCIError(CmdbError, LookupError):
    """A name or identifier given for one CI matches several.

    Attributes
    ----------
    text : str
        What was given.
    candidates : tuple of SearchHit
        The CIs it matches, best first (each with what matched).
    truncated : bool
        More CIs matched than ``candidates`` holds.
    """

    code = "AMBIGUOUS_CI"

    def __init__(self, text: str, candidates: tuple[SearchHit, ...], *, truncated: bool = False
                 ) -> None:
        self.text = text
        self.candidates = candidates
        self.truncated = truncated
        count = f"{len(candidates)}{'+' if truncated else ''}"
        super().__init__(f"{text!r} matches {count} CIs: name one by its ci_id or a more exact "
                         "name or identifier")


class StoreError(CmdbError):
    """The store failed to carry out an operation (wraps driver errors)."""

    code = "STORE_ERROR"


class StoreUnavailableError(StoreError):
    """The store cannot be reached (server down, wrong URI, bad credentials)."""

    code = "STORE_UNAVAILABLE"


class FeedGapError(StoreError):
    """Change records a follower asked for are no longer kept (pruned by the feed's retention).

    A follower that gets it rebuilds from the store once, then follows the feed again.
    """

    code = "FEED_GAP"


class HistoryUnavailableError(CmdbError):
    """The change feed no longer holds what a question about the past needs: the time asked
    for is before the feed's oldest retained record (``CMDB_FEED_RETENTION_DAYS``), or the
    store was cleared (a reset record) after it."""

    code = "HISTORY_UNAVAILABLE"


class TraversalLimitError(CmdbError):
    """A request asks for more depth or more results than the server-side caps allow."""

    code = "TRAVERSAL_LIMIT"


class ReconciliationConflict(CmdbError):
    """Identification found an ambiguity that reconciliation cannot settle on its own."""

    code = "RECONCILIATION_CONFLICT"


class ImportAbortedError(CmdbError):
    """An import run was refused before it wrote anything (e.g. the retirement circuit breaker)."""

    code = "IMPORT_ABORTED"


class AuthorizationError(CmdbError):
    """The caller's API key is missing or its role does not allow the operation."""

    code = "FORBIDDEN"
