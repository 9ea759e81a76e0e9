"""CycloneDX bills of materials (JSON or XML, specification 1.4 to 1.6).

Follows the CycloneDX specification (https://cyclonedx.org/specification/overview/, JSON
schema ``bom-1.x.schema.json`` and XML schema ``http://cyclonedx.org/schema/bom/1.x``). The
format is detected from the content (``<`` starts XML).

Mapping (the documented decisions):

- ``metadata.component`` is the *subject* of the BOM and becomes a CI: ``Container`` for
  ``type: container``, ``Hardware`` for ``device``, otherwise ``Application``.
- ``components`` (nested ones included) are software that the subject contains: each becomes a
  :class:`SoftwareRecord` installed on the subject (product ``group/name`` when there is a
  group, vendor from ``publisher``, ``supplier.name`` or ``manufacturer.name``, ``purl``,
  ``type``, ``bom-ref`` and licence ids as attributes). A BOM with components needs a subject.
- ``services`` (nested ones included) become ``Application`` CIs (provider, endpoints,
  authentication, trust boundary and data classifications as attributes). Nesting is kept as
  the attribute ``parent_service`` only: the specification's nesting says where a service is
  deployed, while ``dependencies`` says what it needs. With a subject, each service gets the
  attributes ``service_name`` (its name) and ``system`` (the subject's name): the
  ``name_system`` identification rule matches it with the same service of that application
  from compose files, Kubernetes manifests or Backstage.
- ``dependencies[].ref -> dependsOn[]`` between CIs (the subject and services) becomes
  ``DEPENDS_ON``; dependencies that involve a component (a library) describe the software
  graph, not the CI graph, and are skipped. A reference to no ``bom-ref`` of the BOM is an
  error.

Native keys are ``group/name`` (``name`` without a group) of the subject or service, so that
they survive new BOM versions whose ``bom-ref`` values change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import (
    CIRecord,
    Identifiers,
    Origin,
    Record,
    RelationshipRecord,
    SoftwareRecord,
)
from importers.base import Importer, guard, mapping_items, require
from importers.readers import load_json, parse_xml, read_text

__all__ = ["CycloneDXImporter"]

log = logging.getLogger(__name__)

SPEC_VERSIONS = ("1.4", "1.5", "1.6")
_NS_PREFIX = "http://cyclonedx.org/schema/bom/"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(el: Element, name: str) -> list[Element]:
    return [c for c in el if _local(c.tag) == name]


def _child(el: Element, name: str) -> Element | None:
    found = _children(el, name)
    return found[0] if found else None


def _text(el: Element, name: str) -> str | None:
    c = _child(el, name)
    return c.text.strip() if c is not None and c.text and c.text.strip() else None


def _xml_org(el: Element | None) -> dict[str, Any] | None:
    if el is None:
        return None
    return {"name": _text(el, "name"), "url": [u.text for u in _children(el, "url") if u.text]}


def _xml_component(el: Element) -> dict[str, Any]:
    comp: dict[str, Any] = {
        "type": el.get("type"),
        "bom-ref": el.get("bom-ref"),
        "name": _text(el, "name"),
        "group": _text(el, "group"),
        "version": _text(el, "version"),
        "publisher": _text(el, "publisher"),
        "purl": _text(el, "purl"),
        "supplier": _xml_org(_child(el, "supplier")),
        "manufacturer": _xml_org(_child(el, "manufacturer")),
    }
    lic = _child(el, "licenses")
    if lic is not None:
        comp["licenses"] = [
            {"license": {"id": _text(x, "id"), "name": _text(x, "name")}}
            for x in _children(lic, "license")
        ] + [{"expression": x.text} for x in _children(lic, "expression") if x.text]
    sub = _child(el, "components")
    if sub is not None:
        comp["components"] = [_xml_component(c) for c in _children(sub, "component")]
    return comp


def _xml_service(el: Element) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "bom-ref": el.get("bom-ref"),
        "provider": _xml_org(_child(el, "provider")),
        "group": _text(el, "group"),
        "name": _text(el, "name"),
        "version": _text(el, "version"),
        "description": _text(el, "description"),
    }
    eps = _child(el, "endpoints")
    if eps is not None:
        svc["endpoints"] = [e.text.strip() for e in _children(eps, "endpoint") if e.text]
    for key in ("authenticated", "x-trust-boundary"):
        value = _text(el, key)
        if value is not None:
            svc[key] = value.lower() == "true"
    data = _child(el, "data")
    if data is not None:
        svc["data"] = [
            {"classification": c.text, "flow": c.get("flow")}
            for c in _children(data, "classification")
        ]
    sub = _child(el, "services")
    if sub is not None:
        svc["services"] = [_xml_service(s) for s in _children(sub, "service")]
    return svc


def _xml_to_dict(root: Element, file: str) -> dict[str, Any]:
    """The JSON shape of an XML BOM (only the parts this importer reads)."""
    if _local(root.tag) != "bom" or not root.tag.startswith("{" + _NS_PREFIX):
        raise InvalidRecordError(
            f"root element is {root.tag!r}, expected bom in namespace {_NS_PREFIX}1.x",
            file=file, record="bom",
        )
    version = root.tag[len(_NS_PREFIX) + 1:].split("}", 1)[0]
    bom: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": version,
        "serialNumber": root.get("serialNumber"),
    }
    meta = _child(root, "metadata")
    if meta is not None:
        comp = _child(meta, "component")
        bom["metadata"] = {"component": _xml_component(comp) if comp is not None else None}
    comps = _child(root, "components")
    if comps is not None:
        bom["components"] = [_xml_component(c) for c in _children(comps, "component")]
    svcs = _child(root, "services")
    if svcs is not None:
        bom["services"] = [_xml_service(s) for s in _children(svcs, "service")]
    deps = _child(root, "dependencies")
    if deps is not None:
        bom["dependencies"] = [
            {"ref": d.get("ref"), "dependsOn": [x.get("ref") for x in _children(d, "dependency")]}
            for d in _children(deps, "dependency")
        ]
    return bom


def _org_name(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("name"):
        return str(value["name"])
    return None


class CycloneDXImporter(Importer[Any]):
    """CycloneDX BOM (JSON or XML, 1.4-1.6) -> subject CI, service CIs, software, DEPENDS_ON.

    Follows the CycloneDX specification; see the module docstring for the mapping. An XML BOM
    is read into the JSON shape, so one transform serves both.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed JSON/XML, not a CycloneDX BOM, an unsupported
        ``specVersion``, a component or service without ``name``, components without a
        ``metadata.component`` subject, or a dependency naming an unknown ``bom-ref`` -- naming
        the file, the record (JSON pointer) and the field.
    """

    kind = "cyclonedx"
    description = "CycloneDX BOM, JSON or XML, specification 1.4-1.6"

    def read(self, path: Path) -> Any:
        if read_text(path).lstrip().startswith("<"):
            return _xml_to_dict(parse_xml(path), str(path))
        return load_json(path)

    def transform(self, doc: Any, origin: str) -> Iterator[Record]:
        """The subject and service CIs, software records and DEPENDS_ON relationships."""
        if not isinstance(doc, Mapping):
            raise InvalidRecordError("a CycloneDX BOM must be a JSON object", file=origin)
        fmt = require(doc, "bomFormat", file=origin, record="/")
        if fmt != "CycloneDX":
            raise InvalidRecordError(f"bomFormat is {fmt!r}, expected 'CycloneDX'", file=origin,
                                     record="/", field="bomFormat")
        version = str(require(doc, "specVersion", file=origin, record="/"))
        if version not in SPEC_VERSIONS:
            raise InvalidRecordError(
                f"specVersion {version} is not supported (supported: {', '.join(SPEC_VERSIONS)})",
                file=origin, record="/", field="specVersion",
            )
        bom = _Bom(origin)
        bom.subject_ci(doc)
        bom.components(doc.get("components"), "/components")
        bom.services(doc.get("services"), "/services", None)
        skipped = bom.dependencies(doc.get("dependencies"))
        log.info("%s: CycloneDX %s, %d records, %d software-only dependencies skipped", origin,
                 version, len(bom.records), skipped)
        yield from bom.records


def _key_of(obj: Mapping[str, Any]) -> str:
    """Native key of the subject or a service: ``group/name``, or ``name`` without a group."""
    return f"{obj['group']}/{obj['name']}" if obj.get("group") else str(obj["name"])


def _licences(component: Mapping[str, Any]) -> list[str]:
    """The licence ids (or names, or expressions) of a component."""
    found: list[str] = []
    for lic in component.get("licenses") or []:
        if not isinstance(lic, Mapping):
            continue
        inner = lic.get("license")
        if isinstance(inner, Mapping):
            lid = inner.get("id") or inner.get("name")
            if lid:
                found.append(str(lid))
        elif lic.get("expression"):
            found.append(str(lic["expression"]))
    return found


@dataclass
class _Bom:
    """The records of one BOM, and what each ``bom-ref`` became (CI identifiers, or ``None``
    for a component, which is software and no CI)."""

    file: str
    records: list[Record] = field(default_factory=list)
    by_ref: dict[str, Identifiers | None] = field(default_factory=dict)
    subject: Identifiers | None = None
    system: str | None = None

    def subject_ci(self, bom: Mapping[str, Any]) -> None:
        """The CI of ``metadata.component``, the subject the BOM describes."""
        meta = bom.get("metadata") or {}
        comp = meta.get("component") if isinstance(meta, Mapping) else None
        if comp is None:
            return
        ptr = "/metadata/component"
        if not isinstance(comp, Mapping):
            raise InvalidRecordError("metadata.component must be an object", file=self.file,
                                     record=ptr)
        require(comp, "name", file=self.file, record=ptr)
        ctype = str(comp.get("type") or "application")
        ci_class = {"container": "Container", "device": "Hardware"}.get(ctype, "Application")
        self.subject = Identifiers(native_key=_key_of(comp))
        self.system = str(comp["name"])
        attrs: dict[str, Any] = {"component_type": ctype}
        for k in ("version", "purl", "bom-ref"):
            if comp.get(k):
                attrs[k.replace("-", "_")] = str(comp[k])
        if bom.get("serialNumber"):
            attrs["bom_serial_number"] = str(bom["serialNumber"])
        self.records.append(CIRecord(ci_class=ci_class, name=str(comp["name"]),
                                     identifiers=self.subject, attributes=attrs,
                                     origin=Origin(file=self.file, record=ptr)))
        if comp.get("bom-ref"):
            self.by_ref[str(comp["bom-ref"])] = self.subject

    def components(self, items: Any, pointer: str) -> None:
        """Software records of the components (nested ones included), on the subject."""
        for ptr, c in mapping_items(items, file=self.file, pointer=pointer,
                                    what="a component", optional=True):
            cname = require(c, "name", file=self.file, record=ptr)
            if self.subject is None:
                raise InvalidRecordError(
                    "the BOM lists components but has no metadata.component they belong to",
                    file=self.file, record="/metadata", field="component",
                )
            attrs: dict[str, Any] = {"component_type": str(c.get("type") or "library")}
            for k in ("purl", "bom-ref", "cpe"):
                if c.get(k):
                    attrs[k.replace("-", "_")] = str(c[k])
            lic_ids = _licences(c)
            if lic_ids:
                attrs["licenses"] = ", ".join(lic_ids)
            vendor = (c.get("publisher") or _org_name(c.get("supplier"))
                      or _org_name(c.get("manufacturer")))
            with guard(self.file, record=ptr):
                self.records.append(SoftwareRecord(
                    installed_on=self.subject,
                    product=f"{c['group']}/{cname}" if c.get("group") else str(cname),
                    vendor=str(vendor) if vendor else None,
                    version=str(c["version"]) if c.get("version") else None,
                    attributes=attrs,
                    origin=Origin(file=self.file, record=ptr),
                ))
            if c.get("bom-ref"):
                self.by_ref[str(c["bom-ref"])] = None
            self.components(c.get("components"), f"{ptr}/components")

    def services(self, items: Any, pointer: str, parent: str | None) -> None:
        """Application CIs of the services (nested ones included)."""
        for ptr, s in mapping_items(items, file=self.file, pointer=pointer, what="a service",
                                    optional=True):
            sname = str(require(s, "name", file=self.file, record=ptr))
            ident = Identifiers(native_key=_key_of(s))
            attrs: dict[str, Any] = {"cyclonedx_service": True}
            for k in ("version", "description", "group", "bom-ref"):
                if s.get(k):
                    attrs[k.replace("-", "_")] = str(s[k])
            if _org_name(s.get("provider")):
                attrs["provider"] = _org_name(s.get("provider"))
            eps = s.get("endpoints")
            if isinstance(eps, list) and eps:
                attrs["endpoints"] = [str(e) for e in eps]
            for k in ("authenticated", "x-trust-boundary"):
                if isinstance(s.get(k), bool):
                    attrs[k.replace("-", "_")] = s[k]
            data = s.get("data")
            if isinstance(data, list):
                classes = sorted({str(d["classification"]) for d in data
                                  if isinstance(d, Mapping) and d.get("classification")})
                if classes:
                    attrs["data_classifications"] = classes
            if parent:
                attrs["parent_service"] = parent
            if self.system:
                attrs.update(service_name=sname, system=self.system)
            with guard(self.file, record=ptr):
                self.records.append(CIRecord(ci_class="Application", name=sname,
                                             identifiers=ident, attributes=attrs,
                                             origin=Origin(file=self.file, record=ptr)))
            if s.get("bom-ref"):
                self.by_ref[str(s["bom-ref"])] = ident
            self.services(s.get("services"), f"{ptr}/services", sname)

    def dependencies(self, deps: Any) -> int:
        """DEPENDS_ON between CIs; returns how many dependencies involved software only."""
        seen: set[tuple[str, str]] = set()
        skipped = 0
        for ptr, d in mapping_items(deps, file=self.file, pointer="/dependencies",
                                    what="a dependency", optional=True):
            ref = str(require(d, "ref", file=self.file, record=ptr))
            targets = d.get("dependsOn") or []
            if not isinstance(targets, list):
                raise InvalidRecordError("dependsOn must be a list", file=self.file, record=ptr,
                                         field="dependsOn")
            for r in [ref, *[str(t) for t in targets]]:
                if r not in self.by_ref:
                    raise InvalidRecordError(f"dependency names unknown bom-ref {r!r}",
                                             file=self.file, record=ptr, field="ref")
            src = self.by_ref[ref]
            for t in targets:
                dst = self.by_ref[str(t)]
                if src is None or dst is None:
                    skipped += 1
                    continue
                pair = (str(src.native_key), str(dst.native_key))
                if pair in seen or pair[0] == pair[1]:
                    continue
                seen.add(pair)
                self.records.append(RelationshipRecord(
                    rel_type="DEPENDS_ON", source=src, target=dst,
                    properties={"bom_ref": ref, "depends_on_ref": str(t)},
                    origin=Origin(file=self.file, record=ptr)))
        return skipped
