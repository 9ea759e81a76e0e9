"""Identification: which configuration item (CI) a record is.

Identification follows the prioritised identifier rules of the record's CI class
(:attr:`cmdb_graph.model.CIClass.identification`): the first rule that matches decides. The rules:

``native_key``
    The same data source's own key (stored as ``"source:key"`` in ``CI.native_keys``); a native
    key of another source never matches.
``serial_number``, ``asset_tag``, ``cloud_id``, ``fqdn``
    Equal values (serial numbers and asset tags compared case-insensitively, FQDNs in lower
    case). Placeholder serial numbers (``"To be filled by O.E.M."``, ``"0"``, ...) are dropped.
``hostname_domain``
    Hostname and domain (both case-insensitive). A record without a domain matches on the
    hostname alone; a candidate without a domain does not conflict with the record's domain.
``mac_address``
    Never alone: a shared MAC address matches only when the record has another identifier and
    none of the record's other identifiers contradicts the candidate's (each is equal or absent
    on the candidate).
``name_host``
    Dependent CIs (an application, a database instance): name + the ``ci_id`` of the host CI.
``name_system``
    Applications, databases and containers without a host, across sources: the service's
    short name (``Identifiers.service``, default the name) within its system
    (``Identifiers.system``: the compose project, the Kubernetes ``app.kubernetes.io/part-of``
    label or namespace, the Backstage ``spec.system``, an SBOM's described component), both
    compared as slugs (``Microservice 1`` is ``microservice-1``), within the same class group
    (a container, an application, a database are one service's CIs as the sources see it;
    services match services). The CI keeps both as the attributes ``service_name`` and
    ``system``. The same service name in another (or no) system is never merged:
    :func:`same_service_elsewhere` finds those CIs, which ingestion reports as duplicate
    candidates with their evidence.
``name``
    Logical CIs (services, clusters): name within the same CI class family.

Strong identifiers match only within the same *group* of classes (infrastructure, dependent
CIs, services/logical CIs), so an application never matches a server that shares its FQDN.
The rules after ``cloud_id`` also refuse a candidate whose serial number or cloud id
contradicts the record's (two machines that reuse a hostname stay two CIs).

When the deciding rule matches several CIs, ingestion merges them into the oldest (by
``first_seen``, then ``ci_id``) unless they contradict each other (different serial numbers,
cloud ids, FQDNs or domains): the record is then skipped as ambiguous, with its origin.

This module is pure: it works on :class:`CIIndex`, an in-memory index of the CIs that one
import run has loaded and planned. :mod:`cmdb_graph.ingest.references` applies the rules to
references, :mod:`cmdb_graph.ingest.cis` to CI records.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cmdb_graph.model import CIRecord, ConfigurationItem, Identifiers, Registry, ServiceKind

__all__ = [
    "CIIndex",
    "ID_ATTRIBUTES",
    "RecordKeys",
    "STRONG_FIELDS",
    "class_family",
    "class_group",
    "match_rule",
    "norm_mac",
    "norm_serial",
    "oldest",
    "record_identifiers",
    "same_service_elsewhere",
    "short_hash",
    "slug",
    "split_fqdn",
]

#: Serial numbers that firmware and inventory tools report when there is none.
_JUNK_SERIALS = frozenset(
    {
        "",
        "none",
        "null",
        "n/a",
        "na",
        "unknown",
        "not specified",
        "not available",
        "not applicable",
        "default string",
        "to be filled by o.e.m.",
        "to be filled by oem",
        "system serial number",
        "chassis serial number",
        "serial number",
        "0123456789",
        "123456789",
        "1234567890",
        "invalid",
        "-",
    }
)
_HEX = frozenset("0123456789abcdef")
_JUNK_MACS = frozenset({"000000000000", "ffffffffffff"})

#: CI fields an importer may put in a record's ``attributes`` that are identifiers.
ID_ATTRIBUTES: tuple[str, ...] = ("serial_number", "asset_tag", "cloud_id", "fqdn", "hostname",
                                  "domain")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Identifier fields compared when checking two CIs for contradictions.
STRONG_FIELDS: tuple[str, ...] = ("serial_number", "asset_tag", "cloud_id", "fqdn", "hostname")


def norm_serial(value: str | None) -> str | None:
    """A serial number stripped of spaces, or ``None`` for empty and placeholder values.

    Examples
    --------
    >>> norm_serial("  CZ1234 ")
    'CZ1234'
    >>> norm_serial("To be filled by O.E.M.") is None
    True
    """
    if value is None:
        return None
    s = str(value).strip()
    if s.casefold() in _JUNK_SERIALS or not s.strip("0 -."):
        return None
    return s


def norm_mac(value: str | None) -> str | None:
    """A MAC address as ``aa:bb:cc:dd:ee:ff``, or ``None`` when it is not one (or all 0/F).

    Examples
    --------
    >>> norm_mac("00-1A-2B-3C-4D-5E")
    '00:1a:2b:3c:4d:5e'
    """
    if value is None:
        return None
    v = str(value).strip().lower()
    if len(v) == 17 and v[2::3] == ":::::":
        hexes = v.replace(":", "")
    else:
        hexes = v.replace(":", "").replace("-", "").replace(".", "").replace(" ", "")
    if len(hexes) != 12 or not _HEX.issuperset(hexes) or hexes in _JUNK_MACS:
        return None
    h = hexes
    return f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}"


def norm_text(value: str | None) -> str | None:
    """Stripped text, ``None`` when empty."""
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def split_fqdn(fqdn: str) -> tuple[str, str | None]:
    """``("web01", "example.com")`` for ``"web01.example.com"``; no domain without a dot.

    An IPv4 address is not split.
    """
    f = fqdn.strip().rstrip(".").lower()
    if re.fullmatch(r"[0-9.]+", f) or "." not in f:
        return f, None
    host, _, domain = f.partition(".")
    return host, domain


def slug(text: str, *, max_len: int = 120) -> str:
    """A lower-case ASCII slug: ``"Linux Ops (EU)"`` -> ``"linux-ops-eu"``.

    Text with no ASCII letter or digit gets a short hash instead, so the slug is never empty.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not s:
        return short_hash(text)
    if len(s) > max_len:
        s = s[: max_len - 11].rstrip("-") + "-" + short_hash(text)
    return s


