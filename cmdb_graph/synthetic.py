"""A seeded synthetic estate: the data behind ``cmdb-graph demo`` and the benchmarks.

The estate is layered the way a real one is, every CI-to-CI relationship pointing from the
dependent to what it needs (the default registry's orientation):

* business services ``DEPENDS_ON`` application services (one of them sometimes optional), which
  ``DEPENDS_ON`` applications and a database; a few application services also depend on a
  shared application service of another business service;
* applications ``RUNS_ON`` a cluster (``redundancy`` ``"2"`` of 3 members, ``"3"`` of 4,
  ``"50%"`` of 6..12 or ``"1"`` of 2) or on a single virtual machine; cluster members are
  virtual machines that are ``MEMBER_OF`` the cluster;
* databases ``RUNS_ON`` a two-node cluster of physical servers (criticality 1), a two-node VM
  cluster (criticality 2) or a single virtual machine;
* virtual machines are ``HOSTED_ON`` hypervisors (cluster members on distinct hypervisors);
* hypervisors and servers ``CONNECTS_TO`` the top-of-rack access switch of their rack,
  ``LOCATED_IN`` their datacenter; hypervisors ``DEPENDS_ON`` a storage array;
* access switches and storage arrays ``CONNECTS_TO`` the first core switch of their datacenter
  (required) and the second one (``optional``: the pair is redundant);
* the primary datacenter ``fra1`` holds about 65% of the estate, so the upstream closure of
  ``sw-core-fra1-01`` is most of the estate.

On top of that the generator plants what the data-quality and change reports look for: assets
retired or disposed while their CI is operational, hardware without asset (unmanaged), stale
CIs, two pairs of CIs with the same serial number (one pair merged, with ``duplicate_of``),
dependency cycles between applications, CIs without support group, hardware past warranty and
end of life, overlapping changes (two of them on members of one 2-of-3 cluster), a weekly
maintenance window (RRULE), a monthly one, a blackout window on the two most critical business
services, and open incidents.

Everything is a pure function of ``size``, ``seed`` and ``now`` (default
:data:`DEFAULT_NOW`, 2026-01-01T00:00Z), so outputs are reproducible.

Two entry points share one generator:

* :func:`generate_estate` builds the pydantic models (:class:`Estate`); use it up to some
  hundred thousand CIs;
* :func:`generate_rows` streams plain dicts in the store-row shape (``dump_flat`` of each
  model: JSON values, no lineage) in batches, without building models; use it for the large
  benchmark estates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb_graph import heap
from cmdb_graph.model import (
    Asset,
    Change,
    ConfigurationItem,
    Incident,
    Location,
    Node,
    Person,
    Relationship,
    SupportGroup,
    Window,
)
from cmdb_graph.store.base import WriteBatch

__all__ = [
    "DEFAULT_NOW",
    "MIN_SIZE",
    "MAX_SIZE",
    "REL",
    "NODE_LABELS",
    "Estate",
    "CIIndex",
    "generate_estate",
    "generate_rows",
    "models_from_rows",
    "ci_ids_by_class",
]

#: The default "now" of the generator, so that outputs are reproducible.
DEFAULT_NOW = datetime(2026, 1, 1, tzinfo=UTC)

#: Smallest and largest supported estate (number of CIs).
MIN_SIZE = 1_000
MAX_SIZE = 1_000_000

#: Label under which :func:`generate_rows` yields relationship rows.
REL = "Relationship"

#: Node labels in dependency-safe order (a row only references rows of earlier labels).
NODE_LABELS: tuple[str, ...] = (
    "Location",
    "SupportGroup",
    "Person",
    "CI",
    "Asset",
    "Change",
    "Window",
    "Incident",
)

_MODELS: dict[str, type[Node]] = {
    "Location": Location,
    "SupportGroup": SupportGroup,
    "Person": Person,
    "CI": ConfigurationItem,
    "Asset": Asset,
    "Change": Change,
    "Window": Window,
    "Incident": Incident,
}

Row = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Row templates, derived from the models so that rows always have the ``dump_flat`` keys.


def _template(model: type[Any]) -> tuple[Row, tuple[str, ...], tuple[str, ...]]:
    """Default values of every field but lineage, and the names of list and dict fields."""
    tmpl: Row = {}
    lists: list[str] = []
    dicts: list[str] = []
    for name, info in model.model_fields.items():
        if name == "lineage":
            continue
        if info.default_factory is not None:
            value = info.default_factory()
            if isinstance(value, list):
                lists.append(name)
            elif isinstance(value, dict):
                dicts.append(name)
            tmpl[name] = None
        elif info.is_required():
            tmpl[name] = None
        else:
            default = info.default
            tmpl[name] = getattr(default, "value", default)
    return tmpl, tuple(lists), tuple(dicts)


_TEMPLATES = {label: _template(model) for label, model in _MODELS.items()}
_TEMPLATES[REL] = _template(Relationship)


def _row(label: str, fields: Mapping[str, Any]) -> Row:
    tmpl, lists, dicts = _TEMPLATES[label]
    row = tmpl.copy()
    for k in lists:
        row[k] = []
    for k in dicts:
        row[k] = {}
    row.update(fields)
    return row


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Names.

#: (business service name, short code) in the order they are used; the first two are the most
#: critical ones of every estate.
_SERVICES: tuple[tuple[str, str], ...] = (
    ("Payments", "pay"),
    ("Online Shop", "shop"),
    ("Customer Portal", "portal"),
    ("Order Management", "oms"),
    ("Logistics", "logi"),
    ("Warehouse Management", "wms"),
    ("Customer Relationship Management", "crm"),
    ("Identity and Access", "iam"),
    ("Payroll", "payroll"),
    ("Finance and Accounting", "fin"),
    ("Data Warehouse", "dwh"),
    ("Email and Collaboration", "mail"),
    ("Mobile App", "mobile"),
    ("Product Catalogue", "cat"),
    ("Pricing", "price"),
    ("Loyalty Programme", "loyal"),
    ("Customer Support", "care"),
    ("Marketing Automation", "mkt"),
    ("Supplier Portal", "supp"),
    ("Billing", "bill"),
    ("Fraud Detection", "fraud"),
    ("Search", "search"),
    ("Content Management", "cms"),
    ("Reporting and Analytics", "bi"),
    ("Document Management", "dms"),
    ("Procurement", "proc"),
    ("Inventory", "inv"),
    ("Point of Sale", "pos"),
    ("Booking", "book"),
    ("Notifications", "notify"),
    ("Travel and Expenses", "travel"),
    ("Intranet", "intra"),
    ("Field Service", "field"),
    ("Contract Management", "contract"),
    ("Treasury", "treas"),
    ("Risk Management", "risk"),
    ("Compliance", "compl"),
    ("Recruiting", "recruit"),
    ("Learning", "learn"),
    ("Human Resources", "hr"),
)

#: Business units that qualify a business service name once the plain names are used up.
_UNITS: tuple[str, ...] = (
    "DE", "FR", "UK", "NL", "BE", "ES", "IT", "PL", "AT", "CH", "SE", "DK", "NO", "FI", "IE",
    "PT", "CZ", "HU", "RO", "GR", "B2B", "Retail", "Wholesale", "Partner", "Group",
)  # fmt: skip

_AS_ROLES: tuple[str, ...] = (
    "API", "Web", "Processing", "Batch", "Gateway", "Integration", "Mobile Backend", "Reporting",
)  # fmt: skip

_COMPONENTS: tuple[str, ...] = (
    "gateway", "auth", "ledger", "worker", "frontend", "scheduler", "notifier", "search",
    "cache", "etl", "backend", "orders", "catalog", "pricing", "billing", "events", "export",
    "import", "rules", "session",
)  # fmt: skip

_DB_ENGINES: tuple[tuple[str, str], ...] = (
    ("PostgreSQL", "16.4"),
    ("PostgreSQL", "14.13"),
    ("Oracle Database", "19c"),
    ("Microsoft SQL Server", "2019"),
    ("MySQL", "8.0.39"),
)

#: (code, city, country) of the datacenters; the first one is the primary.
_SITES: tuple[tuple[str, str, str], ...] = (
    ("fra1", "Frankfurt", "DE"),
    ("ams1", "Amsterdam", "NL"),
    ("dub1", "Dublin", "IE"),
    ("par1", "Paris", "FR"),
    ("lon1", "London", "GB"),
    ("mad1", "Madrid", "ES"),
    ("waw1", "Warsaw", "PL"),
    ("sto1", "Stockholm", "SE"),
)

_SERVER_MODELS = (("Dell", "PowerEdge R650", "CZ"), ("HPE", "ProLiant DL380 Gen10", "MXQ"),
                  ("Lenovo", "ThinkSystem SR650 V2", "J30"))  # fmt: skip
_ACCESS_MODELS = (("Cisco", "Nexus 93180YC-FX", "FDO"), ("Arista", "7050SX3-48YC8", "JPE"))
_CORE_MODELS = (("Cisco", "Nexus 9508", "FGE"), ("Arista", "7504R", "JAS"))
_STORAGE_MODELS = (("NetApp", "AFF A400", "NA"), ("Pure Storage", "FlashArray//X70", "PCT"))

_FIRST = (
    "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannah", "Ivan", "Julia",
    "Karim", "Lena", "Marco", "Nina", "Omar", "Paula", "Quentin", "Rosa", "Sven", "Tara",
    "Umut", "Vera", "Willem", "Xenia", "Yusuf", "Zoe",
)  # fmt: skip
_LAST = (
    "Albers", "Brandt", "Costa", "Dijkstra", "Eriksen", "Fischer", "Garcia", "Hoffmann",
    "Ivanova", "Jansen", "Kowalski", "Larsen", "Meyer", "Novak", "Okafor", "Peters", "Quinn",
    "Rossi", "Schmidt", "Tanaka", "Ulrich", "Varga", "Weber", "Yilmaz", "Zimmermann",
)  # fmt: skip

#: Infrastructure support groups: (key, name).
_INFRA_GROUPS: tuple[tuple[str, str], ...] = (
    ("net", "Network Operations"),
    ("linux", "Linux Operations"),
    ("virt", "Virtualisation Platform"),
    ("storage", "Storage Operations"),
    ("dc", "Datacenter Operations"),
    ("dba", "Database Administration"),
    ("desk", "Service Desk"),
)


# --------------------------------------------------------------------------------------------
# The generator.


@dataclass
class _Host:
    ci_id: str
    rack: str  # location id of the rack
    switch: str  # ci_id of the rack's access switch


@dataclass
class _Site:
    code: str
    index: int
    city: str
    country: str
    datacenter: str = ""
    cores: list[str] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)
    racks: list[tuple[str, str, int]] = field(default_factory=list)  # (loc id, switch, no.)
    rack_fill: dict[str, int] = field(default_factory=dict)
    hypervisors: list[str] = field(default_factory=list)
    servers: int = 0
    ip_counter: int = 0


class _Spread:
    """``count`` ordinals spread evenly over ``0 .. expected - 1`` (the k-th thing created)."""

    def __init__(self, count: int, expected: int, offset: int = 0) -> None:
        step = max(1, expected // max(1, count))
        self.hits = {offset + step // 2 + i * step for i in range(count)}

    def __contains__(self, ordinal: int) -> bool:
        return ordinal in self.hits


class _Generator:
    """Builds the estate row by row and hands out batches in dependency-safe order."""

    def __init__(self, size: int, seed: int, now: datetime, batch_size: int) -> None:
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.size = size
        self.rng = random.Random(seed)
        self.now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
        self.batch_size = batch_size
        self.buffers: dict[str, list[Row]] = {label: [] for label in (*NODE_LABELS, REL)}
        self.ci_buffer = self.buffers["CI"]
        self.rel_buffer = self.buffers[REL]
        self.ci_template = {**_TEMPLATES["CI"][0], "environment": "production"}
        self.n_ci = 0
        self.n_asset = 0
        self.n_mac = 0
        self.vm_counters: dict[tuple[str, str], int] = {}
        self.few = 3 if size < 10_000 else 5 if size < 100_000 else 8
        # Pools of timestamps (strings), so that a row costs no datetime arithmetic.
        self.recent = [_iso(self.now - timedelta(minutes=m)) for m in range(0, 24 * 60, 7)]
        self.first = [_iso(self.now - timedelta(days=d)) for d in range(30, 1500, 3)]
        self.today = self.now.date()
        # Planted features: the k-th VM / hardware CI created gets them.
        est_vms = int(size * 0.3)
        est_hw = max(10, int(size * 0.02))
        self.stale_vms = _Spread(self.few, est_vms, offset=1)
        self.groupless_vms = _Spread(self.few, est_vms, offset=3)
        self.unmanaged_hw = _Spread(self.few, est_hw, offset=2)
        self.orphan_hw = _Spread(self.few, est_hw, offset=4)
        self.stale_hw = _Spread(1, est_hw, offset=6)
        self.n_vm = 0
        self.n_hw = 0
        self.n_orphan = 0
        # What the ITSM records at the end refer to.
        self.sites: list[_Site] = []
        self.groups: dict[str, str] = {}  # key -> group id
        self.managers: dict[str, str] = {}  # group id -> person id
        self.members: dict[str, list[str]] = {}
        self.shared_services: list[str] = []
        self.business_services: list[str] = []
        self.two_of_three: tuple[str, list[str]] | None = None  # cluster, members
        self.payments_db: str | None = None
        self.payments_apps: list[str] = []
        self.hw_with_asset: list[tuple[str, Row]] = []  # (ci id, CI row) for duplicates
        self.databases: list[str] = []
        self.vm_pool: list[str] = []
        self.site_weights: list[float] = []
        self.cycles_left = 0
        self.cycle_stride = 2

    # -- emitting ---------------------------------------------------------------------------
    def emit(self, label: str, fields: Mapping[str, Any]) -> Row:
        row = _row(label, fields)
        self.buffers[label].append(row)
        return row

    def rel(self, rel_type: str, source: str, target: str, *, optional: bool = False) -> None:
        self.rel_buffer.append(
            {
                "rel_type": rel_type,
                "source": source,
                "target": target,
                "source_label": "CI",
                "target_label": "CI",
                "optional": optional,
                "basis": "declared",
                "confidence": None,
                "evidence": None,
                "properties": {},
                "first_seen": None,
                "last_seen": None,
            }
        )

    def pending(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def flush(self) -> list[tuple[str, list[Row]]]:
        out = []
        for label in (*NODE_LABELS, REL):
            rows = self.buffers[label]
            for start in range(0, len(rows), self.batch_size):
                out.append((label, rows[start : start + self.batch_size]))
            self.buffers[label] = []
        self.ci_buffer = self.buffers["CI"]
        self.rel_buffer = self.buffers[REL]
        return out

    # -- helpers ----------------------------------------------------------------------------
    def ci(self, ci_class: str, name: str, group: str | None, **fields: Any) -> str:
        self.n_ci += 1
        ci_id = f"ci-{self.n_ci:07d}"
        rnd = self.rng.random
        row = self.ci_template.copy()
        row["ci_id"] = ci_id
        row["name"] = name
        row["ci_class"] = ci_class
        row["support_group"] = group
        row["owner"] = self.managers.get(group) if group else None
        row["first_seen"] = self.first[int(rnd() * len(self.first))]
        row["last_seen"] = self.recent[int(rnd() * len(self.recent))]
        row["mac_addresses"] = []
        row["ip_addresses"] = []
        row["native_keys"] = []
        row["attributes"] = {}
        row.update(fields)
        self.ci_buffer.append(row)
        return ci_id

    def mac(self, oui: str) -> str:
        self.n_mac += 1
        n = self.n_mac
        return f"{oui}:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"

    def ip(self, site: _Site) -> str:
        site.ip_counter += 1
        n = site.ip_counter
        return f"10.{site.index * 16 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"

    def serial(self, prefix: str) -> str:
        # A bijection of the asset counter (odd multiplier, coprime with 10**9): unique, but
        # not sequential-looking.
        return f"{prefix}{(self.n_asset * 2_654_435_761 + 12_345) % 1_000_000_000:09d}"

    def asset_dates(self, years_warranty: int) -> tuple[str, str, str]:
        purchase = self.today - timedelta(days=30 + int(self.rng.random() * 8 * 365))
        warranty = purchase + timedelta(days=365 * years_warranty)
        eol = purchase + timedelta(days=365 * 7)
        return purchase.isoformat(), warranty.isoformat(), eol.isoformat()

    def hardware(
        self,
        ci_class: str,
        name: str,
        group: str,
        site: _Site,
        rack: str | None,
        models: tuple[tuple[str, str, str], ...],
        *,
        category: str,
        cost: float,
        oui: str,
        **fields: Any,
    ) -> tuple[str, Row]:
        """A hardware CI with its asset record (unless planted as unmanaged)."""
        self.n_hw += 1
        self.n_asset += 1
        manufacturer, model, prefix = models[int(self.rng.random() * len(models))]
        serial = self.serial(prefix)
        tag = f"AT-{self.n_asset:07d}"
        extra: Row = {}
        if self.n_hw in self.stale_hw:
            extra["last_seen"] = _iso(self.now - timedelta(days=200))
        ci_id = self.ci(
            ci_class,
            name,
            group,
            fqdn=f"{name}.{site.code}.example.net",
            hostname=name,
            domain=f"{site.code}.example.net",
            serial_number=serial,
            asset_tag=tag,
            manufacturer=manufacturer,
            model=model,
            mac_addresses=[self.mac(oui)],
            ip_addresses=[self.ip(site)],
            location_id=rack or f"loc-{site.code}",
            **fields,
            **extra,
        )
        row = self.buffers["CI"][-1]
        if self.n_hw in self.unmanaged_hw:
            return ci_id, row
        stage = "in_use"
        if self.n_hw in self.orphan_hw:
            self.n_orphan += 1
            stage = "retired" if self.n_orphan % 2 else "disposed"
        purchase, warranty, eol = self.asset_dates(3 if self.rng.random() < 0.6 else 5)
        self.emit(
            "Asset",
            {
                "asset_id": f"asset-{self.n_asset:07d}",
                "name": name,
                "asset_tag": tag,
                "serial_number": serial,
                "model": model,
                "manufacturer": manufacturer,
                "category": category,
                "supplier": f"{manufacturer} Direct",
                "cost": cost,
                "currency": "EUR",
                "purchase_date": purchase,
                "warranty_end": warranty,
                "end_of_life": eol,
                "lifecycle_stage": stage,
                "ci_id": ci_id,
                "location_id": rack or f"loc-{site.code}",
            },
        )
        if stage == "in_use":
            self.hw_with_asset.append((ci_id, row))
        return ci_id, row

    # -- people and places ------------------------------------------------------------------
    def people_and_groups(self) -> None:
        teams = [(code, f"{name} Team") for name, code in _SERVICES]
        person_no = 0
        for key, name in (*_INFRA_GROUPS, *teams):
            group_id = f"grp-{key}"
            self.groups[key] = group_id
            members = []
            for _ in range(4):
                person_no += 1
                first = _FIRST[int(self.rng.random() * len(_FIRST))]
                last = _LAST[int(self.rng.random() * len(_LAST))]
                username = f"{first[0]}{last}{person_no}".lower()
                person_id = f"person-{person_no:05d}"
                self.emit(
                    "Person",
                    {
                        "person_id": person_id,
                        "name": f"{first} {last}",
                        "email": f"{username}@example.com",
                        "username": username,
                        "groups": [group_id],
                    },
                )
                members.append(person_id)
            self.members[group_id] = members
            self.managers[group_id] = members[0]
            self.emit(
                "SupportGroup",
                {
                    "group_id": group_id,
                    "name": name,
                    "email": f"{key}-support@example.com",
                    "manager": members[0],
                    "on_call": members[1],
                },
            )

    # -- infrastructure ---------------------------------------------------------------------
    def infrastructure(self) -> None:
        size = self.size
        n_dc = min(len(_SITES), 2 + size // 200_000)
        weights = [0.65] + [0.35 / (n_dc - 1)] * (n_dc - 1)
        n_hv = max(4 * n_dc, round(size * 0.6 / 24))
        n_srv_est = max(2 * n_dc, round(size * 0.02))
        g = self.groups
        for i, (code, city, country) in enumerate(_SITES[:n_dc]):
            site = _Site(code, i, city, country)
            self.sites.append(site)
            hv_here = max(4, round(n_hv * weights[i]))
            racks = max(2, math.ceil((hv_here + n_srv_est * weights[i]) / 14))
            halls = max(1, math.ceil(racks / 40))
            self.emit(
                "Location",
                {"location_id": f"loc-{code}", "name": f"{city} {code}", "kind": "site",
                 "city": city, "country": country},
            )  # fmt: skip
            for h in range(1, halls + 1):
                self.emit(
                    "Location",
                    {"location_id": f"loc-{code}-h{h}", "name": f"{code} Hall {h}",
                     "kind": "room", "parent_id": f"loc-{code}", "city": city,
                     "country": country},
                )  # fmt: skip
            site.datacenter = self.ci(
                "Datacenter", f"dc-{code}", g["dc"], location_id=f"loc-{code}",
                description=f"{city} datacenter {code.upper()}",
            )  # fmt: skip
            for n in (1, 2):
                core, _ = self.hardware(
                    "NetworkDevice", f"sw-core-{code}-{n:02d}", g["net"], site, None,
                    _CORE_MODELS, category="Network", cost=180_000.0, oui="00:1c:73",
                    attributes={"role": "core"},
                )  # fmt: skip
                site.cores.append(core)
                self.rel("LOCATED_IN", core, site.datacenter)
            for n in range(1, max(1, math.ceil(hv_here / 60)) + 1):
                san, _ = self.hardware(
                    "StorageDevice", f"san-{code}-{n:02d}", g["storage"], site, None,
                    _STORAGE_MODELS, category="Storage", cost=240_000.0, oui="00:a0:98",
                )  # fmt: skip
                site.storage.append(san)
                self.uplink(san, site)
            for r in range(1, racks + 1):
                hall = 1 + (r - 1) // 40
                rack = f"loc-{code}-h{hall}-r{r:02d}"
                self.emit(
                    "Location",
                    {"location_id": rack, "name": f"{code} H{hall} R{r:02d}", "kind": "rack",
                     "parent_id": f"loc-{code}-h{hall}", "city": city, "country": country},
                )  # fmt: skip
                switch, _ = self.hardware(
                    "NetworkDevice", f"sw-acc-{code}-r{r:02d}-01", g["net"], site, rack,
                    _ACCESS_MODELS, category="Network", cost=14_000.0, oui="00:1c:73",
                    attributes={"role": "access"},
                )  # fmt: skip
                self.uplink(switch, site)
                site.racks.append((rack, switch, r))
                site.rack_fill[rack] = 0
            for k in range(hv_here):
                rack, switch, r = site.racks[k % len(site.racks)]
                site.rack_fill[rack] += 1
                pos = site.rack_fill[rack]
                hv, _ = self.hardware(
                    "Hypervisor", f"hv-{code}-r{r:02d}-{pos:02d}", g["virt"], site, rack,
                    _SERVER_MODELS, category="Server", cost=21_000.0, oui="3c:ec:ef",
                    os_name="VMware ESXi", os_version="8.0.3",
                )  # fmt: skip
                site.hypervisors.append(hv)
                self.rel("CONNECTS_TO", hv, switch)
                self.rel("LOCATED_IN", hv, site.datacenter)
                self.rel("DEPENDS_ON", hv, site.storage[k % len(site.storage)])
        self.site_weights = weights

    def uplink(self, ci_id: str, site: _Site) -> None:
        self.rel("CONNECTS_TO", ci_id, site.cores[0])
        self.rel("CONNECTS_TO", ci_id, site.cores[1], optional=True)
        self.rel("LOCATED_IN", ci_id, site.datacenter)

    def server(self, site: _Site, group: str, **fields: Any) -> str:
        rack, switch, r = site.racks[int(self.rng.random() * len(site.racks))]
        site.rack_fill[rack] += 1
        name = f"srv-{site.code}-r{r:02d}-{site.rack_fill[rack]:02d}"
        srv, _ = self.hardware(
            "Server", name, group, site, rack, _SERVER_MODELS, category="Server",
            cost=16_000.0, oui="3c:ec:ef", os_name="Red Hat Enterprise Linux", os_version="9.4",
            **fields,
        )  # fmt: skip
        self.rel("CONNECTS_TO", srv, switch)
        self.rel("LOCATED_IN", srv, site.datacenter)
        return srv

    def vm(self, site: _Site, code: str, hypervisor: str, group: str | None) -> str:
        # The hot path of large estates: the row is built inline (same fields as ``ci``).
        key = (site.code, code)
        n = self.vm_counters.get(key, 0) + 1
        self.vm_counters[key] = n
        self.n_vm += 1
        self.n_ci += 1
        self.n_mac += 1
        site.ip_counter += 1
        vm = f"ci-{self.n_ci:07d}"
        name = f"vm-{site.code}-{code}-{n:03d}"
        domain = f"{site.code}.example.net"
        m, i = self.n_mac, site.ip_counter
        rnd = self.rng.random
        if self.n_vm in self.groupless_vms.hits:
            group = None
        row = self.ci_template.copy()
        row["ci_id"] = vm
        row["name"] = name
        row["ci_class"] = "VirtualMachine"
        row["fqdn"] = f"{name}.{domain}"
        row["hostname"] = name
        row["domain"] = domain
        row["mac_addresses"] = [
            f"00:50:56:{(m >> 16) & 255:02x}:{(m >> 8) & 255:02x}:{m & 255:02x}"
        ]
        row["ip_addresses"] = [f"10.{site.index * 16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"]
        row["native_keys"] = []
        row["os_name"] = "Ubuntu"
        row["os_version"] = "22.04"
        row["support_group"] = group
        row["owner"] = self.managers.get(group) if group else None
        row["attributes"] = {}
        row["first_seen"] = self.first[int(rnd() * len(self.first))]
        if self.n_vm in self.stale_vms.hits:
            row["last_seen"] = _iso(self.now - timedelta(days=120 + self.n_vm % 200))
        else:
            row["last_seen"] = self.recent[int(rnd() * len(self.recent))]
        self.ci_buffer.append(row)
        self.rel("HOSTED_ON", vm, hypervisor)
        if len(self.vm_pool) < 1000:
            self.vm_pool.append(vm)
        return vm

    def cluster(
        self, site: _Site, code: str, name: str, group: str, members: int, redundancy: str
    ) -> tuple[str, list[str]]:
        cl = self.ci("Cluster", name, group, redundancy=redundancy)
        hosts = self.rng.sample(site.hypervisors, min(members, len(site.hypervisors)))
        vms = []
        for j in range(members):
            vm = self.vm(site, code, hosts[j % len(hosts)], group)
            self.rel("MEMBER_OF", vm, cl)
            vms.append(vm)
        return cl, vms

    # -- services ---------------------------------------------------------------------------
    def service_stack(self, index: int, limit: int) -> None:
        rng = self.rng
        base_name, base_code = _SERVICES[index % len(_SERVICES)]
        rnd = index // len(_SERVICES)
        if rnd == 0:
            name, code = base_name, base_code
        else:
            unit = _UNITS[(rnd - 1) % len(_UNITS)]
            cycle = (rnd - 1) // len(_UNITS)
            suffix = f"{unit}{cycle + 1 if cycle else ''}"
            name, code = f"{base_name} {suffix}", f"{base_code}{suffix.lower()}"
        team = self.groups[base_code]
        site = self.sites[0] if index < 2 else rng.choices(self.sites, self.site_weights)[0]
        crit = 1 if index < 2 else rng.choices((1, 2, 3, 4), (0.15, 0.3, 0.35, 0.2))[0]
        bs = self.ci("BusinessService", name, team, business_criticality=crit,
                     environment=None, description=f"{name} business service")  # fmt: skip
        self.business_services.append(bs)
        roles = rng.sample(_AS_ROLES, rng.randint(2, 4))
        unused = rng.sample(_COMPONENTS, len(_COMPONENTS))
        for a, role in enumerate(roles):
            if a > 0 and limit - self.n_ci < 24:
                break
            as_crit = min(4, crit + (1 if role in ("Reporting", "Batch") else 0))
            svc = self.ci("ApplicationService", f"{name} {role}", team,
                          business_criticality=as_crit)  # fmt: skip
            self.rel("DEPENDS_ON", bs, svc, optional=role == "Reporting")
            if self.shared_services and rng.random() < 0.3:
                shared = self.shared_services[int(rng.random() * len(self.shared_services))]
                self.rel("DEPENDS_ON", svc, shared)
            if role in ("API", "Gateway") and len(self.shared_services) < 200:
                self.shared_services.append(svc)
            db = self.database(site, code, name, team, as_crit)
            self.rel("DEPENDS_ON", svc, db)
            # Components are drawn without replacement over the whole business service, so
            # that application and cluster names are unique (at most 4 x 4 of 20).
            components = unused[: rng.randint(2, 4)]
            del unused[: len(components)]
            apps = []
            for c, comp in enumerate(components):
                if c > 0 and limit - self.n_ci < 16:
                    break
                app = self.ci("Application", f"{code}-{comp}", team, version=f"{1 + c}.{a}.0")
                apps.append(app)
                self.rel("DEPENDS_ON", svc, app)
                if c == 0:
                    self.rel("DEPENDS_ON", app, db)
                force_2_of_3 = self.two_of_three is None
                self.host_application(site, code, comp, app, team, force_2_of_3)
                if index == 0:
                    self.payments_apps.append(app)
            if len(apps) >= 2 and self.cycles_left > 0 and index % self.cycle_stride == 1:
                # A dependency cycle: two applications that call each other.
                self.rel("DEPENDS_ON", apps[0], apps[1])
                self.rel("DEPENDS_ON", apps[1], apps[0])
                self.cycles_left -= 1

    def host_application(
        self, site: _Site, code: str, comp: str, app: str, team: str, force_2_of_3: bool
    ) -> None:
        r = 0.0 if force_2_of_3 else self.rng.random()
        cl_name = f"cl-{site.code}-{code}-{comp}"
        if r < 0.45:
            cl, members = self.cluster(site, code, cl_name, team, 3, "2")
            if self.two_of_three is None:
                self.two_of_three = (cl, members)
        elif r < 0.6:
            cl, _ = self.cluster(site, code, cl_name, team, 4, "3")
        elif r < 0.75:
            cl, _ = self.cluster(site, code, cl_name, team, self.rng.randint(6, 12), "50%")
        elif r < 0.85:
            cl, _ = self.cluster(site, code, cl_name, team, 2, "1")
        else:
            vm = self.vm(site, code, self.rng.choice(site.hypervisors), team)
            self.rel("RUNS_ON", app, vm)
            return
        self.rel("RUNS_ON", app, cl)

    def database(self, site: _Site, code: str, service: str, team: str, crit: int) -> str:
        engine, version = _DB_ENGINES[int(self.rng.random() * len(_DB_ENGINES))]
        n = len(self.databases) + 1
        dba = self.groups["dba"]
        db = self.ci(
            "Database", f"{code}-db-{n:04d}", dba, business_criticality=crit,
            version=version, description=f"{engine} database of {service}",
            attributes={"engine": engine},
        )  # fmt: skip
        self.databases.append(db)
        if self.payments_db is None:
            self.payments_db = db
        if crit == 1:
            cl = self.ci("Cluster", f"cl-{site.code}-{code}-db-{n:04d}", dba, redundancy="1")
            for _ in range(2):
                srv = self.server(site, dba)
                self.rel("MEMBER_OF", srv, cl)
            self.rel("RUNS_ON", db, cl)
        elif crit == 2:
            cl, _ = self.cluster(site, code, f"cl-{site.code}-{code}-db-{n:04d}", dba, 2, "1")
            self.rel("RUNS_ON", db, cl)
        else:
            self.rel("RUNS_ON", db, self.vm(site, code, self.rng.choice(site.hypervisors), dba))
        return db

    # -- the odd ones -----------------------------------------------------------------------
    def oddities(self) -> None:
        """Duplicates, decommissioned servers and spare stock (added last)."""
        site = self.sites[0]
        # Two pairs of CIs with one serial number: the first merged (duplicate_of), the second
        # an open duplicate candidate.
        picks = [self.hw_with_asset[1], self.hw_with_asset[len(self.hw_with_asset) // 2]]
        for i, (original, row) in enumerate(picks):
            upper = str(row["name"]).upper()
            self.ci(
                row["ci_class"], f"{upper}.{site.code.upper()}.EXAMPLE.NET", row["support_group"],
                serial_number=row["serial_number"], manufacturer=row["manufacturer"],
                model=row["model"], location_id=row["location_id"],
                duplicate_of=original if i == 0 else None,
                operational_status="retired" if i == 0 else "operational",
                description="discovered twice: same serial number",
            )  # fmt: skip
        # Decommissioned servers: CI retired, asset disposed (consistent, not an orphan).
        for _ in range(2):
            srv = self.server(site, self.groups["dc"], operational_status="retired")
            asset = self.buffers["Asset"][-1]
            if asset["ci_id"] == srv:
                asset["lifecycle_stage"] = "disposed"
        # Spare hardware in stock, no CI.
        for _ in range(self.few):
            self.n_asset += 1
            manufacturer, model, prefix = _SERVER_MODELS[self.n_asset % len(_SERVER_MODELS)]
            purchase, warranty, eol = self.asset_dates(3)
            self.emit(
                "Asset",
                {"asset_id": f"asset-{self.n_asset:07d}", "name": f"spare {model}",
                 "asset_tag": f"AT-{self.n_asset:07d}", "serial_number": self.serial(prefix),
                 "model": model, "manufacturer": manufacturer, "category": "Server",
                 "cost": 16_000.0, "currency": "EUR", "purchase_date": purchase,
                 "warranty_end": warranty, "end_of_life": eol, "lifecycle_stage": "in_stock",
                 "location_id": f"loc-{site.code}"},
            )  # fmt: skip

    def filler(self, count: int) -> None:
        """Management VMs (monitoring, jump hosts, backup proxies) that serve no service."""
        site = self.sites[0]
        linux = self.groups["linux"]
        for _ in range(count):
            self.vm(site, "mgmt", site.hypervisors[int(self.rng.random() * len(site.hypervisors))],
                    linux)  # fmt: skip

    # -- ITSM records -----------------------------------------------------------------------
    def itsm(self) -> None:
        assert self.two_of_three is not None and self.payments_db is not None
        now = self.now
        rng = self.rng
        site = self.sites[0]
        hv = site.hypervisors[0]
        rack_switch = site.racks[0][1]
        cluster, members = self.two_of_three
        g = self.groups
        day = timedelta(days=1)
        hour = timedelta(hours=1)
        changes: list[tuple[str, str, timedelta, timedelta, list[str], str, str]] = [
            ("Patch hypervisor firmware", "scheduled", 3 * day + 22 * hour, 4 * hour, [hv],
             g["virt"], "moderate"),
            ("Access switch software upgrade", "scheduled", 3 * day + 23 * hour, 3 * hour,
             [rack_switch], g["net"], "high"),
            ("Kernel update, first node", "scheduled", 5 * day + 20 * hour, 2 * hour,
             [members[0]], g["pay"], "low"),
            ("Kernel update, second node", "authorize", 5 * day + 21 * hour, 2 * hour,
             [members[1]], g["linux"], "low"),
            ("Payments database schema migration", "scheduled", 27 * day + 1 * hour, 3 * hour,
             [self.payments_db], g["dba"], "high"),
            ("Core switch software upgrade", "assess", 10 * day + 2 * hour, 4 * hour,
             [site.cores[0]], g["net"], "high"),
            ("Rotate application certificates", "closed", -2 * day, 1 * hour,
             [self.payments_apps[0]], g["pay"], "low"),
        ]  # fmt: skip
        for _ in range(self.few):
            vm = self.vm_sample()
            changes.append(("Resize virtual machine", "scheduled",
                            rng.randint(1, 40) * day + 20 * hour, 2 * hour, [vm], g["linux"],
                            "low"))  # fmt: skip
        for i, (title, state, start, length, ci_ids, group, risk) in enumerate(changes):
            self.emit(
                "Change",
                {"change_id": f"CHG{1000 + i:07d}", "title": title, "state": state,
                 "window_start": _iso(now + start), "window_end": _iso(now + start + length),
                 "ci_ids": ci_ids, "risk": risk, "support_group": group,
                 "requested_by": self.managers[group]},
            )  # fmt: skip
        # Next Sunday 02:00 after now: a weekly maintenance window of the primary site's
        # hypervisors and access switches.
        sunday = (now + timedelta(days=(6 - now.weekday()) % 7 or 7)).replace(
            hour=2, minute=0, second=0, microsecond=0
        )
        infra = site.hypervisors[:80] + [switch for _, switch, _ in site.racks[:20]]
        first_saturday = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
        first_saturday += timedelta(days=(5 - first_saturday.weekday()) % 7)
        windows = [
            ("Weekly infrastructure maintenance", "maintenance", sunday, 4 * hour,
             "FREQ=WEEKLY;BYDAY=SU", infra),
            ("Monthly database patching", "maintenance", first_saturday.replace(hour=22),
             6 * hour, "FREQ=MONTHLY;BYDAY=1SA", self.databases[:50]),
            ("Quarter-end close freeze", "blackout", now + 25 * day, 7 * day, None,
             self.business_services[:2]),
        ]  # fmt: skip
        for i, (name, kind, start_at, length, rrule, ci_ids) in enumerate(windows):
            self.emit(
                "Window",
                {"window_id": f"WIN{i + 1:04d}", "name": name, "kind": kind,
                 "start": _iso(start_at), "end": _iso(start_at + length),
                 "recurrence": rrule, "ci_ids": ci_ids},
            )  # fmt: skip
        incidents = [
            ("Payments API latency above 2 s", "in_progress", 2, [members[0]], g["pay"]),
            ("Database connection pool exhausted", "new", 1, [self.payments_db], g["dba"]),
            ("Checkout errors in Online Shop", "new", 2, [self.business_services[1]],
             g["shop"]),
            ("Disk latency alarms on hypervisor", "on_hold", 3, [hv], g["virt"]),
            ("Certificate expired on frontend", "resolved", 3, [self.payments_apps[0]],
             g["pay"]),
        ]  # fmt: skip
        for i, (title, state, prio, ci_ids, group) in enumerate(incidents):
            opened = now - timedelta(hours=2 + 5 * i)
            self.emit(
                "Incident",
                {"incident_id": f"INC{2000 + i:07d}", "title": title, "state": state,
                 "priority": prio, "opened_at": _iso(opened),
                 "resolved_at": _iso(opened + hour) if state == "resolved" else None,
                 "ci_ids": ci_ids, "support_group": group},
            )  # fmt: skip

    def vm_sample(self) -> str:
        """One of the first virtual machines created (kept in a small pool)."""
        return self.vm_pool[int(self.rng.random() * len(self.vm_pool))]

    # -- the whole run ----------------------------------------------------------------------
    def steps(self) -> Iterator[None]:
        """Generate the estate; pauses (yields) whenever a batch is ready."""
        self.people_and_groups()
        self.infrastructure()
        yield
        reserve = 4  # two duplicates and two decommissioned servers, added last
        limit = self.size - reserve
        expected_stacks = max(1, int(self.size / 75))
        self.cycles_left = self.few
        self.cycle_stride = max(2, expected_stacks // (self.few + 1))
        index = 0
        while index < 2 or limit - self.n_ci >= 40:
            self.service_stack(index, limit)
            index += 1
            if self.pending() >= self.batch_size:
                yield
        self.filler(max(0, limit - self.n_ci))
        self.oddities()
        self.itsm()

    def run(self) -> Iterator[tuple[str, list[Row]]]:
        """The batches; the garbage collector is paused while rows are built, not between."""
        steps = self.steps()
        done = False
        while not done:
            with heap.paused():
                done = next(steps, "done") == "done"
                out = self.flush()
            yield from out


# --------------------------------------------------------------------------------------------
# Public API.


def generate_rows(
    size: int,
    *,
    seed: int = 42,
    now: datetime | None = None,
    batch_size: int = 10_000,
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Stream a synthetic estate as plain rows, in batches, without building models.

    Parameters
    ----------
    size : int
        Number of CIs, from :data:`MIN_SIZE` to :data:`MAX_SIZE`; the estate has exactly this
        many.
    seed : int
        Seed of the random generator; the same ``(size, seed, now)`` gives the same rows.
    now : datetime, optional
        Reference time of ``last_seen``, warranties, changes and windows; default
        :data:`DEFAULT_NOW`.
    batch_size : int
        Largest number of rows per yielded batch.

    Yields
    ------
    tuple of (str, list of dict)
        ``(label, rows)``: ``label`` is a node label of :data:`NODE_LABELS` or :data:`REL`;
        each row has exactly the keys of the model's ``dump_flat`` (JSON values: enums and
        times as strings, no lineage), so ``Model.model_validate(row)`` rebuilds the model.
        Batches come in dependency-safe order: every node a row refers to (relationship ends,
        ``Asset.ci_id``, ``support_group``, ``owner``, ``location_id``, ``parent_id``,
        ``ci_ids``) was yielded in an earlier batch or earlier in the same batch.

    Raises
    ------
    ValueError
        ``size`` out of range or ``batch_size`` below 1.
    """
    gen = _Generator(size, seed, now or DEFAULT_NOW, batch_size)
    return gen.run()


