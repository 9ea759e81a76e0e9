"""Kubernetes manifests: workloads, the Services that address them, and inferred dependencies.

Follows the Kubernetes API reference (https://kubernetes.io/docs/reference/kubernetes-api/):
``apps/v1`` Deployment, StatefulSet, DaemonSet and ReplicaSet, ``batch/v1`` Job and CronJob,
``v1`` Pod, Service and List, as written by ``kubectl get -o yaml`` or kept in a repository
(multi-document YAML; a ``kind: List`` document holds its objects in ``items``), and the list
answers of the API itself (``GET /apis/apps/v1/deployments`` answers ``kind: DeploymentList``,
whose items carry no ``kind``: they take it from the list's).

Mapping (the documented decisions):

- Every workload (the kinds above except Service) becomes one ``Container`` CI named
  ``<namespace>/<name>`` (namespace ``default`` when the manifest has none), native key
  ``<namespace>/<kind>/<name>`` (kind lower case). Objects that a controller owns
  (``metadata.ownerReferences`` with ``controller: true``: the ReplicaSets and Pods of a
  Deployment in ``kubectl get all -o yaml``) are skipped; their owner is the CI. The
  namespace is an attribute (``namespace``), not a CI of its own: it is a naming scope, not
  something that fails.
- A Service is an *address*, not a separate CI: it is folded into the workloads it selects
  (its selector matches their pod template labels). The Service names are kept on those
  workloads (attribute ``k8s_services``). A Service that selects no workload of the input
  (no selector, ``ExternalName``, or a selector matching nothing) becomes an ``Application``
  CI of its own, named ``<namespace>/<service>``, so that dependencies on it are not lost.
- Dependencies are inferred from container environment values that name a Service -- literal
  ``env[].value``, and values taken from a ConfigMap of the same input
  (``valueFrom.configMapKeyRef``, ``envFrom.configMapRef`` with its ``prefix``):
  ``cartservice:7070``, ``redis-cart:6379``, ``http://frontend:80/x``, ``svc.ns``,
  ``svc.ns.svc.cluster.local:port``, or a bare ``svc`` when the variable name says it is an
  address (``*_ADDR``, ``*_HOST``, ``*_URL``, ...). Each becomes
  ``workload -[DEPENDS_ON]-> workload`` for every workload the Service selects, with
  ``inferred=True`` and an evidence string naming the variable, the Service and its selector.
  Values naming no Service of the input are ignored (``0.0.0.0``, ``gcp``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import (
    CIRecord,
    Identifiers,
    InputWarning,
    Origin,
    Record,
    RelationshipRecord,
)
from importers.base import Importer, Item, guard, require
from importers.readers import Documents, load_yaml_documents

__all__ = ["KubernetesImporter"]

log = logging.getLogger(__name__)

#: Workload kinds and the path from the object to its pod template spec/labels.
WORKLOAD_KINDS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}
_ADDRESS_NAME = re.compile(r"(ADDR|ADDRESS|HOST|HOSTNAME|URL|URI|ENDPOINT|SERVICE|SERVER)S?$")
_HOST_PORT = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(:(\d{1,5}))?$")


@dataclass
class _Workload:
    kind: str
    namespace: str
    name: str
    labels: dict[str, str]
    envs: list[tuple[str, str, str, str]]  # (container, variable, value, where from)
    images: list[str]
    origin: Origin
    attributes: dict[str, Any] = field(default_factory=dict)
    #: (container, variable or None for envFrom, ConfigMap name, key or None, envFrom prefix)
    config_refs: list[tuple[str, str | None, str, str | None, str]] = field(default_factory=list)
    services: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.kind.lower()}/{self.name}"


@dataclass
class _Service:
    namespace: str
    name: str
    selector: dict[str, str]
    ports: list[int]
    svc_type: str
    external_name: str | None
    origin: Origin
    targets: list[_Workload] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/service/{self.name}"


def _controlled(obj: Mapping[str, Any]) -> bool:
    """Whether a controller owns the object (a Deployment's ReplicaSet, a ReplicaSet's Pod)."""
    refs = _dig(obj, ("metadata", "ownerReferences"))
    return isinstance(refs, list) and any(
        isinstance(r, Mapping) and r.get("controller") is True for r in refs
    )


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _str_map(value: Any, *, file: str, record: str, line: int | None, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRecordError(
            "expected a mapping of labels", file=file, record=record, line=line, field=where
        )
    return {str(k): str(v) for k, v in value.items()}


class KubernetesImporter(Importer[Documents | Sequence[Any]]):
    """Kubernetes manifests (multi-document YAML) -> Container CIs and inferred DEPENDS_ON.

    Follows the Kubernetes API reference; see the module docstring for the mapping.

    Parameters
    ----------
    default_namespace : str
        Namespace of objects whose manifest names none (``kubectl apply`` without ``-n``).

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed YAML, a document that is not a mapping, a missing
        ``kind``/``metadata.name``, or a malformed workload (containers, env) -- naming the file,
        the document's line and index, and the field.
    """

    kind = "kubernetes"
    description = "Kubernetes manifests (API reference: apps/v1, batch/v1, v1 Service/Pod/List)"

    def __init__(self, *, default_namespace: str = "default") -> None:
        self.default_namespace = default_namespace

    def read(self, path: Path) -> Documents:
        return load_yaml_documents(path)

    # -- reading ----------------------------------------------------------------------------
    @staticmethod
    def _objects(docs: Documents, name: str) -> Iterator[tuple[Mapping[str, Any], Origin]]:
        if not docs:
            raise InvalidRecordError("no YAML document in file", file=name)
        for index, (line, doc) in enumerate(docs, start=1):
            record = f"document {index}"
            if not isinstance(doc, Mapping):
                raise InvalidRecordError(
                    "a manifest document must be a mapping", file=name, line=line, record=record
                )
            kind = require(doc, "kind", file=name, record=record, line=line)
            if isinstance(kind, str) and kind.endswith("List"):
                items = doc.get("items")
                if not isinstance(items, list):
                    raise InvalidRecordError(
                        "kind List needs a list of items", file=name, line=line, record=record,
                        field="items",
                    )
                for i, item in enumerate(items, start=1):
                    sub = f"{record} items[{i}]"
                    if not isinstance(item, Mapping):
                        raise InvalidRecordError(
                            "a List item must be a mapping", file=name, line=line, record=sub
                        )
                    if kind != "List" and not item.get("kind"):
                        # an API list answer (DeploymentList) leaves kind out of its items
                        item = {**item, "kind": kind.removesuffix("List")}
                    require(item, "kind", file=name, record=sub, line=line)
                    yield item, Origin(file=name, line=line, record=sub)
            else:
                yield doc, Origin(file=name, line=line, record=record)

    def _metadata(
        self, obj: Mapping[str, Any], origin: Origin
    ) -> tuple[str, str, Mapping[str, Any]]:
        meta = obj.get("metadata")
        if meta is not None and not isinstance(meta, Mapping):
            raise InvalidRecordError(
                "metadata must be a mapping", file=origin.file, line=origin.line,
                record=origin.record, field="metadata",
            )
        name = (meta or {}).get("name")
        if not name:
            raise InvalidRecordError(
                "required field is missing or empty", file=origin.file, line=origin.line,
                record=origin.record, field="metadata.name",
            )
        meta = meta or {}
        namespace = meta.get("namespace") or self.default_namespace
        return str(namespace), str(name), meta

    def _workload(self, obj: Mapping[str, Any], kind: str, origin: Origin) -> _Workload:
        namespace, name, meta = self._metadata(obj, origin)
        rec = f"{origin.record} ({kind} {namespace}/{name})"

        def bad(message: str, fld: str) -> InvalidRecordError:
            return InvalidRecordError(
                message, file=origin.file, line=origin.line, record=rec, field=fld
            )

        template = _dig(obj, WORKLOAD_KINDS[kind]) if WORKLOAD_KINDS[kind] else obj
        if not isinstance(template, Mapping):
            raise bad("workload has no pod template", ".".join(WORKLOAD_KINDS[kind]))
        labels = _str_map(
            _dig(template, ("metadata", "labels")), file=origin.file, record=rec,
            line=origin.line, where="template.metadata.labels",
        )
        containers = _dig(template, ("spec", "containers"))
        if not isinstance(containers, list) or not containers:
            raise bad("a pod spec needs a non-empty list of containers", "spec.containers")
        init = _dig(template, ("spec", "initContainers")) or []
        envs: list[tuple[str, str, str, str]] = []
        config_refs: list[tuple[str, str | None, str, str | None, str]] = []
        images: list[str] = []
        for c in [*containers, *(init if isinstance(init, list) else [])]:
            if not isinstance(c, Mapping):
                raise bad("a container must be a mapping", "containers")
            cname = str(require(c, "name", file=origin.file, record=rec, line=origin.line))
            if c.get("image"):
                images.append(str(c["image"]))
            env = c.get("env") or []
            if not isinstance(env, list):
                raise bad("env must be a list", f"containers[{cname}].env")
            for var in env:
                if not isinstance(var, Mapping) or not var.get("name"):
                    raise bad("an env entry needs a name", f"containers[{cname}].env")
                if var.get("value") is not None:
                    envs.append((cname, str(var["name"]), str(var["value"]), ""))
                ref = _dig(var, ("valueFrom", "configMapKeyRef"))
                if isinstance(ref, Mapping) and ref.get("name") and ref.get("key"):
                    config_refs.append((cname, str(var["name"]), str(ref["name"]),
                                        str(ref["key"]), ""))
            env_from = c.get("envFrom") or []
            if not isinstance(env_from, list):
                raise bad("envFrom must be a list", f"containers[{cname}].envFrom")
            for source in env_from:
                ref = _dig(source, ("configMapRef",))
                if isinstance(ref, Mapping) and ref.get("name"):
                    config_refs.append((cname, None, str(ref["name"]), None,
                                        str(source.get("prefix") or "")))
        attributes: dict[str, Any] = {
            "namespace": namespace,
            "k8s_kind": kind,
            "images": images,
        }
        replicas = _dig(obj, ("spec", "replicas"))
        if isinstance(replicas, int):
            attributes["replicas"] = replicas
        meta_labels = meta.get("labels")
        if isinstance(meta_labels, Mapping):
            for k, v in meta_labels.items():
                attributes[f"label_{k}"] = str(v)
        return _Workload(kind, namespace, name, labels, envs, images,
                         Origin(file=origin.file, line=origin.line, record=rec), attributes,
                         config_refs=config_refs)

    def _service(self, obj: Mapping[str, Any], origin: Origin) -> _Service:
        namespace, name, _ = self._metadata(obj, origin)
        rec = f"{origin.record} (Service {namespace}/{name})"
        spec = obj.get("spec") or {}
        if not isinstance(spec, Mapping):
            raise InvalidRecordError("spec must be a mapping", file=origin.file,
                                     line=origin.line, record=rec, field="spec")
        selector = _str_map(spec.get("selector"), file=origin.file, record=rec,
                            line=origin.line, where="spec.selector")
        ports: list[int] = []
        for p in spec.get("ports") or []:
            if isinstance(p, Mapping) and isinstance(p.get("port"), int):
                ports.append(int(p["port"]))
        ext = spec.get("externalName")
        return _Service(namespace, name, selector, ports, str(spec.get("type") or "ClusterIP"),
                        str(ext) if ext else None,
                        Origin(file=origin.file, line=origin.line, record=rec))

    # -- inference --------------------------------------------------------------------------
    @staticmethod
    def _hosts(variable: str, value: str) -> list[tuple[str, int | None, bool]]:
        """Candidate (host, port, explicit) tokens of an env value.

        ``explicit`` is true when the token itself looks like an address (a port, a scheme or
        a dotted name), false for a bare word.
        """
        found: list[tuple[str, int | None, bool]] = []
        for token in re.split(r"[,\s;]+", value.strip()):
            if not token:
                continue
            if "://" in token:
                try:
                    parts = urlsplit(token)
                    host, port = parts.hostname, parts.port
                except ValueError:
                    continue
                if host:
                    found.append((host.lower(), port, True))
                continue
            m = _HOST_PORT.match(token.lower())
            if not m:
                continue
            host = m.group(1)
            port = int(m.group(4)) if m.group(4) else None
            explicit = port is not None or "." in host
            if explicit or _ADDRESS_NAME.search(variable.upper()):
                found.append((host, port, explicit))
        return found

    @staticmethod
    def _resolve(host: str, namespace: str,
                 services: Mapping[tuple[str, str], _Service]) -> _Service | None:
        labels = host.split(".")
        if len(labels) == 1:
            return services.get((namespace, labels[0]))
        # svc.ns, svc.ns.svc, svc.ns.svc.cluster.local
        if len(labels) == 2 or (len(labels) >= 3 and labels[2] == "svc"):
            return services.get((labels[1], labels[0]))
        return None

    # -- transform --------------------------------------------------------------------------
    def transform(self, doc: Documents | Sequence[Any], origin: str) -> Iterator[Item]:
        """Container/Application CI records, then inferred DEPENDS_ON relationships.

        ``doc`` is the manifests' YAML :class:`~importers.readers.Documents`, or a list of API
        objects (a ``kind: List`` object holds its objects in ``items``).
        """
        docs = doc if isinstance(doc, Documents) else Documents.of(doc)
        workloads: list[_Workload] = []
        services: dict[tuple[str, str], _Service] = {}
        config_maps: dict[tuple[str, str], Mapping[str, Any]] = {}
        seen: dict[tuple[str, str, str], Origin] = {}  # Services and ConfigMaps met
        for obj, where in self._objects(docs, origin):
            kind = str(obj["kind"])
            with guard(origin, line=where.line, record=where.record):
                if kind in WORKLOAD_KINDS:
                    if _controlled(obj):
                        log.debug("%s: %s: %s is managed by a controller, skipped", origin,
                                  where.record, kind)
                        continue
                    workloads.append(self._workload(obj, kind, where))
                elif kind == "Service":
                    svc = self._service(obj, where)
                    yield from _repeated((kind, svc.namespace, svc.name), seen, where)
                    services[(svc.namespace, svc.name)] = svc
                elif kind == "ConfigMap":
                    ns, cm_name, _ = self._metadata(obj, where)
                    yield from _repeated((kind, ns, cm_name), seen, where)
                    data = obj.get("data")
                    config_maps[(ns, cm_name)] = data if isinstance(data, Mapping) else {}
                else:
                    log.debug("%s: %s: kind %s carries no CI, skipped", origin, where.record,
                              kind)
        _config_envs(workloads, config_maps)
        _select(workloads, services)
        deps = list(self._dependencies(workloads, services))
        log.info("%s: %d workloads, %d services, %d inferred dependencies", origin,
                 len(workloads), len(services), len(deps))
        yield from _cis(workloads, services)
        yield from deps

    def _dependencies(self, workloads: list[_Workload],
                      services: Mapping[tuple[str, str], _Service]) -> Iterator[Record]:
        """DEPENDS_ON from a workload to what the Services named in its environment select."""
        seen: set[tuple[str, str]] = set()
        for w in workloads:
            for container, variable, value, source in w.envs:
                for host, port, _explicit in self._hosts(variable, value):
                    svc = self._resolve(host, w.namespace, services)
                    if svc is None:
                        continue
                    selector = ",".join(f"{k}={v}" for k, v in sorted(svc.selector.items()))
                    base = (
                        f"env {variable}={value}{source} in {w.ref} (container {container}) -> "
                        f"service {svc.namespace}/{svc.name}"
                    )
                    targets = [t.key for t in svc.targets if t is not w] if svc.targets else [
                        svc.key
                    ]
                    for target in targets:
                        if (w.key, target) in seen:
                            continue
                        seen.add((w.key, target))
                        evidence = (
                            f"{base} selects {selector}" if svc.targets
                            else f"{base} (selects no workload of the input)"
                        )
                        props: dict[str, Any] = {"via_service": f"{svc.namespace}/{svc.name}"}
                        if port is not None:
                            props["port"] = port
                        yield RelationshipRecord(
                            rel_type="DEPENDS_ON",
                            source=Identifiers(native_key=w.key),
                            target=Identifiers(native_key=target),
                            inferred=True,
                            evidence=evidence,
                            properties=props,
                            origin=w.origin,
                        )


def _repeated(key: tuple[str, str, str], seen: dict[tuple[str, str, str], Origin],
              origin: Origin) -> Iterator[InputWarning]:
    """A warning when the object ``(kind, namespace, name)`` was met before (``seen`` holds
    where each object was first met)."""
    first = seen.setdefault(key, origin)
    if first is not origin:
        kind, namespace, name = key
        yield InputWarning(record_type="input", origin=origin,
                           reason=f"{kind} {namespace}/{name} repeats the one at {first}; the "
                                  "last one is read")


def _config_envs(workloads: list[_Workload],
                 config_maps: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
    """Add the environment values each workload takes from ConfigMaps of the input."""
    for w in workloads:
        for container, variable, cm_name, key, prefix in w.config_refs:
            data = config_maps.get((w.namespace, cm_name))
            if data is None:
                continue  # the ConfigMap is not part of this input
            items = [(variable or "", key)] if key is not None else [
                (f"{prefix}{k}", str(k)) for k in data]
            for var_name, data_key in items:
                if data.get(data_key) is not None:
                    w.envs.append((container, var_name, str(data[data_key]),
                                   f" (from configmap {cm_name} key {data_key})"))


def _select(workloads: list[_Workload],
            services: Mapping[tuple[str, str], _Service]) -> None:
    """Fold each Service into the workloads of its namespace that its selector matches."""
    for svc in services.values():
        if not svc.selector:
            continue
        for w in workloads:
            if w.namespace == svc.namespace and all(
                w.labels.get(k) == v for k, v in svc.selector.items()
            ):
                svc.targets.append(w)
                w.services.append(svc.name)


def _cis(workloads: list[_Workload],
         services: Mapping[tuple[str, str], _Service]) -> Iterator[CIRecord]:
    """A Container CI per workload, an Application CI per Service that selects none."""
    for w in workloads:
        attrs = dict(w.attributes)
        if w.services:
            attrs["k8s_services"] = sorted(w.services)
        yield CIRecord(ci_class="Container", name=f"{w.namespace}/{w.name}",
                       identifiers=Identifiers(native_key=w.key), attributes=attrs,
                       origin=w.origin)
    for svc in services.values():
        if svc.targets:
            continue
        sattrs: dict[str, Any] = {
            "namespace": svc.namespace,
            "k8s_kind": "Service",
            "service_type": svc.svc_type,
        }
        if svc.external_name:
            sattrs["external_name"] = svc.external_name
        yield CIRecord(ci_class="Application", name=f"{svc.namespace}/{svc.name}",
                       identifiers=Identifiers(native_key=svc.key), attributes=sattrs,
                       origin=svc.origin)
