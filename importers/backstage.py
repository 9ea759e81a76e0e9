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

Every entity's native key is its full reference ``<kind>:<namespace>/<name>`` (lower case kind);
relationships name their ends by it, so references across files of the same source resolve in
ingestion. CI names are ``metadata.name`` (``<namespace>/<name>`` outside the default
namespace); ``title``, ``description``, ``lifecycle``, ``tags`` are attributes, and lifecycle
``production`` sets ``environment`` to ``production``. A User becomes a person named by its
``profile.displayName`` (else its entity name), with the entity name as ``username``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
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
from importers.base import checked_records, load_yaml_documents, require
from importers.kubernetes import yaml_document_lines

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


class BackstageImporter:
    """Backstage catalog descriptor file -> CIs, DEPENDS_ON, support groups and people.

    Follows the Backstage descriptor format; see the module docstring for the mapping.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed YAML, an unknown ``apiVersion``, a missing ``kind``,
        ``metadata.name`` or required ``spec`` field, or a malformed entity reference -- naming
        the file, the document (line and index) and the field.
    """

    kind = "backstage"
    description = "Backstage catalog entity descriptors (catalog-info.yaml)"

    def parse(self, path: Path) -> Iterator[Record]:
        """Yield CI, group and person records, then relationships.

        Parameters
        ----------
        path : Path
            A descriptor file with one or more entities.

        Raises
        ------
        InvalidRecordError
            Bad input; names the file, the document and the field.
        """
        yield from checked_records(path, self._parse(path))

    def _parse(self, path: Path) -> Iterator[Record]:
        """The records of :meth:`parse`, unchecked."""
        name = str(path)
        docs = load_yaml_documents(path)
        if not docs:
            raise InvalidRecordError("no YAML document in file", file=name)
        lines = yaml_document_lines(path)
        entities: list[Record] = []
        rels: list[Record] = []
        seen: set[tuple[str, str]] = set()
        for index, doc in enumerate(docs, start=1):
            line = lines[index - 1] if index - 1 < len(lines) else None
            record = f"document {index}"
            origin = Origin(file=name, line=line, record=record)

            def bad(message: str, fld: str | None, line: int | None = line,
                    record: str = record) -> InvalidRecordError:
                return InvalidRecordError(message, file=name, line=line, record=record, field=fld)

            if not isinstance(doc, Mapping):
                raise bad("an entity must be a mapping", None)
            api_version = require(doc, "apiVersion", file=name, record=record, line=line)
            if api_version not in API_VERSIONS:
                raise bad(
                    f"unknown apiVersion {api_version!r} (known: {', '.join(API_VERSIONS)})",
                    "apiVersion",
                )
            kind = str(require(doc, "kind", file=name, record=record, line=line))
            meta = doc.get("metadata")
            if meta is not None and not isinstance(meta, Mapping):
                raise bad("metadata must be a mapping", "metadata")
            meta = meta or {}
            if not meta.get("name"):
                raise bad("required field is missing or empty", "metadata.name")
            ename = str(meta["name"])
            namespace = str(meta.get("namespace") or "default")
            spec = doc.get("spec") or {}
            if not isinstance(spec, Mapping):
                raise bad("spec must be a mapping", "spec")
            lkind = kind.lower()
            me = _key(lkind, namespace, ename)

            def ref(value: Any, fld: str, default_kind: str | None,
                    namespace: str = namespace) -> str:
                if not isinstance(value, str) or not value.strip():
                    raise bad("an entity reference must be a non-empty string", fld)
                try:
                    return _key(*parse_entity_ref(value, default_kind=default_kind,
                                                  default_namespace=namespace))
                except ValueError as exc:
                    raise bad(str(exc), fld) from exc

            def refs(fld: str, default_kind: str | None,
                     spec: Mapping[str, Any] = spec) -> list[str]:
                value = spec.get(fld)
                if value is None:
                    return []
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list):
                    raise bad("expected a list of entity references", f"spec.{fld}")
                return [ref(v, f"spec.{fld}", default_kind) for v in value]

            def depends(src: str, dst: str, fld: str, origin: Origin = origin) -> None:
                if (src, dst) in seen or src == dst:
                    return
                seen.add((src, dst))
                rels.append(
                    RelationshipRecord(
                        rel_type="DEPENDS_ON",
                        source=Identifiers(native_key=src),
                        target=Identifiers(native_key=dst),
                        properties={"backstage_relation": fld},
                        origin=origin,
                    )
                )

            if lkind == "group":
                profile = spec.get("profile") if isinstance(spec.get("profile"), Mapping) else {}
                attrs: dict[str, Any] = {"backstage_ref": me}
                for key in ("type", "parent"):
                    if spec.get(key):
                        attrs[f"group_{key}"] = str(spec[key])
                entities.append(
                    GroupRecord(
                        name=_display(namespace, ename),
                        email=_text((profile or {}).get("email")),
                        attributes=attrs,
                        origin=origin,
                    )
                )
                continue
            if lkind == "user":
                profile = spec.get("profile") if isinstance(spec.get("profile"), Mapping) else {}
                groups = []
                for g in refs("memberOf", "group"):
                    _, _, gref = g.partition(":")
                    gns, _, gname = gref.partition("/")
                    groups.append(_display(gns, gname))
                entities.append(
                    PersonRecord(
                        name=str((profile or {}).get("displayName") or _display(namespace, ename)),
                        email=_text((profile or {}).get("email")),
                        username=_display(namespace, ename),
                        groups=tuple(groups),
                        attributes={"backstage_ref": me},
                        origin=origin,
                    )
                )
                continue
            if lkind not in _CI_KINDS:
                log.debug("%s: %s: kind %s carries no CI, skipped", name, record, kind)
                continue

            stype = spec.get("type")
            if lkind == "component":
                ci_class = "Application"
            elif lkind == "api":
                ci_class = "Application"
            elif lkind == "resource":
                ci_class = "Database" if stype == "database" else "CloudResource"
            elif lkind == "system":
                ci_class = "ApplicationService"
            else:
                ci_class = "BusinessService"
            if lkind in ("component", "api", "resource"):
                require(spec, "type", file=name, record=record, line=line)
                require(spec, "owner", file=name, record=record, line=line)
            attrs = {"backstage_kind": kind, "backstage_ref": me}
            if lkind == "component" and stype:
                attrs["component_type"] = str(stype)
            if lkind == "api" and stype:
                attrs["api_type"] = str(stype)
            if lkind == "resource" and stype:
                attrs["resource_type"] = str(stype)
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
            support_group: str | None = None
            owner: str | None = None
            if spec.get("owner") is not None:
                okind, _, oref = ref(spec["owner"], "spec.owner", "group").partition(":")
                ons, _, oname = oref.partition("/")
                if okind == "user":
                    owner = _display(ons, oname)
                else:
                    support_group = _display(ons, oname)
            entities.append(
                CIRecord(
                    ci_class=ci_class,
                    name=_display(namespace, ename),
                    identifiers=Identifiers(native_key=me),
                    attributes=attrs,
                    support_group=support_group,
                    owner=owner,
                    origin=origin,
                )
            )

            for target in refs("dependsOn", "component"):
                depends(me, target, "dependsOn")
            for source in refs("dependencyOf", "component"):
                depends(source, me, "dependencyOf")
            if lkind == "component":
                for api in refs("consumesApis", "api"):
                    depends(me, api, "consumesApis")
                for api in refs("providesApis", "api"):
                    depends(api, me, "providesApis")
                for parent in refs("subcomponentOf", "component"):
                    depends(parent, me, "subcomponentOf")
            if lkind in ("component", "api", "resource"):
                for system in refs("system", "system"):
                    depends(system, me, "system")
            if lkind == "system":
                for domain in refs("domain", "domain"):
                    depends(domain, me, "domain")
            if lkind == "domain":
                for parent in refs("subdomainOf", "domain"):
                    depends(parent, me, "subdomainOf")
        log.info("%s: %d entities, %d relationships", name, len(entities), len(rels))
        yield from entities
        yield from rels
