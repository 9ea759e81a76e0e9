"""Lansweeper Data API (GraphQL) asset responses.

Follows the Lansweeper Data API (``https://api.lansweeper.com/api/v2/graphql``) as documented
on Lansweeper's developer site: the ``site(id) { assetResources(...) { total pagination items
} }`` query, whose items carry ``key`` (the asset's id in Lansweeper), ``assetBasicInfo``
(``name``, ``type``, ``domain``, ``fqdn``, ``ipAddress``, ``mac``, ``description``,
``firstSeen``, ``lastSeen``, ``userName``, ``userDomain``), ``assetCustom`` (``serialNumber``,
``manufacturer``, ``model``, ``stateName``, ``purchaseDate``, ``warrantyDate``, ``barCode``,
``location``, ``department``, ``sku``...) and ``operatingSystem`` (``caption``,
``productType``, ``version``, ``buildNumber``). A file is one response body (``{"data":
{"site": {"assetResources": {...}}}}``); the same without ``data``, a bare ``assetResources``
object (``{"items": [...]}``) or a list of items are accepted too, so saved pages can be
imported one by one. A response with GraphQL ``errors`` and no data is refused.

Mapping: each item -> one :class:`~cmdb_graph.model.records.CIRecord` (native key = ``key``)
and one :class:`~cmdb_graph.model.records.AssetRecord` tracking it (Lansweeper is the ITAM
record: serial, barcode, purchase and warranty dates, state).

* CI class: ``VirtualMachine`` when the manufacturer or model names a hypervisor platform
  (VMware, Xen, KVM, QEMU, VirtualBox, Hyper-V "Virtual Machine", Parallels, ...) or the type
  says guest. Else by ``assetBasicInfo.type``: Windows/Linux/Unix/Apple Mac by the operating
  system's ``productType`` (Server, Domain Controller -> ``Server``; Work Station ->
  ``Computer``; without one, an OS caption naming a server -> ``Server``, else Windows and
  Apple Mac -> ``Computer``, Linux and Unix -> ``Server``); switch, router, firewall,
  wireless access point, network device -> ``NetworkDevice``; printer -> ``Printer``; NAS,
  SAN -> ``StorageDevice``; VMware/Hyper-V host -> ``Hypervisor``; mobile, smartphone,
  tablet, iPhone, iPad, Android -> ``MobileDevice``; monitor -> ``Peripheral``; anything
  else -> ``Hardware``.
* identifiers: ``serial_number`` (``serialNumber``), ``asset_tag`` (``barCode``),
  ``hostname`` (``name``, short), ``domain`` (``domain``), ``fqdn`` (``fqdn``/``dnsName`` when
  dotted), ``mac_addresses`` (``mac``).
* attributes: ip_addresses, manufacturer, model, os_name (``caption``), os_version,
  operational_status from ``stateName`` (active -> operational; broken -> repair; stored, spare,
  non-active -> non_operational; sold, stolen, old, disposed -> retired), last_user, description,
  first_seen_by_source / last_seen_by_source (Lansweeper's own scan times, ISO 8601).
  ``lastSeen`` is also the record's ``observed_at``: the CI's ``last_seen`` is when Lansweeper
  last scanned it, not the import's time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import LifecycleStage, RelationshipBasis, Scalar
from cmdb_graph.model.records import AssetRecord, CIRecord, Identifiers, Origin, Record
from importers.base import JSONImporter, guard, observed_at, require
from importers.base import text_or_none as _str

__all__ = ["LansweeperDataAPIImporter"]

_VIRTUAL = re.compile(
    r"vmware|xen|kvm|qemu|virtualbox|innotek|virtual machine|hvm domu|parallels|bochs|"
    r"hyper-v|openstack|amazon ec2|google compute engine",
    re.IGNORECASE,
)
_TYPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), ci_class)
    for pattern, ci_class in (
        (r"guest|virtual machine", "VirtualMachine"),
        (r"esx|vmware host|hyper-v host|hypervisor", "Hypervisor"),
        (r"switch|router|firewall|access point|wireless|network device|wap|load balancer",
         "NetworkDevice"),
        (r"printer", "Printer"),
        (r"\bnas\b|\bsan\b|storage", "StorageDevice"),
        (r"mobile|smartphone|tablet|iphone|ipad|android", "MobileDevice"),
        (r"monitor", "Peripheral"),
    )
)
_STATES = {
    "active": ("operational", LifecycleStage.IN_USE),
    "broken": ("repair", LifecycleStage.IN_REPAIR),
    "stored": ("non_operational", LifecycleStage.IN_STOCK),
    "spare": ("non_operational", LifecycleStage.IN_STOCK),
    "non-active": ("non_operational", LifecycleStage.IN_STOCK),
    "nonactive": ("non_operational", LifecycleStage.IN_STOCK),
    "sold": ("retired", LifecycleStage.DISPOSED),
    "stolen": ("retired", LifecycleStage.LOST),
    "old": ("retired", LifecycleStage.RETIRED),
    "disposed": ("retired", LifecycleStage.DISPOSED),
}


def _date(value: Any) -> str | None:
    """The date part (``YYYY-MM-DD``) of an ISO 8601 timestamp."""
    text = _str(value)
    if text is None:
        return None
    match = re.match(r"\d{4}-\d{2}-\d{2}", text)
    return match.group(0) if match else None


def _section(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    return value if isinstance(value, Mapping) else {}



def _ci_class(asset_type: str | None, product_type: str | None, manufacturer: str | None,
              model: str | None) -> str:
    if any(_VIRTUAL.search(v) for v in (manufacturer, model) if v):
        return "VirtualMachine"
    kind = (asset_type or "").lower()
    product = (product_type or "").lower()
    if kind in ("windows", "linux", "unix", "apple mac", "mac", "macos", "windows ce"):
        if "server" in product or "domain controller" in product:
            return "Server"
        if "work" in product:
            return "Computer"
        return "Server" if kind in ("linux", "unix") else "Computer"
    for pattern, ci_class in _TYPES:
        if pattern.search(kind):
            return ci_class
    return "Hardware"


class LansweeperDataAPIImporter(JSONImporter):
    """Import Lansweeper Data API ``assetResources`` responses; see the module docstring.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed JSON, a GraphQL error response, no
        ``items`` list, or an item without ``key`` or ``assetBasicInfo.name`` (the record is
        ``/data/site/assetResources/items/<n>``).
    """

    kind = "lansweeper"
    description = "Lansweeper Data API (GraphQL) site.assetResources response JSON"
    relationship_basis = RelationshipBasis.DISCOVERED

    def transform(self, doc: Any, origin: str) -> list[Record]:
        """A CI record and an asset record per asset item."""
        prefix, items = _items(doc, origin)
        records: list[Record] = []
        for index, item in enumerate(items):
            where = f"{prefix}/{index}"
            if not isinstance(item, Mapping):
                raise InvalidRecordError("expected an asset object", file=origin, record=where)
            with guard(origin, record=where):
                records.extend(_item(item, Origin(file=origin, record=where)))
        return records


def _items(doc: Any, file: str) -> tuple[str, list[Any]]:
    """The asset items of a response (or of a saved page) and the JSON pointer of their list."""
    if isinstance(doc, list):
        return "", doc
    if not isinstance(doc, Mapping):
        raise InvalidRecordError("expected a Data API response object", file=file)
    pointer = ""
    node: Any = doc
    if "data" in node or "errors" in node:
        errors = node.get("errors")
        if not isinstance(node.get("data"), Mapping):
            message = "; ".join(
                str(e.get("message")) for e in errors if isinstance(e, Mapping)
            ) if isinstance(errors, list) else "no data"
            raise InvalidRecordError(f"GraphQL error response: {message}", file=file,
                                     field="data")
        node, pointer = node["data"], "/data"
    for key in ("site", "assetResources"):
        if isinstance(node, Mapping) and isinstance(node.get(key), Mapping):
            node, pointer = node[key], f"{pointer}/{key}"
    items = node.get("items") if isinstance(node, Mapping) else None
    if not isinstance(items, list):
        raise InvalidRecordError(
            "no asset items (expected data.site.assetResources.items)", file=file,
            record=pointer or "/", field="items",
        )
    return f"{pointer}/items", items


def _item(item: Mapping[str, Any], origin: Origin) -> list[Record]:
    """The CI and the asset record of one asset item."""
    key = str(require(item, "key", file=origin.file, record=origin.record))
    basic = _section(item, "assetBasicInfo")
    name = str(require(basic, "name", file=origin.file, record=origin.record)).strip()
    custom = _section(item, "assetCustom")
    osys = _section(item, "operatingSystem")
    manufacturer = _str(custom.get("manufacturer"))
    model = _str(custom.get("model"))
    mac = (_str(basic.get("mac")) or "").lower().replace("-", ":")
    if not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac) or mac == "00:00:00:00:00:00":
        mac = ""
    fqdn = next(
        (v.lower() for v in (_str(basic.get("fqdn")), _str(custom.get("dnsName")))
         if v and "." in v),
        None,
    )
    ids = Identifiers(
        native_key=key,
        serial_number=_str(custom.get("serialNumber")),
        asset_tag=_str(custom.get("barCode")),
        hostname=name.split(".", 1)[0].lower(),
        domain=(_str(basic.get("domain")) or "").lower() or None,
        fqdn=fqdn,
        mac_addresses=(mac,) if mac else (),
    )
    state = _str(custom.get("stateName"))
    status, stage = _STATES.get((state or "").lower(), (None, None))
    user = _str(basic.get("userName"))
    user_domain = _str(basic.get("userDomain"))
    attrs: dict[str, Scalar | list[str]] = {
        "manufacturer": manufacturer,
        "model": model,
        "os_name": _str(osys.get("caption")),
        "os_version": _str(osys.get("version")) or _str(osys.get("buildNumber")),
        "operational_status": status,
        "lansweeper_type": _str(basic.get("type")),
        "lansweeper_state": state,
        "description": _str(basic.get("description")),
        "last_user": f"{user_domain}\\{user}" if user and user_domain else user,
        "first_seen_by_source": _str(basic.get("firstSeen")),
        "last_seen_by_source": _str(basic.get("lastSeen")),
        "observed_at": observed_at(basic.get("lastSeen")),
        "url": _str(item.get("url")),
    }
    ip = _str(basic.get("ipAddress"))
    if ip:
        attrs["ip_addresses"] = [ip]
    ci_class = _ci_class(_str(basic.get("type")),
                         _str(osys.get("productType")) or _str(osys.get("caption")),
                         manufacturer, model)
    location = _str(custom.get("location"))
    return [
        CIRecord(ci_class=ci_class, name=name, identifiers=ids,
                 attributes={k: v for k, v in attrs.items() if v is not None},
                 location=location, origin=origin),
        AssetRecord(native_key=key, asset_tag=ids.asset_tag, serial_number=ids.serial_number,
                    name=name, lifecycle_stage=stage, attributes=_asset_attributes(custom),
                    tracks=Identifiers(native_key=key), location=location, origin=origin),
    ]


def _asset_attributes(custom: Mapping[str, Any]) -> dict[str, Scalar]:
    """The asset record's attributes from ``assetCustom``."""
    return {
        k: v for k, v in (
            ("manufacturer", _str(custom.get("manufacturer"))),
            ("model", _str(custom.get("model"))),
            ("purchase_date", _date(custom.get("purchaseDate"))),
            ("warranty_end", _date(custom.get("warrantyDate"))),
            ("sku", _str(custom.get("sku"))),
            ("department", _str(custom.get("department"))),
        ) if v is not None
    }
