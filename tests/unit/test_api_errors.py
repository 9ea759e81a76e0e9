"""Client errors pass through unmasked; CI references may name the source of a native key."""

from __future__ import annotations

import asyncio
from typing import Any

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.model import ConfigurationItem
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.memory import MemoryStore

SCHEDULE = """
mutation($i: ChangeInput!) {
  changeSchedule(input: $i) {
    __typename
    ... on ChangeSchedulePayload { change { changeId ciIds } }
    ... on UserError { code message }
  }
}
"""


def _run(store: MemoryStore, query: str, variables: dict[str, Any]) -> Any:
    app = AppState(settings=Settings(), registry=store.registry, store=store)
    ctx = Context(app, Principal("test", Role.ADMIN))
    return asyncio.run(build_schema().execute(query, variable_values=variables,
                                              context_value=ctx))


def _change(cis: list[dict[str, Any]]) -> dict[str, Any]:
    return {"i": {"changeId": "CHG1", "windowStart": "2026-03-01T22:00:00Z",
                  "windowEnd": "2026-03-01T23:00:00Z", "cis": cis}}


def test_an_unknown_input_field_is_reported_not_masked() -> None:
    result = _run(MemoryStore(), SCHEDULE, _change([{"nativeKey": "FunctionalCI:17"}]))

    assert result.errors
    message = result.errors[0].message
    assert "Unexpected error" not in message
    assert "nativeKey" in message and "CIRefInput" in message


def test_a_reference_names_the_source_of_its_native_key() -> None:
    store = MemoryStore()
    store.upsert_nodes([ConfigurationItem(ci_id="ci-1", name="Server3", ci_class="Server",
                                          native_keys=["itop:FunctionalCI:3"])])
    ref = {"identifiers": {"nativeKey": "FunctionalCI:3"}}

    default_source = _run(store, SCHEDULE, _change([ref]))
    named_source = _run(store, SCHEDULE, _change([{**ref, "source": "itop"}]))

    assert default_source.data["changeSchedule"]["code"] == "CI_NOT_FOUND"
    assert "itsm:FunctionalCI:3" in default_source.data["changeSchedule"]["message"]
    assert named_source.data["changeSchedule"]["change"] == {
        "changeId": "CHG1", "ciIds": ["ci-1"]
    }
