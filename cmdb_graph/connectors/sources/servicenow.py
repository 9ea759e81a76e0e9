"""ServiceNow Table API: CI tables (``cmdb_ci*``) and their relationships (``cmdb_rel_ci``).

Reads ``GET /api/now/table/<table>`` for each table of ``params.ci_tables`` (default
``cmdb_ci``, the base table, which answers every class with its ``sys_class_name``) and then
``cmdb_rel_ci``, with ``sysparm_display_value=all`` (references and choices as value and
display value), ``sysparm_limit`` pages ordered by ``sys_id`` and the ``Link: rel="next"``
header of each answer. ``params.query`` adds an encoded query (``operational_status=1``). A
delta run adds ``sys_updated_on>=`` the last successful run (ServiceNow compares in the
integration user's time zone: give that user UTC). Auth: basic, or OAuth 2 client credentials
against ``/oauth_token.do`` (an OAuth application registry entry with the client credentials
grant). CI pages go to ``servicenow-ci``, relationship pages to ``servicenow-rel``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmdb_graph.connectors.base import Connector, Page, follow_next

__all__ = ["ServiceNowConnector"]


class ServiceNowConnector(Connector):
    """ServiceNow Table API (see the module docstring)."""

    kind = "servicenow"
    delta = True
    oauth_token_url = "/oauth_token.do"

    def _pages(self, table: str, importer: str, since: datetime | None) -> list[Page]:
        conditions = [str(self.param("query", "") or "")] if table != "cmdb_rel_ci" else []
        if since is not None:
            conditions.append("sys_updated_on>=javascript:gs.dateGenerate("
                              f"'{since:%Y-%m-%d}','{since:%H:%M:%S}')")
        query = "^".join(c for c in [*conditions, "ORDERBYsys_id"] if c)
        params: dict[str, Any] = {"sysparm_display_value": "all",
                                  "sysparm_limit": self.config.page_size,
                                  "sysparm_query": query}
        pages: list[Page] = []
        for body, url in follow_next(self.http, f"/api/now/table/{table}", what=table,
                                     params=params):
            if not isinstance(body, dict) or not isinstance(body.get("result"), list):
                raise self.http.error(f"GET /api/now/table/{table}: no result list")
            pages.append(Page(importer, body, url))
        return pages

    def fetch(self, since: datetime | None) -> list[Page]:
        pages: list[Page] = []
        for table in self.param("ci_tables", ["cmdb_ci"]):
            pages += self._pages(str(table), "servicenow-ci", since)
        if self.param("relationships", True):
            pages += self._pages("cmdb_rel_ci", "servicenow-rel", since)
        return pages
