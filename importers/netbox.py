"""NetBox REST API JSON: devices, racks, interfaces, cables, cable traces and virtual machines.

Follows the NetBox REST API (``/api/dcim/devices/``, ``/api/dcim/racks/``,
``/api/dcim/interfaces/``, ``/api/dcim/cables/``, ``/api/dcim/interfaces/{id}/trace/``,
``/api/virtualization/virtual-machines/``) as documented by NetBox and as returned by
``curl`` or pynetbox. A file holds either one object (``GET /api/dcim/devices/1/``), a list of
objects, or a list page ``{"count", "next", "previous", "results": [...]}``; objects of several
kinds may be mixed. The kind of each object is read from its ``url`` (``.../dcim/devices/1/``)
or, without one, from its fields (``device_type`` -> device, ``u_height`` -> rack,
``termination_a``/``a_terminations`` -> cable, ``vcpus``/``cluster`` -> virtual machine,
``device`` + ``name`` -> interface). A trace is the answer of ``GET .../interfaces/{id}/trace/``
kept with its URL: ``{"url": ".../dcim/interfaces/7/trace/", "trace": [...]}`` (what the
``netbox`` connector hands over; the answer alone has no URL to tell it by).

Mapping
-------
* device -> :class:`~cmdb_graph.model.records.CIRecord`, native key ``dcim.device:<id>``.
  CI class from the role (``role`` in NetBox 4, ``device_role`` before), by the words of its
  slug or name: server, compute, host -> ``Server``; hypervisor -> ``Hypervisor``; switch,
  router, firewall, gateway, load-balancer, wireless/access point, console(-server), spine,
  leaf, core, edge -> ``NetworkDevice``; storage, san, nas -> ``StorageDevice``; printer ->
  ``Printer``; pdu, ups, power, patch-panel and any other role -> ``Hardware`` (a physical
  device whose function we do not know). ``role_classes`` overrides this per role slug.
  Identifiers: ``serial``, ``asset_tag``, ``name`` as hostname (the short name; a dotted name
  is also the FQDN). Attributes: manufacturer and model (``device_type``), os_name
  (``platform``), ip_addresses (``primary_ip4``/``primary_ip6``/``primary_ip``, prefix length
  dropped), operational_status from ``status`` (active -> operational; failed -> repair;
  decommissioning -> retired; offline, planned, staged, inventory -> non_operational), rack
  position and face. The site (and NetBox 3+ ``location`` inside it) is the CI's location; a
  rack yields ``CONTAINS`` rack -> device.
* rack -> CIRecord of class ``Rack`` (``dcim.rack:<id>``; serial, asset tag, facility id,
  height), located at its site.
* site (nested in a device or rack) -> :class:`~cmdb_graph.model.records.LocationRecord` of
  kind ``site``; a NetBox 3+ location -> kind ``location`` inside its site.
* interface -> the MAC addresses (``mac_address``; NetBox 4.2+ ``primary_mac_address`` and
  ``mac_addresses``) are added to the identifiers of its device when that device is in the
  same input; otherwise they cannot be placed on a CI and are skipped (logged). An interface's
  ``connected_endpoints`` become ``CONNECTS_TO`` from its device to the endpoint's device
  unless the cable itself is in the input.
* cable -> ``CONNECTS_TO`` between the devices of its A and B terminations
  (``termination_a``/``termination_b`` before NetBox 3.3, ``a_terminations``/
  ``b_terminations`` after); a cable whose ends are not on devices (circuits, power feeds)
  yields nothing. NetBox cables have no direction: the relationship points at the network
  device when exactly one end is a ``NetworkDevice`` of the input (a server CONNECTS_TO its
  switch), else from the A end to the B end; one relationship per pair of devices and input,
  whichever way round it is met again.
* cable trace -> the physical path from an interface through patch panels (front and rear
  ports) to the far end: its segments are ``[near ends, cable, far ends]`` (lists of
  terminations since NetBox 3.3, single objects before). A path through patch panels is a
  ``CablePath`` CI (native key ``dcim.cable-path:`` and its two ends' terminations, so the
  path traced from either end is one CI; named ``<device> <port> - <device> <port>``;
  attributes ``hops`` and ``patch_panels``) that ``CONNECTS_TO`` every patch panel on it (a
  panel the input does not describe becomes a ``Hardware`` CI by its nested name). Its ends:
  between *peers* (both ends network devices of the input, e.g. two core switches) the link is
  symmetric: the path ``CONNECTS_TO`` both ends and each end ``CONNECTS_TO`` the path
  ``optional`` (property ``peer``), so the failure of either end or of a panel takes the path
  down and degrades both ends: they lose each other. Otherwise the end that is no network
  device ``CONNECTS_TO`` the path and the path ``CONNECTS_TO`` the network device (else A end
  to B end), so the panel's failure takes the server down as its switch's would. A trace
  without patch panels is a ``CONNECTS_TO`` between its end devices, evidence ``cable trace``,
  like a cable; a path ending on no device (an open patch panel port, a circuit) yields
  nothing.
* cables between peers (two network devices of the input, directly or through
  ``connected_endpoints``) are symmetric too: ``CONNECTS_TO`` both ways, ``optional``, property
  ``peer``: either switch's failure degrades the other. A cable (or a trace through a cable)
  whose status is ``planned`` or ``decommissioning`` carries no connection, so no impact: it
  yields nothing (logged).
* virtual machine -> CIRecord of class ``VirtualMachine``, native key
  ``virtualization.virtual-machine:<id>``; hostname from the name, attributes vcpus,
  memory_mb (``memory``, MB), disk_gb (``disk``), os_name (``platform``), cluster, tenant,
  ip_addresses, operational_status (as devices); ``HOSTED_ON`` the device it is pinned to
  (``device``, NetBox 3.3+), at the site of its cluster or its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import Scalar
from cmdb_graph.model.records import (
    CIRecord,
    Identifiers,
    LocationRecord,
    Origin,
    Record,
    RelationshipRecord,
)
from importers.base import JSONImporter, guard, require
from importers.base import text_or_none as _str

__all__ = ["NetBoxImporter", "device_key", "rack_key", "vm_key"]

log = logging.getLogger(__name__)

_URL_KINDS = {
    "/dcim/devices/": "device",
    "/dcim/racks/": "rack",
    "/dcim/interfaces/": "interface",
    "/dcim/cables/": "cable",
    "/virtualization/virtual-machines/": "virtual_machine",
}
_ROLE_WORDS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"hypervisor", "hypervisors", "esxi", "kvm"}), "Hypervisor"),
    (frozenset({"switch", "switches", "router", "routers", "firewall", "firewalls", "fw",
                "gateway", "lb", "loadbalancer", "balancer", "wireless", "wifi", "ap",
                "console", "spine", "leaf", "core", "edge", "tor", "distribution",
                "access", "wan", "vpn"}), "NetworkDevice"),
    (frozenset({"server", "servers", "compute", "host", "hosts", "bare", "baremetal"}),
     "Server"),
    (frozenset({"storage", "san", "nas", "disk", "array"}), "StorageDevice"),
    (frozenset({"printer", "printers"}), "Printer"),
)
_STATUS = {
    "active": "operational",
    "connected": "operational",
    "failed": "repair",
    "decommissioning": "retired",
    "offline": "non_operational",
    "planned": "non_operational",
    "staged": "non_operational",
    "inventory": "non_operational",
}


def _any_key(ref: str) -> str:
    """A device id as its native key; ``@key`` (a cable path) as ``key``."""
    return ref[1:] if ref.startswith("@") else device_key(ref)


def device_key(device_id: Any) -> str:
    """Native key of a NetBox device: ``dcim.device:<id>``."""
    return f"dcim.device:{device_id}"


def rack_key(rack_id: Any) -> str:
    """Native key of a NetBox rack: ``dcim.rack:<id>``."""
    return f"dcim.rack:{rack_id}"


def _nested_name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return _str(value.get("name")) or _str(value.get("display"))
    return None


def _status(value: Any) -> str | None:
    """NetBox ``status``: ``{"value": "active", "label": "Active"}`` or a plain string."""
    if isinstance(value, Mapping):
        raw = value.get("value")
        text = raw if isinstance(raw, str) else value.get("label")
    else:
        text = value
    found = _str(text)
    return found.lower() if found else None


def _ip(value: Any) -> str | None:
    if isinstance(value, Mapping):
        address = _str(value.get("address"))
        return address.split("/", 1)[0] if address else None
    return None


def vm_key(vm_id: Any) -> str:
    """Native key of a NetBox virtual machine: ``virtualization.virtual-machine:<id>``."""
    return f"virtualization.virtual-machine:{vm_id}"


def _kind(obj: Mapping[str, Any]) -> str | None:
    url = obj.get("url")
    if isinstance(url, str) and url.rstrip("/").endswith("/trace") and "trace" in obj:
        return "trace"
    if isinstance(url, str):
        for part, kind in _URL_KINDS.items():
            if part in url:
                return kind
    if "device_type" in obj:
        return "device"
    if "u_height" in obj or "facility_id" in obj:
        return "rack"
    if "termination_a" in obj or "a_terminations" in obj:
        return "cable"
    if "vcpus" in obj or "cluster" in obj:
        return "virtual_machine"
    if isinstance(obj.get("device"), Mapping) and "name" in obj:
        return "interface"
    return None


def _macs(iface: Mapping[str, Any]) -> list[str]:
    values: list[Any] = [iface.get("mac_address")]
    primary = iface.get("primary_mac_address")
    if isinstance(primary, Mapping):
        values.append(primary.get("mac_address"))
    for entry in iface.get("mac_addresses") or []:
        if isinstance(entry, Mapping):
            values.append(entry.get("mac_address"))
    out: list[str] = []
    for value in values:
        text = _str(value)
        if text and re.fullmatch(r"[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}", text):
            mac = text.lower().replace("-", ":")
            if mac not in out and mac != "00:00:00:00:00:00":
                out.append(mac)
    return out


def _termination_devices(cable: Mapping[str, Any], side: str) -> list[Mapping[str, Any]]:
    """The nested devices on one side (``a``/``b``) of a cable, old and new API shapes."""
    ends: list[Any] = []
    old = cable.get(f"termination_{side}")
    if isinstance(old, Mapping):
        ends.append(old)
    for term in cable.get(f"{side}_terminations") or []:
        if isinstance(term, Mapping):
            ends.append(term.get("object") if isinstance(term.get("object"), Mapping) else term)
    devices: list[Mapping[str, Any]] = []
    for end in ends:
        device = end.get("device") if isinstance(end, Mapping) else None
        if isinstance(device, Mapping) and device.get("id") is not None:
            devices.append(device)
    return devices



def _role_class(slug: str | None, name: str | None) -> str:
    words = set(re.split(r"[^a-z0-9]+", f"{slug or ''} {name or ''}".lower())) - {""}
    for vocabulary, ci_class in _ROLE_WORDS:
        if words & vocabulary:
            return ci_class
    return "Hardware"


class NetBoxImporter(JSONImporter):
    """Import NetBox REST API JSON (devices, racks, interfaces, cables); see the module docstring.

    The transform takes one object, a list of objects or a list page, so the pages of
    ``GET /api/dcim/devices/`` can be handed to :meth:`records` as they come.

    Parameters
    ----------
    role_classes : mapping of str to str, optional
        Device role slug -> CI class, taking precedence over the built-in role words
        (e.g. ``{"pdu": "Hardware", "compute-node": "Hypervisor"}``).

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed JSON, a document that is no object, list
        or list page, an object of unknown kind, or an object without ``id`` (the record is its
        position, ``/results/3``).
    """

    kind = "netbox"
    description = ("NetBox REST API JSON (dcim devices, racks, interfaces, cables, traces; "
                   "virtual machines)")

    def __init__(self, *, role_classes: Mapping[str, str] | None = None) -> None:
        self.role_classes = dict(role_classes or {})

    def _objects(self, doc: Any, file: str) -> list[tuple[str, Mapping[str, Any]]]:
        if isinstance(doc, Mapping) and "results" in doc:
            items, prefix = doc["results"], "/results"
            if not isinstance(items, list):
                raise InvalidRecordError("must be a list", file=file, field="results")
        elif isinstance(doc, list):
            items, prefix = doc, ""
        elif isinstance(doc, Mapping):
            return [("", doc)]
        else:
            raise InvalidRecordError(
                "expected a NetBox object, a list of objects or a list page with results",
                file=file,
            )
        out: list[tuple[str, Mapping[str, Any]]] = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidRecordError("expected an object", file=file,
                                         record=f"{prefix}/{index}")
            out.append((f"{prefix}/{index}", item))
        return out

    def transform(self, doc: Any, origin: str) -> list[Record]:
        """Locations, racks and devices, then the CONNECTS_TO relationships."""
        file = origin
        objects = self._objects(doc, file)
        by_kind: dict[str, list[tuple[str, Mapping[str, Any]]]] = {
            "device": [], "rack": [], "interface": [], "cable": [], "trace": [],
            "virtual_machine": [],
        }
        for pointer, obj in objects:
            kind = _kind(obj)
            where = pointer or "/"
            if kind is None:
                raise InvalidRecordError(
                    "cannot tell which NetBox object this is (expected a device, rack, "
                    "interface, cable, trace or virtual machine with its url or fields)",
                    file=file, record=where,
                )
            if kind == "trace":
                by_kind[kind].append((where, obj))
                continue
            object_id = require(obj, "id", file=file, record=where)
            if not isinstance(object_id, int | str) or isinstance(object_id, bool):
                raise InvalidRecordError("id must be a number or a string", file=file,
                                         record=where, field="id")
            by_kind[kind].append((where, obj))

        records: list[Record] = []
        locations: dict[str, LocationRecord] = {}
        device_ids = {str(obj["id"]) for _, obj in by_kind["device"]}
        macs_by_device = self._macs_by_device(by_kind["interface"], device_ids, file)
        for where, rack in by_kind["rack"]:
            with guard(file, record=where):
                records.extend(self._rack(rack, file, where, locations))
        links = _Links()
        for where, device in by_kind["device"]:
            with guard(file, record=where):
                device_records = self._device(device, file, where, locations,
                                              macs_by_device.get(str(device["id"]), []))
            links.classes[str(device["id"])] = getattr(device_records[0], "ci_class", "")
            records.extend(device_records)
        for where, cable in by_kind["cable"]:
            with guard(file, record=where):
                self._cable(cable, file, where, links)
        cable_ids = {str(obj["id"]) for _, obj in by_kind["cable"]}
        for where, iface in by_kind["interface"]:
            with guard(file, record=where):
                self._interface(iface, file, where, cable_ids, links)
        for where, trace in by_kind["trace"]:
            with guard(file, record=where):
                self._trace(trace, file, where, links)
        for where, vm in by_kind["virtual_machine"]:
            with guard(file, record=where):
                records.extend(self._virtual_machine(vm, file, where, locations))
        records.extend(links.records)
        return [*locations.values(), *records]

    @staticmethod
    def _site(
        obj: Mapping[str, Any], origin: Origin, locations: dict[str, LocationRecord]
    ) -> str | None:
        site = _nested_name(obj.get("site"))
        if site is not None and site not in locations:
            locations[site] = LocationRecord(name=site, kind="site", origin=origin)
        location = _nested_name(obj.get("location"))
        if location is not None and site is not None:
            name = f"{site} / {location}"
            if name not in locations:
                locations[name] = LocationRecord(name=name, kind="location", parent=site,
                                                 origin=origin)
            return name
        return site

    def _device(
        self, device: Mapping[str, Any], file: str, where: str,
        locations: dict[str, LocationRecord], macs: list[str],
    ) -> list[Record]:
        origin = Origin(file=file, record=where)
        key = device_key(device["id"])
        role = device.get("role") or device.get("device_role")
        role_slug = _str(role.get("slug")) if isinstance(role, Mapping) else None
        role_name = _nested_name(role)
        ci_class = self.role_classes.get(role_slug or "") or _role_class(role_slug, role_name)
        name = _str(device.get("name")) or _str(device.get("display")) or f"device {device['id']}"
        hostname = name.split(".", 1)[0].lower() if _str(device.get("name")) else None
        fqdn = name.lower() if hostname and "." in name else None
        device_type = device.get("device_type")
        attrs: dict[str, Scalar | list[str]] = {"netbox_id": device["id"]}
        if isinstance(device_type, Mapping):
            attrs["manufacturer"] = _nested_name(device_type.get("manufacturer"))
            attrs["model"] = _str(device_type.get("model"))
        attrs["os_name"] = _nested_name(device.get("platform"))
        attrs["device_role"] = role_name
        _status_and_ips(device, attrs)
        position = device.get("position")
        if isinstance(position, int | float) and not isinstance(position, bool):
            attrs["rack_position"] = position
        face = device.get("face")
        attrs["rack_face"] = _str(face.get("label")) if isinstance(face, Mapping) else _str(face)
        attrs["tenant"] = _nested_name(device.get("tenant"))
        records: list[Record] = [
            CIRecord(
                ci_class=ci_class,
                name=name,
                identifiers=Identifiers(
                    native_key=key,
                    serial_number=_str(device.get("serial")),
                    asset_tag=_str(device.get("asset_tag")),
                    hostname=hostname,
                    fqdn=fqdn,
                    mac_addresses=tuple(macs),
                ),
                attributes={k: v for k, v in attrs.items() if v is not None},
                location=self._site(device, origin, locations),
                origin=origin,
            )
        ]
        rack = device.get("rack")
        if isinstance(rack, Mapping) and rack.get("id") is not None:
            records.append(
                RelationshipRecord(
                    rel_type="CONTAINS",
                    source=Identifiers(native_key=rack_key(rack["id"])),
                    target=Identifiers(native_key=key),
                    evidence="device.rack",
                    origin=origin,
                )
            )
        return records

    def _rack(
        self, rack: Mapping[str, Any], file: str, where: str,
        locations: dict[str, LocationRecord],
    ) -> list[Record]:
        origin = Origin(file=file, record=where)
        name = str(require(rack, "name", file=file, record=where))
        attrs: dict[str, Scalar | list[str]] = {
            "netbox_id": rack["id"],
            "facility_id": _str(rack.get("facility_id")),
            "rack_role": _nested_name(rack.get("role")),
            "tenant": _nested_name(rack.get("tenant")),
        }
        if isinstance(rack.get("u_height"), int):
            attrs["u_height"] = rack["u_height"]
        status = _status(rack.get("status"))
        if status is not None:
            attrs["operational_status"] = _STATUS.get(status)
        return [CIRecord(
            ci_class="Rack",
            name=name,
            identifiers=Identifiers(
                native_key=rack_key(rack["id"]),
                serial_number=_str(rack.get("serial")),
                asset_tag=_str(rack.get("asset_tag")),
            ),
            attributes={k: v for k, v in attrs.items() if v is not None},
            location=self._site(rack, origin, locations),
            origin=origin,
        )]

    @staticmethod
    def _macs_by_device(
        interfaces: list[tuple[str, Mapping[str, Any]]], device_ids: set[str], file: str
    ) -> dict[str, list[str]]:
        """MAC addresses of the interfaces, by the id of their device (devices in the input)."""
        out: dict[str, list[str]] = {}
        for where, iface in interfaces:
            device = iface.get("device")
            if not isinstance(device, Mapping) or device.get("id") is None:
                raise InvalidRecordError("interface has no device", file=file, record=where,
                                         field="device")
            macs = _macs(iface)
            device_id = str(device["id"])
            if macs and device_id in device_ids:
                bucket = out.setdefault(device_id, [])
                bucket.extend(m for m in macs if m not in bucket)
            elif macs:
                log.info("%s %s: the device of interface %s is not in the input; its MAC "
                         "addresses are skipped", file, where, iface.get("name"))
        return out

    def _interface(
        self, iface: Mapping[str, Any], file: str, where: str, cable_ids: set[str],
        links: _Links,
    ) -> list[Record]:
        cable = iface.get("cable")
        if isinstance(cable, Mapping) and str(cable.get("id")) in cable_ids:
            return []
        device_id = str(iface["device"]["id"])
        endpoints = iface.get("connected_endpoints") or []
        endpoint_type = _str(iface.get("connected_endpoints_type")) or ""
        name = _str(iface.get("name"))
        for endpoint in endpoints if isinstance(endpoints, list) else []:
            if not isinstance(endpoint, Mapping):
                continue
            peer = endpoint if endpoint_type == "dcim.device" else endpoint.get("device")
            if not isinstance(peer, Mapping) or peer.get("id") is None:
                continue
            links.connect(
                device_id, str(peer["id"]),
                evidence=f"interface {name} connected_endpoints",
                properties={"interface": name} if name else {},
                origin=Origin(file=file, record=where),
            )
        return []

    def _cable(
        self, cable: Mapping[str, Any], file: str, where: str, links: _Links
    ) -> list[Record]:
        a_devices = _termination_devices(cable, "a")
        b_devices = _termination_devices(cable, "b")
        if not a_devices and not b_devices and not (
            cable.get("termination_a") or cable.get("a_terminations")
        ):
            raise InvalidRecordError("cable has no A termination", file=file, record=where,
                                     field="a_terminations")
        properties: dict[str, Scalar] = {
            k: v for k, v in (
                ("cable_id", str(cable["id"])),
                ("label", _str(cable.get("label"))),
                ("status", _status(cable.get("status"))),
            ) if v is not None
        }
        if properties.get("status") in _NOT_CONNECTED:
            log.info("%s %s: cable %s is %s: no connection yet", file, where, cable["id"],
                     properties["status"])
            return []
        for a in a_devices:
            for b in b_devices:
                links.connect(
                    str(a["id"]), str(b["id"]),
                    evidence=f"cable {cable['id']}", properties=properties,
                    origin=Origin(file=file, record=where),
                )
        return []


    def _trace(self, trace: Mapping[str, Any], file: str, where: str, links: _Links) -> None:
        segments = trace.get("trace")
        if not isinstance(segments, list):
            raise InvalidRecordError("a trace must be a list of segments", file=file,
                                     record=where, field="trace")
        if not segments:
            return
        for i, seg in enumerate(segments):
            if not (isinstance(seg, list) and len(seg) == 3):
                raise InvalidRecordError("a trace segment is [near ends, cable, far ends]",
                                         file=file, record=where, field=f"trace/{i}")
        first, last = segments[0], segments[-1]
        for seg in segments:
            cable = seg[1] if isinstance(seg[1], Mapping) else {}
            status = _status(cable.get("status"))
            if status in _NOT_CONNECTED:
                log.info("%s %s: the trace runs through cable %s, %s: no connection yet",
                         file, where, cable.get("id"), status)
                return
        near = _end_devices(first[0])
        far = _end_devices(last[2])
        panels: list[str] = []
        for i, seg in enumerate(segments):
            for end in ((seg[0],) if i else ()) + ((seg[2],) if i < len(segments) - 1 else ()):
                for d in _end_devices(end):
                    if d not in panels and d not in near and d not in far:
                        panels.append(d)
        origin = Origin(file=file, record=where)
        if not panels or not near or not far:
            for a in near:
                for b in far:
                    links.connect(a, b, evidence="cable trace",
                                  properties={"hops": len(segments)}, origin=origin)
            return
        links.path(near, far, panels, name=_path_name(first[0], last[2]),
                   key=_path_key(first[0], last[2]), hops=len(segments),
                   devices=_nested_devices(segments), origin=origin)

    def _virtual_machine(
        self, vm: Mapping[str, Any], file: str, where: str,
        locations: dict[str, LocationRecord],
    ) -> list[Record]:
        origin = Origin(file=file, record=where)
        key = vm_key(vm["id"])
        name = str(require(vm, "name", file=file, record=where))
        attrs: dict[str, Scalar | list[str]] = {
            "netbox_id": vm["id"], "os_name": _nested_name(vm.get("platform")),
            "cluster": _nested_name(vm.get("cluster")), "tenant": _nested_name(vm.get("tenant")),
            "device_role": _nested_name(vm.get("role")),
        }
        for field, attr in (("vcpus", "vcpus"), ("memory", "memory_mb"), ("disk", "disk_gb")):
            value = vm.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attrs[attr] = value
        _status_and_ips(vm, attrs)
        cluster = vm.get("cluster")
        site_of = vm if vm.get("site") else cluster if isinstance(cluster, Mapping) else {}
        records: list[Record] = [CIRecord(
            ci_class="VirtualMachine", name=name,
            identifiers=Identifiers(native_key=key, hostname=name.split(".", 1)[0].lower(),
                                    fqdn=name.lower() if "." in name else None),
            attributes={k: v for k, v in attrs.items() if v is not None},
            location=self._site(site_of, origin, locations), origin=origin,
        )]
        device = vm.get("device")
        if isinstance(device, Mapping) and device.get("id") is not None:
            records.append(RelationshipRecord(
                rel_type="HOSTED_ON", source=Identifiers(native_key=key),
                target=Identifiers(native_key=device_key(device["id"])),
                evidence="virtual machine device", origin=origin))
        return records


def _status_and_ips(obj: Mapping[str, Any], attrs: dict[str, Scalar | list[str]]) -> None:
    """A device's or VM's status (and operational status) and primary IP addresses."""
    status = _status(obj.get("status"))
    if status is not None:
        attrs["netbox_status"] = status
        attrs["operational_status"] = _STATUS.get(status)
    ips = [ip for ip in (_ip(obj.get(k)) for k in ("primary_ip4", "primary_ip6", "primary_ip"))
           if ip]
    if ips:
        attrs["ip_addresses"] = list(dict.fromkeys(ips))


#: Cable statuses that carry no connection (and so no impact) yet or any more.
_NOT_CONNECTED = frozenset({"planned", "decommissioning"})


def _ends(ends: Any) -> list[Mapping[str, Any]]:
    return [e for e in (ends if isinstance(ends, list) else [ends]) if isinstance(e, Mapping)]


def _path_name(near: Any, far: Any) -> str:
    """``"core1 Eth1 - core2 Eth1"``: the device and port names of a path's two ends."""
    def side(ends: Any) -> str:
        parts = []
        for e in _ends(ends):
            nested = e.get("device")
            device: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
            parts.append(" ".join(str(x) for x in (device.get("name") or device.get("id"),
                                                    e.get("name")) if x is not None))
        return ", ".join(parts) or "?"
    return f"{side(near)} - {side(far)}"


