"""The queries behind the web UI, on both stores: ``search`` over names and identifiers,
``neighbourhood(maxNodes)`` with each node's full CI, ``qualityFlags`` and the listings of
changes, incidents and windows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import build_schema
from cmdb_graph.model import Change, ChangeState, Incident, IncidentState, Window, WindowKind
from cmdb_graph.service.search import search
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.base import GraphStore, WriteBatch
from tests.contract.estate import ci, estate_batch

SEARCH = """
query($t: String!, $cls: String, $first: Int! = 20) {
  search(text: $t, ciClass: $cls, first: $first) {
    ... on SearchResults { truncated hits { matchedOn value ci { ciId } } }
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


def _hits(store: GraphStore, text: str, **kw: Any) -> list[tuple[str, str, str]]:
    data = _ask(store, SEARCH, t=text, **kw)["search"]
    return [(h["ci"]["ciId"], h["matchedOn"], h["value"]) for h in data["hits"]]


@pytest.fixture
def estate(store: GraphStore) -> GraphStore:
    batch = estate_batch()
    batch.nodes.append(ci("web2", "Application", name="web", ip_addresses=["10.1.4.7"]))
    batch.nodes.append(ci("webshop", "Application", name="Webshop frontend",
                          ip_addresses=["10.1.4.70", "fd00::7"]))
    store.apply(batch)
    return store


def test_search_finds_each_identifier_kind(estate: GraphStore) -> None:
    # Arrange: hv1 carries every identifier kind (fqdn HV1.Example.COM, serial SN-1, ...)
    cases = {
        "hv1": ("hv1", "ci_id", "hv1"),
        "hv1.example.com": ("hv1", "fqdn", "HV1.Example.COM"),
        "SN-1": ("hv1", "serial_number", "SN-1"),
        "AT-2": ("hv2", "asset_tag", "AT-2"),
        "i-vm1": ("vm1", "cloud_id", "i-vm1"),
        "00:1a:2b:00:01:02": ("hv2", "mac_addresses", "00:1a:2b:00:01:02"),
        "vcenter:host-1": ("hv1", "native_keys", "vcenter:host-1"),
        "10.1.4.7": ("web2", "ip_addresses", "10.1.4.7"),
        "fd00::7": ("webshop", "ip_addresses", "fd00::7"),
    }
    for text, expected in cases.items():
        # Act
        hits = _hits(estate, text)
        # Assert: the identifier match comes first
        assert hits[0] == expected, text


def test_search_ranks_names_and_prefixes(estate: GraphStore) -> None:
    # Act: "web" is web2's whole name, a prefix of "web name" and "Webshop frontend"
    hits = _hits(estate, "web")
    ip_prefix = _hits(estate, "10.1.4.")

    # Assert: the exact name first (an identifier match), then by prefix and name
    assert [h[0] for h in hits] == ["web2", "web", "webshop"]
    assert hits[0][1] == "name"
    assert {h[0] for h in ip_prefix} == {"web2", "webshop"}


def test_search_filters_and_limits(estate: GraphStore) -> None:
    # Act
    apps = _hits(estate, "name", cls="Application")
    infra = _hits(estate, "name", cls="Hypervisor")
    capped = _ask(estate, SEARCH, t="name", first=2)["search"]
    bad = _ask(estate, SEARCH, t="x", cls="NoSuchClass")["search"]
    empty = search(estate, "   ")

    # Assert
    assert [h[0] for h in apps] == ["cache", "db", "web"]  # subclasses of Application too
    assert {h[0] for h in infra} == {"hv1", "hv2"}
    assert len(capped["hits"]) == 2 and capped["truncated"] is True
    assert bad["code"] == "UNKNOWN_CI_CLASS"
    assert empty.hits == () and empty.truncated is False


NEIGHBOURHOOD = """
query($c: ID!, $max: Int) {
  neighbourhood(ciId: $c, depth: 2, maxNodes: $max) {
    ... on Neighbourhood {
      totalNodes truncated
      nodes { ciId distance ci { environment operationalStatus } }
      edges { source target relType }
    }
    ... on UserError { code }
  }
}
"""


def test_neighbourhood_caps_nearest_first_with_full_cis(estate: GraphStore) -> None:
    # Act
    whole = _ask(estate, NEIGHBOURHOOD, c="vm1")["neighbourhood"]
    capped = _ask(estate, NEIGHBOURHOOD, c="vm1", max=3)["neighbourhood"]
    refused = _ask(estate, NEIGHBOURHOOD, c="vm1", max=0)["neighbourhood"]

    # Assert
    assert whole["truncated"] is False and whole["totalNodes"] == len(whole["nodes"])
    assert capped["truncated"] is True and capped["totalNodes"] == whole["totalNodes"]
    assert [n["ciId"] for n in capped["nodes"]] == [n["ciId"] for n in whole["nodes"]][:3]
    kept = {n["ciId"] for n in capped["nodes"]}
    assert capped["edges"] == [e for e in whole["edges"]
                               if e["source"] in kept and e["target"] in kept]
    assert capped["nodes"][0]["ci"] == {"environment": "prod",
                                        "operationalStatus": "OPERATIONAL"}
    assert refused["code"] == "INVALID_RECORD"


def test_quality_flags_mark_the_cis_asked_for(estate: GraphStore) -> None:
    # Arrange: a second CI with hv1's serial number (a duplicate candidate), a stale one
    estate.apply(WriteBatch(nodes=[
        ci("hv1b", "Hypervisor", serial_number="SN-1", support_group="grp-infra"),
    ]))
    query = """
    query($ids: [ID!]!, $now: DateTime) {
      qualityFlags(ciIds: $ids, now: $now) {
        ... on QualityFlags { cis { ciId flags { badge report detail } } }
      }
    }"""

    # Act
    data = _ask(estate, query, ids=["hv1", "hv1b", "svc"], now="2024-03-05T00:00:00Z")
    flags = {c["ciId"]: {f["badge"] for f in c["flags"]}
             for c in data["qualityFlags"]["cis"]}

    # Assert: both CIs of the serial pair are duplicates; hv1b no service rests on (orphan)
    assert list(flags) == ["hv1", "hv1b", "svc"]
    assert "duplicate" in flags["hv1"] and "duplicate" in flags["hv1b"]
    assert "orphan" in flags["hv1b"] and "orphan" not in flags["hv1"]
    assert "unowned" in flags["svc"] or flags["svc"] == set()


def test_changes_incidents_and_windows_are_listed(estate: GraphStore) -> None:
    # Arrange
    t = datetime(2024, 3, 1, tzinfo=UTC)
    estate.apply(WriteBatch(nodes=[
        Change(change_id="CHG2", window_start=t, window_end=t.replace(hour=2), ci_ids=["vm1"],
               state=ChangeState.SCHEDULED, title="patch"),
        Change(change_id="CHG1", window_start=t, window_end=t.replace(hour=1), ci_ids=["db"],
               state=ChangeState.CLOSED),
        Incident(incident_id="INC1", opened_at=t, ci_ids=["web"], state=IncidentState.NEW),
        Incident(incident_id="INC2", opened_at=t, ci_ids=["db"], state=IncidentState.CLOSED),
        Window(window_id="W1", name="Sunday", kind=WindowKind.BLACKOUT, start=t,
               end=t.replace(hour=4), ci_ids=["svc"]),
    ]))
    query = """{
      changes(first: 1) { totalCount pageInfo { hasNextPage }
                          edges { node { changeId ciIds state } } }
      incidents(state: NEW) { totalCount edges { node { incidentId ciIds } } }
      windows { edges { node { windowId name kind ciIds } } }
    }"""

    # Act
    data = _ask(estate, query)

    # Assert
    assert data["changes"]["totalCount"] == 2
    assert data["changes"]["pageInfo"]["hasNextPage"] is True
    assert data["changes"]["edges"][0]["node"] == {"changeId": "CHG1", "ciIds": ["db"],
                                                   "state": "CLOSED"}
    assert data["incidents"] == {"totalCount": 1, "edges": [
        {"node": {"incidentId": "INC1", "ciIds": ["web"]}}]}
    assert data["windows"]["edges"][0]["node"] == {"windowId": "W1", "name": "Sunday",
                                                   "kind": "BLACKOUT", "ciIds": ["svc"]}


def test_relationships_of_an_unknown_ci_are_an_error_not_an_empty_list(
    estate: GraphStore,
) -> None:
    # Arrange
    query = "query($c: ID!) { relationships(ciId: $c) { relType sourceId } }"
    settings = Settings()
    ctx = Context(AppState(settings=settings, registry=estate.registry, store=estate),
                  Principal(name="t", role=Role.READER))

    # Act
    known = _ask(estate, query, c="vm1")["relationships"]
    unknown = asyncio.run(build_schema(settings).execute(
        query, variable_values={"c": "nope"}, context_value=ctx))

    # Assert
    assert {r["relType"] for r in known} >= {"RUNS_ON"}
    assert unknown.errors is not None and len(unknown.errors) == 1
    assert unknown.errors[0].message == "unknown CI: nope"
    assert (unknown.errors[0].extensions or {}).get("code") == "CI_NOT_FOUND"