def short_hash(*parts: str, length: int = 10) -> str:
    """A stable short hex hash of the joined parts (not for security)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:length]


def class_group(registry: Registry, ci_class: str) -> str:
    """``"dependent"``, ``"service"`` or ``"infra"``: strong identifiers match within a group."""
    kind = registry.kind_of(ci_class)
    if kind is ServiceKind.APPLICATION:
        return "dependent"
    if kind in (ServiceKind.BUSINESS_SERVICE, ServiceKind.APPLICATION_SERVICE, ServiceKind.LOGICAL):
        return "service"
    return "infra"


def class_family(registry: Registry, ci_class: str) -> str:
    """The class just below ``ConfigurationItem`` in the class's ancestry (its family).

    Unknown classes are their own family.
    """
    if ci_class not in registry.classes:
        return ci_class
    chain = registry.ancestors(ci_class)
    return chain[-2] if len(chain) >= 2 else chain[-1]


@dataclass(frozen=True, slots=True)
class RecordKeys:
    """The normalised identifiers of one record (or one reference) from one data source."""

    native_key: str | None = None
    serial: str | None = None
    asset_tag: str | None = None
    cloud_id: str | None = None
    fqdn: str | None = None
    hostname: str | None = None
    domain: str | None = None
    macs: tuple[str, ...] = ()
    name: str | None = None
    ci_class: str | None = None
    service: str | None = None
    system: str | None = None

    @classmethod
    def of(cls, ids: Identifiers, source: str) -> RecordKeys:
        """Normalise ``ids`` as asserted by ``source`` (the native key becomes ``source:key``).

        The hostname and domain are derived from the FQDN when the record lacks them.
        """
        v = ids.__dict__  # plain attribute reads: one record costs this per reference
        if (v["fqdn"] is None and v["hostname"] is None and v["domain"] is None
                and v["serial_number"] is None and v["asset_tag"] is None
                and v["cloud_id"] is None and not v["mac_addresses"]):
            nk = norm_text(v["native_key"])
            return cls(native_key=f"{source}:{nk}" if nk else None, name=norm_text(v["name"]),
                       ci_class=norm_text(v["ci_class"]), service=norm_text(v["service"]),
                       system=norm_text(v["system"]))
        fqdn = norm_text(ids.fqdn)
        fqdn = fqdn.lower().rstrip(".") if fqdn else None
        hostname = norm_text(ids.hostname)
        domain = norm_text(ids.domain)
        if hostname and "." in hostname and not re.fullmatch(r"[0-9.]+", hostname):
            # a hostname that is really an FQDN
            fqdn = fqdn or hostname.lower().rstrip(".")
            hostname, derived = split_fqdn(hostname)
            domain = domain or derived
        if fqdn and not hostname:
            hostname, derived = split_fqdn(fqdn)
            domain = domain or derived
        if fqdn and "." not in fqdn:  # not a fully qualified name at all
            fqdn = None
        nk = norm_text(ids.native_key)
        macs = tuple(sorted({m for m in (norm_mac(x) for x in ids.mac_addresses) if m}))
        return cls(
            native_key=f"{source}:{nk}" if nk else None,
            serial=norm_serial(ids.serial_number),
            asset_tag=norm_text(ids.asset_tag),
            cloud_id=norm_text(ids.cloud_id),
            fqdn=fqdn,
            hostname=hostname.lower() if hostname else None,
            domain=domain.lower().rstrip(".") if domain else None,
            macs=macs,
            name=norm_text(ids.name),
            ci_class=norm_text(ids.ci_class),
            service=norm_text(ids.service),
            system=norm_text(ids.system),
        )

    def has_other_than_mac(self) -> bool:
        """Whether an identifier other than MAC addresses (and name) is set."""
        return any((self.serial, self.asset_tag, self.cloud_id, self.fqdn, self.hostname))

    def rule_value(self, rule: str, host_id: str | None = None) -> str | None:
        """The record's key for ``rule`` (``None`` when the record cannot use the rule)."""
        if rule == "native_key":
            return self.native_key
        if rule == "serial_number":
            return self.serial.upper() if self.serial else None
        if rule == "asset_tag":
            return self.asset_tag.upper() if self.asset_tag else None
        if rule == "cloud_id":
            return self.cloud_id.lower() if self.cloud_id else None
        if rule == "fqdn":
            return self.fqdn
        if rule == "hostname_domain":
            if not self.hostname:
                return None
            return f"{self.hostname}.{self.domain}" if self.domain else self.hostname
        if rule == "mac_address":
            return ",".join(self.macs) if self.macs and self.has_other_than_mac() else None
        if rule == "name_host":
            return f"{self.name.casefold()}@{host_id}" if self.name and host_id else None
        if rule == "name_system":
            service = self.service or self.name
            return service_key(service, self.system) if service and self.system else None
        if rule == "name":
            return self.name.casefold() if self.name else None
        return None

    def describe(self) -> str:
        """The set identifiers in words, for skip reasons."""
        parts = [
            f"{k}={v!r}"
            for k, v in (
                ("native_key", self.native_key),
                ("serial_number", self.serial),
                ("asset_tag", self.asset_tag),
                ("cloud_id", self.cloud_id),
                ("fqdn", self.fqdn),
                ("hostname", self.hostname),
                ("domain", self.domain),
                ("name", self.name),
                ("ci_class", self.ci_class),
                ("service", self.service),
                ("system", self.system),
            )
            if v
        ]
        if self.macs:
            parts.append(f"mac_addresses={list(self.macs)!r}")
        return ", ".join(parts) or "no identifiers"


