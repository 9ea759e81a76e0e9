"""Backstage software catalog descriptors (``catalog-info.yaml``, multi-document YAML).

Follows the Backstage "Descriptor Format of Catalog Entities"
(https://backstage.io/docs/features/software-catalog/descriptor-format) and its entity
references ``[<kind>:][<namespace>/]<name>``
(https://backstage.io/docs/features/software-catalog/references); ``apiVersion`` must be
``backstage.io/v1alpha1`` or ``backstage.io/v1beta1``.

Mapping (the documented decisions):

=========================  ===================================================================
Backstage kind             CMDB record
=========================  ===================================================================
Component                  ``Application`` CI (``spec.type`` service / website / library ->
                           attribute ``component_type``)
API                        ``Application`` CI with attributes ``backstage_kind=API`` and
                           ``api_type`` (openapi, grpc, ...): an API is served by software
Resource                   ``Database`` CI when ``spec.type`` is ``database``, else
                           ``CloudResource``
System                     ``ApplicationService`` CI
Domain                     ``BusinessService`` CI
Group                      :class:`GroupRecord` (a support group)
User                       :class:`PersonRecord`, ``spec.memberOf`` -> its groups
Location, Template, other  skipped (no CI)
=========================  ===================================================================

Relationships point from the dependent to what it needs (all ``DEPENDS_ON``, declared, so not
``inferred``):

- ``spec.dependsOn`` of a Component or Resource: entity -> each target;
  ``spec.dependencyOf``: each target -> entity.
- ``spec.consumesApis`` of a Component: component -> API.
- ``spec.providesApis`` of a Component: API -> component (an API is down when the component
  that provides it is down).
- ``spec.subcomponentOf`` of a Component: parent -> subcomponent (a failing subcomponent
  impacts its parent).
- ``spec.system`` of a Component, API or Resource: system -> entity.
- ``spec.domain`` of a System: domain -> system; ``spec.subdomainOf`` of a Domain: parent
  domain -> subdomain.
- ``spec.owner``: a group (the default kind) becomes the CI's ``support_group``; a ``user:``
  owner becomes its ``owner`` (a person).

A Component or Resource that names its ``spec.system`` gets the attributes ``service_name``
(``metadata.name``) and ``system`` (the system's name), a System both set to its name: the
``name_system`` identification rule matches them with the same service of that application
(compose project, Kubernetes ``part-of`` label or namespace) from other sources.

Every entity's native key is its full reference ``<kind>:<namespace>/<name>`` (lower case kind);
relationships name their ends by it, so references across files of the same source resolve in
ingestion. CI names are ``metadata.name`` (``<namespace>/<name>`` outside the default
namespace); ``title``, ``description``, ``lifecycle``, ``tags`` are attributes, and lifecycle
``production`` sets ``environment`` to ``production``. A User becomes a person named by its
``profile.displayName`` (else its entity name), with the entity name as ``username``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import (
    CIRecord,
    GroupRecord,
    Identifiers,
    Origin,
    PersonRecord,
    Record,
    RelationshipRecord,
)
from importers.base import Importer, guard, require
from importers.readers import Documents, load_yaml_documents

__all__ = ["BackstageImporter", "parse_entity_ref"]

log = logging.getLogger(__name__)

API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
_CI_KINDS = {"component", "api", "resource", "system", "domain"}


def parse_entity_ref(
    ref: str, *, default_kind: str | None, default_namespace: str = "default"
) -> tuple[str, str, str]:
    """Split a Backstage entity reference into ``(kind, namespace, name)``.

    Parameters
    ----------
    ref : str
        ``[<kind>:][<namespace>/]<name>``, e.g. ``resource:artists-db`` or
        ``group:default/team-a``.
    default_kind : str or None
        Kind when the reference has none; ``None`` makes the kind mandatory.
    default_namespace : str
        Namespace when the reference has none (the referring entity's namespace).

    Returns
    -------
    tuple of str
        Kind (lower case), namespace and name.

    Raises
    ------
    ValueError
        Empty parts, or no kind where one is required.

    Examples
    --------
    >>> parse_entity_ref("resource:artists-db", default_kind=None)
    ('resource', 'default', 'artists-db')
    >>> parse_entity_ref("team-a", default_kind="group", default_namespace="dev")
    ('group', 'dev', 'team-a')
    """
    text = ref.strip()
    kind: str | None = default_kind
    if ":" in text:
        kind, _, text = text.partition(":")
    namespace = default_namespace
    if "/" in text:
        namespace, _, text = text.partition("/")
    if not kind:
        raise ValueError(f"entity reference {ref!r} needs a kind")
    if not namespace or not text or "/" in text or ":" in text:
        raise ValueError(f"malformed entity reference {ref!r}")
    return kind.lower(), namespace, text


def _key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}:{namespace}/{name}"


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _display(namespace: str, name: str) -> str:
    return name if namespace == "default" else f"{namespace}/{name}"


#: kind -> (relationship field, default kind of its references, True when the entity is the
#: dependent end); every relationship is DEPENDS_ON, see the module docstring
_RELATION_FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "component": (("dependsOn", "component", True), ("dependencyOf", "component", False),
                  ("consumesApis", "api", True), ("providesApis", "api", False),
                  ("subcomponentOf", "component", False), ("system", "system", False)),
    "api": (("dependsOn", "component", True), ("dependencyOf", "component", False),
            ("system", "system", False)),
    "resource": (("dependsOn", "component", True), ("dependencyOf", "component", False),
                 ("system", "system", False)),
    "system": (("dependsOn", "component", True), ("dependencyOf", "component", False),
               ("domain", "domain", False)),
    "domain": (("dependsOn", "component", True), ("dependencyOf", "component", False),
               ("subdomainOf", "domain", False)),
}


class BackstageImporter(Importer[Documents | Sequence[Any]]):
    """Backstage catalog descriptor file -> CIs, DEPENDS_ON, support groups and people.

    Follows the Backstage descriptor format; see the module docstring for the mapping. The
    transform takes YAML :class:`~importers.readers.Documents` or a list of entities (the
    catalog API's ``GET /entities``).

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed YAML, an unknown ``apiVersion``, a missing ``kind``,
        ``metadata.name`` or required ``spec`` field, or a malformed entity reference -- naming
        the file, the document (line and index) and the field.
    """

    kind = "backstage"
    description = "Backstage catalog entity descriptors (catalog-info.yaml)"

    def read(self, path: Path) -> Documents:
        return load_yaml_documents(path)

    def transform(self, doc: Documents | Sequence[Any], origin: str) -> Iterator[Record]:
        """CI, group and person records, then relationships."""
        docs = doc if isinstance(doc, Documents) else Documents.of(doc)
        if not docs:
            raise InvalidRecordError("no YAML document in file", file=origin)
        entities: list[Record] = []
        rels = _Relations()
        for index, (line, item) in enumerate(docs, start=1):
            entity = _Entity.read(item, file=origin, line=line, record=f"document {index}")
            with guard(origin, line=line, record=entity.record):
                found = entity.record_of()
                if found is not None:
                    entities.append(found)
                for fld, default_kind, outgoing in _RELATION_FIELDS.get(entity.kind, ()):
                    for other in entity.refs(fld, default_kind):
                        src, dst = (entity.key, other) if outgoing else (other, entity.key)
                        rels.depends(src, dst, fld, entity.origin)
        log.info("%s: %d entities, %d relationships", origin, len(entities), len(rels.records))
        yield from entities
        yield from rels.records


@dataclass
class _Relations:
    """DEPENDS_ON relationships between entity keys, one per pair."""

    records: list[Record] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def depends(self, src: str, dst: str, fld: str, origin: Origin) -> None:
        if (src, dst) in self.seen or src == dst:
            return
        self.seen.add((src, dst))
        self.records.append(RelationshipRecord(
            rel_type="DEPENDS_ON", source=Identifiers(native_key=src),
            target=Identifiers(native_key=dst), properties={"backstage_relation": fld},
            origin=origin,
        ))


@dataclass
class _Entity:
    """One entity document: its envelope read and checked, and where it is."""

    file: str
    line: int | None
    record: str
    kind: str  # lower case
    name: str
    namespace: str
    meta: Mapping[str, Any]
    spec: Mapping[str, Any]
    original_kind: str

    @classmethod
    def read(cls, doc: Any, *, file: str, line: int | None, record: str) -> _Entity:
        def bad(message: str, fld: str | None) -> InvalidRecordError:
            return InvalidRecordError(message, file=file, line=line, record=record, field=fld)

        if not isinstance(doc, Mapping):
            raise bad("an entity must be a mapping", None)
        api_version = require(doc, "apiVersion", file=file, record=record, line=line)
        if api_version not in API_VERSIONS:
            raise bad(f"unknown apiVersion {api_version!r} (known: {', '.join(API_VERSIONS)})",
                      "apiVersion")
        kind = str(require(doc, "kind", file=file, record=record, line=line))
        meta = doc.get("metadata")
        if meta is not None and not isinstance(meta, Mapping):
            raise bad("metadata must be a mapping", "metadata")
        meta = meta or {}
        if not meta.get("name"):
            raise bad("required field is missing or empty", "metadata.name")
        spec = doc.get("spec") or {}
        if not isinstance(spec, Mapping):
            raise bad("spec must be a mapping", "spec")
        return cls(file, line, record, kind.lower(), str(meta["name"]),
                   str(meta.get("namespace") or "default"), meta, spec, kind)

    @property
    def key(self) -> str:
        return _key(self.kind, self.namespace, self.name)

    @property
    def display(self) -> str:
        return _display(self.namespace, self.name)

    @property
    def origin(self) -> Origin:
        return Origin(file=self.file, line=self.line, record=self.record)

    def bad(self, message: str, fld: str | None) -> InvalidRecordError:
        return InvalidRecordError(message, file=self.file, line=self.line, record=self.record,
                                  field=fld)

    def ref(self, value: Any, fld: str, default_kind: str | None) -> str:
        """The full key of an entity reference in this entity's namespace."""
        if not isinstance(value, str) or not value.strip():
            raise self.bad("an entity reference must be a non-empty string", fld)
        try:
            return _key(*parse_entity_ref(value, default_kind=default_kind,
                                          default_namespace=self.namespace))
        except ValueError as exc:
            raise self.bad(str(exc), fld) from exc

    def refs(self, fld: str, default_kind: str | None) -> list[str]:
        """The keys of ``spec.<fld>`` (one reference or a list)."""
        value = self.spec.get(fld)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.bad("expected a list of entity references", f"spec.{fld}")
        return [self.ref(v, f"spec.{fld}", default_kind) for v in value]

    def record_of(self) -> Record | None:
        """The group, person or CI record of this entity (``None`` for kinds without one)."""
        if self.kind == "group":
            return self._group()
        if self.kind == "user":
            return self._user()
        if self.kind not in _CI_KINDS:
            log.debug("%s: %s: kind %s carries no CI, skipped", self.file, self.record,
                      self.original_kind)
            return None
        return self._ci()

    def _profile(self) -> Mapping[str, Any]:
        profile = self.spec.get("profile")
        return profile if isinstance(profile, Mapping) else {}

    def _group(self) -> GroupRecord:
        attrs: dict[str, Any] = {"backstage_ref": self.key}
        for key in ("type", "parent"):
            if self.spec.get(key):
                attrs[f"group_{key}"] = str(self.spec[key])
        return GroupRecord(name=self.display, email=_text(self._profile().get("email")),
                           attributes=attrs, origin=self.origin)

    def _user(self) -> PersonRecord:
        groups = []
        for g in self.refs("memberOf", "group"):
            _, _, gref = g.partition(":")
            gns, _, gname = gref.partition("/")
            groups.append(_display(gns, gname))
        profile = self._profile()
        return PersonRecord(
            name=str(profile.get("displayName") or self.display),
            email=_text(profile.get("email")),
            username=self.display,
            groups=tuple(groups),
            attributes={"backstage_ref": self.key},
            origin=self.origin,
        )

    def _ci(self) -> CIRecord:
        spec, meta, kind = self.spec, self.meta, self.kind
        stype = spec.get("type")
        ci_class = {"component": "Application", "api": "Application",
                    "resource": "Database" if stype == "database" else "CloudResource",
                    "system": "ApplicationService"}.get(kind, "BusinessService")
        if kind in ("component", "api", "resource"):
            require(spec, "type", file=self.file, record=self.record, line=self.line)
            require(spec, "owner", file=self.file, record=self.record, line=self.line)
        attrs: dict[str, Any] = {"backstage_kind": self.original_kind, "backstage_ref": self.key}
        type_attr = {"component": "component_type", "api": "api_type",
                     "resource": "resource_type"}.get(kind)
        if type_attr and stype:
            attrs[type_attr] = str(stype)
        for key in ("title", "description"):
            if meta.get(key):
                attrs[key] = str(meta[key])
        if spec.get("lifecycle"):
            attrs["lifecycle"] = str(spec["lifecycle"])
            if str(spec["lifecycle"]) == "production":
                attrs["environment"] = "production"
        tags = meta.get("tags")
        if isinstance(tags, list) and tags:
            attrs["tags"] = [str(t) for t in tags]
        if kind == "system":
            attrs.update(service_name=str(meta.get("name")), system=str(meta.get("name")))
        elif kind in ("component", "resource") and isinstance(spec.get("system"), str):
            system = self.ref(spec["system"], "spec.system", "system").partition("/")[2]
            attrs.update(service_name=str(meta.get("name")), system=system)
        support_group: str | None = None
        owner: str | None = None
        if spec.get("owner") is not None:
            okind, _, oref = self.ref(spec["owner"], "spec.owner", "group").partition(":")
            ons, _, oname = oref.partition("/")
            if okind == "user":
                owner = _display(ons, oname)
            else:
                support_group = _display(ons, oname)
        return CIRecord(ci_class=ci_class, name=self.display,
                        identifiers=Identifiers(native_key=self.key), attributes=attrs,
                        support_group=support_group, owner=owner, origin=self.origin)
