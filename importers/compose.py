"""Docker Compose files: services, their dependencies and networks.

Follows the Compose Specification (https://github.com/compose-spec/compose-spec/blob/main/spec.md)
as read by ``docker compose``; the legacy ``version: "2"/"3"`` files are the same shape.

Mapping (the documented decisions):

- The project name is the file's top-level ``name``, else the importer's ``project`` option,
  else the name of the folder holding the file (what ``docker compose`` does).
- Each service becomes a ``Container`` CI named after the service, native key
  ``<project>/<service>``; ``image``, ``build`` context, ``container_name``, ``ports``,
  ``volumes`` and ``restart`` are attributes.
- ``depends_on`` becomes ``service -[DEPENDS_ON]-> service``: the short (list) form, and the
  long (map) form whose ``condition`` goes to the relationship property ``condition`` and whose
  ``required: false`` makes the dependency ``optional``. ``links`` (``svc`` or ``svc:alias``)
  and ``network_mode: service:<svc>`` are dependencies too. All are declared by the file, so
  none is ``inferred``; an edge declared twice is yielded once.
- Networks become ``Network`` CIs named as Docker names them (the network's ``name``, else
  ``<project>_<network>``; external networks keep their own name); a service is
  ``-[CONNECTS_TO]->`` each network it joins (``default`` when it names none and has no
  ``network_mode``).
- Named volumes stay attributes of the services that mount them (``named_volumes``): a volume
  is storage of one Docker host, not a device that the CMDB identifies.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record, RelationshipRecord
from importers.base import checked_records, load_yaml_documents

__all__ = ["ComposeImporter"]

log = logging.getLogger(__name__)

_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


class ComposeImporter:
    """Docker Compose file -> Container and Network CIs, DEPENDS_ON and CONNECTS_TO.

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
        file does not define -- naming the file, the service and the field.
    """

    kind = "compose"
    description = "Docker Compose file (Compose Specification)"

    def __init__(self, *, project: str | None = None) -> None:
        self.project = project

    def parse(self, path: Path) -> Iterator[Record]:
        """Yield Container and Network CI records, then their relationships.

        Parameters
        ----------
        path : Path
            A ``compose.yaml`` / ``docker-compose.yml`` file.

        Raises
        ------
        InvalidRecordError
            Bad input; names the file, the service (``services.<name>``) and the field.
        """
        yield from checked_records(path, self._parse(path))

    def _parse(self, path: Path) -> Iterator[Record]:
        """The records of :meth:`parse`, unchecked."""
        name = str(path)
        docs = load_yaml_documents(path)
        if len(docs) != 1 or not isinstance(docs[0], Mapping):
            raise InvalidRecordError(
                "a compose file must be exactly one YAML mapping", file=name, record=1
            )
        doc: Mapping[str, Any] = docs[0]
        services = doc.get("services")
        if not isinstance(services, Mapping) or not services:
            raise InvalidRecordError(
                "required field is missing, empty or not a mapping", file=name, field="services"
            )
        project = str(doc.get("name") or self.project or Path(path).resolve().parent.name)
        declared_nets = doc.get("networks") or {}
        if not isinstance(declared_nets, Mapping):
            raise InvalidRecordError("networks must be a mapping", file=name, field="networks")

        def net_name(key: str) -> str:
            spec = declared_nets.get(key) or {}
            if isinstance(spec, Mapping) and spec.get("name"):
                return str(spec["name"])
            if isinstance(spec, Mapping) and spec.get("external") is True:
                return key
            return f"{project}_{key}"

        def svc_id(svc: str) -> Identifiers:
            return Identifiers(native_key=f"{project}/{svc}")

        def net_id(key: str) -> Identifiers:
            return Identifiers(native_key=f"{project}/network/{key}")

        cis: list[Record] = []
        rels: list[Record] = []
        used_nets: dict[str, Origin] = {}
        seen: set[tuple[str, str, str]] = set()

        def dep(src: str, dst: str, origin: Origin, *, via: str, optional: bool = False,
                condition: str | None = None) -> None:
            if (src, "DEPENDS_ON", dst) in seen:
                return
            seen.add((src, "DEPENDS_ON", dst))
            props: dict[str, Any] = {"declared_by": via}
            if condition:
                props["condition"] = condition
            rels.append(
                RelationshipRecord(
                    rel_type="DEPENDS_ON", source=svc_id(src), target=svc_id(dst),
                    optional=optional, properties=props, origin=origin,
                )
            )

        for svc, spec in services.items():
            svc = str(svc)
            record = f"services.{svc}"
            origin = Origin(file=name, record=record)

            def bad(message: str, fld: str, record: str = record) -> InvalidRecordError:
                return InvalidRecordError(message, file=name, record=record, field=fld)

            if not isinstance(spec, Mapping):
                raise bad("a service must be a mapping", svc)
            if not spec.get("image") and not spec.get("build"):
                raise bad("a service needs an image or a build", "image")
            attrs: dict[str, Any] = {"compose_project": project, "compose_service": svc}
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
            ports = spec.get("ports") or []
            if not isinstance(ports, list):
                raise bad("ports must be a list", "ports")
            if ports:
                attrs["ports"] = [
                    str(p.get("published", p.get("target"))) if isinstance(p, Mapping) else str(p)
                    for p in ports
                ]
            volumes = spec.get("volumes") or []
            if not isinstance(volumes, list):
                raise bad("volumes must be a list", "volumes")
            mounts: list[str] = []
            named: list[str] = []
            for v in volumes:
                source = (
                    str(v.get("source") or "") if isinstance(v, Mapping)
                    else str(v).split(":", 1)[0]
                )
                target = str(v.get("target")) if isinstance(v, Mapping) else str(v)
                mounts.append(
                    (f"{source}:{target}" if source else target) if isinstance(v, Mapping)
                    else str(v)
                )
                if source and not source.startswith((".", "/", "~", "$")):
                    named.append(source)
            if mounts:
                attrs["volumes"] = mounts
            if named:
                attrs["named_volumes"] = sorted(set(named))
            cis.append(CIRecord(ci_class="Container", name=svc, identifiers=svc_id(svc),
                                attributes=attrs, origin=origin))

            # depends_on: list or map form
            depends = spec.get("depends_on") or []
            if isinstance(depends, list):
                for target in depends:
                    if not isinstance(target, str):
                        raise bad("depends_on entries must be service names", "depends_on")
                    if target not in services:
                        raise bad(f"depends_on names unknown service {target!r}", "depends_on")
                    dep(svc, target, origin, via="depends_on")
            elif isinstance(depends, Mapping):
                for target, opts in depends.items():
                    target = str(target)
                    if target not in services:
                        raise bad(f"depends_on names unknown service {target!r}", "depends_on")
                    opts = opts or {}
                    if not isinstance(opts, Mapping):
                        raise bad("a depends_on entry must be a mapping", f"depends_on.{target}")
                    condition = opts.get("condition", "service_started")
                    if condition not in _CONDITIONS:
                        raise bad(
                            f"unknown condition {condition!r} (known: {', '.join(_CONDITIONS)})",
                            f"depends_on.{target}.condition",
                        )
                    dep(svc, target, origin, via="depends_on",
                        optional=opts.get("required", True) is False, condition=str(condition))
            else:
                raise bad("depends_on must be a list or a mapping", "depends_on")

            # links: "svc" or "svc:alias"
            links = spec.get("links") or []
            if not isinstance(links, list):
                raise bad("links must be a list", "links")
            for link in links:
                target = str(link).split(":", 1)[0]
                if target not in services:
                    raise bad(f"links names unknown service {target!r}", "links")
                dep(svc, target, origin, via="links")

            mode = spec.get("network_mode")
            if isinstance(mode, str) and mode.startswith("service:"):
                target = mode.split(":", 1)[1]
                if target not in services:
                    raise bad(f"network_mode names unknown service {target!r}", "network_mode")
                dep(svc, target, origin, via="network_mode")

            nets = spec.get("networks")
            if nets is None:
                joined = [] if mode else ["default"]
            elif isinstance(nets, list):
                joined = [str(n) for n in nets]
            elif isinstance(nets, Mapping):
                joined = [str(n) for n in nets]
            else:
                raise bad("networks must be a list or a mapping", "networks")
            for net in joined:
                if net != "default" and net not in declared_nets:
                    raise bad(f"service joins undeclared network {net!r}", "networks")
                used_nets.setdefault(net, origin)
                edge = (svc, "CONNECTS_TO", net)
                if edge in seen:
                    continue
                seen.add(edge)
                rels.append(
                    RelationshipRecord(rel_type="CONNECTS_TO", source=svc_id(svc),
                                       target=net_id(net), origin=origin)
                )

        for net in sorted(set(declared_nets) | set(used_nets)):
            spec = declared_nets.get(net) or {}
            attrs = {"compose_project": project, "compose_network": net}
            if isinstance(spec, Mapping):
                if spec.get("driver"):
                    attrs["driver"] = str(spec["driver"])
                if spec.get("external"):
                    attrs["external"] = True
            cis.append(
                CIRecord(ci_class="Network", name=net_name(net), identifiers=net_id(net),
                         attributes=attrs,
                         origin=used_nets.get(net, Origin(file=name, record=f"networks.{net}")))
            )
        log.info("%s: project %s, %d services, %d networks, %d relationships", path, project,
                 len(services), len(set(declared_nets) | set(used_nets)), len(rels))
        yield from cis
        yield from rels