def _path_key(near: Any, far: Any) -> str:
    """The native key of a cable path: its two ends' terminations, sorted (the same path
    traced from either end is one CI)."""
    def side(ends: Any) -> str:
        out = []
        for e in _ends(ends):
            kind = re.search(r"/dcim/([a-z-]+)/[^/]+/?$", str(e.get("url") or ""))
            out.append(f"{kind.group(1) if kind else 'interfaces'}:{e.get('id')}")
        return "+".join(sorted(out))
    return "dcim.cable-path:" + "|".join(sorted((side(near), side(far))))


def _nested_devices(segments: list[Any]) -> dict[str, str]:
    """Device id -> name of every device a trace passes (for the patch panels' records)."""
    out: dict[str, str] = {}
    for seg in segments:
        for end in (seg[0], seg[2]):
            for e in _ends(end):
                device = e.get("device")
                if isinstance(device, Mapping) and device.get("id") is not None:
                    out.setdefault(str(device["id"]), str(device.get("name") or device["id"]))
    return out


def _end_devices(ends: Any) -> list[str]:
    """The ids of the devices of one end of a trace segment (a termination or a list)."""
    items = ends if isinstance(ends, list) else [ends]
    out: list[str] = []
    for end in items:
        device = end.get("device") if isinstance(end, Mapping) else None
        if isinstance(device, Mapping) and device.get("id") is not None:
            out.append(str(device["id"]))
    return out


