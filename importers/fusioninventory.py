"""FusionInventory agent XML: the OCS Inventory-derived ``REQUEST``/``CONTENT`` messages.

Follows the "original" formats documented in ``glpi-project/inventory_format``
(``original.md``, ``original-netdiscovery.md``, ``original-netinventory.md``): a
``<REQUEST><CONTENT>...</CONTENT><DEVICEID/><QUERY/></REQUEST>`` message whose ``QUERY`` is
``INVENTORY`` (HARDWARE, BIOS, OPERATINGSYSTEM, NETWORKS, SOFTWARES, USERS...),
``NETDISCOVERY`` (one or more ``DEVICE``) or ``SNMPQUERY``/``NETINVENTORY`` (``DEVICE/INFO``).

Reading turns the XML into the JSON shape of the GLPI Agent inventory format (lower-case
names; sections that are one object in the JSON schema stay objects, the others become lists),
so the mapping is the one of :mod:`importers.glpi`: an ``INVENTORY`` is a computer with its
software, every discovered ``DEVICE`` a network device.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import RelationshipBasis
from cmdb_graph.model.records import CIRecord
from importers.base import Importer, Item, guard
from importers.glpi import computer_records, network_device
from importers.readers import parse_xml

__all__ = ["FusionInventoryXMLImporter"]

#: XML CONTENT sections that are one object in the JSON schema (all others are lists)
_XML_SINGLETONS = {
    "hardware", "bios", "operatingsystem", "accountinfo", "accesslog", "versionprovider",
    "versionclient", "moduleversion", "processnumber", "info",
}
#: XML child elements that are lists in the JSON shape even when they occur once
_LIST_KEYS = {"ip"}
_NETWORK_QUERIES = ("NETDISCOVERY", "SNMPQUERY", "NETINVENTORY")


def _xml_value(elem: Element) -> Any:
    children = list(elem)
    if not children:
        return elem.text.strip() if elem.text and elem.text.strip() else None
    out: dict[str, Any] = {}
    for child in children:
        key = child.tag.lower()
        value = _xml_value(child)
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            out[key].append(value)
        else:
            out[key] = [value] if key in _LIST_KEYS else value
    return out


def message(root: Element, file: str) -> dict[str, Any]:
    """A ``<REQUEST>`` message in the JSON shape: ``{"query", "deviceid", "content"}``.

    Raises
    ------
    InvalidRecordError
        A root other than ``REQUEST``, or no ``QUERY`` or ``CONTENT``.
    """
    if root.tag != "REQUEST":
        raise InvalidRecordError(
            f"expected a <REQUEST> root element, found <{root.tag}>", file=file, field="REQUEST",
        )
    query = (root.findtext("QUERY") or "").strip().upper()
    if not query:
        raise InvalidRecordError("required element is missing or empty", file=file,
                                 field="QUERY")
    content_elem = root.find("CONTENT")
    if content_elem is None:
        raise InvalidRecordError("required element is missing", file=file, field="CONTENT")
    content: dict[str, Any] = {}
    for child in content_elem:
        key = child.tag.lower()
        value = _xml_value(child)
        if key in _XML_SINGLETONS:
            content.setdefault(key, value)
        else:
            content.setdefault(key, []).append(value)
    return {"query": query, "deviceid": (root.findtext("DEVICEID") or "").strip(),
            "content": content}


class FusionInventoryXMLImporter(Importer[Mapping[str, Any]]):
    """Import one FusionInventory agent XML message (OCS-derived ``REQUEST``/``CONTENT``).

    ``QUERY`` ``INVENTORY`` yields a computer and its software; ``NETDISCOVERY`` one CI per
    ``DEVICE``; ``SNMPQUERY``/``NETINVENTORY`` the device of ``DEVICE/INFO``. The mapping is
    the one of :mod:`importers.glpi`; the transform takes the message in its JSON shape
    (:func:`message`).

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed XML, a root other than ``REQUEST``, no
        ``CONTENT`` or ``QUERY``, an ``INVENTORY`` without ``DEVICEID``, a discovered device
        with no name, IP, serial or MAC, or a software entry without ``NAME``.
    """

    kind = "fusioninventory"
    description = "FusionInventory agent XML (OCS-style REQUEST/CONTENT: inventory, netdiscovery)"
    relationship_basis = RelationshipBasis.DISCOVERED

    def read(self, path: Path) -> Mapping[str, Any]:
        return message(parse_xml(path), str(path))

    def transform(self, doc: Mapping[str, Any], origin: str) -> list[Item]:
        """The records of one message."""
        query = str(doc.get("query") or "")
        content = doc.get("content") or {}
        if query == "INVENTORY":
            if not doc.get("deviceid"):
                raise InvalidRecordError("required element is missing or empty", file=origin,
                                         field="DEVICEID")
            return computer_records(doc, origin)
        if query in _NETWORK_QUERIES:
            records = list(_devices(content, origin))
            if not any(isinstance(r, CIRecord) for r in records):
                raise InvalidRecordError(f"{query} message has no DEVICE", file=origin,
                                         field="DEVICE")
            return records
        raise InvalidRecordError(
            f"unsupported QUERY {query!r}; expected INVENTORY, NETDISCOVERY, SNMPQUERY or "
            "NETINVENTORY", file=origin, field="QUERY",
        )


def _devices(content: Mapping[str, Any], file: str) -> Iterator[Item]:
    devices = content.get("device")
    for index, device in enumerate(devices if isinstance(devices, list) else [devices],
                                   start=1):
        if not isinstance(device, dict):
            continue
        nested = device.get("info")
        info: dict[str, Any] = nested if isinstance(nested, dict) else device
        where = f"DEVICE[{index}]"
        with guard(file, record=where):
            yield from network_device(info, itemtype=None, file=file, record=where)
