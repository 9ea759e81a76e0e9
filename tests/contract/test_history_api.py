"""History, diff and ``asOf`` over GraphQL, on both stores: Relay paging of a CI's history
with the import run and data source of each change, names of the CIs, ``asOf`` on the
questions that take it, and the error before the feed's retention."""

from __future__ import annotations

import asyncio
from typing import Any

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.feed import Actor, ActorKind
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.base import GraphStore, WriteBatch
from tests.contract.estate import ci, estate_batch

HISTORY = """
query($ci: ID!, $first: Int!, $after: String) {
  history(ciId: $ci, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { op ciName at actor { kind name runId source }
                   changes { name old new } relType source sourceName target targetName } }
  }
}
"""

AS_OF = """
query($at: DateTime!) {
  changeImpact(ciIds: ["cl"], asOf: $at) {
    ... on ChangeImpact { impacted { ciId name } }
    ... on UserError { code message }
  }
  neighbourhood(ciId: "vm1", asOf: $at) {
    ... on Neighbourhood { nodes { ciId } }
    ... on UserError { code message }
  }
  singlePointsOfFailure(service: "svc", asOf: $at) {
    ... on SinglePointsOfFailure { points { ciId } }
    ... on UserError { code }
  }
  serviceMap(service: "svc", asOf: $at) { ... on ServiceMap { service } ... on UserError { code } }
  report(name: "infrastructure_unreachable_from_services", asOf: $at) {
    ... on QualityReport { count } ... on UserError { code }
  }
  ci(ciId: "vm1", asOf: $at) { name }
}
"""

DIFF = """
query($since: DateTime!, $source: String) {
  diff(since: $since, source: $source) {
    ... on EstateDiff { records cis { ciId name status changes { name old new } }
                        relationships { relType sourceName targetName status } }
    ... on UserError { code message }
  }
}
"""


def _ask(store: GraphStore, query: str, **variables: Any) -> dict[str, Any]:
    settings = Settings()
    state = AppState(settings=settings, registry=store.registry, store=store)
    ctx = Context(state, Principal(name="t", role=Role.READER))
    result = asyncio.run(build_schema(settings).execute(
        query, variable_values=variables, context_value=ctx))
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


def _newest_at(store: GraphStore) -> str:
    return store.feed_since(store.feed_head() - 1)[0].at.isoformat()


RUN = Actor(ActorKind.IMPORT, "vcenter", run_id="run-7", source="vcenter")


def test_history_pages_with_names_and_the_import_run(store: GraphStore) -> None:
    # Arrange: the estate, then two renames of vm1 by an import run
    store.apply(estate_batch())
    for n in (1, 2):
        store.apply(WriteBatch(nodes=[ci("vm1", name=f"vm1 v{n}")], actor=RUN))

    # Act: pages of two
    pages = [_ask(store, HISTORY, ci="vm1", first=2)["history"]]
    while pages[-1]["pageInfo"]["hasNextPage"]:
        pages.append(_ask(store, HISTORY, ci="vm1", first=2,
                          after=pages[-1]["pageInfo"]["endCursor"])["history"])
    nodes = [e["node"] for p in pages for e in p["edges"]]

    # Assert: created, its two relationships, two renames by the run; names shown
    assert [p["totalCount"] for p in pages] == [5, 5, 5]
    assert [n["op"] for n in nodes] == ["created", "added", "added", "updated", "updated"]
    assert {n["ciName"] for n in nodes} == {"vm1 v2"}
    renames = nodes[3:]
    assert [(c["old"], c["new"]) for n in renames for c in n["changes"] if c["name"] == "name"
            ] == [("vm1 name", "vm1 v1"), ("vm1 v1", "vm1 v2")]
    assert {(n["actor"]["kind"], n["actor"]["runId"], n["actor"]["source"]) for n in renames
            } == {("import", "run-7", "vcenter")}
    hosted = next(n for n in nodes if n["relType"] == "HOSTED_ON")
    assert (hosted["sourceName"], hosted["targetName"]) == ("vm1 v2", "cl name")


def test_as_of_answers_on_the_graph_then(store: GraphStore) -> None:
    # Arrange: the estate; then vm1 leaves the cluster and is renamed
    store.apply(estate_batch())
    then = _newest_at(store)
    store.delete_relationships([("HOSTED_ON", "vm1", "cl")])
    store.upsert_nodes([ci("vm1", name="moved")])

    # Act
    past = _ask(store, AS_OF, at=then)
    now = _ask(store, AS_OF, at=_newest_at(store))

    # Assert
    assert {"vm1", "web"} <= {c["ciId"] for c in past["changeImpact"]["impacted"]}
    assert "vm1" not in {c["ciId"] for c in now["changeImpact"]["impacted"]}
    assert "cl" in {c["ciId"] for c in past["neighbourhood"]["nodes"]}
    assert "cl" not in {c["ciId"] for c in now["neighbourhood"]["nodes"]}
    assert past["ci"] == {"name": "vm1 name"}
    assert now["ci"] == {"name": "moved"}
    assert past["serviceMap"] == {"service": "svc"}
    assert isinstance(past["report"]["count"], int)
    assert "points" in past["singlePointsOfFailure"]


def test_as_of_before_the_retained_feed_is_a_user_error(store: GraphStore) -> None:
    # Arrange: the estate, a write, the feed pruned up to the newest record
    store.apply(estate_batch())
    then = _newest_at(store)
    store.upsert_nodes([ci("vm1", name="moved")])
    newest = store.feed_since(store.feed_head() - 1)[0].at
    store.prune_feed(before=newest)

    # Act
    found = _ask(store, AS_OF.replace("ci(ciId", "# ci(ciId"), at=then)

    # Assert: one clear error per question
    assert found["changeImpact"]["code"] == "HISTORY_UNAVAILABLE"
    assert "retention" in found["changeImpact"]["message"].lower() or \
        "CMDB_FEED_RETENTION_DAYS" in found["changeImpact"]["message"]
    assert found["neighbourhood"]["code"] == "HISTORY_UNAVAILABLE"


def test_diff_since_a_time_by_source(store: GraphStore) -> None:
    # Arrange: the estate; then a run of vcenter renames vm1 and adds a CI, and the system
    # retires vm2
    store.apply(estate_batch())
    since = _newest_at(store)
    store.apply(WriteBatch(nodes=[ci("vm1", name="moved"), ci("n1", "Application")],
                           actor=RUN))
    store.upsert_nodes([ci("vm2", operational_status="retired")])

    # Act
    every = _ask(store, DIFF, since=since)["diff"]
    by_run = _ask(store, DIFF, since=since, source="vcenter")["diff"]

    # Assert
    assert {(c["ciId"], c["status"]) for c in every["cis"]} == {
        ("vm1", "changed"), ("n1", "created"), ("vm2", "retired")}
    assert {(c["ciId"], c["status"]) for c in by_run["cis"]} == {
        ("vm1", "changed"), ("n1", "created")}
    vm1 = next(c for c in every["cis"] if c["ciId"] == "vm1")
    assert {"name": "name", "old": "vm1 name", "new": "moved"} in vm1["changes"]
    assert (every["records"], by_run["records"]) == (2, 1)