def record_identifiers(rec: CIRecord) -> Identifiers:
    """A CI record's identifiers, completed from its attributes, name and class.

    Identifier fields the importer put in ``attributes`` (:data:`ID_ATTRIBUTES`,
    ``mac_addresses``) fill the ones the identifiers lack; the record's name and class fill
    ``name`` and ``ci_class``.
    """
    ids = rec.identifiers
    update: dict[str, Any] = {}
    for f in ID_ATTRIBUTES:
        v = rec.attributes.get(f)
        if getattr(ids, f) is None and isinstance(v, str) and v.strip():
            update[f] = v
    macs = rec.attributes.get("mac_addresses")
    if not ids.mac_addresses and isinstance(macs, list):
        update["mac_addresses"] = tuple(macs)
    for f, attr in (("service", "service_name"), ("system", "system")):
        v = rec.attributes.get(attr)
        if getattr(ids, f) is None and isinstance(v, str) and v.strip():
            update[f] = v
    if ids.name is None:
        update["name"] = rec.name
    if ids.ci_class is None:
        update["ci_class"] = rec.ci_class
    return ids.model_copy(update=update) if update else ids


def service_key(service: str, system: str) -> str:
    """The ``name_system`` key: service and system as slugs (``"Microservice 1"`` of a BOM is
    the compose service ``microservice-1``).

    Examples
    --------
    >>> service_key("Microservice 1", "Acme Cloud Example")
    'microservice-1@acme-cloud-example'
    """
    return f"{slug(service)}@{slug(system)}"


