"""Snipe-IT REST API: hardware, licences and components.

Reads ``/api/v1/hardware``, ``/api/v1/licenses`` and ``/api/v1/components`` with
``Authorization: Bearer <personal access token>``, ``limit``/``offset`` pages until the
page's ``total``; ``params.endpoints`` picks a subset (default all three). Snipe-IT's list
endpoints have no modification-time filter, so a delta run reads everything too (and, being a
delta, retires nothing). Each page goes to the importer of its endpoint
(:mod:`importers.snipeit_api`), which maps it as the CSV importers map their files.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmdb_graph.connectors.base import Connector, Page, offset_pages

__all__ = ["SnipeITConnector", "ENDPOINTS"]

#: endpoint -> (API path, importer kind)
ENDPOINTS = {
    "hardware": ("/api/v1/hardware", "snipeit-api-hardware"),
    "licenses": ("/api/v1/licenses", "snipeit-api-licenses"),
    "components": ("/api/v1/components", "snipeit-api-components"),
}


def _rows(body: Any) -> list[Any]:
    rows = body.get("rows") if isinstance(body, dict) else None
    return rows if isinstance(rows, list) else []


def _total(body: Any, _response: Any) -> int | None:
    total = body.get("total") if isinstance(body, dict) else None
    return total if isinstance(total, int) else None


class SnipeITConnector(Connector):
    """Snipe-IT REST API (see the module docstring)."""

    kind = "snipeit"

    def fetch(self, since: datetime | None) -> list[Page]:
        wanted = self.param("endpoints", list(ENDPOINTS))
        pages: list[Page] = []
        for endpoint in wanted:
            if endpoint not in ENDPOINTS:
                raise self.http.error(f"params.endpoints: unknown {endpoint!r}; known: "
                                      f"{', '.join(ENDPOINTS)}")
            path, importer = ENDPOINTS[endpoint]
            for body, url in offset_pages(self.http, path, what=endpoint, items=_rows,
                                          size=self.config.page_size, total=_total,
                                          params={"sort": "id", "order": "asc"}):
                if isinstance(body, dict) and body.get("status") == "error":
                    raise self.http.error(f"GET {path}: {body.get('messages')}")
                pages.append(Page(importer, body, url))
        return pages
