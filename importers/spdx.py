"""SPDX 2.x software bills of materials in the JSON serialisation.

Follows the SPDX specification 2.2/2.3 (https://spdx.github.io/spdx-spec/v2.3/), chapters 7
(packages) and 11 (relationships), JSON schema ``spdx-schema.json``.

Mapping (the documented decisions, consistent with the CycloneDX importer):

- The packages the document describes (``documentDescribes`` or ``SPDXRef-DOCUMENT DESCRIBES
  x``) are its *subjects* and become ``Application`` CIs (``primaryPackagePurpose``
  ``CONTAINER`` -> ``Container``, ``DEVICE`` -> ``Hardware``), native key = package name.
- Every other package is software that a subject contains: a :class:`SoftwareRecord`
  installed on each subject that reaches it through runtime relationships (product = package
  name, version = ``versionInfo``, vendor = ``supplier`` or ``originator`` without its
  ``Organization:``/``Person:`` prefix; purl, licence and the SPDX relationship as attributes).
  With a single subject, packages that no relationship reaches belong to it too. Traversal
  stops at another subject: that subject's software is its own.
- Relationship types, read as "A needs B" (A the dependent):
  ``DEPENDS_ON``, ``DYNAMIC_LINK``, ``STATIC_LINK``, ``CONTAINS``, ``HAS_PREREQUISITE``
  (A -> B) and ``DEPENDENCY_OF``, ``RUNTIME_DEPENDENCY_OF``, ``CONTAINED_BY``,
  ``PREREQUISITE_FOR``, ``PACKAGE_OF`` (B -> A) are runtime needs; ``OPTIONAL_DEPENDENCY_OF``
  and ``OPTIONAL_COMPONENT_OF`` (B -> A) are optional ones. Build, test, development and
  documentation relationships (``BUILD_DEPENDENCY_OF``, ``DEV_DEPENDENCY_OF``,
  ``TEST_DEPENDENCY_OF``, ``*_TOOL_OF``, ``GENERATED_FROM``, ``DESCRIBED_BY``, ...) are not
  runtime needs and are skipped. Between two subjects a runtime need becomes ``DEPENDS_ON``
  (``optional`` for the optional kinds).
- References into other documents (``DocumentRef-...:SPDXRef-...``) and ``NONE``/``NOASSERTION``
  ends are skipped; a reference to an element the document does not define is an error.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import (
    CIRecord,
    Identifiers,
    InputWarning,
    Origin,
    RelationshipRecord,
    SoftwareRecord,
)
from importers.base import Item, JSONImporter, guard, mapping_items, require

__all__ = ["SPDXImporter", "RUNTIME_RELATIONSHIPS"]

log = logging.getLogger(__name__)

#: relationshipType -> (reversed?, optional?). Not reversed: spdxElementId needs the related one.
RUNTIME_RELATIONSHIPS: dict[str, tuple[bool, bool]] = {
    "DEPENDS_ON": (False, False),
    "DYNAMIC_LINK": (False, False),
    "STATIC_LINK": (False, False),
    "CONTAINS": (False, False),
    "HAS_PREREQUISITE": (False, False),
    "DEPENDENCY_OF": (True, False),
    "RUNTIME_DEPENDENCY_OF": (True, False),
    "CONTAINED_BY": (True, False),
    "PREREQUISITE_FOR": (True, False),
    "PACKAGE_OF": (True, False),
    "OPTIONAL_DEPENDENCY_OF": (True, True),
    "OPTIONAL_COMPONENT_OF": (True, True),
}
_PURPOSE_CLASS = {"CONTAINER": "Container", "DEVICE": "Hardware"}


def _actor(value: Any) -> str | None:
    """``Organization: Acme (x@y)`` -> ``Acme``; NOASSERTION -> None."""
    if not isinstance(value, str) or not value.strip() or value.strip() == "NOASSERTION":
        return None
    text = value.split(":", 1)[1] if ":" in value else value
    text = text.split("(", 1)[0].strip()
    return text or None


#: dependent -> [(dependency, optional, SPDX relationship type, JSON pointer)]
_Needs = dict[str, list[tuple[str, bool, str, str]]]
#: package SPDXID -> (package, JSON pointer)
_Packages = dict[str, tuple[Mapping[str, Any], str]]


class SPDXImporter(JSONImporter):
    """SPDX 2.x JSON -> subject CIs, software installed on them, DEPENDS_ON between subjects.

    Follows the SPDX 2.3 specification; see the module docstring for the mapping.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed JSON, an ``spdxVersion`` other than ``SPDX-2.x``, a
        package without ``SPDXID`` or ``name``, a relationship with a missing field or an
        unknown element, or no described package -- naming the file, the JSON pointer and the
        field.
    """

    kind = "spdx"
    description = "SPDX 2.x SBOM, JSON serialisation (SPDX specification 2.3)"

    def transform(self, doc: Any, origin: str) -> Iterator[Item]:
        """Subject CIs, software records and DEPENDS_ON relationships."""
        if not isinstance(doc, Mapping):
            raise InvalidRecordError("an SPDX document must be a JSON object", file=origin)
        version = str(require(doc, "spdxVersion", file=origin, record="/"))
        if not version.startswith("SPDX-2."):
            raise InvalidRecordError(f"spdxVersion {version!r} is not SPDX 2.x", file=origin,
                                     record="/", field="spdxVersion")
        doc_id = str(require(doc, "SPDXID", file=origin, record="/"))
        pkgs = _packages(doc, origin)
        subjects, needs = _relationships(doc, origin, doc_id, pkgs)
        records: list[Item] = []
        idents: dict[str, Identifiers] = {}
        for sid in subjects:
            p, ptr = pkgs[sid]
            idents[sid] = Identifiers(native_key=str(p["name"]))
            with guard(origin, record=ptr):
                records.append(_subject_ci(doc, sid, p, Origin(file=origin, record=ptr)))
        seen: set[tuple[str, str]] = set()
        for sid in subjects:
            for dst, optional, rtype, ptr in needs.get(sid, []):
                if dst in idents and (sid, dst) not in seen and sid != dst:
                    seen.add((sid, dst))
                    records.append(RelationshipRecord(
                        rel_type="DEPENDS_ON", source=idents[sid], target=idents[dst],
                        optional=optional, properties={"spdx_relationship": rtype},
                        origin=Origin(file=origin, record=ptr)))
        records.extend(_software(pkgs, subjects, idents, needs, origin))
        log.info("%s: %s, %d subjects, %d records", origin, version, len(subjects), len(records))
        yield from records


def _packages(doc: Mapping[str, Any], name: str) -> _Packages:
    """Every package by its SPDXID."""
    pkgs: _Packages = {}
    for ptr, p in mapping_items(doc.get("packages") or [], file=name, pointer="/packages",
                                what="a package"):
        pid = str(require(p, "SPDXID", file=name, record=ptr))
        require(p, "name", file=name, record=ptr)
        if pid in pkgs:
            raise InvalidRecordError(f"SPDXID {pid!r} repeats that of {pkgs[pid][1]}; SPDX "
                                     "identifiers are unique in a document", file=name,
                                     record=ptr, field="SPDXID")
        pkgs[pid] = (p, ptr)
    return pkgs


def _relationships(doc: Mapping[str, Any], name: str, doc_id: str,
                   pkgs: _Packages) -> tuple[list[str], _Needs]:
    """The described packages (subjects) and the runtime needs between elements."""
    known = set(pkgs) | {doc_id}
    for section in ("files", "snippets"):
        for item in doc.get(section) or []:
            if isinstance(item, Mapping) and item.get("SPDXID"):
                known.add(str(item["SPDXID"]))
    subjects: list[str] = [str(x) for x in doc.get("documentDescribes") or []]
    needs: _Needs = defaultdict(list)
    for ptr, r in mapping_items(doc.get("relationships") or [], file=name,
                                pointer="/relationships", what="a relationship"):
        a = str(require(r, "spdxElementId", file=name, record=ptr))
        rtype = str(require(r, "relationshipType", file=name, record=ptr)).upper()
        b = str(require(r, "relatedSpdxElement", file=name, record=ptr))
        if any(e.startswith("DocumentRef-") or e in ("NONE", "NOASSERTION") for e in (a, b)):
            continue
        for e, fld in ((a, "spdxElementId"), (b, "relatedSpdxElement")):
            if e not in known:
                raise InvalidRecordError(f"relationship names unknown element {e!r}",
                                         file=name, record=ptr, field=fld)
        if rtype == "DESCRIBES" and a == doc_id:
            subjects.append(b)
        elif rtype == "DESCRIBED_BY" and b == doc_id:
            subjects.append(a)
        elif rtype in RUNTIME_RELATIONSHIPS:
            reverse, optional = RUNTIME_RELATIONSHIPS[rtype]
            src, dst = (b, a) if reverse else (a, b)
            needs[src].append((dst, optional, rtype, ptr))
    subjects = list(dict.fromkeys(s for s in subjects if s in pkgs))
    if not subjects:
        raise InvalidRecordError(
            "the document describes no package (documentDescribes or a DESCRIBES "
            "relationship from the document)", file=name, record="/",
            field="documentDescribes",
        )
    return subjects, needs


def _subject_ci(doc: Mapping[str, Any], sid: str, p: Mapping[str, Any],
                origin: Origin) -> CIRecord:
    attrs: dict[str, Any] = {"spdx_id": sid}
    if p.get("versionInfo"):
        attrs["version"] = str(p["versionInfo"])
    vendor = _actor(p.get("supplier")) or _actor(p.get("originator"))
    if vendor:
        attrs["manufacturer"] = vendor
    if doc.get("documentNamespace"):
        attrs["spdx_document"] = str(doc["documentNamespace"])
    ci_class = _PURPOSE_CLASS.get(str(p.get("primaryPackagePurpose") or ""), "Application")
    return CIRecord(ci_class=ci_class, name=str(p["name"]),
                    identifiers=Identifiers(native_key=str(p["name"])), attributes=attrs,
                    origin=origin)


def _reached(subjects: list[str], pkgs: _Packages,
             needs: _Needs) -> dict[str, dict[str, tuple[str, str]]]:
    """Per subject, the packages it reaches and the first relationship type on the way,
    with ``direct`` or ``transitive``; traversal stops at another subject."""
    reached: dict[str, dict[str, tuple[str, str]]] = {}
    subject_set = set(subjects)
    for sid in subjects:
        found: dict[str, tuple[str, str]] = {}
        queue = deque([(sid, False)])
        while queue:
            node, transitive = queue.popleft()
            for dst, _optional, rtype, _ptr in needs.get(node, []):
                if dst in found or dst not in pkgs or dst in subject_set:
                    continue  # another subject's software is its own
                found[dst] = (rtype, "transitive" if transitive else "direct")
                queue.append((dst, True))
        reached[sid] = found
    return reached


def _software(pkgs: _Packages, subjects: list[str], idents: Mapping[str, Identifiers],
              needs: _Needs, name: str) -> Iterator[SoftwareRecord | InputWarning]:
    """A software record per non-subject package and each subject that reaches it (a warning
    for a package that no subject reaches)."""
    reached = _reached(subjects, pkgs, needs)
    for pid, (p, ptr) in pkgs.items():
        if pid in idents:
            continue
        owners = [(sid, reached[sid][pid]) for sid in subjects if pid in reached[sid]]
        if not owners and len(subjects) == 1:
            owners = [(subjects[0], ("UNRELATED", "unrelated"))]
        if not owners:
            yield InputWarning(
                record_type="software",
                reason=f"package {p['name']} is reached by no described package; skipped",
                origin=Origin(file=name, record=ptr))
            continue
        attrs = {"spdx_id": pid}
        for ref in p.get("externalRefs") or []:
            if isinstance(ref, Mapping) and ref.get("referenceType") == "purl":
                attrs["purl"] = str(ref.get("referenceLocator"))
        for k, out in (("licenseConcluded", "license_concluded"),
                       ("licenseDeclared", "license_declared")):
            if p.get(k) and p[k] != "NOASSERTION":
                attrs[out] = str(p[k])
        vendor = _actor(p.get("supplier")) or _actor(p.get("originator"))
        for sid, (rtype, depth) in owners:
            with guard(name, record=ptr):
                yield SoftwareRecord(
                    installed_on=idents[sid],
                    product=str(p["name"]),
                    vendor=vendor,
                    version=str(p["versionInfo"]) if p.get("versionInfo") else None,
                    attributes={**attrs, "spdx_relationship": rtype, "dependency": depth},
                    origin=Origin(file=name, record=ptr),
                )