def ci_service(ci: ConfigurationItem) -> tuple[str, str | None] | None:
    """A CI's service name (attribute ``service_name``, else its name) and system, or ``None``
    when it has neither attribute (it was not described as a service of a system)."""
    service, system = ci.attributes.get("service_name"), ci.attributes.get("system")
    if not isinstance(system, str) and not isinstance(service, str):
        return None
    name = service if isinstance(service, str) and service.strip() else ci.name
    return name.strip(), system.strip() if isinstance(system, str) and system.strip() else None


def oldest(cis: Sequence[ConfigurationItem]) -> ConfigurationItem:
    """The CI seen first (by ``first_seen``, then ``ci_id``): the survivor of a merge."""
    return min(cis, key=lambda c: (c.first_seen or _EPOCH, c.ci_id))


def _ci_keys(ci: ConfigurationItem) -> Iterator[tuple[str, str]]:
    for nk in ci.native_keys:
        yield ("native_key", nk)
    serial = norm_serial(ci.serial_number)
    if serial:
        yield ("serial_number", serial.upper())
    if ci.asset_tag and ci.asset_tag.strip():
        yield ("asset_tag", ci.asset_tag.strip().upper())
    if ci.cloud_id and ci.cloud_id.strip():
        yield ("cloud_id", ci.cloud_id.strip().lower())
    if ci.fqdn:
        yield ("fqdn", ci.fqdn.strip().lower().rstrip("."))
    host = ci.hostname or (split_fqdn(ci.fqdn)[0] if ci.fqdn else None)
    if host:
        yield ("hostname", host.strip().lower())
    for mac in ci.mac_addresses:
        m = norm_mac(mac)
        if m:
            yield ("mac", m)
    yield ("name", ci.name.strip().casefold())
    svc = ci_service(ci)
    if svc is not None and ci.host_id is None:
        yield ("service", slug(svc[0]))
        if svc[1]:
            yield ("name_system", service_key(*svc))  # type: ignore[arg-type]
    if ci.host_id:
        yield ("name_host", f"{ci.name.strip().casefold()}@{ci.host_id}")


def _id_fields(ci: ConfigurationItem) -> tuple[object, ...]:
    return (ci.native_keys, ci.serial_number, ci.asset_tag, ci.cloud_id, ci.fqdn, ci.hostname,
            ci.mac_addresses, ci.name, ci.host_id, ci.duplicate_of,
            ci.attributes.get("service_name"), ci.attributes.get("system"))


def ci_domain(ci: ConfigurationItem) -> str | None:
    """The CI's domain, or the domain part of its FQDN."""
    if ci.domain:
        return ci.domain.strip().lower().rstrip(".")
    if ci.fqdn:
        return split_fqdn(ci.fqdn)[1]
    return None


