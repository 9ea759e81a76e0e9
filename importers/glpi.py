"""GLPI Agent / FusionInventory inventories: computers, network devices and installed software.

Two encodings of one data model, both maintained by the GLPI project:

* :class:`GLPIInventoryImporter` (kind ``glpi``) reads the JSON inventory format that the GLPI
  Agent sends, as specified by the JSON schema of ``glpi-project/inventory_format``
  (``inventory.schema.json``): ``{"deviceid", "action"/"query", "itemtype", "content": {...}}``
  with ``content.hardware``, ``bios``, ``operatingsystem``, ``networks``, ``softwares``,
  ``users``... for a computer (action ``inventory``), and ``content.network_device`` for an
  SNMP network inventory or discovery (``netinventory``, ``netdiscovery``).
* :class:`~importers.fusioninventory.FusionInventoryXMLImporter` (kind ``fusioninventory``,
  in :mod:`importers.fusioninventory`) reads the older XML that
  FusionInventory agents send, the OCS Inventory-derived ``<REQUEST><CONTENT>...</CONTENT>
  <DEVICEID/><QUERY/></REQUEST>`` layout documented as the "original" formats of the same
  repository (``original.md``, ``original-netdiscovery.md``, ``original-netinventory.md``):
  ``QUERY`` ``INVENTORY`` (HARDWARE, BIOS, OPERATINGSYSTEM, NETWORKS, SOFTWARES, USERS),
  ``NETDISCOVERY`` (one or more ``DEVICE``) and ``SNMPQUERY``/``NETINVENTORY``
  (``DEVICE/INFO``). The XML is read into the JSON shape (lower-case names) and mapped by the
  functions of this module.

Mapping
-------
Computer inventory -> one :class:`~cmdb_graph.model.records.CIRecord`:

* CI class: ``VirtualMachine`` when ``hardware.vmsystem`` is set and not ``Physical``; else by
  ``hardware.chassis_type`` (SMBIOS chassis names): server chassis (rack mount, main server,
  blade, multi-system...) -> ``Server``; tablets -> ``MobileDevice``; desktops, laptops,
  notebooks... -> ``Computer``; an unknown chassis is a ``Server`` when the operating system's
  name says "server", else a ``Computer``.
* identifiers: ``native_key`` = ``hardware.uuid`` (lower case; the agent's ``deviceid`` when
  there is none), ``serial_number`` = ``bios.ssn``, ``asset_tag`` = ``bios.assettag``
  (placeholder values such as "To Be Filled By O.E.M." are dropped), ``hostname`` =
  ``hardware.name``, ``domain`` = ``operatingsystem.dns_domain`` or ``hardware.workgroup``,
  ``fqdn`` = ``operatingsystem.fqdn`` when it is dotted, ``mac_addresses`` = MACs of the
  non-virtual network interfaces (loopback, virtual devices and all-zero MACs are left out).
* attributes: manufacturer, model, os_name, os_version, ip_addresses (no loopback or
  link-local), chassis_type, uuid, memory_mb, users (logins), last_logged_user, agent_version.
* when the agent saw it: ``accesslog.logdate`` (``ACCESSLOG/LOGDATE``, the agent's local time,
  taken as UTC) is the record's ``observed_at``: the CI's ``first_seen``/``last_seen`` are the
  inventory's time, not the import's.

Every ``virtualmachines`` entry -> a ``VirtualMachine`` ``HOSTED_ON`` the computer, or, for
container types (docker, lxc, podman...), a ``Container`` identified with its host that
``RUNS_ON`` it. A VM's native key is its uuid (lower case), the key its own agent's
inventory gets, so both inventories meet; a container's is ``<host key>/<type>:<id or
name>``. Every ``databases_servers`` entry (GLPI Agent 1.5+) -> a ``Database`` identified
with its host (name + host) that ``RUNS_ON`` it, with version, ports and database (instance)
names.

Every ``softwares`` entry -> a :class:`~cmdb_graph.model.records.SoftwareRecord` (``name`` ->
product, ``publisher`` -> vendor, ``version``, ``install_date``/``INSTALLDATE`` -> installed_at;
the Windows agent writes ``DD/MM/YYYY``) installed on the computer; ``arch``, ``from``,
``guid``, ``system_category`` and ``release_type`` (``Security Update`` on a Windows update:
the licence position counts no seat for it) are attributes of the installation.

Network device (``network_device`` / ``DEVICE`` / ``DEVICE/INFO``) -> one CIRecord: class from
its ``type`` (printer -> ``Printer``; networking, switch, router, firewall, wireless ->
``NetworkDevice``; storage -> ``StorageDevice``; phone -> ``MobileDevice``; computer ->
``Computer``; else the JSON ``itemtype``; else ``Hardware``); ``serial``, ``assettag``,
``mac``, name (``name``/``snmphostname``/``dnshostname``/``netbiosname``, else the IP) as
hostname, ``ips``/``ip`` as ip_addresses, ``location`` as location name. Its native key is
``serial:<serial>``, else ``mac:<mac>``, else ``ip:<ip>``. A MAC that is not six hex octets is
kept only as the ``invalid_mac_addresses`` attribute, never as an identifier.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import RelationshipBasis, Scalar
from cmdb_graph.model.records import (
    CIRecord,
    Identifiers,
    InputWarning,
    Origin,
    Record,
    RelationshipRecord,
    SoftwareRecord,
)
from importers.base import Item, JSONImporter, guard, observed_at, require

__all__ = ["GLPIInventoryImporter", "computer_records", "network_device", "normalise_mac"]

log = logging.getLogger(__name__)

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_PLACEHOLDERS = {
    "", "0", "none", "null", "n/a", "na", "unknown", "default string", "not specified",
    "not applicable", "to be filled by o.e.m.", "to be filled by oem", "system serial number",
    "chassis serial number", "serial number", "0123456789", "123456789", "xxxxxxxxxx",
    "no asset tag", "asset tag", "assettag", "no asset information", "oem", "o.e.m.",
}
_SERVER_CHASSIS = (
    "server", "rack mount", "rack-mount", "blade", "multi-system", "expansion chassis",
    "sealed-case pc", "pizza box", "tower server",
)
_MOBILE_CHASSIS = ("tablet", "hand held", "handheld")
_VIRTUAL_SYSTEMS = {"physical", ""}

def normalise_mac(value: Any) -> str | None:
    """A MAC address as ``aa:bb:cc:dd:ee:ff``, or ``None`` when it is not six hex octets.

    Dashes and dots are accepted as separators, and 12 bare hex digits too. The all-zero MAC
    (loopback) counts as no MAC.
    """
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace("-", ":")
    bare = text.replace(":", "").replace(".", "")
    if re.fullmatch(r"[0-9a-f]{12}", bare) and not _MAC.match(text):
        text = ":".join(bare[i : i + 2] for i in range(0, 12, 2))
    if not _MAC.match(text) or text == "00:00:00:00:00:00":
        return None
    return text


def _clean(value: Any) -> str | None:
    """A stripped string, or ``None`` for empty values and BIOS placeholders."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    if text.lower() in _PLACEHOLDERS:
        return None
    return text


