"""What container files only imply: the hosts their settings name, the application's entry points.

Shared by the importers of Kubernetes manifests and Docker Compose files.

:func:`addresses` finds the host names a setting points at (environment variables, container
arguments, ConfigMap values, connection strings). A value is split into tokens (commas,
semicolons, white space); a token is taken as an address when it is

- a URL or connection string, also nested or with credentials and several hosts:
  ``http://carts:80/x``, ``jdbc:mysql://order-mysql:3306/db``,
  ``mongodb://user:pw@db-0:27017,db-1:27017/app`` (RFC 3986 authority: ``userinfo@host:port``);
- a Go MySQL DSN (``user:pw@tcp(catalogue-db:3306)/socksdb``);
- ``host:port`` or a dotted name (``redis-cart:6379``, ``svc.ns.svc.cluster.local``);
- a bare word (``user-db``) when the key it is set under names an address (``*_ADDR``,
  ``*_HOST``, ``*_URL``, ``--db-host``, ...).

``--key=value`` and ``-Dkey.name=value`` (a Java system property) arguments are read as the
key set to the value. Values
still holding an unexpanded variable (``${DB_HOST}``, ``$(DB_HOST)``) are not read. Which host
names are real (a Service, a compose service) is for the importer to decide.

:func:`entry_points` picks what an application service CI depends on among the workloads of
one application, given the dependencies among them.

Each inferred relationship carries a confidence (see ``RelationshipRecord.confidence``):
:func:`address_confidence` for one read from an address (0.9 when the token itself looks like
an address and names a service of the input, 0.7 for a bare word under an address-like key;
0.2 less when the name is matched through an earlier run or another source rather than the
input), :data:`GROUPING_CONFIDENCE` for an application service's dependency on the workloads
that serve it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["Address", "GROUPING_CONFIDENCE", "address_confidence", "addresses",
           "argument_pairs", "entry_points"]

#: Confidence of an application service's dependency on a workload it groups (the grouping is
#: stated; which workloads are its entry points is deduced).
GROUPING_CONFIDENCE = 0.7

#: Keys whose value is an address even when it is a bare word.
_ADDRESS_KEY = re.compile(
    r"(ADDR|ADDRESS|HOST|HOSTNAME|HOSTS|URL|URI|DSN|ENDPOINT|SERVICE|SERVER|BROKERS?)S?$")
_HOST_PORT = re.compile(r"^([a-z0-9]([-a-z0-9_.]*[a-z0-9])?)(:(\d{1,5}))?$")
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*://")
_VARIABLE = re.compile(r"\$\{|\$\(|\{\{")
#: The address of a Go MySQL driver DSN: ``user:password@tcp(host:port)/db``.
_GO_DSN = re.compile(r"@tcp\(([^()]+)\)")


@dataclass(frozen=True, slots=True)
class Address:
    """A host name found in a value.

    Attributes
    ----------
    host : str
        Lower case, without a trailing dot.
    port : int or None
        The port, when the token gives one.
    explicit : bool
        Whether the token itself looks like an address (a port, a scheme, a dotted name),
        rather than a bare word taken because of its key.
    """

    host: str
    port: int | None
    explicit: bool


def address_confidence(address: Address, *, in_input: bool = True) -> float:
    """How sure a dependency read from ``address`` is.

    Parameters
    ----------
    address : Address
        The address found.
    in_input : bool
        Whether the name it gives matched a service of the same input (else an earlier run's
        or another source's CI, or a workload of that name without a Service).

    Returns
    -------
    float
        0.9 (explicit) or 0.7 (a bare word), 0.2 less when not ``in_input``.
    """
    base = 0.9 if address.explicit else 0.7
    return base if in_input else round(base - 0.2, 2)


def _authority(token: str) -> Iterator[Address]:
    """The hosts of a URL's authority (after ``scheme://``, before the path)."""
    rest = _SCHEME.split(token, maxsplit=1)[-1] if _SCHEME.search(token) else token
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0].rsplit("@", 1)[-1]
    for part in netloc.split(","):
        m = _HOST_PORT.match(part.strip().lower().rstrip("."))
        if m:
            port = int(m.group(4)) if m.group(4) else None
            yield Address(m.group(1), port if port is None or port < 65536 else None, True)