class CIIndex:
    """The CIs one import run knows, indexed by every identifier.

    Duplicates (``duplicate_of`` set) are kept but never indexed, so identification never
    returns them.
    """

    def __init__(self) -> None:
        self.cis: dict[str, ConfigurationItem] = {}
        self._keys: dict[str, list[tuple[str, str]]] = {}
        self._by_key: dict[tuple[str, str], set[str]] = defaultdict(set)

    def __contains__(self, ci_id: object) -> bool:
        return ci_id in self.cis

    def __len__(self) -> int:
        return len(self.cis)

    def get(self, ci_id: str) -> ConfigurationItem | None:
        """The CI or ``None``."""
        return self.cis.get(ci_id)

    def put(self, ci: ConfigurationItem) -> None:
        """Add or replace a CI and re-index it (only when an identifier changed)."""
        old = self.cis.get(ci.ci_id)
        if old is not None and _id_fields(old) == _id_fields(ci):
            self.cis[ci.ci_id] = ci
            return
        for key in self._keys.pop(ci.ci_id, ()):
            self._by_key[key].discard(ci.ci_id)
        self.cis[ci.ci_id] = ci
        if ci.duplicate_of is None:
            keys = list(dict.fromkeys(_ci_keys(ci)))
            self._keys[ci.ci_id] = keys
            for key in keys:
                self._by_key[key].add(ci.ci_id)

    def put_all(self, cis: Iterable[ConfigurationItem]) -> None:
        """:meth:`put` each CI."""
        for ci in cis:
            self.put(ci)

    def lookup(self, kind: str, value: str) -> list[ConfigurationItem]:
        """Indexed CIs with key ``(kind, value)``, sorted by ``ci_id``."""
        return [self.cis[i] for i in sorted(self._by_key.get((kind, value), ()))]

    def values(self) -> list[ConfigurationItem]:
        """Every CI (duplicates included), sorted by ``ci_id``."""
        return [self.cis[i] for i in sorted(self.cis)]


def contradicts(keys: RecordKeys, ci: ConfigurationItem, fields: Iterable[str]) -> bool:
    """Whether a record's identifier in ``fields`` is set on both and differs."""
    for f in fields:
        if f == "serial_number":
            mine, theirs = keys.serial, norm_serial(ci.serial_number)
            if mine and theirs and mine.upper() != theirs.upper():
                return True
        elif f == "asset_tag":
            if keys.asset_tag and ci.asset_tag and keys.asset_tag.upper() != ci.asset_tag.upper():
                return True
        elif f == "cloud_id":
            if keys.cloud_id and ci.cloud_id and keys.cloud_id.lower() != ci.cloud_id.lower():
                return True
        elif f == "fqdn":
            if keys.fqdn and ci.fqdn and keys.fqdn != ci.fqdn.lower().rstrip("."):
                return True
        elif f == "hostname":
            theirs_h = ci.hostname or (split_fqdn(ci.fqdn)[0] if ci.fqdn else None)
            if keys.hostname and theirs_h and keys.hostname != theirs_h.lower():
                return True
        elif f == "domain":
            theirs_d = ci_domain(ci)
            if keys.domain and theirs_d and keys.domain != theirs_d:
                return True
    return False


def cis_conflict(a: ConfigurationItem, b: ConfigurationItem) -> str | None:
    """The first strong identifier on which two CIs disagree (both set, different), or None."""
    sa, sb = norm_serial(a.serial_number), norm_serial(b.serial_number)
    if sa and sb and sa.upper() != sb.upper():
        return "serial_number"
    if a.cloud_id and b.cloud_id and a.cloud_id.lower() != b.cloud_id.lower():
        return "cloud_id"
    if a.fqdn and b.fqdn and a.fqdn.lower() != b.fqdn.lower():
        return "fqdn"
    da, db = ci_domain(a), ci_domain(b)
    if da and db and da != db:
        return "domain"
    return None