def _first(*values: Any) -> str | None:
    for value in values:
        text = _clean(value)
        if text is not None:
            return text
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _is_public_ip(ip: str) -> bool:
    low = ip.lower()
    return not (low.startswith("127.") or low == "::1" or low.startswith("fe80:")
                or low in ("0.0.0.0", "::"))


def _install_date(value: Any) -> datetime | None:
    """``YYYY-MM-DD`` (JSON schema) or ``DD/MM/YYYY`` (Windows agent), as UTC midnight."""
    text = _clean(value)
    if text is None:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _section(content: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = content.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, dict) else {}



def computer_records(doc: Mapping[str, Any], file: str) -> list[Item]:
    """The records of a computer inventory (``{"deviceid", "content"}``, JSON shape): the
    computer's CI, its guests and database servers, and its software."""
    content = doc["content"]
    deviceid = str(doc["deviceid"])
    with guard(file, record=deviceid):
        ci = _computer_ci(content, deviceid, Origin(file=file, record=deviceid))
    records: list[Item] = [ci]
    for key, what, build in _ENTRIES:
        for index, entry in enumerate(_as_list(content.get(key))):
            pointer = f"/content/{key}/{index}"
            if not isinstance(entry, dict):
                raise InvalidRecordError(f"{what} entry is not an object", file=file,
                                         record=pointer)
            with guard(file, record=pointer):
                records.extend(build(entry, ci.identifiers, Origin(file=file, record=pointer)))
    return records