@dataclass
class Estate:
    """A generated estate as model objects (see :func:`generate_estate`)."""

    cis: list[ConfigurationItem] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    groups: list[SupportGroup] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Number of CIs per CI class, sorted by class name."""
        counts: dict[str, int] = {}
        for ci in self.cis:
            counts[ci.ci_class] = counts.get(ci.ci_class, 0) + 1
        return dict(sorted(counts.items()))

    def totals(self) -> dict[str, int]:
        """Number of CIs, relationships, assets, groups, people, locations and ITSM records."""
        return {
            "cis": len(self.cis),
            "relationships": len(self.relationships),
            "assets": len(self.assets),
            "groups": len(self.groups),
            "people": len(self.people),
            "locations": len(self.locations),
            "changes": len(self.changes),
            "windows": len(self.windows),
            "incidents": len(self.incidents),
        }

    def to_batch(self) -> WriteBatch:
        """Everything as one :class:`~cmdb_graph.store.WriteBatch`, in dependency-safe order.

        Nodes: locations, support groups, people, CIs, assets, changes, windows, incidents;
        then the CI-to-CI relationships.
        """
        nodes: list[Node] = [
            *self.locations,
            *self.groups,
            *self.people,
            *self.cis,
            *self.assets,
            *self.changes,
            *self.windows,
            *self.incidents,
        ]
        return WriteBatch(nodes=nodes, relationships=list(self.relationships))


def generate_estate(size: int, *, seed: int = 42, now: datetime | None = None) -> Estate:
    """Generate a layered synthetic estate as model objects.

    Parameters
    ----------
    size : int
        Number of CIs, from :data:`MIN_SIZE` to :data:`MAX_SIZE` (exactly this many).
    seed : int
        Seed; the same ``(size, seed, now)`` gives the same estate, ids included.
    now : datetime, optional
        Reference time; default :data:`DEFAULT_NOW` (2026-01-01T00:00Z).

    Returns
    -------
    Estate
        The CIs, CI-to-CI relationships, assets, support groups, people, locations, changes,
        windows and incidents (see the module docstring for what is in them).

    Raises
    ------
    ValueError
        ``size`` out of range.

    Notes
    -----
    Building the pydantic models costs more than generating the rows (the cyclic garbage
    collector is paused meanwhile; with it running the cost triples). Measured on a loaded
    2-vCPU machine: 100,000 CIs took 3 s CPU for the rows plus 7 s for the models, 840 MB
    peak; a million would take over a minute and about 8 GB. For estates of that size use
    :func:`generate_rows` (a million CIs: 34 s CPU on the same loaded machine).
    """
    estate = Estate()
    targets: dict[str, list[Any]] = {
        "Location": estate.locations,
        "SupportGroup": estate.groups,
        "Person": estate.people,
        "CI": estate.cis,
        "Asset": estate.assets,
        "Change": estate.changes,
        "Window": estate.windows,
        "Incident": estate.incidents,
        REL: estate.relationships,
    }
    for label, rows in generate_rows(size, seed=seed, now=now):
        targets[label].extend(models_from_rows(label, rows))
    return estate


def models_from_rows(label: str, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Build the models of a batch of :func:`generate_rows`.

    Parameters
    ----------
    label : str
        The batch's label (a node label of :data:`NODE_LABELS` or :data:`REL`).
    rows : iterable of dict
        Its rows.

    Returns
    -------
    list of Node or Relationship
        One model per row, in order (the cyclic garbage collector is paused meanwhile: it
        would otherwise dominate the cost on a large heap).

    Raises
    ------
    KeyError
        Unknown label.
    """
    validate = (Relationship if label == REL else _MODELS[label]).model_validate
    with heap.paused():
        return [validate(row) for row in rows]


