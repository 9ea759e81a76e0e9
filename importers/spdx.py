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
from pathlib import Path
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import (
    CIRecord,
    Identifiers,
    Origin,
    Record,
    RelationshipRecord,
    SoftwareRecord,
)
from importers.base import checked_records, load_json, require

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


class SPDXImporter:
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

    def parse(self, path: Path) -> Iterator[Record]:
        """Yield subject CIs, software records and DEPENDS_ON relationships.

        Parameters
        ----------
        path : Path
            An ``.spdx.json`` file.

        Raises
        ------
        InvalidRecordError
            Bad input; names the file, the JSON pointer of the record and the field.
        """
        yield from checked_records(path, self._parse(path))

    def _parse(self, path: Path) -> Iterator[Record]:
        """The records of :meth:`parse`, unchecked."""
        name = str(path)
        doc = load_json(path)
        if not isinstance(doc, Mapping):
            raise InvalidRecordError("an SPDX document must be a JSON object", file=name)
        version = str(require(doc, "spdxVersion", file=name, record="/"))
        if not version.startswith("SPDX-2."):
            raise InvalidRecordError(f"spdxVersion {version!r} is not SPDX 2.x", file=name,
                                     record="/", field="spdxVersion")
        doc_id = str(require(doc, "SPDXID", file=name, record="/"))
        packages = doc.get("packages") or []
        if not isinstance(packages, list):
            raise InvalidRecordError("packages must be a list", file=name, record="/packages")
        pkgs: dict[str, tuple[Mapping[str, Any], str]] = {}
        for i, p in enumerate(packages):
            ptr = f"/packages/{i}"
            if not isinstance(p, Mapping):
                raise InvalidRecordError("a package must be an object", file=name, record=ptr)
            pid = str(require(p, "SPDXID", file=name, record=ptr))
            require(p, "name", file=name, record=ptr)
            pkgs[pid] = (p, ptr)
        known = set(pkgs) | {doc_id}
        for section in ("files", "snippets"):
            for item in doc.get(section) or []:
                if isinstance(item, Mapping) and item.get("SPDXID"):
                    known.add(str(item["SPDXID"]))

        subjects: list[str] = [str(x) for x in doc.get("documentDescribes") or []]
        # adjacency: dependent -> [(dependency, optional, spdx type, pointer)]
        needs: dict[str, list[tuple[str, bool, str, str]]] = defaultdict(list)
        rels = doc.get("relationships") or []
        if not isinstance(rels, list):
            raise InvalidRecordError("relationships must be a list", file=name,
                                     record="/relationships")
        for i, r in enumerate(rels):
            ptr = f"/relationships/{i}"
            if not isinstance(r, Mapping):
                raise InvalidRecordError("a relationship must be an object", file=name,
                                         record=ptr)
            a = str(require(r, "spdxElementId", file=name, record=ptr))
            rtype = str(require(r, "relationshipType", file=name, record=ptr)).upper()
            b = str(require(r, "relatedSpdxElement", file=name, record=ptr))
            ends = [a, b]
            if any(e.startswith("DocumentRef-") or e in ("NONE", "NOASSERTION") for e in ends):
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

        records: list[Record] = []
        idents: dict[str, Identifiers] = {}
        for sid in subjects:
            p, ptr = pkgs[sid]
            ident = Identifiers(native_key=str(p["name"]))
            idents[sid] = ident
            attrs: dict[str, Any] = {"spdx_id": sid}
            if p.get("versionInfo"):
                attrs["version"] = str(p["versionInfo"])
            vendor = _actor(p.get("supplier")) or _actor(p.get("originator"))
            if vendor:
                attrs["manufacturer"] = vendor
            if doc.get("documentNamespace"):
                attrs["spdx_document"] = str(doc["documentNamespace"])
            ci_class = _PURPOSE_CLASS.get(str(p.get("primaryPackagePurpose") or ""),
                                          "Application")
            records.append(CIRecord(ci_class=ci_class, name=str(p["name"]), identifiers=ident,
                                    attributes=attrs, origin=Origin(file=name, record=ptr)))

        # which packages each subject reaches, with the first relationship on the way
        reached: dict[str, dict[str, tuple[str, str, bool]]] = {}
        subject_set = set(subjects)
        for sid in subjects:
            found: dict[str, tuple[str, str, bool]] = {}
            queue = deque([(sid, False)])
            while queue:
                node, transitive = queue.popleft()
                for dst, _optional, rtype, _ptr in needs.get(node, []):
                    if dst in found or dst not in pkgs or dst in subject_set:
                        continue  # another subject's software is its own
                    found[dst] = (rtype, "transitive" if transitive else "direct", transitive)
                    queue.append((dst, True))
            reached[sid] = found

        seen: set[tuple[str, str]] = set()
        for sid in subjects:
            for dst, optional, rtype, ptr in needs.get(sid, []):
                if dst in idents and (sid, dst) not in seen and sid != dst:
                    seen.add((sid, dst))
                    records.append(RelationshipRecord(
                        rel_type="DEPENDS_ON", source=idents[sid], target=idents[dst],
                        optional=optional, properties={"spdx_relationship": rtype},
                        origin=Origin(file=name, record=ptr)))

        for pid, (p, ptr) in pkgs.items():
            if pid in idents:
                continue
            owners = [(sid, reached[sid][pid]) for sid in subjects if pid in reached[sid]]
            if not owners and len(subjects) == 1:
                owners = [(subjects[0], ("UNRELATED", "unrelated", False))]
            if not owners:
                log.warning("%s: %s: package %s is reached by no described package, skipped",
                            name, ptr, p["name"])
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
            for sid, (rtype, depth, _t) in owners:
                records.append(SoftwareRecord(
                    installed_on=idents[sid],
                    product=str(p["name"]),
                    vendor=vendor,
                    version=str(p["versionInfo"]) if p.get("versionInfo") else None,
                    attributes={**attrs, "spdx_relationship": rtype, "dependency": depth},
                    origin=Origin(file=name, record=ptr),
                ))
        log.info("%s: %s, %d subjects, %d records", name, version, len(subjects), len(records))
        yield from records
