"""ISO/IEC 19770-2:2015 software identification (SWID) tags: software installations.

Follows ISO/IEC 19770-2:2015 and NIST IR 8060 (*Guidelines for the Creation of Interoperable
SWID Tags*): a ``SoftwareIdentity`` element in the namespace
``http://standards.iso.org/iso/19770/-2/2015/schema.xsd`` with ``Entity``, ``Meta``, ``Link``
and ``Evidence`` children. ``parse`` takes one tag file or a folder of them (``*.swidtag``,
``*.xml``, searched recursively, as in ``/usr/lib/swidtag``).

Mapping (the documented decisions):

- A primary tag (neither ``supplemental`` nor ``corpus``) is one :class:`SoftwareRecord`:
  product = ``SoftwareIdentity/@name``, version = ``@version``, vendor = the ``name`` of the
  ``Entity`` whose ``role`` includes ``softwareCreator``, else ``tagCreator`` (an empty name
  counts as none). ``tagId``, ``versionScheme``, ``Meta`` attributes (``product``,
  ``colloquialVersion``, ``revision``, ``arch``, ``summary``, ...) and the ``regid`` of the
  creators are attributes; a ``patch`` tag is flagged ``swid_patch``. Corpus tags describe an
  installer, not an installation, and are skipped.
- Where the software is installed: a tag says nothing of its host except, sometimes,
  ``Evidence/@deviceId``. The host is the importer's ``host`` option when given, else the
  tag's ``Evidence/@deviceId``, else the name of the machine running the import
  (``socket.getfqdn()``, else ``socket.gethostname()``: tags are normally read where they are
  installed); when that is only ``localhost`` the tag is refused (pass ``host``). A dotted
  name is given as FQDN (and host name + domain), a plain one as host name (lower case).
- A supplemental tag (``supplemental="true"``) augments the primary tags its
  ``Link rel="supplemental"`` points at: ``href="swid:<tagId>"``, or a ``swidpath:`` XPath with
  ``[@attr='value']`` predicates on ``SoftwareIdentity`` (e.g. ``@name``, ``@tagId``). It adds
  its ``Meta`` attributes, fills a missing vendor from its ``softwareCreator`` and records its
  ``tagId`` in ``swid_supplemental_tags``. A supplemental tag whose primary is not in the input
  yields a warning and no record.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import Identifiers, InputWarning, Origin, SoftwareRecord
from importers.base import Importer, Item, guard
from importers.readers import parse_xml

__all__ = ["SWIDImporter", "SWID_NS"]

log = logging.getLogger(__name__)

SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
_Q = "{" + SWID_NS + "}"
_PREDICATE = re.compile(r"@([A-Za-z_:][\w.:-]*)\s*=\s*(?:'([^']*)'|\"([^\"]*)\")")


def _local_machine() -> str | None:
    """This machine's FQDN, else its host name; None when both are only ``localhost``."""
    for name in (socket.getfqdn(), socket.gethostname()):
        if name and not name.lower().startswith("localhost"):
            return name
    return None


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


@dataclass
class _Tag:
    root: Element
    origin: Origin
    attrs: dict[str, str] = field(default_factory=dict)
    supplements: list[str] = field(default_factory=list)

    def entity(self, *roles: str) -> tuple[str | None, str | None]:
        for role in roles:
            for ent in self.root.findall(f"{_Q}Entity"):
                if role in (ent.get("role") or "").split():
                    name = (ent.get("name") or "").strip()
                    if name:
                        return name, ent.get("regid")
        return None, None