class CIIndex:
    """CI ids by class and a few landmarks, gathered from an estate or from row batches.

    Benchmarks feed it the ``"CI"`` batches of :func:`generate_rows` while loading, or build it
    from an :class:`Estate`, then pick the CIs to query.

    Examples
    --------
    >>> idx = CIIndex.from_estate(generate_estate(1000))
    >>> idx.name_of(idx.core_switch)
    'sw-core-fra1-01'
    """

    def __init__(self) -> None:
        self.by_class: dict[str, list[str]] = {}
        self.names: dict[str, str] = {}
        self._landmarks: dict[str, str] = {}

    @classmethod
    def from_estate(cls, estate: Estate) -> CIIndex:
        """The index of an estate's CIs."""
        idx = cls()
        idx.add(estate.cis)
        return idx

    def add(self, cis: Iterable[ConfigurationItem | Mapping[str, Any]]) -> None:
        """Index CIs given as models or as rows (dicts with ``ci_id``, ``name``, ``ci_class``)."""
        for ci in cis:
            if isinstance(ci, ConfigurationItem):
                ci_id, name, ci_class = ci.ci_id, ci.name, ci.ci_class
            else:
                ci_id, name, ci_class = ci["ci_id"], ci["name"], ci["ci_class"]
            self.by_class.setdefault(ci_class, []).append(ci_id)
            if ci_class in ("BusinessService", "NetworkDevice", "Database", "Cluster"):
                self.names[ci_id] = name
                if name == "sw-core-fra1-01":
                    self._landmarks["core_switch"] = ci_id
                elif name == "Payments":
                    self._landmarks["payments_service"] = ci_id
                elif ci_class == "Database" and name.startswith("pay-db-"):
                    self._landmarks.setdefault("payments_database", ci_id)

    def _landmark(self, key: str) -> str:
        try:
            return self._landmarks[key]
        except KeyError:
            raise LookupError(f"no {key.replace('_', ' ')} indexed yet") from None

    @property
    def core_switch(self) -> str:
        """``ci_id`` of ``sw-core-fra1-01``, the core switch most of the estate reaches."""
        return self._landmark("core_switch")

    @property
    def payments_service(self) -> str:
        """``ci_id`` of the business service "Payments" (criticality 1)."""
        return self._landmark("payments_service")

    @property
    def payments_database(self) -> str:
        """``ci_id`` of the first database of Payments."""
        return self._landmark("payments_database")

    def name_of(self, ci_id: str) -> str | None:
        """Name of an indexed service, network device, database or cluster."""
        return self.names.get(ci_id)

    def pick(self, ci_classes: str | Iterable[str], rng: random.Random) -> str:
        """A random ``ci_id`` among the given CI classes (exact class names).

        Raises
        ------
        LookupError
            No CI of those classes was indexed.
        """
        classes = (ci_classes,) if isinstance(ci_classes, str) else tuple(ci_classes)
        pools = [self.by_class.get(c, []) for c in classes]
        total = sum(len(p) for p in pools)
        if total == 0:
            raise LookupError(f"no CI of class {', '.join(classes)} indexed")
        k = rng.randrange(total)
        for pool in pools:
            if k < len(pool):
                return pool[k]
            k -= len(pool)
        raise AssertionError("unreachable")  # pragma: no cover

    def random_vm(self, rng: random.Random) -> str:
        """A random virtual machine."""
        return self.pick("VirtualMachine", rng)

    def random_host(self, rng: random.Random) -> str:
        """A random hypervisor or physical server."""
        return self.pick(("Hypervisor", "Server"), rng)


def ci_ids_by_class(
    estate: Estate | Iterable[ConfigurationItem | Mapping[str, Any]],
) -> dict[str, list[str]]:
    """CI ids per CI class, in creation order.

    Parameters
    ----------
    estate : Estate or iterable of ConfigurationItem or row dicts
        The estate, or CIs as models or ``generate_rows`` rows.
    """
    idx = CIIndex()
    idx.add(estate.cis if isinstance(estate, Estate) else estate)
    return idx.by_class
