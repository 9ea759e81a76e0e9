"""``changeImpact`` fetches the CIs and support groups its selection asks for ahead, in one
store call each, and answers exactly what the DataLoaders answer (on both stores)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.model import ConfigurationItem, SupportGroup
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.base import GraphStore
from cmdb_graph.synthetic import generate_estate
from tests.contract.test_assets_tracking import CountingStore

WITH_CI = """
query($ids: [ID!]) {
  changeImpact(ciIds: $ids) {
    ... on ChangeImpact {
      impacted { ciId ci { ciId name supportGroupId supportGroup { groupId name email } } }
    }
  }
}
"""

# the same selection through a named fragment, an alias and a nested inline fragment
WITH_FRAGMENT = """
fragment Owner on ImpactedCI { item: ci { ... on ConfigurationItem { ciId name
  supportGroupId supportGroup { groupId name email } } } }
query($ids: [ID!]) {
  changeImpact(ciIds: $ids) { ... on ChangeImpact { impacted { ciId ...Owner } } }
}
"""

WITHOUT_CI = """
query($ids: [ID!]) {
  changeImpact(ciIds: $ids) { ... on ChangeImpact { impacted { ciId name } } }
}
"""

# the CI's own fields but not its support group
CI_ONLY = """
query($ids: [ID!]) {
  changeImpact(ciIds: $ids) { ... on ChangeImpact { impacted { ciId ci { ciId name } } } }
}
"""


def _run(store: GraphStore, query: str, ids: list[str]) -> tuple[dict[str, Any], Counter[str]]:
    counting = CountingStore(store)
    state = AppState(settings=Settings(), registry=store.registry, store=counting)
    schema = build_schema()
    # the engine builds its cached topology on the first call: do it before counting
    asyncio.run(schema.execute(WITHOUT_CI, variable_values={"ids": ids},
                               context_value=Context(state, Principal("t", Role.READER))))
    counting.calls.clear()
    result = asyncio.run(schema.execute(
        query, variable_values={"ids": ids},
        context_value=Context(state, Principal("t", Role.READER)),
    ))
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data, counting.calls


def _hub(store: GraphStore) -> str:
    """A CI whose failure impacts several CIs with support groups (a host of the estate)."""
    state = AppState(settings=Settings(), registry=store.registry, store=store)
    best, best_n = "", -1
    for ci_id in sorted(store.get_cis([f"ci-{i:07d}" for i in range(1, 120)])):
        n = len(state.engine.change_impact([ci_id]).impacted)
        if n > best_n:
            best, best_n = ci_id, n
    assert best_n >= 3
    return best


def test_prefetched_cis_and_groups_match_the_store(store: GraphStore) -> None:
    # Arrange
    store.apply(generate_estate(1000).to_batch())
    seed = _hub(store)

    # Act
    _, base = _run(store, WITHOUT_CI, [seed])
    data, calls = _run(store, WITH_CI, [seed])

    # Assert: every impacted CI with its own record and support group, from the store
    impacted = data["changeImpact"]["impacted"]
    ids = [item["ciId"] for item in impacted]
    cis = store.get_cis(ids)
    groups = store.get_nodes("SupportGroup", [c.support_group for c in cis.values()
                                              if c.support_group])
    assert any(item["ci"]["supportGroup"] for item in impacted)
    for item in impacted:
        model = cis[item["ciId"]]
        assert isinstance(model, ConfigurationItem)
        assert item["ci"]["ciId"] == model.ci_id and item["ci"]["name"] == model.name
        assert item["ci"]["supportGroupId"] == model.support_group
        group = groups.get(model.support_group) if model.support_group else None
        if isinstance(group, SupportGroup):
            assert item["ci"]["supportGroup"] == {
                "groupId": group.group_id, "name": group.name, "email": group.email}
        else:
            assert item["ci"]["supportGroup"] is None
    # one store call for all the CIs and one for all their groups
    assert calls["get_cis"] == base["get_cis"] + 1
    assert calls["get_nodes"] == base["get_nodes"] + 1


def test_fragments_and_aliases_are_looked_through(store: GraphStore) -> None:
    # Arrange
    store.apply(generate_estate(1000).to_batch())
    seed = _hub(store)

    # Act
    _, base = _run(store, WITHOUT_CI, [seed])
    plain, _ = _run(store, WITH_CI, [seed])
    fragment, calls = _run(store, WITH_FRAGMENT, [seed])

    # Assert: the same answer under the alias, and still one call per kind of node
    assert [{"ciId": i["ciId"], "ci": i["item"]} for i in fragment["changeImpact"]["impacted"]] \
        == plain["changeImpact"]["impacted"]
    assert calls["get_cis"] == base["get_cis"] + 1
    assert calls["get_nodes"] == base["get_nodes"] + 1


def test_nothing_is_fetched_that_the_selection_does_not_ask_for(store: GraphStore) -> None:
    # Arrange
    store.apply(generate_estate(1000).to_batch())
    seed = _hub(store)

    # Act
    _, without = _run(store, WITHOUT_CI, [seed])
    only_ci, ci_calls = _run(store, CI_ONLY, [seed])
    _, group_calls = _run(store, WITH_CI, [seed])

    # Assert: no CI fetched for a selection without ci, no group without supportGroup
    assert ci_calls["get_cis"] == without["get_cis"] + 1
    assert ci_calls["get_nodes"] == without["get_nodes"]
    assert group_calls["get_nodes"] == without["get_nodes"] + 1
    assert all(i["ci"]["ciId"] == i["ciId"] for i in only_ci["changeImpact"]["impacted"])