def _addresses(content: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """MACs and IP addresses of the non-virtual, non-loopback network interfaces."""
    macs: list[str] = []
    ips: list[str] = []
    for net in _as_list(content.get("networks")):
        if not isinstance(net, dict):
            continue
        if _truthy(net.get("virtualdev")) or str(net.get("type") or "").lower() == "loopback":
            continue
        mac = normalise_mac(net.get("mac") or net.get("macaddr"))
        if mac is not None and mac not in macs:
            macs.append(mac)
        for key in ("ipaddress", "ipaddress6"):
            ip = _clean(net.get(key))
            if ip is not None and _is_public_ip(ip) and ip not in ips:
                ips.append(ip)
    return macs, ips


def _computer_ci(content: Mapping[str, Any], deviceid: str, origin: Origin) -> CIRecord:
    hardware = _section(content, "hardware")
    bios = _section(content, "bios")
    osys = _section(content, "operatingsystem")
    hostname = _first(hardware.get("name"))
    fqdn = _first(osys.get("fqdn"))
    if fqdn is not None and "." not in fqdn:
        hostname = hostname or fqdn
        fqdn = None
    domain = _first(osys.get("dns_domain"), hardware.get("workgroup"))
    uuid = _first(hardware.get("uuid"))
    macs, ips = _addresses(content)
    os_name = _first(osys.get("full_name"), hardware.get("osname"), osys.get("name"))
    ids = Identifiers(
        native_key=uuid.lower() if uuid else deviceid,
        serial_number=_first(bios.get("ssn")),
        asset_tag=_first(bios.get("assettag")),
        fqdn=fqdn.lower() if fqdn else None,
        hostname=hostname.lower() if hostname else None,
        domain=domain.lower() if domain else None,
        mac_addresses=tuple(macs),
    )
    users = [
        str(u.get("login")) for u in _as_list(content.get("users"))
        if isinstance(u, dict) and _clean(u.get("login"))
    ]
    attrs: dict[str, Scalar | list[str]] = {
        "manufacturer": _first(bios.get("smanufacturer"), bios.get("mmanufacturer")),
        "model": _first(bios.get("smodel"), bios.get("mmodel")),
        "os_name": os_name,
        "os_version": _first(osys.get("version"), hardware.get("osversion")),
        "chassis_type": _first(hardware.get("chassis_type")),
        "uuid": uuid,
        "last_logged_user": _first(hardware.get("lastloggeduser")),
        "agent_version": _first(content.get("versionclient")),
        "inventory_device_id": deviceid,
        "observed_at": observed_at(_first(_section(content, "accesslog").get("logdate"))),
    }
    memory = _clean(hardware.get("memory"))
    if memory is not None and memory.isascii() and memory.isdigit():
        attrs["memory_mb"] = int(memory)
    if ips:
        attrs["ip_addresses"] = ips
    if users:
        attrs["users"] = users
    return CIRecord(
        ci_class=_computer_class(hardware, os_name),
        name=hostname or fqdn or deviceid,
        identifiers=ids,
        attributes={k: v for k, v in attrs.items() if v is not None},
        origin=origin,
    )


def _software(soft: Mapping[str, Any], host: Identifiers, origin: Origin) -> list[Record]:
    """A ``softwares`` entry: the software installed on the computer."""
    product = str(require(soft, "name", file=origin.file, record=origin.record)).strip()
    installed_raw = soft.get("install_date") or soft.get("installdate")
    soft_attrs: dict[str, Scalar] = {
        k: str(soft[k]) for k in ("arch", "from", "guid", "system_category", "release_type")
        if _clean(soft.get(k)) is not None
    }
    installed_at = _install_date(installed_raw)
    if installed_at is None and _clean(installed_raw) is not None:
        soft_attrs["install_date_raw"] = str(installed_raw)
    return [SoftwareRecord(
        installed_on=host,
        product=product,
        vendor=_first(soft.get("publisher")),
        version=_first(soft.get("version")),
        installed_at=installed_at,
        attributes=soft_attrs,
        origin=origin,
    )]


_CONTAINER_TYPES = {"docker", "lxc", "lxd", "podman", "containerd", "openvz", "jail", "wsl"}
_GUEST_STATUS = {
    "running": "operational",
    "on": "operational",
    "off": "non_operational",
    "shutdown": "non_operational",
    "paused": "non_operational",
    "crashed": "repair",
    "blocked": "non_operational",
    "dying": "non_operational",
}


def _guest(guest: Mapping[str, Any], host: Identifiers, origin: Origin) -> list[Record]:
    """A ``virtualmachines`` entry: a VM HOSTED_ON, or a container RUNS_ON, the host."""
    host_ref = Identifiers(native_key=host.native_key)
    name = str(require(guest, "name", file=origin.file, record=origin.record)).strip()
    vmtype = (_clean(guest.get("vmtype")) or "").lower()
    uuid = _first(guest.get("uuid"))
    container = vmtype in _CONTAINER_TYPES
    ci_class = "Container" if container else "VirtualMachine"
    mac = normalise_mac(guest.get("mac"))
    # a VM's uuid is its SMBIOS uuid, the native key its own agent's inventory gets
    native_key = (
        uuid.lower() if uuid and not container
        else f"{host.native_key}/{vmtype or 'vm'}:{uuid or name}"
    )
    ids = Identifiers(
        native_key=native_key,
        name=name,
        ci_class=ci_class,
        host=host_ref if container else None,
        mac_addresses=(mac,) if mac else (),
    )
    status = (_clean(guest.get("status")) or "").lower()
    attrs: dict[str, Scalar | list[str]] = {
        k: v for k, v in (
            ("vm_type", _first(guest.get("vmtype"))),
            ("vm_uuid", uuid),
            ("image", _first(guest.get("image"))),
            ("subsystem", _first(guest.get("subsystem"))),
            ("vm_status", _first(guest.get("status"))),
            ("operational_status", _GUEST_STATUS.get(status)),
            ("description", _first(guest.get("comment"))),
        ) if v is not None
    }
    for key in ("vcpu", "memory"):
        value = guest.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            attrs[key if key == "vcpu" else "memory_mb"] = value
    return [
        CIRecord(ci_class=ci_class, name=name, identifiers=ids, attributes=attrs, origin=origin),
        RelationshipRecord(rel_type="RUNS_ON" if container else "HOSTED_ON", source=ids,
                           target=host_ref, evidence="GLPI inventory virtualmachines",
                           origin=origin),
    ]


def _dbms(dbms: Mapping[str, Any], host: Identifiers, origin: Origin) -> list[Record]:
    """A ``databases_servers`` entry: one Database CI RUNS_ON the host."""
    host_ref = Identifiers(native_key=host.native_key)
    name = str(require(dbms, "name", file=origin.file, record=origin.record)).strip()
    ids = Identifiers(native_key=f"{host.native_key}/dbms:{name}", name=name,
                      ci_class="Database", host=host_ref)
    instances = [i for i in _as_list(dbms.get("instances")) if isinstance(i, dict)]
    ports = sorted({str(i["port"]) for i in instances if _clean(i.get("port"))})
    databases = [str(i["name"]) for i in instances if _clean(i.get("name"))]
    attrs: dict[str, Scalar | list[str]] = {
        k: v for k, v in (
            ("version", _first(dbms.get("version"))),
            ("manufacturer", _first(dbms.get("manufacturer"))),
            ("dbms_type", _first(dbms.get("type"))),
        ) if v is not None
    }
    if ports:
        attrs["ports"] = ports
    if databases:
        attrs["databases"] = databases
    return [
        CIRecord(ci_class="Database", name=name, identifiers=ids, attributes=attrs,
                 origin=origin),
        RelationshipRecord(rel_type="RUNS_ON", source=ids, target=host_ref,
                           evidence="GLPI inventory databases_servers", origin=origin),
    ]


#: computer inventory sections with one record set per entry: key, what an entry is, builder
_ENTRIES: tuple[tuple[str, str, Callable[[Mapping[str, Any], Identifiers, Origin],
                                         list[Record]]], ...] = (
    ("virtualmachines", "virtual machine", _guest),
    ("databases_servers", "database server", _dbms),
    ("softwares", "software", _software),
)


def _computer_class(hardware: Mapping[str, Any], os_name: str | None) -> str:
    vmsystem = (_clean(hardware.get("vmsystem")) or "").lower()
    if vmsystem not in _VIRTUAL_SYSTEMS:
        return "VirtualMachine"
    chassis = (_clean(hardware.get("chassis_type")) or "").lower()
    if any(word in chassis for word in _SERVER_CHASSIS):
        return "Server"
    if any(word in chassis for word in _MOBILE_CHASSIS):
        return "MobileDevice"
    if chassis and chassis not in ("other", "unknown"):
        return "Computer"
    if os_name is not None and "server" in os_name.lower():
        return "Server"
    return "Computer"


_DEVICE_TYPES = {
    "printer": "Printer",
    "networking": "NetworkDevice",
    "network": "NetworkDevice",
    "networkequipment": "NetworkDevice",
    "switch": "NetworkDevice",
    "router": "NetworkDevice",
    "firewall": "NetworkDevice",
    "wireless": "NetworkDevice",
    "access point": "NetworkDevice",
    "storage": "StorageDevice",
    "phone": "MobileDevice",
    "computer": "Computer",
    "power": "Hardware",
}


def network_device(
    info: Mapping[str, Any], *, itemtype: str | None, file: str, record: str
) -> list[Item]:
    """The CI of a network device (``network_device``, ``DEVICE`` or ``DEVICE/INFO``), after
    a warning when its MAC is no MAC address."""
    listed = info.get("ips")
    if isinstance(listed, dict):  # XML <IPS><IP>..</IP></IPS>
        listed = listed.get("ip")
    ips = [
        ip for ip in (_clean(x) for x in _as_list(listed) + _as_list(info.get("ip")))
        if ip is not None
    ]
    ips = list(dict.fromkeys(ips))
    raw_mac = _clean(info.get("mac"))
    mac = normalise_mac(raw_mac)
    serial = _first(info.get("serial"))
    name = _first(
        info.get("name"), info.get("snmphostname"), info.get("dnshostname"),
        info.get("netbiosname"),
    ) or (ips[0] if ips else None)
    if name is None and serial is None and mac is None:
        raise InvalidRecordError(
            "network device has no name, IP, serial or MAC", file=file, record=record,
            field="name",
        )
    dev_type = (_clean(info.get("type")) or "").lower()
    ci_class = _DEVICE_TYPES.get(dev_type) or _DEVICE_TYPES.get((itemtype or "").lower())
    if ci_class is None:
        ci_class = "Hardware"
    native_key = (
        f"serial:{serial}" if serial else f"mac:{mac}" if mac else f"ip:{ips[0]}" if ips
        else f"name:{name}"
    )
    hostname = _first(info.get("dnshostname"), info.get("snmphostname"), info.get("name"),
                      info.get("netbiosname"))
    attrs: dict[str, Scalar | list[str]] = {
        "manufacturer": _first(info.get("manufacturer")),
        "model": _first(info.get("model")),
        "version": _first(info.get("firmware")),
        "description": _first(info.get("description")),
        "contact": _first(info.get("contact")),
        "uptime": _first(info.get("uptime")),
        "device_type": _first(info.get("type")),
    }
    if ips:
        attrs["ip_addresses"] = ips
    out: list[Item] = []
    if raw_mac is not None and mac is None:
        out.append(InputWarning(
            record_type="ci",
            reason=f"MAC {raw_mac!r} is not a MAC address; not used to identify the device",
            origin=Origin(file=file, record=record)))
        attrs["invalid_mac_addresses"] = [raw_mac]
    return [*out, CIRecord(
        ci_class=ci_class,
        name=name or serial or str(mac),
        identifiers=Identifiers(
            native_key=native_key,
            serial_number=serial,
            asset_tag=_first(info.get("assettag")),
            hostname=hostname.lower() if hostname else None,
            mac_addresses=(mac,) if mac else (),
        ),
        attributes={k: v for k, v in attrs.items() if v is not None},
        location=_first(info.get("location")),
        origin=Origin(file=file, record=record),
    )]


class GLPIInventoryImporter(JSONImporter):
    """Import one GLPI Agent JSON inventory (``glpi-project/inventory_format`` JSON schema).

    A computer inventory yields the computer's CI record and one software record per installed
    software; a network inventory or discovery (``content.network_device``) yields the device's
    CI record. See the module docstring for the mapping.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed JSON, no top-level object, a missing
        ``deviceid`` or ``content``, a non-computer inventory without ``network_device``, or a
        software entry without ``name``.
    """

    kind = "glpi"
    description = "GLPI Agent JSON inventory (glpi-project/inventory_format JSON schema)"
    relationship_basis = RelationshipBasis.DISCOVERED

    def transform(self, doc: Any, origin: str) -> list[Item]:
        """The records of one inventory."""
        if not isinstance(doc, dict):
            raise InvalidRecordError("expected a JSON object (one inventory)", file=origin)
        require(doc, "deviceid", file=origin)
        content = require(doc, "content", file=origin)
        if not isinstance(content, dict):
            raise InvalidRecordError("must be an object", file=origin, field="content")
        itemtype = _clean(doc.get("itemtype"))
        device = content.get("network_device")
        if device is not None or (itemtype not in (None, "Computer")):
            if not isinstance(device, dict):
                raise InvalidRecordError(
                    f"a {itemtype} inventory needs a network_device object", file=origin,
                    record=str(doc["deviceid"]), field="network_device",
                )
            where = "/content/network_device"
            with guard(origin, record=where):
                return network_device(device, itemtype=itemtype, file=origin, record=where)
        return computer_records(doc, origin)
