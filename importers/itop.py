"""iTop XML data exports: configuration items and their links.

Follows the XML data format of iTop (Combodo), the one its setup loads as sample data
(``datamodels/2.x/itop-config-mgmt/data/data.sample.*.xml``) and that its XML bulk export
writes: a ``<Set>`` root whose children are objects named after their iTop class, each with an
``id`` attribute and one child element per attribute (``<Server id="1"><name>Server1</name>
<serialnumber/>...</Server>``). External keys are numeric ids (``<system_id>3</system_id>``);
``0`` or an empty element means "none".

Identity. Every CI class of iTop's configuration management module derives from
``FunctionalCI``, and iTop gives all of them one id space. This importer therefore keys every CI
as ``FunctionalCI:<id>`` (``native_key``), whatever its class, so that a link in one file
(``lnkApplicationSolutionToFunctionalCI``, a ``system_id``) resolves to an object read from
another file, and files can be imported one by one or together.

Mapping (iTop class -> CI class; external key -> relationship):

============================ ================= ===============================================
iTop class                   CI class          relationships
============================ ================= ===============================================
Server                       Server            rack_id: CONTAINS (rack -> server)
NetworkDevice                NetworkDevice     rack_id
StorageSystem, NAS,          StorageDevice     rack_id
TapeLibrary
SANSwitch                    NetworkDevice     rack_id
PC                           Computer
Printer                      Printer
Phone, MobilePhone,          MobileDevice
IPPhone, Tablet
Peripheral                   Peripheral
Rack                         Rack
Enclosure                    Hardware          rack_id
PowerSource, PDU             Hardware
Hypervisor                   Hypervisor        server_id: RUNS_ON; farm_id: MEMBER_OF
Farm                         Cluster
VirtualMachine               VirtualMachine    virtualhost_id: HOSTED_ON
DBServer                     Database          system_id: RUNS_ON
DatabaseSchema               Database          dbserver_id: RUNS_ON
WebServer, Middleware        Middleware        system_id: RUNS_ON
MiddlewareInstance           Middleware        middleware_id: RUNS_ON
WebApplication               Application       webserver_id: RUNS_ON
PCSoftware, OtherSoftware    Application       system_id: RUNS_ON
ApplicationSolution          ApplicationService
BusinessProcess              BusinessService
============================ ================= ===============================================

Link classes: ``lnkApplicationSolutionToFunctionalCI`` becomes ``DEPENDS_ON`` from the
application solution to the functional CI; ``lnkApplicationSolutionToBusinessProcess`` becomes
``DEPENDS_ON`` from the business process to the solution; ``lnkConnectableCIToNetworkDevice``
becomes ``CONNECTS_TO`` from the connectable CI to the network device. ``Location`` objects
become location records. Other classes (organisations, contacts, typology, other links) are
skipped: they are not configuration items.

Values. ``business_criticity`` high/medium/low becomes ``business_criticality`` 1/2/3.
``status`` maps to ``operational_status`` (production, active -> operational; implementation,
stock, inactive -> non_operational; obsolete -> retired). ``serialnumber`` and
``asset_number`` are identifiers; the ``RUNS_ON`` target of an application, database or
middleware is also its ``host`` identifier (the ``name_host`` rule); ``managementip`` is an
IP address. Typology external keys (``brand_id``, ``model_id``, ``osfamily_id``,
``osversion_id``, ``org_id``, ``location_id``) are kept as ``itop_*`` attributes, because the
file carries their ids, not their names. Physical devices also yield an asset record (iTop
holds their asset data: asset number, purchase date, end of warranty), keyed
``PhysicalDevice:<id>`` and tracking the CI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import LifecycleStage, Scalar
from cmdb_graph.model.records import (
    AssetRecord,
    CIRecord,
    Identifiers,
    LocationRecord,
    Origin,
    Record,
    RelationshipRecord,
)
from importers.base import XMLImporter, guard

__all__ = ["ITopXMLImporter", "functional_ci_key"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _ClassMap:
    ci_class: str
    physical: bool = False
    #: external key element -> (relationship type, True when the relationship points from
    #: the referenced object to this one, e.g. a rack CONTAINS its devices)
    refs: tuple[tuple[str, str, bool], ...] = ()


_RACKED = (("rack_id", "CONTAINS", True), ("enclosure_id", "CONTAINS", True))

_CLASSES: dict[str, _ClassMap] = {
    "Server": _ClassMap("Server", True, _RACKED),
    "NetworkDevice": _ClassMap("NetworkDevice", True, _RACKED),
    "StorageSystem": _ClassMap("StorageDevice", True, _RACKED),
    "NAS": _ClassMap("StorageDevice", True, _RACKED),
    "TapeLibrary": _ClassMap("StorageDevice", True, _RACKED),
    "SANSwitch": _ClassMap("NetworkDevice", True, _RACKED),
    "PC": _ClassMap("Computer", True),
    "Printer": _ClassMap("Printer", True),
    "Phone": _ClassMap("MobileDevice", True),
    "MobilePhone": _ClassMap("MobileDevice", True),
    "IPPhone": _ClassMap("MobileDevice", True),
    "Tablet": _ClassMap("MobileDevice", True),
    "Peripheral": _ClassMap("Peripheral", True),
    "Rack": _ClassMap("Rack", True),
    "Enclosure": _ClassMap("Hardware", True, (("rack_id", "CONTAINS", True),)),
    "PowerSource": _ClassMap("Hardware", True),
    "PDU": _ClassMap("Hardware", True, (("rack_id", "CONTAINS", True),)),
    "Hypervisor": _ClassMap(
        "Hypervisor", False, (("server_id", "RUNS_ON", False), ("farm_id", "MEMBER_OF", False))
    ),
    "Farm": _ClassMap("Cluster"),
    "VirtualMachine": _ClassMap("VirtualMachine", False, (("virtualhost_id", "HOSTED_ON", False),)),
    "DBServer": _ClassMap("Database", False, (("system_id", "RUNS_ON", False),)),
    "DatabaseSchema": _ClassMap("Database", False, (("dbserver_id", "RUNS_ON", False),)),
    "WebServer": _ClassMap("Middleware", False, (("system_id", "RUNS_ON", False),)),
    "Middleware": _ClassMap("Middleware", False, (("system_id", "RUNS_ON", False),)),
    "MiddlewareInstance": _ClassMap(
        "Middleware", False, (("middleware_id", "RUNS_ON", False),)
    ),
    "WebApplication": _ClassMap("Application", False, (("webserver_id", "RUNS_ON", False),)),
    "PCSoftware": _ClassMap("Application", False, (("system_id", "RUNS_ON", False),)),
    "OtherSoftware": _ClassMap("Application", False, (("system_id", "RUNS_ON", False),)),
    "ApplicationSolution": _ClassMap("ApplicationService"),
    "BusinessProcess": _ClassMap("BusinessService"),
}

#: link class -> (source key element, target key element, relationship type)
_LINKS: dict[str, tuple[str, str, str]] = {
    "lnkApplicationSolutionToFunctionalCI": (
        "applicationsolution_id", "functionalci_id", "DEPENDS_ON"
    ),
    "lnkApplicationSolutionToBusinessProcess": (
        "businessprocess_id", "applicationsolution_id", "DEPENDS_ON"
    ),
    "lnkConnectableCIToNetworkDevice": ("connectableci_id", "networkdevice_id", "CONNECTS_TO"),
}

_CRITICALITY = {"high": 1, "medium": 2, "low": 3}
_STATUS = {
    "production": "operational",
    "active": "operational",
    "implementation": "non_operational",
    "stock": "non_operational",
    "inactive": "non_operational",
    "obsolete": "retired",
}
_LIFECYCLE = {
    "production": LifecycleStage.IN_USE,
    "implementation": LifecycleStage.IN_USE,
    "stock": LifecycleStage.IN_STOCK,
    "obsolete": LifecycleStage.RETIRED,
}
#: typology and organisation external keys kept as attributes (the file has ids, not names)
_ID_ATTRIBUTES = (
    "org_id", "location_id", "brand_id", "model_id", "osfamily_id", "osversion_id",
    "oslicence_id", "software_id", "softwarelicence_id", "networkdevicetype_id",
    "iosversion_id", "powerA_id", "powerB_id",
)
_PLAIN_ATTRIBUTES = ("cpu", "ram", "nb_u", "path", "url", "move2production", "version")


def functional_ci_key(object_id: str) -> str:
    """The native key of the iTop functional CI with id ``object_id``: ``FunctionalCI:<id>``."""
    return f"FunctionalCI:{object_id}"


def _text(elem: Element, tag: str) -> str | None:
    child = elem.find(tag)
    if child is None or child.text is None:
        return None
    value = child.text.strip()
    return value or None


def _ref(elem: Element, tag: str) -> str | None:
    """An external key value, or ``None`` for an empty element or iTop's ``0`` (no object)."""
    value = _text(elem, tag)
    return None if value in (None, "0") else value