class _Links:
    """``CONNECTS_TO`` relationships of one input: one per pair of devices, oriented.

    NetBox cables and connections have no direction. The relationship points at the network
    device when exactly one end is a ``NetworkDevice`` of the input (a server CONNECTS_TO its
    switch, as the relationship type reads); otherwise from the A end (or the interface's own
    device) to the B end (or the connected endpoint). A pair met again, either way round, is
    not repeated, so no two-device cycle is made.
    """

    def __init__(self) -> None:
        self.classes: dict[str, str] = {}
        self.records: list[Record] = []
        self._pairs: set[frozenset[str]] = set()
        self._paths: set[str] = set()
        self._stubs: set[str] = set()

    def peers(self, a: str, b: str) -> bool:
        """Whether two devices of the input are both network devices (peers, as two core
        switches): a link between them is symmetric."""
        return self.classes.get(a) == "NetworkDevice" == self.classes.get(b)

    def _rel(self, a: str, b: str, *, evidence: str, properties: Mapping[str, Scalar],
             origin: Origin, optional: bool = False) -> None:
        self.records.append(RelationshipRecord(
            rel_type="CONNECTS_TO", source=Identifiers(native_key=_any_key(a)),
            target=Identifiers(native_key=_any_key(b)), optional=optional, evidence=evidence,
            properties=dict(properties), origin=origin))

    def path(self, near: list[str], far: list[str], panels: list[str], *, name: str, key: str,
             hops: int, devices: Mapping[str, str], origin: Origin) -> None:
        """A ``CablePath`` CI through patch panels: it needs its panels, and its ends are
        connected through it (see the module docstring for the direction)."""
        if key in self._paths:
            return
        self._paths.add(key)
        self.records.append(CIRecord(
            ci_class="CablePath", name=name, identifiers=Identifiers(native_key=key),
            attributes={"hops": hops, "patch_panels": [devices.get(p, p) for p in panels]},
            origin=origin))
        for d in panels:
            if d not in self.classes and d not in self._stubs:
                self._stubs.add(d)  # a panel the input does not describe: known by name only
                self.records.append(CIRecord(
                    ci_class="Hardware", name=devices.get(d, d),
                    identifiers=Identifiers(native_key=device_key(d)),
                    attributes={"netbox_id": d}, origin=origin))
            self._rel(f"@{key}", d, evidence=f"cable trace {name} passes it",
                      properties={}, origin=origin)
        props: dict[str, Scalar] = {"hops": hops, "cable_path": name}
        for a in near:
            for b in far:
                if self.peers(a, b):
                    for end in (a, b):
                        self._rel(end, f"@{key}", evidence=f"cable trace {name}",
                                  properties={**props, "peer": True}, origin=origin,
                                  optional=True)
                        self._rel(f"@{key}", end, evidence=f"cable trace {name}",
                                  properties={**props, "peer": True}, origin=origin)
                    continue
                if self.classes.get(a) == "NetworkDevice":
                    a, b = b, a  # the other end needs the path, the path the network device
                self._rel(a, f"@{key}", evidence=f"cable trace {name}", properties=props,
                          origin=origin)
                self._rel(f"@{key}", b, evidence=f"cable trace {name}", properties=props,
                          origin=origin)

    def connect(
        self, a: str, b: str, *, evidence: str, properties: Mapping[str, Scalar],
        origin: Origin,
    ) -> None:
        pair = frozenset((a, b))
        if a == b or pair in self._pairs:
            return
        self._pairs.add(pair)
        if self.peers(a, b):
            for x, y in ((a, b), (b, a)):
                self._rel(x, y, evidence=evidence, properties={**properties, "peer": True},
                          origin=origin, optional=True)
            return
        a_net = self.classes.get(a) == "NetworkDevice"
        b_net = self.classes.get(b) == "NetworkDevice"
        if a_net and not b_net:
            a, b = b, a
        self.records.append(
            RelationshipRecord(
                rel_type="CONNECTS_TO",
                source=Identifiers(native_key=device_key(a)),
                target=Identifiers(native_key=device_key(b)),
                evidence=evidence,
                properties=dict(properties),
                origin=origin,
            )
        )