class SWIDImporter(Importer[list[tuple[str, Element]]]):
    """SWID tags (ISO/IEC 19770-2:2015) -> software installations on one host.

    Follows ISO/IEC 19770-2:2015 and NIST IR 8060; see the module docstring for the mapping.

    Parameters
    ----------
    host : str, optional
        The machine the tags were collected from. Default: each tag's ``Evidence/@deviceId``,
        else the name of the machine running the import.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed XML, an XML entity or external reference, a root element
        that is not a 2015 ``SoftwareIdentity``, or a missing ``name`` / ``tagId`` -- naming the
        file and the attribute.
    """

    kind = "swid"
    description = "ISO/IEC 19770-2:2015 SWID tags (NIST IR 8060), a file or a folder of tags"

    def __init__(self, *, host: str | None = None) -> None:
        self.host = host

    def read(self, path: Path) -> list[tuple[str, Element]]:
        """The root element of the tag file, or of every tag file of the folder, by file."""
        root_path = Path(path)
        if root_path.is_dir():
            files = sorted(p for p in root_path.rglob("*")
                           if p.is_file() and p.suffix.lower() in (".swidtag", ".xml"))
            if not files:
                raise InvalidRecordError("folder holds no .swidtag or .xml file",
                                         file=str(path))
        else:
            files = [root_path]
        return [(str(f), parse_xml(f)) for f in files]

    @staticmethod
    def _tag(name: str, root: Element) -> _Tag:
        if root.tag != f"{_Q}SoftwareIdentity":
            raise InvalidRecordError(
                f"root element is {root.tag!r}, expected SoftwareIdentity in namespace "
                f"{SWID_NS}", file=name, line=1, record="SoftwareIdentity",
            )
        for attr in ("name", "tagId"):
            if not (root.get(attr) or "").strip() and not (
                attr == "name" and _true(root.get("supplemental"))
            ):
                raise InvalidRecordError("required attribute is missing or empty", file=name,
                                         record="SoftwareIdentity", field=attr)
        return _Tag(root, Origin(file=name, record=f"SoftwareIdentity[@tagId={root.get('tagId')}]"))

    def _host(self, tag: _Tag) -> Identifiers:
        host = self.host
        if not host:
            ev = tag.root.find(f"{_Q}Evidence")
            host = ev.get("deviceId") if ev is not None else None
        if not host:
            host = _local_machine()
        if not host:
            raise InvalidRecordError(
                "the tag names no device and this machine's name is only 'localhost': pass "
                "the host the tags come from (host=...)", file=tag.origin.file,
                record=tag.origin.record, field="Evidence/@deviceId",
            )
        host = host.strip().rstrip(".")
        if "." in host:
            short, _, domain = host.partition(".")
            return Identifiers(fqdn=host.lower(), hostname=short.lower(), domain=domain.lower())
        return Identifiers(hostname=host.lower())

    @staticmethod
    def _targets(link_href: str, primaries: list[_Tag]) -> list[_Tag]:
        href = link_href.strip()
        if href.startswith("swid:"):
            tag_id = href[len("swid:"):]
            return [t for t in primaries if t.root.get("tagId") == tag_id]
        if href.startswith("swidpath:"):
            preds = [(m.group(1).split(":")[-1], m.group(2) if m.group(2) is not None
                      else m.group(3)) for m in _PREDICATE.finditer(href)]
            if not preds or "SoftwareIdentity" not in href:
                return []
            return [t for t in primaries if all(t.root.get(a) == v for a, v in preds)]
        return []

    def transform(self, doc: list[tuple[str, Element]], origin: str) -> Iterator[Item]:
        """One SoftwareRecord per primary or patch tag, augmented by its supplementals.

        ``doc`` holds ``(file, SoftwareIdentity element)`` pairs; records name their tag's file.
        """
        tags = [self._tag(name, root) for name, root in doc]
        primaries = [t for t in tags
                     if not _true(t.root.get("supplemental")) and not _true(t.root.get("corpus"))]
        for t in tags:
            if _true(t.root.get("supplemental")) and not self._supplement(t, primaries):
                yield InputWarning(
                    record_type="software",
                    reason=f"supplemental tag {t.root.get('tagId')} matches no primary tag of "
                           "the input; it yields no record",
                    origin=t.origin)
        for t in primaries:
            with guard(t.origin.file, record=t.origin.record):
                yield self._software(t)

    def _supplement(self, t: _Tag, primaries: list[_Tag]) -> bool:
        """Add a supplemental tag's Meta attributes and creator to the primaries it names;
        whether it names any."""
        links = [ln for ln in t.root.findall(f"{_Q}Link")
                 if "supplemental" in (ln.get("rel") or "").split()]
        if not links:
            raise InvalidRecordError(
                "a supplemental tag needs a Link rel=\"supplemental\"", file=t.origin.file,
                record=t.origin.record, field="Link",
            )
        matched: list[_Tag] = []
        for ln in links:
            matched.extend(self._targets(ln.get("href") or "", primaries))
        for prim in matched:
            prim.supplements.append(str(t.root.get("tagId")))
            for meta in t.root.findall(f"{_Q}Meta"):
                for k, v in meta.attrib.items():
                    prim.attrs.setdefault(f"swid_meta_{_local(k)}", v)
            vendor, regid = t.entity("softwareCreator")
            if vendor:
                prim.attrs.setdefault("swid_supplemental_vendor", vendor)
                if regid:
                    prim.attrs.setdefault("swid_supplemental_vendor_regid", regid)
        return bool(matched)

    def _software(self, t: _Tag) -> SoftwareRecord:
        """The software record of one primary (or patch) tag."""
        r = t.root
        vendor, regid = t.entity("softwareCreator")
        if vendor is None:
            vendor, regid = t.entity("tagCreator")
        if vendor is None and "swid_supplemental_vendor" in t.attrs:
            vendor = t.attrs["swid_supplemental_vendor"]
            regid = t.attrs.get("swid_supplemental_vendor_regid")
        attrs: dict[str, Any] = {"swid_tag_id": str(r.get("tagId"))}
        if r.get("versionScheme"):
            attrs["swid_version_scheme"] = str(r.get("versionScheme"))
        if regid:
            attrs["vendor_regid"] = regid
        if _true(r.get("patch")):
            attrs["swid_patch"] = True
        for meta in r.findall(f"{_Q}Meta"):
            for k, v in meta.attrib.items():
                attrs[f"swid_meta_{_local(k)}"] = v
        for k, v in t.attrs.items():
            if not k.startswith("swid_supplemental_vendor"):
                attrs.setdefault(k, v)
        ev = r.find(f"{_Q}Evidence")
        if ev is not None and ev.get("date"):
            attrs["swid_evidence_date"] = str(ev.get("date"))
        if t.supplements:
            attrs["swid_supplemental_tags"] = ", ".join(sorted(t.supplements))
        return SoftwareRecord(
            installed_on=self._host(t),
            product=str(r.get("name")).strip(),
            vendor=vendor,
            version=(r.get("version") or "").strip() or None,
            attributes=attrs,
            origin=t.origin,
        )