class ITopXMLImporter(XMLImporter):
    """Import an iTop XML data file (``<Set>`` of iTop objects); see the module docstring.

    Follows iTop's XML data format as used by ``data.sample.*.xml`` in Combodo/iTop
    (``datamodels/2.x/itop-config-mgmt/data``). Records point at their object as
    ``<Class>[id=<id>]``; XML has no line numbers after parsing.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed XML, a root other than ``<Set>``, an object
        without ``id``, a CI without ``name``, or a link without one of its two ends.
    """

    kind = "itop"
    description = "iTop XML data export (<Set> of iTop objects, FunctionalCI id space)"

    def transform(self, doc: Element, origin: str) -> list[Record]:
        """CI, relationship, asset and location records of one ``<Set>``."""
        root, name = doc, origin
        if root.tag != "Set":
            raise InvalidRecordError(
                f"expected an iTop <Set> root element, found <{root.tag}>", file=name,
                field="Set",
            )
        records: list[Record] = []
        skipped: dict[str, int] = {}
        for index, obj in enumerate(root, start=1):
            if not isinstance(obj.tag, str):  # comments and processing instructions
                continue
            itop_class = obj.tag
            object_id = (obj.get("id") or "").strip()
            where = f"{itop_class}[id={object_id}]" if object_id else f"{itop_class} #{index}"
            if itop_class in _CLASSES or itop_class in _LINKS or itop_class == "Location":
                if not object_id:
                    raise InvalidRecordError(
                        "object has no id attribute", file=name, record=where, field="id"
                    )
            at = Origin(file=name, record=where)
            with guard(name, record=where):
                if itop_class in _CLASSES:
                    records.extend(self._ci(obj, _CLASSES[itop_class], object_id, at))
                elif itop_class in _LINKS:
                    records.append(self._link(obj, _LINKS[itop_class], at))
                elif itop_class == "Location":
                    records.append(self._location(obj, at))
                else:
                    skipped[itop_class] = skipped.get(itop_class, 0) + 1
        if skipped:
            log.info("%s: skipped iTop objects that are no CI or link: %s", name, skipped)
        return records

    @staticmethod
    def _required(obj: Element, tag: str, origin: Origin) -> str:
        value = _text(obj, tag)
        if value is None:
            raise InvalidRecordError(
                "required element is missing or empty", file=origin.file, record=origin.record,
                field=tag,
            )
        return value

    def _ci(
        self, obj: Element, cmap: _ClassMap, object_id: str, origin: Origin
    ) -> Iterator[Record]:
        ci_name = self._required(obj, "name", origin)
        key = functional_ci_key(object_id)
        serial = _text(obj, "serialnumber")
        asset_number = _text(obj, "asset_number")
        host = next(
            (_ref(obj, tag) for tag, rel_type, _ in cmap.refs if rel_type == "RUNS_ON"), None
        )
        ids = Identifiers(
            native_key=key,
            serial_number=serial,
            asset_tag=asset_number,
            host=Identifiers(native_key=functional_ci_key(host)) if host else None,
        )
        attrs: dict[str, Scalar | list[str]] = {"itop_class": obj.tag, "itop_id": object_id}
        criticity = _text(obj, "business_criticity")
        if criticity is not None:
            level = _CRITICALITY.get(criticity.lower())
            if level is None:
                raise InvalidRecordError(
                    f"unknown business_criticity {criticity!r}; expected high, medium or low",
                    file=origin.file, record=origin.record, field="business_criticity",
                )
            attrs["business_criticality"] = level
        status = _text(obj, "status")
        if status is not None:
            attrs["itop_status"] = status
            if status.lower() in _STATUS:
                attrs["operational_status"] = _STATUS[status.lower()]
        description = _text(obj, "description")
        if description is not None:
            attrs["description"] = description
        ip = _text(obj, "managementip")
        if ip is not None:
            attrs["ip_addresses"] = [ip]
        for tag in _PLAIN_ATTRIBUTES:
            value = _text(obj, tag)
            if value is not None:
                attrs[tag if tag != "move2production" else "move_to_production"] = value
        for tag in _ID_ATTRIBUTES:
            value = _ref(obj, tag)
            if value is not None:
                attrs[f"itop_{tag}"] = value
        yield CIRecord(ci_class=cmap.ci_class, name=ci_name, identifiers=ids, attributes=attrs,
                       origin=origin)
        for tag, rel_type, reverse in cmap.refs:
            target = _ref(obj, tag)
            if target is None:
                continue
            this, other = Identifiers(native_key=key), Identifiers(
                native_key=functional_ci_key(target)
            )
            yield RelationshipRecord(
                rel_type=rel_type,
                source=other if reverse else this,
                target=this if reverse else other,
                evidence=f"{obj.tag}.{tag}",
                origin=origin,
            )
        if cmap.physical:
            asset_attrs: dict[str, Scalar] = {}
            for tag, attr in (("purchase_date", "purchase_date"),
                              ("end_of_warranty", "warranty_end")):
                value = _text(obj, tag)
                if value is not None:
                    asset_attrs[attr] = value
            yield AssetRecord(
                native_key=f"PhysicalDevice:{object_id}",
                asset_tag=asset_number,
                serial_number=serial,
                name=ci_name,
                lifecycle_stage=_LIFECYCLE.get((status or "").lower()),
                attributes=asset_attrs,
                tracks=Identifiers(native_key=key),
                origin=origin,
            )

    def _link(self, obj: Element, link: tuple[str, str, str], origin: Origin) -> Record:
        source_tag, target_tag, rel_type = link
        source = _ref(obj, source_tag)
        target = _ref(obj, target_tag)
        if source is None or target is None:
            raise InvalidRecordError(
                "link end is missing, empty or 0", file=origin.file, record=origin.record,
                field=source_tag if source is None else target_tag,
            )
        return RelationshipRecord(
            rel_type=rel_type,
            source=Identifiers(native_key=functional_ci_key(source)),
            target=Identifiers(native_key=functional_ci_key(target)),
            evidence=obj.tag,
            origin=origin,
        )

    def _location(self, obj: Element, origin: Origin) -> Record:
        attrs: dict[str, Scalar] = {"itop_id": obj.get("id")}
        for tag in ("address", "postal_code", "city", "country"):
            value = _text(obj, tag)
            if value is not None:
                attrs[tag] = value
        return LocationRecord(
            name=self._required(obj, "name", origin), kind="site", attributes=attrs,
            origin=origin,
        )
