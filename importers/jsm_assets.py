"""Jira Service Management Assets (formerly Insight) JSON: load files and REST object payloads.

Two shapes are accepted; the importer tells them apart by their keys.

1. The load format of WuerthPhoenix's ``load-jsm-cmdb`` scripts
   (github.com/WuerthPhoenix/Atlassian-Extension-Scripts, ``load-jsm-cmdb/sample-data.json`` and
   ``samples/neteye-hosts-ready.json_sample``): a JSON list of products::

       [{"PRODUCTNAME": "Product 4", "PRODUCTDESCRIPTION": "...", "PRODUCT_ORGANIZATION": "MyORG1",
         "PRICE": "0,00 EURO", "SEARCHKEY": "Product4_NoSpace", "PRODUCT_ITEMNUMBER": "123",
         "COMPONENTS": [{"Name": "Component 1", "COMPONENTDESCRIPTION": "...",
                         "COMPONENT_MODEL": "Model ABC", "SEARCHKEY": "COMPONENT1_NoSpace",
                         "PRODUCT_ITEMNUMBER": "123"}]}]

   ``SEARCHKEY`` is the key the script looks objects up by, so it is our native key; it and the
   name are required. The script links a component to the product whose ``ItemNumber`` equals
   the component's ``PRODUCT_ITEMNUMBER`` (its ``ProductLink`` attribute); we do the same, and
   fall back to the product the component is nested in. Top-level entries without
   ``PRODUCTNAME`` but with ``Name`` are components (the script's separate component file).
   Entries whose ``LINK`` points at a NetEye monitoring host page (the ``neteye-hosts-ready``
   sample) are object type ``Monitored Host`` (class ConfigurationItem: a monitored host may be
   a server, a VM or a switch, the file does not say which).

   The composite relation becomes ``product -[DEPENDS_ON]-> component`` by default: a product
   is delivered by its components, so a failed component impacts the product (CONTAINS would
   carry impact the other way, from the product to its parts). Pass
   ``component_relationship="CONTAINS"`` for the structural reading.

2. The JSM Assets REST object shape (``GET /rest/insight/1.0/object/{id}``, the ``objectEntries``
   of ``/object/navlist/iql`` and ``/iql/objects``, the ``values`` of the cloud
   ``/object/aql``; documented at developer.atlassian.com "Assets REST API" / "Insight REST
   API")::

       {"objectKey": "ITSM-101", "label": "pay-app-01",
        "objectType": {"name": "Host"}, "created": "...", "updated": "...",
        "attributes": [{"objectTypeAttribute": {"name": "Serial Number"},
                        "objectAttributeValues": [{"value": "VMW-9921-A1"}]},
                       {"objectTypeAttribute": {"name": "Depends on"},
                        "objectAttributeValues": [{"referencedObject":
                            {"objectKey": "ITSM-5", "label": "db01"}}]}]}

   The object type's name gives the CI class (the same map as the JSM CSV mapping,
   ``importers/mappings/jsm_assets_csv.yaml``, extended by ``classes``). Attributes named like an
   identifier (Serial Number, Asset Tag, Hostname, FQDN, MAC Address), IP Address, Status,
   Owner, Support Group / Team, Location, Operating System, Manufacturer, Model, Environment
   fill those fields; a reference attribute named in ``reference_types`` (Depends on, Runs on,
   Hosted on, Installed on, Connected to, Members, Member of, Contains, Components) becomes a
   relationship from this object to the referenced one; any other attribute is kept under its
   snake_case name (references by their labels).

Records: one :class:`~cmdb_graph.model.records.CIRecord` per object (native key
``SEARCHKEY`` / ``objectKey``) and one
:class:`~cmdb_graph.model.records.RelationshipRecord` per composite link or reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import Scalar
from cmdb_graph.model.records import (
    CIRecord,
    Identifiers,
    Origin,
    Record,
    RelationshipRecord,
)
from cmdb_graph.model.registry import CLASS_NAME, REL_NAME
from importers.base import JSONImporter, guard, mapping_items, require
from importers.mapped_values import snake_case
from importers.mapping_spec import load_mapping

__all__ = ["JSMAssetsImporter", "DEFAULT_REFERENCE_TYPES"]

#: reference attribute name (case-insensitive) -> (relationship type, reverse?). ``reverse``
#: means the referenced object is the dependent end (a cluster's ``Members``).
DEFAULT_REFERENCE_TYPES: dict[str, tuple[str, bool]] = {
    "depends on": ("DEPENDS_ON", False),
    "dependencies": ("DEPENDS_ON", False),
    "uses": ("DEPENDS_ON", False),
    "components": ("DEPENDS_ON", False),
    "component": ("DEPENDS_ON", False),
    "runs on": ("RUNS_ON", False),
    "installed on": ("RUNS_ON", False),
    "hosted on": ("HOSTED_ON", False),
    "virtual host": ("HOSTED_ON", False),
    "connected to": ("CONNECTS_TO", False),
    "uplink": ("CONNECTS_TO", False),
    "member of": ("MEMBER_OF", False),
    "cluster": ("MEMBER_OF", False),
    "members": ("MEMBER_OF", True),
    "contains": ("CONTAINS", False),
}

_IDENTIFIER_ATTRS = {
    "serial number": "serial_number",
    "serial": "serial_number",
    "serialnumber": "serial_number",
    "asset tag": "asset_tag",
    "hostname": "hostname",
    "host name": "hostname",
    "fqdn": "fqdn",
    "cloud id": "cloud_id",
    "instance id": "cloud_id",
}
_FIELD_ATTRS = {
    "operating system": "os_name",
    "os": "os_name",
    "os version": "os_version",
    "manufacturer": "manufacturer",
    "vendor": "manufacturer",
    "model": "model",
    "environment": "environment",
    "description": "description",
}
_STATUS = {
    "running": "operational", "active": "operational", "in use": "operational",
    "live": "operational", "production": "operational", "stopped": "non_operational",
    "inactive": "non_operational", "in stock": "non_operational", "in repair": "repair",
    "maintenance": "repair", "retired": "retired", "disposed": "retired",
}

#: classes of the load format's object types
_LOAD_FORMAT_CLASSES = {"Product": "BusinessService", "Component": "ConfigurationItem",
                        "Monitored Host": "ConfigurationItem"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class JSMAssetsImporter(JSONImporter):
    """JSM Assets JSON: WuerthPhoenix load files or REST object payloads (module docstring).

    Parameters
    ----------
    classes : dict of str to str, optional
        Object type name -> CI class, on top of the defaults (``Product`` -> BusinessService,
        ``Component`` and ``Monitored Host`` -> ConfigurationItem, and the JSM CSV mapping's
        map, e.g. ``Host`` -> Server).
    component_relationship : {"DEPENDS_ON", "CONTAINS"}
        Relationship type of the load format's product -> component composite relation.
    reference_types : dict of str to (str, bool), optional
        Reference attribute name -> (relationship type, reverse), replacing
        :data:`DEFAULT_REFERENCE_TYPES`.

    Raises
    ------
    ValueError
        A class or relationship type name is malformed.
    """

    kind: ClassVar[str] = "jsm-assets"
    description: ClassVar[str] = (
        "JSM Assets JSON (WuerthPhoenix load-jsm-cmdb format or Assets REST objects)"
    )

    def __init__(
        self,
        classes: Mapping[str, str] | None = None,
        component_relationship: Literal["DEPENDS_ON", "CONTAINS"] = "DEPENDS_ON",
        reference_types: Mapping[str, tuple[str, bool]] | None = None,
    ) -> None:
        csv_spec = load_mapping("jsm_assets_csv").ci_class
        base = {str(k): str(v) for k, v in ((csv_spec.map if csv_spec else None) or {}).items()}
        self.classes = {**base, **_LOAD_FORMAT_CLASSES, **dict(classes or {})}
        for cls in self.classes.values():
            if not CLASS_NAME.match(cls):
                raise ValueError(f"classes: {cls!r} is not a CI class name")
        if component_relationship not in ("DEPENDS_ON", "CONTAINS"):
            raise ValueError("component_relationship must be DEPENDS_ON or CONTAINS")
        self.component_relationship = component_relationship
        self.reference_types = {k.casefold(): v for k, v in
                                (reference_types or DEFAULT_REFERENCE_TYPES).items()}
        for rel, _ in self.reference_types.values():
            if not REL_NAME.match(rel):
                raise ValueError(f"reference_types: {rel!r} is not a relationship type name")

    def _class(self, object_type: str) -> str:
        if object_type in self.classes:
            return self.classes[object_type]
        folded = object_type.casefold()
        for k, v in self.classes.items():
            if k.casefold() == folded:
                return v
        return "ConfigurationItem"

    # -- entry point --------------------------------------------------------------------------
    def transform(self, doc: Any, origin: str) -> list[Record]:
        """The CIs and relationships of one JSON document (either shape).

        Raises
        ------
        InvalidRecordError
            A shape that is neither format, or a record without its required fields (load
            format: ``PRODUCTNAME``/``Name`` and ``SEARCHKEY``; REST: ``objectKey`` and
            ``objectType.name``); the message names the file, the record (JSON pointer) and the
            field.
        """
        data, pointer = doc, ""
        if isinstance(data, Mapping):
            for key in ("objectEntries", "values"):
                if isinstance(data.get(key), list):
                    data, pointer = data[key], f"/{key}"
                    break
            else:
                data = [data]
        if not isinstance(data, list):
            raise InvalidRecordError("expected a list of objects (load format) or a JSM Assets "
                                     "REST object / objectEntries", file=origin, record="/")
        for i, item in enumerate(data):
            if not isinstance(item, Mapping):
                raise InvalidRecordError("each entry must be a JSON object", file=origin,
                                         record=f"{pointer}/{i}")
        if not data:
            return []
        if all("objectType" in item or "objectKey" in item for item in data):
            return self._rest(data, origin, pointer)
        return self._load_format(data, origin, pointer)

    # -- WuerthPhoenix load format ------------------------------------------------------------
    def _load_format(self, data: list[Mapping[str, Any]], file: str,
                     pointer: str) -> list[Record]:
        out: list[Record] = []
        products: dict[str, Identifiers] = {}
        pending: list[tuple[Identifiers, str | None, Identifiers | None, Origin]] = []
        for i, item in enumerate(data):
            where = f"{pointer}/{i}"
            if "PRODUCTNAME" not in item and "Name" in item:
                ident, origin, item_no = self._component(item, file, where, out)
                pending.append((ident, item_no, None, origin))
                continue
            name = str(require(item, "PRODUCTNAME", file=file, record=where))
            key = str(require(item, "SEARCHKEY", file=file, record=where))
            link = _text(item.get("LINK"))
            object_type = "Monitored Host" if link and "/monitoring/host" in link else "Product"
            attrs: dict[str, Scalar | list[str]] = {"object_type": object_type}
            for src, dst in (("PRODUCTDESCRIPTION", "description"),
                             ("PRODUCT_ORGANIZATION", "organization"), ("PRICE", "price"),
                             ("PRODUCT_ITEMNUMBER", "item_number"), ("LINK", "link")):
                v = _text(item.get(src))
                if v is not None:
                    attrs[dst] = v
            ident = Identifiers(native_key=key)
            origin = Origin(file=file, record=where)
            out.append(CIRecord(ci_class=self._class(object_type), name=name, identifiers=ident,
                                attributes=attrs, origin=origin))
            item_no = _text(item.get("PRODUCT_ITEMNUMBER"))
            if item_no is not None:
                products.setdefault(item_no, ident)
            for cwhere, comp in mapping_items(item.get("COMPONENTS"), file=file,
                                              pointer=f"{where}/COMPONENTS",
                                              what="a component", optional=True):
                cident, corigin, citem = self._component(comp, file, cwhere, out)
                pending.append((cident, citem, ident, corigin))
        for cident, item_no, parent, origin in pending:
            product = products.get(item_no) if item_no is not None else None
            product = product or parent
            if product is None:
                continue  # a separate component file: its product is not in this file
            out.append(RelationshipRecord(
                rel_type=self.component_relationship, source=product, target=cident,
                evidence="composite relation product -> component (ProductLink)",
                origin=origin,
            ))
        return out

    def _component(self, comp: Mapping[str, Any], file: str, where: str,
                   out: list[Record]) -> tuple[Identifiers, Origin, str | None]:
        name = str(require(comp, "Name", file=file, record=where))
        key = str(require(comp, "SEARCHKEY", file=file, record=where))
        attrs: dict[str, Scalar | list[str]] = {"object_type": "Component"}
        for src, dst in (("COMPONENTDESCRIPTION", "description"), ("COMPONENT_MODEL", "model"),
                         ("PRODUCT_ITEMNUMBER", "product_item_number")):
            v = _text(comp.get(src))
            if v is not None:
                attrs[dst] = v
        ident = Identifiers(native_key=key)
        origin = Origin(file=file, record=where)
        out.append(CIRecord(ci_class=self._class("Component"), name=name, identifiers=ident,
                            attributes=attrs, origin=origin))
        return ident, origin, _text(comp.get("PRODUCT_ITEMNUMBER"))

    # -- REST object shape --------------------------------------------------------------------
    def _rest(self, data: list[Mapping[str, Any]], file: str, pointer: str) -> list[Record]:
        out: list[Record] = []
        for i, obj in enumerate(data):
            where = f"{pointer}/{i}"
            with guard(file, record=where):
                out.extend(self._object(obj, Origin(file=file, record=where)))
        return out

    def _object(self, obj: Mapping[str, Any], origin: Origin) -> list[Record]:
        """One REST object: its CI, then the relationships of its reference attributes."""
        file, where = origin.file, str(origin.record)
        key = str(require(obj, "objectKey", file=file, record=where))
        otype = obj.get("objectType")
        type_name = _text(otype.get("name")) if isinstance(otype, Mapping) else None
        if type_name is None:
            raise InvalidRecordError("required field is missing or empty", file=file,
                                     record=where, field="objectType.name")
        fields = _Fields(Identifiers(native_key=key), {"native_key": key},
                         {"object_type": type_name},
                         _text(obj.get("label")) or _text(obj.get("name")))
        for f in ("created", "updated"):
            v = _text(obj.get(f))
            if v is not None:
                fields.attrs[f] = v
        for j, (awhere, attr) in enumerate(mapping_items(
                obj.get("attributes"), file=file, pointer=f"{where}/attributes",
                what="an attribute", optional=True)):
            self._attribute(attr, j, fields, origin, awhere)
        if fields.name is None:
            raise InvalidRecordError("the object has no label and no Name attribute",
                                     file=file, record=where, field="label")
        ci = CIRecord(
            ci_class=self._class(type_name), name=fields.name,
            identifiers=Identifiers(**fields.ident), attributes=fields.attrs,
            support_group=fields.extra["support_group"], owner=fields.extra["owner"],
            location=fields.extra["location"], origin=origin)
        return [ci, *fields.rels]

    def _attribute(self, attr: Mapping[str, Any], index: int, fields: _Fields,
                   origin: Origin, where: str) -> None:
        """Fold one attribute of a REST object into its fields (or a relationship)."""
        ota = attr.get("objectTypeAttribute")
        aname = (_text(ota.get("name")) if isinstance(ota, Mapping) else None) or \
            f"attribute {attr.get('objectTypeAttributeId', index)}"
        values = attr.get("objectAttributeValues") or []
        if not isinstance(values, list):
            raise InvalidRecordError("objectAttributeValues must be a list", file=origin.file,
                                     record=where, field="objectAttributeValues")
        texts: list[str] = []
        refs: list[Identifiers] = []
        for v in values:
            if not isinstance(v, Mapping):
                continue
            ref = v.get("referencedObject")
            if isinstance(ref, Mapping) and _text(ref.get("objectKey")):
                refs.append(Identifiers(native_key=str(ref["objectKey"]),
                                        name=_text(ref.get("label"))))
                texts.append(_text(ref.get("label")) or str(ref["objectKey"]))
                continue
            t = self._value_text(v)
            if t is not None:
                texts.append(t)
        folded = aname.casefold()
        if refs and folded in self.reference_types:
            rel, reverse = self.reference_types[folded]
            for r in refs:
                src, dst = (r, fields.me) if reverse else (fields.me, r)
                fields.rels.append(RelationshipRecord(
                    rel_type=rel, source=src, target=dst,
                    properties={"source_attribute": aname}, origin=origin))
            return
        if texts:
            fields.put(aname, folded, texts)

    @staticmethod
    def _value_text(v: Mapping[str, Any]) -> str | None:
        for key, sub in (("user", "displayName"), ("status", "name"), ("group", "name")):
            obj = v.get(key)
            if isinstance(obj, Mapping) and _text(obj.get(sub)):
                return _text(obj.get(sub))
        return _text(v.get("displayValue")) or _text(v.get("value"))


class _Fields:
    """What the attributes of one REST object fill in: identifiers, attributes, name, the
    owner/support group/location references and the relationships."""

    def __init__(self, me: Identifiers, ident: dict[str, Any],
                 attrs: dict[str, Scalar | list[str]], name: str | None) -> None:
        self.me = me
        self.ident = ident
        self.attrs = attrs
        self.name = name
        self.extra: dict[str, str | None] = {"owner": None, "support_group": None,
                                             "location": None}
        self.rels: list[Record] = []

    def put(self, aname: str, folded: str, texts: list[str]) -> None:
        """An attribute's (non-empty) values, where its name says they belong."""
        joined = ", ".join(texts)
        if folded == "name" or folded == "label":
            self.name = self.name or joined
        elif folded in _IDENTIFIER_ATTRS:
            self.ident[_IDENTIFIER_ATTRS[folded]] = texts[0]
        elif folded in ("mac address", "mac addresses", "mac"):
            self.ident["mac_addresses"] = tuple(texts)
        elif folded in ("ip address", "ip addresses", "ip"):
            self.attrs["ip_addresses"] = texts
        elif folded == "status":
            self.attrs["operational_status"] = _STATUS.get(joined.casefold(), joined)
        elif folded in ("owner", "owned by"):
            self.extra["owner"] = joined
        elif folded in ("support group", "team"):
            self.extra["support_group"] = joined
        elif folded == "location":
            self.extra["location"] = joined
        elif folded in _FIELD_ATTRS:
            self.attrs[_FIELD_ATTRS[folded]] = joined
        else:
            self.attrs[snake_case(aname)] = joined
