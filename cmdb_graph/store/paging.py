"""Paging: pages and their cursors, the page-size cap, and reading a whole listing.

Listings (:meth:`GraphStore.list_cis`, :meth:`GraphStore.list_nodes`) return items sorted by
key, one :class:`Page` at a time; a page's ``next_cursor`` is the opaque form of its last key
and the next call starts after it. To read every item of a listing, callers use
:func:`iter_cis` or :func:`iter_nodes` (or :func:`iter_pages` for another listing) instead of
writing the cursor loop again.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cmdb_graph.errors import InvalidRecordError, TraversalLimitError
from cmdb_graph.model import ConfigurationItem, Node
from cmdb_graph.model.entities import Scalar

if TYPE_CHECKING:
    from cmdb_graph.store.base import GraphStore
    from cmdb_graph.store.query import CIFilter

__all__ = [
    "MAX_PAGE_SIZE",
    "Page",
    "RowPage",
    "slice_page",
    "check_limit",
    "encode_cursor",
    "decode_cursor",
    "iter_pages",
    "iter_cis",
    "iter_nodes",
]

T = TypeVar("T")

#: Largest page a listing returns; larger requests raise TraversalLimitError.
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing sorted by key; ``next_cursor`` is ``None`` on the last page."""

    items: list[T]
    next_cursor: str | None
    total: int


@dataclass(frozen=True, slots=True)
class RowPage:
    """One page as a store reads it: ``(key, row)`` pairs, before models are built.

    Attributes
    ----------
    rows : list of (str, dict)
        At most ``limit`` keys and rows, sorted by key.
    more : bool
        Whether items follow the last one.
    total : int
        How many items the whole listing holds.
    """

    rows: Sequence[tuple[str, Mapping[str, Any]]]
    more: bool
    total: int

    def page(self, build: Callable[[str, Mapping[str, Any]], T]) -> Page[T]:
        """The :class:`Page` of the models ``build(key, row)`` makes."""
        items = [build(key, row) for key, row in self.rows]
        last = self.rows[-1][0] if self.rows else None
        return Page(items, encode_cursor(last) if self.more and last is not None else None,
                    self.total)


def slice_page(
    keys: Sequence[str], after: str | None, limit: int, rows: Mapping[str, Mapping[str, Any]]
) -> RowPage:
    """The page of ``limit`` keys after ``after`` in ``keys`` (sorted), with their ``rows``."""
    pos = 0 if after is None else bisect.bisect_right(keys, after)
    chunk = keys[pos : pos + limit]
    return RowPage([(k, rows[k]) for k in chunk], pos + limit < len(keys), len(keys))


def check_limit(limit: int, maximum: int = MAX_PAGE_SIZE) -> None:
    """Raise :class:`TraversalLimitError` unless ``1 <= limit <= maximum``."""
    if limit > maximum:
        raise TraversalLimitError(f"page size {limit} is over the maximum of {maximum}")
    if limit < 1:
        raise TraversalLimitError(f"page size must be at least 1, got {limit}")


def encode_cursor(key: str) -> str:
    """The opaque cursor after ``key`` (URL-safe base64 of the key)."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor stands for (``None`` stays ``None``).

    Raises
    ------
    InvalidRecordError
        The cursor was not made by :func:`encode_cursor`.
    """
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidRecordError("malformed page cursor", field="after") from exc


def iter_pages(listing: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a listing, page by page, in the listing's order.

    Parameters
    ----------
    listing : callable
        ``listing(after)`` returns the page after cursor ``after`` (``None``: the first page),
        e.g. ``lambda after: store.list_cis(flt, after=after, limit=MAX_PAGE_SIZE)``.

    Yields
    ------
    object
        The items of each page in turn; the next page is read when the previous one has been
        consumed.
    """
    after: str | None = None
    while True:
        page = listing(after)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


def iter_cis(store: GraphStore, flt: CIFilter | None = None) -> Iterator[ConfigurationItem]:
    """Every CI that ``flt`` matches, sorted by ``ci_id``, in pages of ``MAX_PAGE_SIZE``.

    Raises
    ------
    UnknownCIClassError
        The filter names an unknown class.
    StoreError
        The store failed (the items yielded before stay valid).
    """
    return iter_pages(lambda after: store.list_cis(flt, after=after, limit=MAX_PAGE_SIZE))


def iter_nodes(
    store: GraphStore, label: str, where: Mapping[str, Scalar] | None = None
) -> Iterator[Node]:
    """Every node of ``label`` matching the equality filters ``where``, sorted by key.

    Read in pages of ``MAX_PAGE_SIZE`` (see :meth:`GraphStore.list_nodes`).

    Raises
    ------
    InvalidRecordError
        Unknown label or filter field.
    StoreError
        The store failed (the items yielded before stay valid).
    """
    return iter_pages(
        lambda after: store.list_nodes(label, where=where, after=after, limit=MAX_PAGE_SIZE)
    )
