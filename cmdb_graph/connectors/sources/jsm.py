"""Jira Service Management Assets: objects found by AQL.

Cloud: ``POST https://api.atlassian.com/jsm/assets/workspace/{workspaceId}/v1/object/aql``
(the source's ``url`` is ``https://api.atlassian.com/jsm/assets/workspace/<id>``) with
``{"qlQuery": ...}`` and ``startAt``/``maxResults`` query parameters, pages until
``isLast``; basic auth with an Atlassian account e-mail and API token. ``params.aql`` is the
query (default ``objectType IS NOT EMPTY``, every object the account may see); a delta run
adds ``AND updated > "<last success>"``. Data Center (``params.data_center: true``, ``url`` =
the Jira base URL): ``GET /rest/assets/1.0/aql/objects?qlQuery=...&page=N&resultPerPage=M``
with a personal access token (``Bearer``), pages until ``pageNumber`` reaches ``pageSize``
(the number of pages). Assets is a Jira Service Management Premium or Enterprise feature.
Each page goes to the ``jsm-assets`` importer (the REST object shape).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmdb_graph.connectors.base import Connector, Page

__all__ = ["JSMAssetsConnector"]


class JSMAssetsConnector(Connector):
    """JSM Assets AQL object search (see the module docstring)."""

    kind = "jsm-assets"
    delta = True

    def _aql(self, since: datetime | None) -> str:
        aql = str(self.param("aql", "objectType IS NOT EMPTY"))
        if since is not None:
            aql = f'({aql}) AND updated > "{since:%Y-%m-%d %H:%M}"'
        return aql

    def fetch(self, since: datetime | None) -> list[Page]:
        if self.param("data_center", False):
            return self._data_center(since)
        pages: list[Page] = []
        start, size = 0, self.config.page_size
        while True:
            params = {"startAt": start, "maxResults": size, "includeAttributes": "true"}
            body = self.http.json("POST", "/v1/object/aql", params=params,
                                  json={"qlQuery": self._aql(since)})
            values = body.get("values") if isinstance(body, dict) else None
            if not isinstance(values, list):
                raise self.http.error("POST /v1/object/aql: the answer has no values list")
            self.http.pages += 1
            self.http.note(f"objects: page {self.http.pages} ({len(values)} items)")
            pages.append(Page("jsm-assets", body,
                              f"{self.config.url}/v1/object/aql?startAt={start}"))
            start += len(values)
            if body.get("isLast", True) or not values:
                return pages

    def _data_center(self, since: datetime | None) -> list[Page]:
        pages: list[Page] = []
        page = 1
        while True:
            params: dict[str, Any] = {"qlQuery": self._aql(since), "page": page,
                                      "resultPerPage": self.config.page_size,
                                      "includeAttributes": "true"}
            body, response = self.http.get_page("/rest/assets/1.0/aql/objects", what="objects",
                                                params=params)
            pages.append(Page("jsm-assets", body, str(response.request.url)))
            last = body.get("pageSize", 1) if isinstance(body, dict) else 1
            if not isinstance(last, int) or page >= last:
                return pages
            page += 1
