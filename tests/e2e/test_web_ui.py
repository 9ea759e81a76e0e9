"""The web UI in real headless Chromium (Debian's ``chromium``, driven by Playwright) on a
seeded demo estate: search a CI by name, open its map, run a change impact and compare the
coloured CIs and the services list with the API's answer, route an incident and find the
probable cause of two, export the map as SVG, load GraphiQL; no request leaves 127.0.0.1.

``scripts/test`` installs chromium when it is missing and sets ``CMDB_REQUIRE_BROWSER=1``, so
the test fails instead of skipping there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from defusedxml import ElementTree

from bench.browser import chromium, demo_server, have_chromium

pytestmark = pytest.mark.slow

LOCAL = ("127.0.0.1",)


def _gql(base: str, query: str, **variables: Any) -> dict[str, Any]:
    resp = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables},
                      timeout=60)
    body: dict[str, Any] = resp.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not have_chromium():
        message = "chromium and playwright are needed (scripts/test installs them)"
        if os.environ.get("CMDB_REQUIRE_BROWSER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with demo_server(1000, tmp_path_factory.mktemp("demo")) as url:
        yield url


def _click_node(page: Any, ci_id: str, *, shift: bool = False) -> None:
    """A real mouse click on a node of the map (the canvas), at its drawn position."""
    pos = page.evaluate("""id => { const n = window.cmdb.cy.getElementById(id);
        window.cmdb.cy.center(n); return n.renderedPosition(); }""", ci_id)
    box = page.locator("#cy").bounding_box()
    modifiers = ["Shift"] if shift else []
    for m in modifiers:
        page.keyboard.down(m)
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    for m in modifiers:
        page.keyboard.up(m)


def _drawn(page: Any) -> None:
    page.wait_for_function("() => window.cmdb && window.cmdb.timings && "
                           "!document.getElementById('status').textContent.startsWith('Load')")


def test_map_impact_incidents_export_offline(base: str, tmp_path: Path) -> None:
    # Arrange: the first node of the demo's 2-of-3 cluster (change CHG0001002 patches it)
    change = _gql(base, '{ changes(first: 50) { edges { node { changeId title ciIds '
                        'windowStart windowEnd } } } }')
    patched = next(e["node"] for e in change["changes"]["edges"]
                   if e["node"]["title"] == "Kernel update, first node")
    ci_id = patched["ciIds"][0]
    name = _gql(base, "query($c: ID!) { ci(ciId: $c) { name } }", c=ci_id)["ci"]["name"]
    impact = _gql(base, """query($c: [ID!]) { changeImpact(ciIds: $c) { ... on ChangeImpact {
        impacted { ciId kind confidence } } } }""", c=[ci_id])["changeImpact"]["impacted"]
    services = sorted(i["ciId"] for i in impact
                      if i["kind"] in ("business_service", "application_service"))
    assert 0 < len(impact) < 600 and services  # small enough to draw whole
    requests: list[str] = []

    with chromium() as browser:
        browser.on("request", lambda r: requests.append(r.url))
        browser.on("websocket", lambda ws: requests.append(ws.url))
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # Act 1: search by name, open the map
        page.goto(f"{base}/")
        page.fill("#q", name)
        page.locator(f'#hits li[data-ci="{ci_id}"]').click()
        _drawn(page)
        assert page.evaluate("id => window.cmdb.cy.getElementById(id).nonempty()", ci_id)
        assert f"ci={ci_id}" in page.url  # the URL holds the view

        # Act 2: select the CI on the map, take it down
        _click_node(page, ci_id)
        page.get_by_role("button", name="Impact of taking it down").click()
        page.wait_for_selector("#impact-out table.services")
        _drawn(page)
        coloured = page.evaluate("() => window.cmdb.colouredCIs()")
        listed = page.eval_on_selector_all("#impact-out table.services tr[data-ci]",
                                           "rows => rows.map(r => r.dataset.ci)")

        # Assert: the coloured CIs and the services list are the API's answer
        assert coloured == sorted(i["ciId"] for i in impact)
        assert sorted(listed) == services
        # each service says how sure its impact is, as the API does
        sure = page.eval_on_selector_all(
            "#impact-out table.services tr[data-ci]",
            "rows => rows.map(r => [r.dataset.ci, r.querySelector('td.sure').textContent])")
        assert dict(sure) == {i["ciId"]: f"{i['confidence']:.2f}" for i in impact
                              if i["ciId"] in services}
        assert page.locator("#impact-out .conflicts").count() == 1

        # Act 3: the recorded change: its conflicts and windows
        page.select_option("#change", patched["changeId"])
        page.wait_for_selector("#impact-out .conflicts h3 >> text=Change " + patched["changeId"])
        conflicts = _gql(base, """query($c: String!) { changeConflicts(changeId: $c) {
            ... on ChangeConflicts { conflicts { kind } } } }""",
                         c=patched["changeId"])["changeConflicts"]["conflicts"]
        shown = page.eval_on_selector_all("#impact-out .conflicts li[data-kind]",
                                          "items => items.map(i => i.dataset.kind)")
        assert sorted(shown) == sorted(c["kind"] for c in conflicts) and shown
        # the window fields show the change's window (UTC, to the minute)
        window = [datetime.fromisoformat(patched[k]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
                  for k in ("windowStart", "windowEnd")]
        assert [page.input_value("#win-start"), page.input_value("#win-end")] == window

        # Act 4: route an incident on the CI; probable cause of two open incidents
        page.goto(f"{base}/#ci={ci_id}&sel={ci_id}&tab=incident")
        page.reload()
        _drawn(page)
        page.get_by_role("button", name="Route an incident on the selected CI").click()
        page.wait_for_selector("#route-out .group")
        routing = _gql(base, """query($c: ID!) { routeIncident(ciId: $c) {
            ... on Routing { supportGroup { name } } } }""", c=ci_id)["routeIncident"]
        assert page.inner_text("#route-out .group") == routing["supportGroup"]["name"]
        page.locator("#incidents input").nth(0).check()
        page.locator("#incidents input").nth(1).check()
        page.get_by_role("button", name="Probable cause of the ticked incidents").click()
        page.wait_for_selector("#cause-out ol.causes li.chosen")
        _drawn(page)
        chosen = page.get_attribute("#cause-out li.chosen", "data-ci")
        assert page.evaluate("id => window.cmdb.cy.getElementById(id).hasClass('cause')", chosen)

        # Act 5: export the map as SVG
        with page.expect_download() as download:
            page.click("#export-svg")
        svg_path = tmp_path / "map.svg"
        download.value.save_as(svg_path)
        svg = ElementTree.parse(svg_path).getroot()
        drawn = page.evaluate("() => window.cmdb.cy.nodes(':visible').length")
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        assert len(svg.findall(".//{http://www.w3.org/2000/svg}g[@class='node']")) == drawn

        # Act 6: GraphiQL, from our own copies of its scripts
        page.goto(f"{base}/graphql")
        page.wait_for_selector(".graphiql-query-editor", timeout=30_000)
        assert "Loading..." not in page.inner_text("#graphiql")
        assert errors == []

    # Assert: nothing left this machine
    outside = [u for u in requests if urlsplit(u).hostname not in LOCAL
               and not u.startswith(("data:", "blob:"))]
    assert requests and outside == []


def test_the_map_asks_for_an_api_key_when_the_server_has_keys(tmp_path: Path) -> None:
    # Arrange: a server with one reader key
    if not have_chromium():
        pytest.skip("chromium and playwright are needed")
    from cmdb_graph.api.auth import new_api_key

    key, entry = new_api_key("ui-test", "reader")
    keys = json.dumps([entry.model_dump()])
    with demo_server(1000, tmp_path, CMDB_API_KEYS=keys) as url, chromium() as browser:
        page = browser.new_page()
        seen: list[str | None] = []
        page.on("request", lambda r: seen.append(r.headers.get("authorization"))
                if r.url.endswith("/graphql") else None)

        # Act: the page's first query is refused; a wrong key, then the right one
        page.goto(f"{url}/")
        page.wait_for_selector("#key-dialog[open]")
        page.fill("#key", "cmdb_wrong")
        page.click("#key-form button")
        page.wait_for_selector("#key-error:has-text('refused')")
        page.fill("#key", key)
        page.click("#key-form button")
        page.wait_for_selector("#services li a")

        # Assert: the services list came with the key; the key is not in the URL
        assert f"Bearer {key}" in seen and None in seen
        assert key not in page.url
        assert page.is_visible("#forget-key")
