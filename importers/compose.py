"""Docker Compose files: services, their declared and implied dependencies, networks, and the
project as an application service.

Follows the Compose Specification (https://github.com/compose-spec/compose-spec/blob/main/spec.md)
as read by ``docker compose``; the legacy ``version: "2"/"3"`` files are the same shape.

Mapping (the documented decisions):

- The project name is the file's top-level ``name``, else the importer's ``project`` option,
  else the name of the folder holding the file (what ``docker compose`` does).
- Each service becomes a ``Container`` CI named after the service, native key
  ``<project>/<service>``, with the attributes ``service_name`` (the service) and ``system``
  (the project): the ``name_system`` identification rule matches it with the same service of
  the same application from Kubernetes manifests or Backstage; ``image``, ``build`` context,
  ``container_name``, ``ports``, ``volumes`` and ``restart`` are attributes, and so is
  ``replicas`` (``deploy.replicas``, or the legacy ``scale``).
- ``depends_on`` becomes ``service -[DEPENDS_ON]-> service``: the short (list) form, and the
  long (map) form whose ``condition`` goes to the relationship property ``condition`` and whose
  ``required: false`` makes the dependency ``optional``. ``links`` (``svc`` or ``svc:alias``)
  and ``network_mode: service:<svc>`` are dependencies too. All are declared by the file, so
  none is ``inferred``; an edge declared twice is yielded once.
- Dependencies the file only implies (:func:`importers.inference.addresses`): an
  ``environment`` value (list or map form) or a ``command``/``entrypoint`` argument that names
  another service -- by its name, ``container_name``, ``hostname``, a ``links`` alias or a
  network alias -- as a URL or connection string (``http://carts:80``,
  ``jdbc:mysql://order-mysql:3306/orders``, ``mongodb://carts-db:27017/data``,
  ``user:pw@tcp(catalogue-db:3306)/db``), as ``host:port``, or as a bare name under a key
  that says it is an address (``MONGO_HOST=user-db``) becomes ``DEPENDS_ON`` with
  ``inferred=True``, an evidence string (``environment.MONGO_HOST=user-db in services.user
  names service user-db``) and the properties ``evidence_key``, ``evidence_value`` and
  ``port``; the record's origin is the file and the service. A dependency also declared stays
  declared; a service naming itself (``HOSTNAME``) is no dependency.
- The project is an ``ApplicationService`` CI named after it (native key ``<project>``). It
  ``-[DEPENDS_ON]->`` its entry points (:func:`importers.inference.entry_points`: services
  that publish ``ports`` and that no such service depends on) and, optionally, the services
  that publish none and that nothing depends on (workers), marked inferred with the project
  as evidence, so that ``changeImpact(servicesOnly: true)`` answers for the project.
- Networks become ``Network`` CIs named as Docker names them (the network's ``name``, else
  ``<project>_<network>``; external networks keep their own name); a service is
  ``-[CONNECTS_TO]->`` each network it joins (``default`` when it names none and has no
  ``network_mode``).
- Named volumes stay attributes of the services that mount them (``named_volumes``): a volume
  is storage of one Docker host, not a device that the CMDB identifies.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record, RelationshipRecord
from importers.base import Importer, guard
from importers.inference import (
    GROUPING_CONFIDENCE,
    address_confidence,
    addresses,
    argument_pairs,
    entry_points,
)
from importers.readers import load_yaml_documents

__all__ = ["ComposeImporter"]

log = logging.getLogger(__name__)

_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


@dataclass
class _Project:
    """One compose file being mapped: its names and the relationships found so far."""

    file: str
    name: str
    services: Mapping[str, Any]
    networks: Mapping[str, Any]
    rels: list[RelationshipRecord] = field(default_factory=list)
    used_nets: dict[str, Origin] = field(default_factory=dict)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def svc_id(self, svc: str) -> Identifiers:
        return Identifiers(native_key=f"{self.name}/{svc}")

    def net_id(self, key: str) -> Identifiers:
        return Identifiers(native_key=f"{self.name}/network/{key}")

    def net_name(self, key: str) -> str:
        """The network's name as Docker gives it."""
        spec = self.networks.get(key) or {}
        if isinstance(spec, Mapping) and spec.get("name"):
            return str(spec["name"])
        if isinstance(spec, Mapping) and spec.get("external") is True:
            return key
        return f"{self.name}_{key}"

    def edge(self, rel_type: str, src: str, dst: str, origin: Origin, **extra: Any) -> None:
        """One relationship per (type, source, target); the first declaration wins."""
        if (src, rel_type, dst) in self.seen:
            return
        self.seen.add((src, rel_type, dst))
        target = self.svc_id(dst) if rel_type == "DEPENDS_ON" else self.net_id(dst)
        self.rels.append(RelationshipRecord(rel_type=rel_type, source=self.svc_id(src),
                                            target=target, origin=origin, **extra))

    def depends(self, src: str, dst: str, origin: Origin, *, via: str, optional: bool = False,
                condition: str | None = None) -> None:
        props: dict[str, Any] = {"declared_by": via}
        if condition:
            props["condition"] = condition
        self.edge("DEPENDS_ON", src, dst, origin, optional=optional, properties=props)


