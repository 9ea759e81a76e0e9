"""The Neo4j store builds the next statement's parameters while the server runs the current one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from cmdb_graph.store.neo4j.writes import prefetch


def _helpers() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "neo4j-statements")


def test_items_come_in_order_and_the_helper_ends() -> None:
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))
    assert _helpers() == 0


def test_an_error_of_the_producer_is_raised_in_order() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad row")

    got: list[int] = []
    with pytest.raises(ValueError, match="bad row"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]
    assert _helpers() == 0


def test_stopping_early_stops_the_helper() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    with closing(prefetch(items(), depth=2)) as it:
        assert next(it) == 0
    assert _helpers() == 0
    assert len(produced) < 10
