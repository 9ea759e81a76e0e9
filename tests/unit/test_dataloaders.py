"""DataLoaders batch per request: a page of CIs with their support groups, owners and assets
costs the same number of store calls for 5 CIs as for 50 (no N+1)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import generate_estate

QUERY = """
query Page($first: Int!) {
  cis(first: $first) {
    edges { node {
      ciId
      supportGroup { groupId name }
      owner { personId name }
      assets { assetId lifecycleStage ci { ciId supportGroup { name } } }
    } }
  }
}
"""


class CountingStore:
    """Delegates to a real store and counts every method call made on it."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return value(*args, **kwargs)

        return counted


@pytest.fixture(scope="module")
def estate_store() -> MemoryStore:
    store = MemoryStore()
    store.apply(generate_estate(1000).to_batch())
    return store


def _run(store: CountingStore, first: int) -> tuple[dict[str, Any], int, Counter[str]]:
    state = AppState(settings=Settings(), registry=store._store.registry,
                     store=store)
    ctx = Context(state, Principal("test", Role.READER))
    result = asyncio.run(build_schema().execute(QUERY, variable_values={"first": first},
                                                context_value=ctx))
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data, state.counter.calls, store.calls


def test_store_calls_do_not_grow_with_the_page(estate_store: MemoryStore) -> None:
    # Arrange
    small, big = CountingStore(estate_store), CountingStore(estate_store)

    # Act
    _, small_counted, small_calls = _run(small, 5)
    data, big_counted, big_calls = _run(big, 50)

    # Assert
    nodes = [e["node"] for e in data["cis"]["edges"]]
    assert len(nodes) == 50
    assert sum(1 for n in nodes if n["supportGroup"]) >= 40
    assert sum(len(n["assets"]) for n in nodes) >= 5
    assert all(a["ci"]["ciId"] == n["ciId"] for n in nodes for a in n["assets"])
    assert big_calls == small_calls
    assert sum(big_calls.values()) <= 5
    assert big_counted == small_counted == sum(big_calls.values())