def addresses(key: str, value: str) -> list[Address]:
    """The addresses a value set under ``key`` names (see the module docstring).

    Parameters
    ----------
    key : str
        The variable or option name (``MONGO_HOST``, ``db-host``); empty for a bare argument.
    value : str
        Its value.

    Returns
    -------
    list of Address
        In order of appearance, each host once.

    Examples
    --------
    >>> [a.host for a in addresses("DB_URL", "jdbc:mysql://order-mysql:3306/orders")]
    ['order-mysql']
    >>> [(a.host, a.port) for a in addresses("MONGO_HOST", "user-db")]
    [('user-db', None)]
    >>> addresses("MODE", "fast")
    []
    """
    if _VARIABLE.search(value):
        return []
    named = bool(_ADDRESS_KEY.search(re.sub(r"[^A-Z0-9]+", "_", key.upper())))
    found: dict[str, Address] = {}
    # a URL keeps its commas (several hosts in one authority); other lists split on them
    separators = r"[\s;]+" if "://" in value else r"[,\s;]+"
    for token in re.split(separators, value.strip()):
        if not token:
            continue
        if "://" in token:
            hosts = list(_authority(token))
        elif (dsn := _GO_DSN.search(token)) is not None:
            hosts = list(_authority(dsn.group(1)))
        else:
            m = _HOST_PORT.match(token.lower().rstrip("."))
            if not m:
                continue
            port = int(m.group(4)) if m.group(4) else None
            explicit = port is not None or "." in m.group(1)
            if not (explicit or named) or (port is not None and port > 65535):
                continue
            hosts = [Address(m.group(1), port, explicit)]
        for a in hosts:
            found.setdefault(a.host, a)
    return list(found.values())


def argument_pairs(args: list[str]) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of container arguments: ``--key=value``, ``-Dkey.name=value``,
    ``--key value`` (a flag followed by a value), and ``("", arg)`` for any other argument.

    Examples
    --------
    >>> list(argument_pairs(["-port=80", "--catalogue-host", "catalogue", "serve"]))
    [('port', '80'), ('catalogue-host', 'catalogue'), ('', 'serve')]
    """
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and "=" in arg:
            key, _, value = arg.lstrip("-").partition("=")
            java = arg.startswith("-D") and "." in key  # -Dspring.datasource.url=...
            yield key.removeprefix("D") if java else key, value
        elif arg.startswith("-") and i + 1 < len(args) and not args[i + 1].startswith("-"):
            yield arg.lstrip("-"), args[i + 1]
            i += 1
        else:
            yield "", arg
        i += 1


def entry_points(members: Sequence[tuple[str, bool]], edges: Iterable[tuple[str, str]]
                 ) -> list[tuple[str, bool, str]]:
    """What an application service depends on, among the workloads of one application.

    A workload is *exposed* when it is reachable from outside the application (a Kubernetes
    Service selects it, a compose service publishes ports). The application service depends

    - on every exposed workload that no other exposed workload depends on (its entry points:
      required), and
    - optionally (a failure degrades it) on every workload that is not exposed and that nothing
      depends on (load generators, batch workers, clients of the application).

    When nothing is exposed, every workload that nothing depends on is required; when every
    workload is depended upon (a cycle), all are required.

    Parameters
    ----------
    members : sequence of (str, bool)
        Each workload's key and whether it is exposed, in a stable order.
    edges : iterable of (str, str)
        Dependencies ``(dependent key, dependency key)`` among them (others are ignored).

    Returns
    -------
    list of (str, bool, str)
        ``(key, optional, reason)`` in the order of ``members``.

    Examples
    --------
    >>> entry_points([("web", True), ("db", True), ("load", False)],
    ...              [("web", "db"), ("load", "web")])  # doctest: +NORMALIZE_WHITESPACE
    [('web', False, 'an entry point (exposed; no exposed workload depends on it)'),
     ('load', True, 'not exposed and nothing depends on it: optional')]
    """
    exposed = {k for k, e in members if e}
    keys = {k for k, _ in members}
    pairs = [(a, b) for a, b in edges if a in keys and b in keys and a != b]
    needed_by_exposed = {b for a, b in pairs if a in exposed}
    needed = {b for _, b in pairs}
    out = [(k, False, "an entry point (exposed; no exposed workload depends on it)")
           for k, e in members if e and k not in needed_by_exposed]
    if out:
        out += [(k, True, "not exposed and nothing depends on it: optional")
                for k, e in members if not e and k not in needed]
    else:
        out = [(k, False, "nothing depends on it") for k, _ in members if k not in needed]
    if not out:
        out = [(k, False, "every workload is depended upon (a cycle)") for k, _ in members]
    order = {k: i for i, (k, _) in enumerate(members)}
    return sorted(out, key=lambda t: order[t[0]])
