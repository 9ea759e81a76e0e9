"""What every domain's resolvers share: the role check and error typing (the one place where
permissions are checked: :func:`guarded`, :func:`listing`), page-size checks, times and ids,
and the selection look-ahead."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, Selection

from cmdb_graph.api.auth import require_role
from cmdb_graph.api.connections import Connection, connection
from cmdb_graph.api.context import Context
from cmdb_graph.api.errors import PublicError, UserError, user_error
from cmdb_graph.errors import CmdbError, TraversalLimitError
from cmdb_graph.model import Node
from cmdb_graph.settings import Role

__all__ = ["AsOf", "Info", "check_first", "guarded", "listing", "selects", "str_ids", "utc",
           "when"]

Info = strawberry.Info[Context, None]

#: The ``asOf`` argument of the questions that answer on the graph of the past.
AsOf = Annotated[datetime | None, strawberry.argument(
    description="Answer on the graph as it was at this time (UTC): every write committed at "
                "or before it. Within the change feed's retention (HISTORY_UNAVAILABLE "
                "before it, before the estate's first write, or before a clear of the "
                "store); default: now.")]
R = TypeVar("R")
N = TypeVar("N", bound=Node)


async def guarded(
    info: Info, role: Role, work: Callable[[], R], *, write: bool = False
) -> R | UserError:
    """Check the caller's role, run ``work`` in a worker thread, type our own errors.

    Every resolver that answers with a ``... | UserError`` union goes through here, so the
    role a field needs is checked in one place.

    Parameters
    ----------
    info : Info
        The resolver's info (the context holds the caller and the server's state).
    role : Role
        The least role allowed: ``READER`` for questions, ``WRITER``/``ADMIN`` for writes.
    work : callable
        Blocking work (store reads, the engine, an import run), called without arguments.
    write : bool
        Run under the server's write lock (one write at a time).

    Returns
    -------
    object
        What ``work`` returned, or a :class:`UserError` for a :class:`CmdbError` (including
        a refused role).
    """
    ctx = info.context
    try:
        require_role(ctx.principal, role)
        if write:
            async with ctx.app.write_lock:
                result: R = await ctx.call(work)
        else:
            result = await ctx.call(work)
    except CmdbError as exc:
        return user_error(exc, ctx.facts)
    return result


def check_first(info: Info, first: int) -> None:
    """Raise unless ``first`` (a page or result size) is within the server's page cap.

    Raises
    ------
    TraversalLimitError
        ``first`` below 1 or above ``Settings.max_page_size``.
    """
    cap = info.context.app.settings.max_page_size
    if first < 1 or first > cap:
        raise TraversalLimitError(f"first must be between 1 and {cap} (got {first})")


def utc(t: datetime) -> datetime:
    """``t`` in UTC (a naive time is taken as UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def when(value: datetime | None) -> datetime | None:
    """An ``asOf`` argument in UTC (``None`` stays ``None``)."""
    return None if value is None else utc(value)


def str_ids(values: Iterable[strawberry.ID]) -> list[str]:
    """GraphQL ids as plain strings."""
    return [str(v) for v in values]


def selects(info: Info, *path: str) -> bool:
    """Whether the query selects ``path`` (GraphQL field names) below the current field.

    Read through strawberry's public ``info.selected_fields``, through inline fragments and
    fragment spreads. ``@skip``/``@include`` are not judged: a conditionally skipped field
    counts as selected, which only costs a prefetch.
    """

    def walk(selections: Sequence[Selection], rest: tuple[str, ...]) -> bool:
        if not rest:
            return True
        for sel in selections:
            if isinstance(sel, InlineFragment | FragmentSpread):
                if walk(sel.selections, rest):
                    return True
            elif sel.name == rest[0] and walk(sel.selections, rest[1:]):
                return True
        return False

    return any(walk(field.selections, path) for field in info.selected_fields)


async def listing(
    info: Info, model: type[N], first: int, after: str | None,
    where: dict[str, str] | None = None, *, node: Callable[[N], Any] = lambda n: n,
) -> Connection[Any]:
    """One page of the stored nodes of ``model`` as a connection (reader role; page size
    within the server cap; our errors raised as :class:`PublicError`).

    ``node`` turns a stored node into its GraphQL value; by default the node itself (for
    types derived from the model, see :mod:`cmdb_graph.api.derive`).
    """
    try:
        require_role(info.context.principal, Role.READER)
        check_first(info, first)
        page = await info.context.call(
            info.context.store.list_nodes, model.LABEL, where=where, after=after, limit=first
        )
    except CmdbError as exc:
        raise PublicError(exc) from exc
    return connection(page, (n for n in page.items if isinstance(n, model)),
                      lambda n: str(getattr(n, model.KEY)), node)