def _bad(origin: Origin, message: str, fld: str) -> InvalidRecordError:
    return InvalidRecordError(message, file=origin.file, record=origin.record, field=fld)


class ComposeImporter(Importer[Mapping[str, Any]]):
    """Docker Compose file -> Container, Network and ApplicationService CIs, declared and
    inferred DEPENDS_ON, CONNECTS_TO.

    Follows the Compose Specification; see the module docstring for the mapping.

    Parameters
    ----------
    project : str, optional
        Project name when the file has no top-level ``name`` (default: the file's folder name).

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed YAML, no ``services`` mapping, a service without
        ``image`` or ``build``, or a reference (depends_on, links, networks) to something the
        file does not define -- naming the file, the service (``services.<name>``) and the
        field.
    """

    kind = "compose"
    description = "Docker Compose file (Compose Specification)"

    def __init__(self, *, project: str | None = None) -> None:
        self.project = project

    def read(self, path: Path) -> Mapping[str, Any]:
        docs = load_yaml_documents(path)
        if len(docs) != 1 or not isinstance(docs.items[0], Mapping):
            raise InvalidRecordError(
                "a compose file must be exactly one YAML mapping", file=str(path), record=1
            )
        doc: Mapping[str, Any] = docs.items[0]
        if not doc.get("name") and not self.project:
            # what ``docker compose`` does: the project is named after the file's folder
            return {**doc, "name": Path(path).resolve().parent.name}
        return doc

    def transform(self, doc: Mapping[str, Any], origin: str) -> Iterator[Record]:
        """Container and Network CI records, then their relationships."""
        services = doc.get("services")
        if not isinstance(services, Mapping) or not services:
            raise InvalidRecordError(
                "required field is missing, empty or not a mapping", file=origin,
                field="services",
            )
        declared = doc.get("networks") or {}
        if not isinstance(declared, Mapping):
            raise InvalidRecordError("networks must be a mapping", file=origin, field="networks")
        name = str(doc.get("name") or self.project or "default")
        project = _Project(origin, name, services, declared)
        cis: list[Record] = []
        for svc, spec in services.items():
            where = Origin(file=origin, record=f"services.{svc}")
            with guard(origin, record=where.record):
                cis.append(_service(project, str(svc), spec, where))
                _dependencies(project, str(svc), spec, where)
                _joined_networks(project, str(svc), spec, where)
        hosts = _host_names(project)
        for svc, spec in services.items():
            where = Origin(file=origin, record=f"services.{svc}")
            with guard(origin, record=where.record):
                _inferred(project, str(svc), spec, hosts, where)
        cis.extend(_networks(project))
        cis.append(_application(project))
        log.info("%s: project %s, %d services, %d networks, %d relationships (%d inferred)",
                 origin, project.name, len(services), len(cis) - len(services) - 1,
                 len(project.rels), sum(1 for r in project.rels if r.inferred))
        yield from cis
        yield from project.rels


def _service(project: _Project, svc: str, spec: Any, origin: Origin) -> CIRecord:
    """The Container CI of one service."""
    if not isinstance(spec, Mapping):
        raise _bad(origin, "a service must be a mapping", svc)
    if not spec.get("image") and not spec.get("build"):
        raise _bad(origin, "a service needs an image or a build", "image")
    attrs: dict[str, Any] = {"compose_project": project.name, "compose_service": svc}
    if spec.get("image"):
        attrs["image"] = str(spec["image"])
    build = spec.get("build")
    if isinstance(build, Mapping):
        build = build.get("context")
    if build:
        attrs["build"] = str(build)
    for key in ("container_name", "restart", "hostname"):
        if spec.get(key):
            attrs[key] = str(spec[key])
    deploy = spec.get("deploy")
    if deploy is not None and not isinstance(deploy, Mapping):
        raise _bad(origin, "deploy must be a mapping", "deploy")
    replicas = (deploy or {}).get("replicas", spec.get("scale"))
    if replicas is not None:
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise _bad(origin, "replicas must be a whole number", "deploy.replicas")
        attrs["replicas"] = replicas
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        raise _bad(origin, "ports must be a list", "ports")
    if ports:
        attrs["ports"] = [
            str(p.get("published", p.get("target"))) if isinstance(p, Mapping) else str(p)
            for p in ports
        ]
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list):
        raise _bad(origin, "volumes must be a list", "volumes")
    mounts, named = _volumes(volumes)
    if mounts:
        attrs["volumes"] = mounts
    if named:
        attrs["named_volumes"] = sorted(set(named))
    attrs["service_name"] = svc
    attrs["system"] = project.name
    return CIRecord(ci_class="Container", name=svc, identifiers=project.svc_id(svc),
                    attributes=attrs, origin=origin)