def match_rule(
    index: CIIndex,
    registry: Registry,
    rule: str,
    keys: RecordKeys,
    *,
    ci_class: str | None,
    host_id: str | None = None,
) -> list[ConfigurationItem]:
    """The indexed CIs that ``rule`` matches for a record, sorted by ``ci_id``.

    Parameters
    ----------
    index : CIIndex
        The run's CIs.
    registry : Registry
        CI classes (groups and families).
    rule : str
        One of :data:`cmdb_graph.model.IDENTIFIER_RULES`.
    keys : RecordKeys
        The record's normalised identifiers.
    ci_class : str or None
        The record's class; ``None`` for a reference without a class (no group filter).
    host_id : str, optional
        The resolved host of a dependent CI (``name_host``).

    Returns
    -------
    list of ConfigurationItem
        Empty when the record cannot use the rule or nothing matches.
    """
    value = keys.rule_value(rule, host_id)
    if value is None:
        return []
    group = class_group(registry, ci_class) if ci_class else None

    def in_group(ci: ConfigurationItem) -> bool:
        return group is None or class_group(registry, ci.ci_class) == group

    later = ("serial_number", "cloud_id")
    found: list[ConfigurationItem]
    if rule == "native_key":
        return index.lookup("native_key", value)
    if rule in ("serial_number", "asset_tag", "cloud_id"):
        found = [c for c in index.lookup(rule, value) if in_group(c)]
    elif rule == "fqdn":
        found = [
            c
            for c in index.lookup("fqdn", value)
            if in_group(c) and not contradicts(keys, c, later)
        ]
    elif rule == "hostname_domain":
        assert keys.hostname is not None
        found = [
            c
            for c in index.lookup("hostname", keys.hostname)
            if in_group(c) and not contradicts(keys, c, (*later, "domain"))
        ]
    elif rule == "mac_address":
        ids: set[str] = set()
        for mac in keys.macs:
            ids.update(c.ci_id for c in index.lookup("mac", mac))
        found = [
            c
            for c in (index.cis[i] for i in sorted(ids))
            if in_group(c) and not contradicts(keys, c, (*STRONG_FIELDS, "domain"))
        ]
    elif rule == "name_host":
        found = [c for c in index.lookup("name_host", value) if in_group(c)]
    elif rule == "name_system":
        found = [c for c in index.lookup("name_system", value) if in_group(c)]
    elif rule == "name":
        if ci_class:
            fam = class_family(registry, ci_class)
            found = [
                c for c in index.lookup("name", value) if class_family(registry, c.ci_class) == fam
            ]
        else:
            found = index.lookup("name", value)
        found = [c for c in found if not contradicts(keys, c, later)]
    else:
        return []
    return found


def same_service_elsewhere(
    index: CIIndex, registry: Registry, keys: RecordKeys, *, ci_class: str, ci_id: str
) -> list[tuple[ConfigurationItem, str]]:
    """CIs of the record's class group with its service name in another or no system.

    ``name_system`` does not merge them (a service of that name may well run in two systems),
    so they are duplicate candidates; each comes with its evidence, in words.

    Returns
    -------
    list of (ConfigurationItem, str)
        The CI (never ``ci_id`` itself) and why it is a candidate, sorted by ``ci_id``.
    """
    service = keys.service or keys.name
    if not service:
        return []
    group = class_group(registry, ci_class)
    mine = slug(keys.system) if keys.system else None
    out: list[tuple[ConfigurationItem, str]] = []
    for c in index.lookup("service", slug(service)):
        if c.ci_id == ci_id or class_group(registry, c.ci_class) != group:
            continue
        svc = ci_service(c)
        theirs = svc[1] if svc else None
        if theirs is not None and mine is not None and slug(theirs) == mine:
            continue
        if theirs is None and mine is None:
            continue  # neither names a system: other rules decide, nothing to report
        out.append((c, f"same service name {service!r}, system "
                       f"{keys.system or 'not stated'!r} here and {theirs or 'not stated'!r} "
                       f"on {c.ci_id} {c.name!r}: not merged (name_system needs both systems "
                       f"to agree)"))
    return out
