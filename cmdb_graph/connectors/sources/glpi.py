"""GLPI REST API: computers, network equipment, printers (and phones, monitors).

Opens a session (``GET /apirest.php/initSession`` with the ``App-Token`` header and
``Authorization: user_token <token>``), reads ``GET /apirest.php/<itemtype>/?expand_dropdowns=
true&range=a-b`` for each itemtype of ``params.itemtypes`` (default Computer,
NetworkEquipment, Printer) until ``Content-Range`` says all rows were read, and closes the
session (``killSession``). GLPI's "get all items" has no modification-time filter: a delta run
reads everything too. Each page goes to the ``glpi-rest`` importer
(:mod:`importers.glpi_rest`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx

from cmdb_graph.connectors.base import Connector, Page

__all__ = ["GLPIConnector"]


def _total(_body: Any, response: httpx.Response) -> int | None:
    found = re.match(r"^\s*\d+-\d+/(\d+)\s*$", response.headers.get("Content-Range", ""))
    return int(found.group(1)) if found else None


def _items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else []


class GLPIConnector(Connector):
    """GLPI REST API (see the module docstring)."""

    kind = "glpi"

    def fetch(self, since: datetime | None) -> list[Page]:
        api = "" if self.config.url.endswith("apirest.php") else "/apirest.php"
        auth = self.config.auth
        if auth.type != "glpi" or auth.app_token is None or auth.user_token is None:
            raise self.http.error("auth type glpi (app_token, user_token) is required")
        app = {"App-Token": auth.app_token.get_secret_value()}
        session = self.http.json("GET", f"{api}/initSession", authenticate=False, headers={
            **app, "Authorization": f"user_token {auth.user_token.get_secret_value()}"})
        token = session.get("session_token") if isinstance(session, dict) else None
        if not token:
            raise self.http.error("GET initSession: the answer has no session_token")
        self.http.extra_headers.update({**app, "Session-Token": str(token)})
        try:
            return self._items(api)
        finally:
            try:
                self.http.request("GET", f"{api}/killSession", ok=(200, 204))
            except Exception:  # noqa: BLE001 - the session expires by itself
                pass

    def _items(self, api: str) -> list[Page]:
        pages: list[Page] = []
        size = self.config.page_size
        for itemtype in self.param("itemtypes", ["Computer", "NetworkEquipment", "Printer"]):
            start = 0
            while True:
                query = {"expand_dropdowns": "true", "range": f"{start}-{start + size - 1}"}
                body, response = self.http.get_page(f"{api}/{itemtype}/", what=itemtype,
                                                    params=query, ok=(200, 206))
                pages.append(Page("glpi-rest", body, str(response.request.url)))
                got = len(_items(body))
                start += got
                total = _total(body, response)
                if got < size or got == 0 or (total is not None and start >= total):
                    break
        return pages