def _volumes(volumes: list[Any]) -> tuple[list[str], list[str]]:
    """The mounts of a service as ``source:target`` strings, and its named volumes."""
    mounts: list[str] = []
    named: list[str] = []
    for v in volumes:
        if isinstance(v, Mapping):
            source = str(v.get("source") or "")
            target = str(v.get("target"))
            mounts.append(f"{source}:{target}" if source else target)
        else:
            source = str(v).split(":", 1)[0]
            mounts.append(str(v))
        if source and not source.startswith((".", "/", "~", "$")):
            named.append(source)
    return mounts, named


def _dependencies(project: _Project, svc: str, spec: Mapping[str, Any], origin: Origin) -> None:
    """DEPENDS_ON from ``depends_on`` (list or map form), ``links`` and ``network_mode``."""
    services = project.services
    depends = spec.get("depends_on") or []
    if isinstance(depends, list):
        for target in depends:
            if not isinstance(target, str):
                raise _bad(origin, "depends_on entries must be service names", "depends_on")
            if target not in services:
                raise _bad(origin, f"depends_on names unknown service {target!r}", "depends_on")
            project.depends(svc, target, origin, via="depends_on")
    elif isinstance(depends, Mapping):
        for target, opts in depends.items():
            target = str(target)
            if target not in services:
                raise _bad(origin, f"depends_on names unknown service {target!r}", "depends_on")
            opts = opts or {}
            if not isinstance(opts, Mapping):
                raise _bad(origin, "a depends_on entry must be a mapping", f"depends_on.{target}")
            condition = opts.get("condition", "service_started")
            if condition not in _CONDITIONS:
                raise _bad(origin,
                           f"unknown condition {condition!r} (known: {', '.join(_CONDITIONS)})",
                           f"depends_on.{target}.condition")
            project.depends(svc, target, origin, via="depends_on",
                            optional=opts.get("required", True) is False,
                            condition=str(condition))
    else:
        raise _bad(origin, "depends_on must be a list or a mapping", "depends_on")

    links = spec.get("links") or []
    if not isinstance(links, list):
        raise _bad(origin, "links must be a list", "links")
    for link in links:  # "svc" or "svc:alias"
        target = str(link).split(":", 1)[0]
        if target not in services:
            raise _bad(origin, f"links names unknown service {target!r}", "links")
        project.depends(svc, target, origin, via="links")

    mode = spec.get("network_mode")
    if isinstance(mode, str) and mode.startswith("service:"):
        target = mode.split(":", 1)[1]
        if target not in services:
            raise _bad(origin, f"network_mode names unknown service {target!r}", "network_mode")
        project.depends(svc, target, origin, via="network_mode")


def _host_names(project: _Project) -> dict[str, str]:
    """Host name -> service: what other containers of the project can reach a service by
    (its name, ``container_name``, ``hostname``, ``links`` and network aliases)."""
    names: dict[str, str] = {}
    for svc, spec in project.services.items():
        if not isinstance(spec, Mapping):
            continue
        names.setdefault(str(svc).lower(), str(svc))
        for key in ("container_name", "hostname"):
            if isinstance(spec.get(key), str):
                names.setdefault(spec[key].lower(), str(svc))
        nets = spec.get("networks")
        for net in nets.values() if isinstance(nets, Mapping) else []:
            aliases = net.get("aliases") if isinstance(net, Mapping) else None
            for alias in aliases if isinstance(aliases, list) else []:
                names.setdefault(str(alias).lower(), str(svc))
    for spec in project.services.values():
        links = spec.get("links") if isinstance(spec, Mapping) else None
        for link in links if isinstance(links, list) else []:
            target, _, alias = str(link).partition(":")
            if alias and target in project.services:
                names.setdefault(alias.lower(), target)
    return names


