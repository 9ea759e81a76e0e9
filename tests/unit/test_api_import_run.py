"""GraphQL ``ImportRun``: the run's ``error``, ``feedFrom`` and ``undoneAt`` as the model keeps
them (:class:`cmdb_graph.model.ImportRun`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.imports import run_type
from cmdb_graph.api.schema import build_schema
from cmdb_graph.model import ConfigurationItem, ImportRun, RunStatus
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.memory import MemoryStore

UPSERT = """mutation($in: CIUpsertInput!) { ciUpsert(input: $in) {
  __typename ... on CIUpsertPayload { run { runId status error feedFrom undoneAt } }
  ... on UserError { code message } } }"""


def _upsert(store: MemoryStore, name: str, *, dry_run: bool = False) -> dict[str, Any]:
    state = AppState(settings=Settings(), registry=store.registry, store=store)
    ctx = Context(state, Principal("test", Role.WRITER))
    variables = {"in": {"source": "disco", "dryRun": dry_run, "cis": [
        {"name": name, "ciClass": "Server", "identifiers": {"fqdn": name}}]}}
    result = asyncio.run(build_schema().execute(UPSERT, variable_values=variables,
                                                context_value=ctx))
    assert result.errors is None, result.errors
    assert result.data is not None
    payload: dict[str, Any] = result.data["ciUpsert"]
    assert payload["__typename"] == "CIUpsertPayload", payload
    run: dict[str, Any] = payload["run"]
    return run


def test_a_written_run_gives_the_feed_head_before_its_first_write() -> None:
    # Arrange: a store whose feed already holds a write
    store = MemoryStore()
    store.upsert_nodes([ConfigurationItem(ci_id="ci-0", name="old", ci_class="Server")])
    head = store.feed_head()
    assert head > 0

    # Act
    run = _upsert(store, "web-01.example")
    dry = _upsert(store, "web-02.example", dry_run=True)

    # Assert
    assert run["status"] == "succeeded"
    assert (run["feedFrom"], run["error"], run["undoneAt"]) == (head, None, None)
    stored = store.get_nodes("ImportRun", [run["runId"]])[run["runId"]]
    assert isinstance(stored, ImportRun) and stored.feed_from == head
    assert dry["feedFrom"] is None  # nothing written


def test_an_undone_run_gives_its_error_and_when() -> None:
    # Arrange: a run as an interrupted run is stored once its writes were undone
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    run = ImportRun(run_id="run-1", source="disco", importer="api", status=RunStatus.FAILED,
                    started_at=when, finished_at=when, feed_from=41, undone_at=when,
                    error="interrupted; its writes were undone (2 nodes deleted)")
    result = SimpleNamespace(run=run, dry_run=False, counts={},
                             plan=SimpleNamespace(skips=[], warnings=[]))

    # Act
    typed = run_type(result)  # type: ignore[arg-type]

    # Assert
    assert (typed.error, typed.feed_from, typed.undone_at) == (
        "interrupted; its writes were undone (2 nodes deleted)", 41, when)
