"""``GraphStore.assets_tracking``: the assets of many CIs in one call, and the API's DataLoaders
batching on both stores (a page of 50 CIs costs the same store calls as a page of 5)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from typing import Any

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.model import Asset, LifecycleStage
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.base import GraphStore, WriteBatch
from cmdb_graph.synthetic import generate_estate
from tests.contract.estate import ci, estate_batch


def test_assets_tracking_maps_every_id_to_its_assets_sorted(store: GraphStore) -> None:
    # Arrange: hv1 has A-1 from the estate; add two more on hv1, one on vm1, one on a CI
    # that was never written
    store.apply(estate_batch())
    store.apply(WriteBatch(nodes=[
        Asset(asset_id="A-3", ci_id="hv1", lifecycle_stage=LifecycleStage.IN_USE),
        Asset(asset_id="A-2", ci_id="hv1", warranty_end=date(2028, 5, 31)),
        Asset(asset_id="B-1", ci_id="vm1"),
        Asset(asset_id="Z-9", ci_id="ghost"),
        Asset(asset_id="U-1"),
    ]))

    # Act
    found = store.assets_tracking(["hv1", "vm1", "hv2", "nope", "ghost", "hv1"])

    # Assert
    assert {k: [a.asset_id for a in v] for k, v in found.items()} == {
        "hv1": ["A-1", "A-2", "A-3"], "vm1": ["B-1"], "hv2": [], "nope": [], "ghost": ["Z-9"],
    }
    a1, a2, a3 = found["hv1"]
    assert (a1.serial_number, a1.purchase_date, a1.cost) == ("SN-1", date(2022, 1, 31), 1200.5)
    assert a2.warranty_end == date(2028, 5, 31)
    assert a3.lifecycle_stage == LifecycleStage.IN_USE
    assert all(a.ci_id == k for k, v in found.items() for a in v)
    assert store.assets_tracking([]) == {}


def test_assets_tracking_follows_a_moved_asset(store: GraphStore) -> None:
    # Arrange
    store.apply(WriteBatch(nodes=[ci("s1", "Server"), ci("s2", "Server"),
                                  Asset(asset_id="A", ci_id="s1")]))
    store.apply(WriteBatch(nodes=[Asset(asset_id="A", ci_id="s2")]))

    # Act
    found = store.assets_tracking(["s1", "s2"])

    # Assert
    assert {k: [a.asset_id for a in v] for k, v in found.items()} == {"s1": [], "s2": ["A"]}


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

    def __init__(self, store: GraphStore) -> None:
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


def _run(store: GraphStore, first: int) -> tuple[dict[str, Any], int, Counter[str]]:
    counting = CountingStore(store)
    state = AppState(settings=Settings(), registry=store.registry, store=counting)
    ctx = Context(state, Principal("test", Role.READER))
    result = asyncio.run(build_schema().execute(QUERY, variable_values={"first": first},
                                                context_value=ctx))
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data, state.counter.calls, counting.calls


def test_dataloaders_batch_on_both_stores(store: GraphStore) -> None:
    # Arrange
    store.apply(generate_estate(1000).to_batch())

    # Act
    _, small_counted, small_calls = _run(store, 5)
    data, big_counted, big_calls = _run(store, 50)

    # Assert: the page is real (groups, owners, assets resolved) ...
    nodes = [e["node"] for e in data["cis"]["edges"]]
    assert len(nodes) == 50
    assert sum(1 for n in nodes if n["supportGroup"]) >= 40
    assert sum(len(n["assets"]) for n in nodes) >= 5
    assert all(a["ci"]["ciId"] == n["ciId"] for n in nodes for a in n["assets"])
    # ... and ten times the CIs cost the same store calls, one assets_tracking among them
    assert big_calls == small_calls
    assert big_calls["assets_tracking"] == 1
    assert sum(big_calls.values()) <= 5
    assert big_counted == small_counted == sum(big_calls.values())