def _settings(spec: Mapping[str, Any], origin: Origin) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of a service's ``environment`` (list or map form) and of its
    ``command`` and ``entrypoint`` arguments (``command.<option>``)."""
    env = spec.get("environment") or {}
    if isinstance(env, list):
        for item in env:
            key, sep, value = str(item).partition("=")
            if sep:
                yield f"environment.{key}", value
    elif isinstance(env, Mapping):
        for key, value in env.items():
            if value is not None and not isinstance(value, Mapping | list):
                yield f"environment.{key}", str(value)
    else:
        raise _bad(origin, "environment must be a list or a mapping", "environment")
    for field_name in ("entrypoint", "command"):
        raw = spec.get(field_name)
        if isinstance(raw, str):
            try:
                argv = shlex.split(raw)
            except ValueError:  # an unclosed quote: read it word by word
                argv = raw.split()
        elif isinstance(raw, list):
            argv = [str(a) for a in raw]
        else:
            continue
        for key, value in argument_pairs(argv):
            yield f"{field_name}.{key}" if key else field_name, value


def _inferred(project: _Project, svc: str, spec: Mapping[str, Any], hosts: Mapping[str, str],
              origin: Origin) -> None:
    """DEPENDS_ON (inferred, with evidence) to the services that environment values and
    arguments name; a dependency the file declares is kept as declared."""
    for key, value in _settings(spec, origin):
        option = key.split(".", 1)[-1]
        for address in addresses(option if "." in key else "", value):
            target = hosts.get(address.host)
            if target is None or target == svc:
                continue
            props: dict[str, Any] = {"evidence_key": key, "evidence_value": value}
            if address.port is not None:
                props["port"] = address.port
            shown = f"{key}={value}" if "." in key else f"{key} argument {value}"
            project.edge("DEPENDS_ON", svc, target, origin, inferred=True,
                         confidence=address_confidence(address),
                         evidence=f"{shown} in services.{svc} names service {target}",
                         properties=props)


def _application(project: _Project) -> CIRecord:
    """The ApplicationService CI of the project, and its DEPENDS_ON on the services that
    serve it (:func:`importers.inference.entry_points`; publishing ``ports`` exposes)."""
    members = [(project.svc_id(str(s)).native_key or "",
                isinstance(spec, Mapping) and bool(spec.get("ports")))
               for s, spec in project.services.items()]
    edges = [(r.source.native_key or "", r.target.native_key or "") for r in project.rels
             if r.rel_type == "DEPENDS_ON"]
    origin = Origin(file=project.file, record="services")
    for key, optional, role in entry_points(members, edges):
        svc = key.split("/", 1)[1]
        project.rels.append(RelationshipRecord(
            rel_type="DEPENDS_ON", source=Identifiers(native_key=project.name),
            target=Identifiers(native_key=key), optional=optional, inferred=True,
            confidence=GROUPING_CONFIDENCE,
            evidence=f"compose project {project.name} groups services.{svc}: {role}",
            properties={"evidence_key": "name", "evidence_value": project.name},
            origin=Origin(file=project.file, record=f"services.{svc}")))
    return CIRecord(ci_class="ApplicationService", name=project.name,
                    identifiers=Identifiers(native_key=project.name),
                    attributes={"compose_project": project.name, "service_name": project.name,
                                "system": project.name}, origin=origin)


def _joined_networks(project: _Project, svc: str, spec: Mapping[str, Any],
                     origin: Origin) -> None:
    """CONNECTS_TO each network the service joins (``default`` when it names none)."""
    nets = spec.get("networks")
    if nets is None:
        joined = [] if spec.get("network_mode") else ["default"]
    elif isinstance(nets, list | Mapping):
        joined = [str(n) for n in nets]
    else:
        raise _bad(origin, "networks must be a list or a mapping", "networks")
    for net in joined:
        if net != "default" and net not in project.networks:
            raise _bad(origin, f"service joins undeclared network {net!r}", "networks")
        project.used_nets.setdefault(net, origin)
        project.edge("CONNECTS_TO", svc, net, origin)


def _networks(project: _Project) -> Iterator[CIRecord]:
    """A Network CI for every declared or joined network."""
    for net in sorted(set(project.networks) | set(project.used_nets)):
        spec = project.networks.get(net) or {}
        attrs: dict[str, Any] = {"compose_project": project.name, "compose_network": net}
        if isinstance(spec, Mapping):
            if spec.get("driver"):
                attrs["driver"] = str(spec["driver"])
            if spec.get("external"):
                attrs["external"] = True
        origin = project.used_nets.get(net, Origin(file=project.file, record=f"networks.{net}"))
        yield CIRecord(ci_class="Network", name=project.net_name(net),
                       identifiers=project.net_id(net), attributes=attrs, origin=origin)
