"""Lansweeper Data API (GraphQL): the assets of one site.

Posts the ``site(id) { assetResources(assetPagination: {limit, page, cursor}, fields: [...]) {
total pagination { limit current next page } items } }`` query to
``https://api.lansweeper.com/api/v2/graphql`` (the ``url`` of the source) with
``Authorization: Token <personal access token>`` (or ``Bearer`` with an OAuth app's token:
``params.token_scheme``), following the cursor in ``pagination.next`` until there is none.
``params.site_id`` is required. A delta run filters on ``assetBasicInfo.lastChanged`` greater
than the last successful run. Each answer goes to the ``lansweeper`` importer as it is; an
answer with GraphQL ``errors`` fails the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmdb_graph.connectors.base import Connector, Page

__all__ = ["LansweeperConnector", "FIELDS", "QUERY"]

#: the asset fields asked for (what importers/lansweeper.py reads)
FIELDS = (
    "key", "assetBasicInfo.name", "assetBasicInfo.type", "assetBasicInfo.domain",
    "assetBasicInfo.fqdn", "assetBasicInfo.ipAddress", "assetBasicInfo.mac",
    "assetBasicInfo.description", "assetBasicInfo.firstSeen", "assetBasicInfo.lastSeen",
    "assetBasicInfo.lastChanged", "assetBasicInfo.userName", "assetBasicInfo.userDomain",
    "assetCustom.serialNumber", "assetCustom.manufacturer", "assetCustom.model",
    "assetCustom.stateName", "assetCustom.purchaseDate", "assetCustom.warrantyDate",
    "assetCustom.barCode", "assetCustom.location", "assetCustom.department",
    "operatingSystem.caption", "operatingSystem.productType", "operatingSystem.version",
    "operatingSystem.buildNumber",
)
QUERY = """query getAssets($siteId: ID!, $pagination: AssetsPaginationInputValidated,
  $fields: [String!]!, $filters: AssetsFilterInputValidated) {
  site(id: $siteId) {
    assetResources(assetPagination: $pagination, fields: $fields, filters: $filters) {
      total
      pagination { limit current next page }
      items
    }
  }
}"""


class LansweeperConnector(Connector):
    """Lansweeper Data API (see the module docstring)."""

    kind = "lansweeper"
    delta = True
    token_scheme = "Token"

    def fetch(self, since: datetime | None) -> list[Page]:
        site = self.param("site_id", None)
        if not site:
            raise self.http.error("params.site_id is required (the Lansweeper site's id)")
        variables: dict[str, Any] = {"siteId": site, "fields": list(FIELDS)}
        if since is not None:
            variables["filters"] = {"conjunction": "AND", "conditions": [{
                "operator": "GREATER_THAN", "path": "assetBasicInfo.lastChanged",
                "value": since.strftime("%Y-%m-%dT%H:%M:%S.000Z")}]}
        pages: list[Page] = []
        cursor: str | None = None
        page_kind = "FIRST"
        while True:
            variables["pagination"] = {"limit": self.config.page_size, "page": page_kind,
                                       **({"cursor": cursor} if cursor else {})}
            body = self.http.json("POST", self.config.url,
                                  json={"query": QUERY, "variables": variables})
            if isinstance(body, dict) and body.get("errors"):
                first = body["errors"][0] if isinstance(body["errors"], list) else {}
                message = first.get("message") if isinstance(first, dict) else first
                raise self.http.error(f"POST {self.config.url}: GraphQL error: {message}")
            self.http.pages += 1
            found = _resources(body)
            self.http.note(f"assets: page {self.http.pages} "
                           f"({len(found.get('items') or [])} items)")
            pages.append(Page("lansweeper", body, f"{self.config.url} (page {len(pages) + 1})"))
            pagination = found.get("pagination") or {}
            cursor = pagination.get("next") if isinstance(pagination, dict) else None
            if not cursor or not found.get("items"):
                return pages
            page_kind = "NEXT"


def _resources(body: Any) -> dict[str, Any]:
    node = body
    for key in ("data", "site", "assetResources"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}
