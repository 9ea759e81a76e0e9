"""Find configuration items by name or by any identifier.

One search over everything a person may have at hand about a CI: a part of its name, its
``ci_id``, FQDN, host name, serial number, asset tag, cloud id, MAC address, a source's native
key (``source:key``) or one of its IP addresses. The web UI's search box (GraphQL ``search``)
calls it; so can the command line.

What is matched, and how:

==============================  ===========================================================
``ci_id``, serial number,       exactly (one indexed store lookup for all of them); FQDN and
asset tag, cloud id, MAC,       host name case-insensitively; native keys as the whole
native key, FQDN, host name,    ``source:key`` string
name
IP address                      exactly, or as a prefix when the text ends with ``.`` or
                                ``:`` (``10.1.4.``), over the dependency graph (cached by the
                                API; the stores have no IP index)
name                            case-insensitive part of the name (one store listing)
==============================  ===========================================================

Hits are ranked: identifier matches first, then names equal to the text, names that start
with it, names that contain it; ties by name then ``ci_id``. Each CI appears once, with the
first reason it matched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import networkx as nx

from cmdb_graph.errors import TraversalLimitError
from cmdb_graph.model import ConfigurationItem, OperationalStatus
from cmdb_graph.store.base import IDENTIFIER_FIELDS, MAX_PAGE_SIZE, CIFilter, GraphStore

__all__ = ["SearchHit", "SearchResult", "search"]

#: Identifier fields in the order a hit reports them (the first that matches wins).
_ORDER: tuple[str, ...] = (
    "ci_id", "fqdn", "hostname", "serial_number", "asset_tag", "cloud_id", "mac_addresses",
    "native_keys", "name",
)
assert set(_ORDER) == set(IDENTIFIER_FIELDS)
_CASELESS = frozenset({"fqdn", "hostname", "mac_addresses", "name"})
_IP_CHARS = frozenset("0123456789abcdefABCDEF.:")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One CI found, and why.

    Attributes
    ----------
    ci : ConfigurationItem
        The CI.
    matched_on : str
        What matched: an identifier field (``ci_id``, ``fqdn``, ``hostname``,
        ``serial_number``, ``asset_tag``, ``cloud_id``, ``mac_addresses``, ``native_keys``),
        ``ip_addresses``, or ``name`` (exact or a part of it).
    value : str
        The stored value that matched.
    """

    ci: ConfigurationItem
    matched_on: str
    value: str

    @property
    def system(self) -> str | None:
        """What tells CIs of one name apart: the system the CI belongs to (its ``system``
        attribute: a compose project, a Kubernetes part-of label or namespace, a Backstage
        system), else its Kubernetes ``namespace`` or ``compose_project``; None when the CI
        states none."""
        attrs = self.ci.attributes
        for key in ("system", "namespace", "compose_project"):
            value = attrs.get(key)
            if value not in (None, ""):
                return str(value)
        return None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The hits of a search, best first, and whether more CIs matched than returned."""

    hits: tuple[SearchHit, ...]
    truncated: bool


def search(
    store: GraphStore,
    text: str,
    *,
    ci_class: str | None = None,
    status: OperationalStatus | None = None,
    limit: int = 20,
    graph: Callable[[], nx.MultiDiGraph] | None = None,
) -> SearchResult:
    """CIs whose name contains ``text`` or one of whose identifiers is ``text``.

    Parameters
    ----------
    store : GraphStore
        Where the CIs live.
    text : str
        What the person typed; surrounding blanks are ignored. Empty text finds nothing.
    ci_class : str, optional
        Only CIs of this class or one of its subclasses.
    status : OperationalStatus, optional
        Only CIs with this operational status.
    limit : int
        At most this many hits (1 to ``MAX_PAGE_SIZE``).
    graph : callable, optional
        Returns the whole dependency graph (the API passes its cached one); IP addresses are
        searched in it. Without it IP addresses are not searched.

    Returns
    -------
    SearchResult
        Hits ranked as the module docstring says; ``truncated`` when more matched.

    Raises
    ------
    TraversalLimitError
        ``limit`` out of range.
    UnknownCIClassError
        ``ci_class`` is not in the registry.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise TraversalLimitError(f"limit must be between 1 and {MAX_PAGE_SIZE} (got {limit})")
    needle = text.strip()
    reg = store.registry
    classes = reg.subclasses(reg.get_class(ci_class).name) if ci_class else None
    if not needle:
        return SearchResult(hits=(), truncated=False)

    def wanted(ci: ConfigurationItem) -> bool:
        return (classes is None or ci.ci_class in classes) and (
            status is None or ci.operational_status == status)

    hits: dict[str, SearchHit] = {}
    exact = store.find_cis(dict.fromkeys(IDENTIFIER_FIELDS, needle))
    for ci in sorted(exact, key=_by_name):
        why = _identifier_match(ci, needle)
        if why is not None and wanted(ci):
            hits.setdefault(ci.ci_id, SearchHit(ci, *why))
    if graph is not None and _looks_like_ip(needle):
        found = _by_ip(graph(), needle)
        for ci in sorted(store.get_cis(sorted(found)).values(), key=_by_name):
            if wanted(ci):
                hits.setdefault(ci.ci_id, SearchHit(ci, "ip_addresses", found[ci.ci_id]))
    page = store.list_cis(
        CIFilter(ci_class=ci_class, operational_status=status, name_contains=needle),
        limit=MAX_PAGE_SIZE,
    )
    low = needle.lower()
    for ci in sorted(page.items, key=lambda c: (_name_rank(c.name.lower(), low), *_by_name(c))):
        hits.setdefault(ci.ci_id, SearchHit(ci, "name", ci.name))
    more = page.total - len(page.items)
    ranked = list(hits.values())
    return SearchResult(hits=tuple(ranked[:limit]), truncated=len(ranked) > limit or more > 0)


def _by_name(ci: ConfigurationItem) -> tuple[str, str]:
    return (ci.name.lower(), ci.ci_id)


def _name_rank(name: str, needle: str) -> int:
    """0: the name is the text; 1: it starts with it; 2: it contains it."""
    if name == needle:
        return 0
    return 1 if name.startswith(needle) else 2


def _values(ci: ConfigurationItem, field: str) -> Iterable[str]:
    value = getattr(ci, field)
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def _identifier_match(ci: ConfigurationItem, needle: str) -> tuple[str, str] | None:
    """The first identifier field of ``ci`` equal to ``needle``, and its stored value."""
    for field in _ORDER:
        for value in _values(ci, field):
            same = value.lower() == needle.lower() if field in _CASELESS else value == needle
            if same:
                return field, value
    return None


def _looks_like_ip(text: str) -> bool:
    """An IP address, or the start of one ending with ``.`` or ``:``."""
    if text.endswith((".", ":")):
        return len(text) > 1 and all(c in _IP_CHARS for c in text)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _by_ip(graph: nx.MultiDiGraph, needle: str) -> dict[str, str]:
    """ci_id -> the first of its IP addresses equal to ``needle`` (or starting with it when
    it ends with ``.`` or ``:``)."""
    prefix = needle.endswith((".", ":"))
    low = needle.lower()
    found: dict[str, str] = {}
    for ci_id, ips in graph.nodes(data="ip_addresses"):
        for ip in ips or ():
            text = str(ip).lower()
            if text.startswith(low) if prefix else text == low:
                found[str(ci_id)] = str(ip)
                break
    return found
