"""Relay-style connections: one page of stored items as ``edges``, ``pageInfo`` and
``totalCount``, built in one place for every listing."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import strawberry

from cmdb_graph.store.base import Page

__all__ = ["Connection", "Edge", "PageInfo", "connection", "encode_cursor"]

T = TypeVar("T")
N = TypeVar("N")


@strawberry.type(description="Relay-style page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether another page follows.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type(description="An item of a page and its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque cursor of this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items (Relay-style connection).")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="Items of this page.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    total_count: int = strawberry.field(description="Items matching, over all pages.")


def encode_cursor(key: str) -> str:
    """An opaque cursor for an item key."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def connection(
    page: Page[Any], items: Iterable[N], key: Callable[[N], str], node: Callable[[N], T]
) -> Connection[T]:
    """The connection of one store page.

    Parameters
    ----------
    page : Page
        The store's page (its next cursor and total).
    items : iterable
        The page's items to list (``page.items``, or those of the expected kind).
    key : callable
        An item's key, encoded as its cursor.
    node : callable
        An item's GraphQL value.
    """
    return Connection(
        edges=[Edge(cursor=encode_cursor(key(i)), node=node(i)) for i in items],
        page_info=PageInfo(has_next_page=page.next_cursor is not None,
                           end_cursor=page.next_cursor),
        total_count=page.total,
    )
