"""GLPI REST API item lists: computers, network equipment, printers, phones and monitors.

Follows GLPI's REST API (``apirest.md`` in glpi-project/glpi, "Get all items":
``GET /apirest.php/:itemtype/?expand_dropdowns=true&range=0-49``), whose answer is a JSON list
of the itemtype's rows; with ``expand_dropdowns`` the dropdown fields (``*_id``) hold names
instead of numbers. The itemtype is read from the origin URL (``.../apirest.php/Computer/``),
else from the ``itemtype`` option (a saved page).

Mapping (per row; rows with ``is_deleted`` or ``is_template`` set are left out):

* class: Computer by ``computertypes_id`` (server, blade -> ``Server``; virtual, VM ->
  ``VirtualMachine``; anything else -> ``Computer``); NetworkEquipment -> ``NetworkDevice``
  (``StorageDevice`` when its type names storage, SAN or NAS); Printer -> ``Printer``; Phone
  -> ``MobileDevice``; Monitor, Peripheral -> ``Peripheral``.
* native key: a computer's ``uuid`` in lower case (the key the GLPI agent inventory importer
  gives the same machine, so both meet); network equipment and printers ``serial:<serial>``
  (likewise); else ``glpi:<itemtype>:<id>``.
* identifiers: ``serial`` -> serial_number, ``otherserial`` (inventory number) -> asset_tag,
  ``name`` -> hostname (short, lower case) and fqdn when dotted.
* attributes: glpi_id, manufacturer (``manufacturers_id``), model (``*models_id``), glpi_type
  (``*types_id``), glpi_state (``states_id``), last_user (``contact``), comment, uuid; the location
  (``locations_id``, GLPI's "A > B" path) is the CI's location; ``groups_id_tech`` its support
  group.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cmdb_graph.model.entities import Scalar
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record
from importers.base import JSONImporter, guard, mapping_items, require
from importers.base import text_or_none as _str

__all__ = ["GLPIRestImporter", "ITEMTYPES"]

#: itemtype -> (default class, model field, type field)
ITEMTYPES: dict[str, tuple[str, str, str]] = {
    "Computer": ("Computer", "computermodels_id", "computertypes_id"),
    "NetworkEquipment": ("NetworkDevice", "networkequipmentmodels_id",
                         "networkequipmenttypes_id"),
    "Printer": ("Printer", "printermodels_id", "printertypes_id"),
    "Phone": ("MobileDevice", "phonemodels_id", "phonetypes_id"),
    "Monitor": ("Peripheral", "monitormodels_id", "monitortypes_id"),
    "Peripheral": ("Peripheral", "peripheralmodels_id", "peripheraltypes_id"),
}
_ITEMTYPE_IN_URL = re.compile(r"apirest\.php/([A-Za-z]+)")


def _class(itemtype: str, type_name: str | None) -> str:
    words = (type_name or "").lower()
    if itemtype == "Computer":
        if re.search(r"server|blade", words):
            return "Server"
        if re.search(r"virtual|\bvm\b", words):
            return "VirtualMachine"
    if itemtype == "NetworkEquipment" and re.search(r"storage|\bsan\b|\bnas\b", words):
        return "StorageDevice"
    return ITEMTYPES[itemtype][0]


def _name(value: Any) -> str | None:
    """A dropdown value: a name when expanded, nothing for 0 or an unexpanded number."""
    if isinstance(value, int | float) or value in ("0", 0):
        return None
    return _str(value)


class GLPIRestImporter(JSONImporter):
    """GLPI REST API "Get all items" pages -> CIs (see the module docstring).

    Parameters
    ----------
    itemtype : str
        The itemtype of a page whose origin URL does not name one (a saved page).
    """

    kind = "glpi-rest"
    description = "GLPI REST API item list (GET /apirest.php/:itemtype/, expand_dropdowns)"

    def __init__(self, *, itemtype: str = "Computer") -> None:
        if itemtype not in ITEMTYPES:
            raise ValueError(f"itemtype must be one of {', '.join(ITEMTYPES)}")
        self.itemtype = itemtype

    def transform(self, doc: Any, origin: str) -> list[Record]:
        """One CI per row that is neither deleted nor a template."""
        found = _ITEMTYPE_IN_URL.search(origin)
        itemtype = found.group(1) if found and found.group(1) in ITEMTYPES else self.itemtype
        out: list[Record] = []
        for where, row in mapping_items(doc, file=origin, pointer="", what="a GLPI item"):
            if str(row.get("is_deleted") or 0) == "1" or str(row.get("is_template") or 0) == "1":
                continue
            with guard(origin, record=where):
                out.append(self._ci(itemtype, row, Origin(file=origin, record=where)))
        return out

    @staticmethod
    def _ci(itemtype: str, row: Mapping[str, Any], origin: Origin) -> CIRecord:
        glpi_id = require(row, "id", file=origin.file, record=origin.record)
        _, model_field, type_field = ITEMTYPES[itemtype]
        name = _str(row.get("name"))
        serial = _str(row.get("serial"))
        uuid = (_str(row.get("uuid")) or "").lower() or None
        if itemtype == "Computer" and uuid:
            key = uuid
        elif itemtype in ("NetworkEquipment", "Printer") and serial:
            key = f"serial:{serial}"
        else:
            key = f"glpi:{itemtype}:{glpi_id}"
        attrs: dict[str, Scalar | list[str]] = {
            "glpi_id": glpi_id if isinstance(glpi_id, int) else str(glpi_id),
            "manufacturer": _name(row.get("manufacturers_id")),
            "model": _name(row.get(model_field)),
            "glpi_type": _name(row.get(type_field)),
            "glpi_state": _name(row.get("states_id")),
            "last_user": _str(row.get("contact")),
            "comment": _str(row.get("comment")),
            "uuid": uuid,
        }
        return CIRecord(
            ci_class=_class(itemtype, _name(row.get(type_field))),
            name=name or f"{itemtype} {glpi_id}",
            identifiers=Identifiers(
                native_key=key, serial_number=serial, asset_tag=_str(row.get("otherserial")),
                hostname=name.split(".", 1)[0].lower() if name else None,
                fqdn=name.lower() if name and "." in name else None),
            attributes={k: v for k, v in attrs.items() if v is not None},
            location=_name(row.get("locations_id")),
            support_group=_name(row.get("groups_id_tech")),
            origin=origin,
        )
