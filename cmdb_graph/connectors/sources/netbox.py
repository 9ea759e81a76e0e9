"""NetBox REST API: devices, interfaces, cables, cable traces and virtual machines.

Reads ``/api/dcim/devices/``, ``/api/dcim/interfaces/``, ``/api/dcim/cables/`` and
``/api/virtualization/virtual-machines/`` page by page, following the ``next`` link of each
list page (``?limit=N``), with ``Authorization: Token <token>``. Interfaces whose cable leads
to something other than another interface (a front or rear port of a patch panel) are traced
(``GET /api/dcim/interfaces/{id}/trace/``; ``params.traces: false`` turns it off), so that a
server patched through panels is still connected to its switch. A delta run asks only for
objects changed since the last successful run (``last_updated__gte``).

All pages go to the ``netbox`` importer as one document: its interfaces and cables name the
devices by id, and they must meet in one input.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmdb_graph.connectors.base import Connector, Page, follow_next

__all__ = ["NetBoxConnector", "ENDPOINTS"]

#: what -> API path
ENDPOINTS = {
    "devices": "/api/dcim/devices/",
    "interfaces": "/api/dcim/interfaces/",
    "cables": "/api/dcim/cables/",
    "virtual machines": "/api/virtualization/virtual-machines/",
}


class NetBoxConnector(Connector):
    """NetBox REST API (see the module docstring)."""

    kind = "netbox"
    delta = True
    token_scheme = "Token"

    def fetch(self, since: datetime | None) -> list[Page]:
        params: dict[str, Any] = {"limit": self.config.page_size}
        if since is not None:
            params["last_updated__gte"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        objects: list[Any] = []
        for what, path in ENDPOINTS.items():
            for body, url in follow_next(self.http, path, what=what, params=params):
                if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                    raise self.http.error(f"GET {url.split('?')[0]}: not a NetBox list page")
                objects.extend(body["results"])
        if self.param("traces", True):
            objects.extend(self._traces(objects))
        origin = f"{self.config.url}/api/ ({', '.join(ENDPOINTS)})"
        return [Page("netbox", objects, origin)]

    def _traces(self, objects: list[Any]) -> list[dict[str, Any]]:
        """The traces of cabled interfaces that end on no interface (patch panels)."""
        out: list[dict[str, Any]] = []
        for obj in objects:
            if not isinstance(obj, dict) or "/dcim/interfaces/" not in str(obj.get("url")):
                continue
            peers = obj.get("link_peers_type")
            if not obj.get("cable") or peers in (None, "dcim.interface"):
                continue
            path = f"/api/dcim/interfaces/{obj['id']}/trace/"
            body, response = self.http.get_page(path, what="cable traces")
            out.append({"url": str(response.request.url), "trace": body})
        return out
