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
  deployed, while ``dependencies`` says what it needs.
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
from importers.base import checked_records, load_json, parse_xml, read_text, require

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


class CycloneDXImporter:
    """CycloneDX BOM (JSON or XML, 1.4-1.6) -> subject CI, service CIs, software, DEPENDS_ON.

    Follows the CycloneDX specification; see the module docstring for the mapping.

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

    def _load(self, path: Path) -> dict[str, Any]:
        name = str(path)
        if read_text(path).lstrip().startswith("<"):
            return _xml_to_dict(parse_xml(path), name)
        data = load_json(path)
        if not isinstance(data, Mapping):
            raise InvalidRecordError("a CycloneDX BOM must be a JSON object", file=name)
        fmt = require(data, "bomFormat", file=name, record="/")
        if fmt != "CycloneDX":
            raise InvalidRecordError(f"bomFormat is {fmt!r}, expected 'CycloneDX'", file=name,
                                     record="/", field="bomFormat")
        return dict(data)

    def parse(self, path: Path) -> Iterator[Record]:
        """Yield the subject and service CIs, software records and DEPENDS_ON relationships.

        Parameters
        ----------
        path : Path
            A ``bom.json`` or ``bom.xml`` file.

        Raises
        ------
        InvalidRecordError
            Bad input; names the file, the JSON pointer of the record and the field.
        """
        yield from checked_records(path, self._parse(path))

    def _parse(self, path: Path) -> Iterator[Record]:
        """The records of :meth:`parse`, unchecked."""
        name = str(path)
        bom = self._load(path)
        version = str(require(bom, "specVersion", file=name, record="/"))
        if version not in SPEC_VERSIONS:
            raise InvalidRecordError(
                f"specVersion {version} is not supported (supported: {', '.join(SPEC_VERSIONS)})",
                file=name, record="/", field="specVersion",
            )
        serial = bom.get("serialNumber")
        records: list[Record] = []
        by_ref: dict[str, Identifiers | None] = {}  # bom-ref -> CI identifiers (None: component)

        def key_of(obj: Mapping[str, Any]) -> str:
            return f"{obj['group']}/{obj['name']}" if obj.get("group") else str(obj["name"])

        subject: Identifiers | None = None
        meta = bom.get("metadata") or {}
        comp = meta.get("component") if isinstance(meta, Mapping) else None
        if comp is not None:
            if not isinstance(comp, Mapping):
                raise InvalidRecordError("metadata.component must be an object", file=name,
                                         record="/metadata/component")
            require(comp, "name", file=name, record="/metadata/component")
            ctype = str(comp.get("type") or "application")
            ci_class = {"container": "Container", "device": "Hardware"}.get(ctype, "Application")
            subject = Identifiers(native_key=key_of(comp))
            attrs: dict[str, Any] = {"component_type": ctype}
            for k in ("version", "purl", "bom-ref"):
                if comp.get(k):
                    attrs[k.replace("-", "_")] = str(comp[k])
            if serial:
                attrs["bom_serial_number"] = str(serial)
            records.append(CIRecord(ci_class=ci_class, name=str(comp["name"]),
                                    identifiers=subject, attributes=attrs,
                                    origin=Origin(file=name, record="/metadata/component")))
            if comp.get("bom-ref"):
                by_ref[str(comp["bom-ref"])] = subject

        def components(items: Any, pointer: str) -> None:
            if items is None:
                return
            if not isinstance(items, list):
                raise InvalidRecordError("components must be a list", file=name, record=pointer)
            for i, c in enumerate(items):
                ptr = f"{pointer}/{i}"
                if not isinstance(c, Mapping):
                    raise InvalidRecordError("a component must be an object", file=name,
                                             record=ptr)
                cname = require(c, "name", file=name, record=ptr)
                if subject is None:
                    raise InvalidRecordError(
                        "the BOM lists components but has no metadata.component they belong to",
                        file=name, record="/metadata", field="component",
                    )
                attrs: dict[str, Any] = {"component_type": str(c.get("type") or "library")}
                for k in ("purl", "bom-ref", "cpe"):
                    if c.get(k):
                        attrs[k.replace("-", "_")] = str(c[k])
                lic_ids = []
                for lic in c.get("licenses") or []:
                    if isinstance(lic, Mapping):
                        inner = lic.get("license")
                        if isinstance(inner, Mapping):
                            lid = inner.get("id") or inner.get("name")
                            if lid:
                                lic_ids.append(str(lid))
                        elif lic.get("expression"):
                            lic_ids.append(str(lic["expression"]))
                if lic_ids:
                    attrs["licenses"] = ", ".join(lic_ids)
                vendor = (c.get("publisher") or _org_name(c.get("supplier"))
                          or _org_name(c.get("manufacturer")))
                records.append(
                    SoftwareRecord(
                        installed_on=subject,
                        product=f"{c['group']}/{cname}" if c.get("group") else str(cname),
                        vendor=str(vendor) if vendor else None,
                        version=str(c["version"]) if c.get("version") else None,
                        attributes=attrs,
                        origin=Origin(file=name, record=ptr),
                    )
                )
                if c.get("bom-ref"):
                    by_ref[str(c["bom-ref"])] = None
                components(c.get("components"), f"{ptr}/components")

        def services(items: Any, pointer: str, parent: str | None) -> None:
            if items is None:
                return
            if not isinstance(items, list):
                raise InvalidRecordError("services must be a list", file=name, record=pointer)
            for i, s in enumerate(items):
                ptr = f"{pointer}/{i}"
                if not isinstance(s, Mapping):
                    raise InvalidRecordError("a service must be an object", file=name, record=ptr)
                sname = str(require(s, "name", file=name, record=ptr))
                ident = Identifiers(native_key=key_of(s))
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
                records.append(CIRecord(ci_class="Application", name=sname, identifiers=ident,
                                        attributes=attrs, origin=Origin(file=name, record=ptr)))
                if s.get("bom-ref"):
                    by_ref[str(s["bom-ref"])] = ident
                services(s.get("services"), f"{ptr}/services", sname)

        components(bom.get("components"), "/components")
        services(bom.get("services"), "/services", None)

        deps = bom.get("dependencies") or []
        if not isinstance(deps, list):
            raise InvalidRecordError("dependencies must be a list", file=name,
                                     record="/dependencies")
        seen: set[tuple[str, str]] = set()
        skipped = 0
        for i, d in enumerate(deps):
            ptr = f"/dependencies/{i}"
            if not isinstance(d, Mapping):
                raise InvalidRecordError("a dependency must be an object", file=name, record=ptr)
            ref = str(require(d, "ref", file=name, record=ptr))
            targets = d.get("dependsOn") or []
            if not isinstance(targets, list):
                raise InvalidRecordError("dependsOn must be a list", file=name, record=ptr,
                                         field="dependsOn")
            for r in [ref, *[str(t) for t in targets]]:
                if r not in by_ref:
                    raise InvalidRecordError(f"dependency names unknown bom-ref {r!r}",
                                             file=name, record=ptr, field="ref")
            src = by_ref[ref]
            for t in targets:
                dst = by_ref[str(t)]
                if src is None or dst is None:
                    skipped += 1
                    continue
                pair = (str(src.native_key), str(dst.native_key))
                if pair in seen or pair[0] == pair[1]:
                    continue
                seen.add(pair)
                records.append(
                    RelationshipRecord(rel_type="DEPENDS_ON", source=src, target=dst,
                                       properties={"bom_ref": ref, "depends_on_ref": str(t)},
                                       origin=Origin(file=name, record=ptr))
                )
        log.info("%s: CycloneDX %s, %d records, %d software-only dependencies skipped", name,
                 version, len(records), skipped)
        yield from records
