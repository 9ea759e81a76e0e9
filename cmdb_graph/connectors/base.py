"""What every connector is: fetch a source's pages, name the importer each page goes to.

A connector only fetches (Cartography's "get"): :meth:`Connector.fetch` returns every page
of the run, or raises :class:`~cmdb_graph.connectors.http.ConnectorError` when any page
fails, so that nothing is imported, let alone retired, from a partial read. The pages go to the
same importers as files (:meth:`importers.base.Importer.records`), in
:mod:`cmdb_graph.connectors.sync`.

Pagination helpers for the three kinds APIs use: :func:`follow_next` (a ``next`` link in the
body or a ``Link`` header), :func:`offset_pages` (limit and offset, or a ``Content-Range``),
and cursors, which each connector follows in its own loop (Lansweeper's ``pagination.next``,
Kubernetes' ``metadata.continue``, boto3's paginators).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import httpx

from cmdb_graph.connectors.config import SourceConfig
from cmdb_graph.connectors.http import ApiClient, Progress

__all__ = ["CONNECTORS", "Connector", "Page", "connector_for", "follow_next", "offset_pages"]


@dataclass(frozen=True)
class Page:
    """One fetched document and the importer kind that reads it.

    ``origin`` is where it came from (the page's URL), every record's ``origin.file``.
    """

    importer: str
    doc: Any
    origin: str


class Connector(ABC):
    """One source API (see the module docstring).

    Subclasses set :attr:`kind`, :attr:`delta` (the API filters by modification time),
    :attr:`token_scheme` and :attr:`oauth_token_url` when their API needs them, and implement
    :meth:`fetch`.
    """

    kind: ClassVar[str]
    delta: ClassVar[bool] = False
    token_scheme: ClassVar[str] = "Bearer"
    oauth_token_url: ClassVar[str] = "/oauth/token"
    uses_http: ClassVar[bool] = True

    def __init__(self, name: str, config: SourceConfig, *,
                 progress: Progress | None = None) -> None:
        self.name = name
        self.config = config
        self.progress = progress
        self.client = ApiClient(
            name, config.url, auth=config.auth, retry=config.retry,
            token_scheme=self.token_scheme, oauth_token_url=self.oauth_token_url,
            progress=progress, verify=config.verify_tls) if self.uses_http else None

    @property
    def http(self) -> ApiClient:
        """The source's HTTP client."""
        assert self.client is not None
        return self.client

    def close(self) -> None:
        """Release connections."""
        if self.client is not None:
            self.client.close()

    def param(self, key: str, default: Any) -> Any:
        """A connector parameter from the source's ``params``."""
        return self.config.params.get(key, default)

    @abstractmethod
    def fetch(self, since: datetime | None) -> list[Page]:
        """Every page of one run; ``since`` (UTC) limits it to what changed after, where the
        API can filter (``None``: everything).

        Raises
        ------
        ConnectorError
            A page failed after its retries, the credentials were refused, or an answer is
            not what the API documents.
        """


def follow_next(
    client: ApiClient, url: str, *, what: str, params: Mapping[str, Any] | None = None,
    next_of: Callable[[Any, httpx.Response], str | None] | None = None,
) -> Iterator[tuple[Any, str]]:
    """``(body, url)`` of each page, following ``next`` links until there is none.

    ``next_of(body, response)`` finds the next URL (default: the body's ``next``, else the
    ``Link: <...>; rel="next"`` header).
    """
    find = next_of or _next_link
    current: str | None = url
    query: Mapping[str, Any] | None = params
    seen: set[str] = set()
    while current:
        if current in seen:
            raise client.error(f"GET {current}: the API's next link loops")
        seen.add(current)
        body, response = client.get_page(current, what=what, params=query)
        yield body, str(response.request.url)
        current, query = find(body, response), None


def _next_link(body: Any, response: httpx.Response) -> str | None:
    if isinstance(body, Mapping) and isinstance(body.get("next"), str):
        return str(body["next"])
    link = response.links.get("next")
    return link.get("url") if link else None


def offset_pages(
    client: ApiClient, url: str, *, what: str, items: Callable[[Any], list[Any]],
    size: int, params: Mapping[str, Any] | None = None, limit: str = "limit",
    offset: str = "offset", total: Callable[[Any, httpx.Response], int | None] | None = None,
) -> Iterator[tuple[Any, str]]:
    """``(body, url)`` of each page of a limit/offset API, until a short page or the total."""
    start = 0
    while True:
        query = {**(params or {}), limit: size, offset: start}
        body, response = client.get_page(url, what=what, params=query)
        yield body, str(response.request.url)
        got = len(items(body))
        start += got
        known = total(body, response) if total is not None else None
        if got < size or (known is not None and start >= known) or got == 0:
            return


#: connector kind -> "module:Class"
CONNECTORS: dict[str, str] = {
    "netbox": "cmdb_graph.connectors.sources.netbox:NetBoxConnector",
    "snipeit": "cmdb_graph.connectors.sources.snipeit:SnipeITConnector",
    "lansweeper": "cmdb_graph.connectors.sources.lansweeper:LansweeperConnector",
    "glpi": "cmdb_graph.connectors.sources.glpi:GLPIConnector",
    "servicenow": "cmdb_graph.connectors.sources.servicenow:ServiceNowConnector",
    "jsm-assets": "cmdb_graph.connectors.sources.jsm:JSMAssetsConnector",
    "kubernetes": "cmdb_graph.connectors.sources.kubernetes:KubernetesConnector",
    "aws-ec2": "cmdb_graph.connectors.sources.aws:AWSEC2Connector",
}


def connector_for(name: str, config: SourceConfig, *,
                  progress: Progress | None = None) -> Connector:
    """The connector of a source's kind, ready to fetch."""
    module, _, cls = CONNECTORS[config.kind].partition(":")
    found: type[Connector] = getattr(importlib.import_module(module), cls)
    return found(name, config, progress=progress)
