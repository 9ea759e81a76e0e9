"""Kubernetes manifests: workloads, the Services that address them, storage, the application,
and the dependencies the manifests only imply.

Follows the Kubernetes API reference (https://kubernetes.io/docs/reference/kubernetes-api/):
``apps/v1`` Deployment, StatefulSet, DaemonSet and ReplicaSet, ``batch/v1`` Job and CronJob,
``v1`` Pod, Service, ConfigMap, PersistentVolumeClaim, PersistentVolume and List, as written by
``kubectl get -o yaml`` or kept in a repository (multi-document YAML; a ``kind: List`` document
holds its objects in ``items``), and the list answers of the API itself
(``GET /apis/apps/v1/deployments`` answers ``kind: DeploymentList``, whose items carry no
``kind``: they take it from the list's); the labels follow the recommended labels
(https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).

Mapping (the documented decisions):

- One import run is one input: the objects of all its files are read together
  (:meth:`KubernetesImporter.fold`), so a Service, a ConfigMap or a claim kept in a file of
  its own (the usual layout of a repository) finds its workload as in one concatenated file;
  a folder is walked for ``*.yaml``, ``*.yml`` and ``*.json``. Each record names its own file.
- Every workload (the kinds above except Service) becomes one ``Container`` CI named
  ``<namespace>/<name>`` (namespace ``default`` when the manifest has none), native key
  ``<namespace>/<kind>/<name>`` (kind lower case); ``spec.replicas`` is its ``replicas``
  attribute. Objects that a controller owns (``metadata.ownerReferences`` with
  ``controller: true``: the ReplicaSets and Pods of a Deployment in ``kubectl get all -o
  yaml``) are skipped; their owner is the CI. The namespace is an attribute (``namespace``).
  The attributes ``service_name`` (the workload's name) and ``system`` (its
  ``app.kubernetes.io/part-of`` label, else its namespace) are what the ``name_system``
  identification rule matches across sources: the compose service of the same name in the
  compose project of that name is the same CI.
- A Service is an *address*, not a separate CI: it is folded into the workloads it selects
  (its selector matches their pod template labels). The Service names are kept on those
  workloads (attribute ``k8s_services``). A Service that selects no workload of the input
  (no selector, ``ExternalName``, or a selector matching nothing) becomes an ``Application``
  CI of its own, named ``<namespace>/<service>``, so that dependencies on it are not lost.
  Its ``service_name`` is the workload it addresses (its selector's
  ``app.kubernetes.io/name`` or ``app`` label, else its own name) and its ``system`` its
  ``part-of`` label, else its namespace: a Service imported in a later run than its workload
  (earlier runs of the same source, or another source) joins that workload's CI through the
  ``name_system`` identification rule, as it would have in one run.
- Storage: a PersistentVolumeClaim is a ``StorageVolume`` CI ``<namespace>/pvc/<name>``
  (native key ``<namespace>/persistentvolumeclaim/<name>``), a PersistentVolume one named
  ``pv/<name>`` (native key ``persistentvolume/<name>``; the disk's id from ``csi``,
  ``awsElasticBlockStore``, ``gcePersistentDisk``, ``azureDisk`` or ``cinder`` is its
  ``cloud_id``), with capacity, storage class, access modes (and NFS server, reclaim policy).
  A StatefulSet's ``volumeClaimTemplates`` entry is one claim CI
  ``<namespace>/pvc/<template>-<statefulset>`` (``per_replica``). These dependencies are
  declared: workload ``-[DEPENDS_ON]->`` claim (``spec.volumes[].persistentVolumeClaim``,
  the templates), claim ``-[DEPENDS_ON]->`` volume (``spec.volumeName`` or the volume's
  ``spec.claimRef``). A claim that is not in the input is matched among what earlier runs of
  the source brought (ingestion skips the relationship, saying why, when it is nowhere).
- Placement and replicas: the Pods a controller owns are no CIs, but their ``spec.nodeName``
  says where the workload runs (``kubectl get all -o yaml`` holds them; traced to the
  workload through ``ownerReferences``, Pod -> ReplicaSet -> Deployment). Each node is a
  ``VirtualMachine`` CI (native key ``node/<name>``, hostname the name's first label, so a
  discovery source's record of the machine is the same CI). A workload whose pods all run on
  one node ``RUNS_ON`` it. A workload whose pods are spread over several nodes ``RUNS_ON`` a
  ``Cluster`` CI ``<namespace>/<name> pods`` (native key ``<workload key>/pods``, attributes
  ``nodes`` and ``replicas``) with redundancy ``1`` that its nodes are ``MEMBER_OF``: losing
  some of those nodes leaves the workload degraded, losing all of them takes it down, and no
  single node is a single point of failure. The rule is 1, not the replica count, because
  Kubernetes reschedules the pods of a lost node on the others (capacity permitting); a
  manifest without Pods says nothing about placement, and ``replicas`` then stays an
  attribute.
- Dependencies are inferred (:func:`importers.inference.addresses`) from container
  environment values that name a Service -- literal ``env[].value``, and values taken from a
  ConfigMap of the input (``valueFrom.configMapKeyRef``, ``envFrom.configMapRef`` with its
  ``prefix``) -- and from ``command``/``args`` (``--db-url=jdbc:mysql://orders-db:3306/x``):
  ``cartservice:7070``, ``redis-cart:6379``, ``http://frontend:80/x``, ``svc.ns``,
  ``svc.ns.svc.cluster.local:port``, a connection string, or a bare ``svc`` when the key says
  it is an address (``*_ADDR``, ``*_HOST``, ``*_URL``, ...). Each becomes
  ``workload -[DEPENDS_ON]-> workload`` for every workload the Service selects, with
  ``inferred=True``, an evidence string naming the variable or argument, the Service and its
  selector, and the properties ``evidence_key``, ``evidence_value``, ``via_service`` and
  ``port``; the record's origin is the workload's file and document. A cluster-internal
  name with no Service of that name in the input (manifests imported in several runs) is
  taken for the workload of that name in the input, else for the CI of that service name in
  the workload's system (its ``part-of`` label or namespace; the named namespace for
  ``svc.ns``) -- a workload or Service of an earlier run or another source, found by the
  ``name_system`` identification rule; when no CI answers, the run's report lists the
  relationship as skipped with its reason. Other values are ignored (``0.0.0.0``,
  ``localhost``, external host names).
- The application: an ``ApplicationService`` CI per value of the
  ``app.kubernetes.io/part-of`` label (on the workload or its pod template; native key
  ``app/<value>``, named after the value), else per namespace (native key
  ``namespace/<ns>``, named ``namespace <ns>``). It ``-[DEPENDS_ON]->`` its entry points
  (:func:`importers.inference.entry_points`: workloads a Service exposes that no exposed
  workload depends on) and, optionally, the workloads nothing depends on and no Service
  exposes (load generators, workers), marked inferred with the label or namespace as
  evidence. So ``changeImpact(servicesOnly: true)`` answers for the application. Its
  ``system`` is the label or namespace, so a compose project or Backstage system of that name
  is the same CI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import RelationshipBasis
from cmdb_graph.model.records import (
    CIRecord,
    Identifiers,
    InputWarning,
    Origin,
    RelationshipRecord,
)
from importers.base import Importer, Item, guard, require, text_or_none
from importers.inference import (
    GROUPING_CONFIDENCE,
    Address,
    address_confidence,
    addresses,
    argument_pairs,
    entry_points,
)
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
#: The recommended label naming the application a workload is part of.
PART_OF = "app.kubernetes.io/part-of"


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
    #: (container, option or "" for a bare argument, value) of ``command`` and ``args``
    args: list[tuple[str, str, str]] = field(default_factory=list)
    #: (volume name, claim name) of ``spec.volumes[].persistentVolumeClaim``
    claims: list[tuple[str, str]] = field(default_factory=list)
    #: StatefulSet ``volumeClaimTemplates``: (template name, its storage attributes)
    claim_templates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def part_of(self) -> str | None:
        """The ``app.kubernetes.io/part-of`` label of the object or its pod template."""
        value = self.attributes.get(f"label_{PART_OF}") or self.labels.get(PART_OF)
        return str(value) if value else None

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
    part_of: str | None = None
    targets: list[_Workload] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/service/{self.name}"

    @property
    def selects(self) -> str:
        """The workload the Service addresses, by name: its selector's
        ``app.kubernetes.io/name`` or ``app`` label, else the Service's own name."""
        return (self.selector.get("app.kubernetes.io/name") or self.selector.get("app")
                or self.name)


class _Placement:
    """Where the pods of each workload run: the ``spec.nodeName`` of the Pods a controller
    owns (``kubectl get all -o yaml``, ``GET /api/v1/pods``), traced to their workload through
    ``metadata.ownerReferences`` (Pod -> ReplicaSet -> Deployment; Pod -> StatefulSet,
    DaemonSet, Job). A ReplicaSet that is not in the input is taken for the Deployment whose
    name it starts with (``web-7d4b9c`` -> ``web``)."""

    def __init__(self) -> None:
        #: (kind, namespace, name) -> (owner kind, owner name)
        self.owners: dict[tuple[str, str, str], tuple[str, str]] = {}
        #: (namespace, pod name, node name) of every placed Pod
        self.pods: list[tuple[str, str, str]] = []

    def controlled(self, obj: Mapping[str, Any], kind: str, namespace: str, name: str) -> None:
        """Note a controlled object's controller and, for a Pod, its node."""
        for ref in _dig(obj, ("metadata", "ownerReferences")) or []:
            if isinstance(ref, Mapping) and ref.get("controller") is True:
                self.owners[(kind, namespace, name)] = (str(ref.get("kind")),
                                                        str(ref.get("name")))
        node = _dig(obj, ("spec", "nodeName"))
        if kind == "Pod" and isinstance(node, str) and node.strip():
            self.pods.append((namespace, name, node.strip()))

    def _workload_of(self, key: tuple[str, str, str],
                     by_key: Mapping[tuple[str, str, str], _Workload]) -> _Workload | None:
        for _ in range(5):  # Pod -> ReplicaSet -> Deployment at most; cycles end here
            if key in by_key:
                return by_key[key]
            owner = self.owners.get(key)
            if owner is None:
                kind, ns, name = key
                if kind == "ReplicaSet" and "-" in name:  # the Deployment's ReplicaSet
                    return by_key.get(("Deployment", ns, name.rsplit("-", 1)[0]))
                return None
            key = (owner[0], key[1], owner[1])
        return None

    def records(self, workloads: list[_Workload]
                ) -> tuple[list[CIRecord], list[RelationshipRecord]]:
        """Node CIs and each placed workload's RUNS_ON: on its node when all its pods run on
        one, else on a ``Cluster`` of its nodes with redundancy ``1``."""
        by_key = {(w.kind, w.namespace, w.name): w for w in workloads}
        nodes_of: dict[str, list[str]] = {}
        placed: dict[str, _Workload] = {}
        for ns, pod, node in self.pods:
            w = self._workload_of(("Pod", ns, pod), by_key)
            if w is None:
                continue
            placed[w.key] = w
            found = nodes_of.setdefault(w.key, [])
            if node not in found:
                found.append(node)
        cis: list[CIRecord] = []
        rels: list[RelationshipRecord] = []
        made: set[str] = set()
        for wkey, nodes in nodes_of.items():
            w = placed[wkey]
            for node in nodes:
                if node not in made:
                    made.add(node)
                    cis.append(CIRecord(
                        ci_class="VirtualMachine", name=node,
                        identifiers=Identifiers(
                            native_key=f"node/{node}", hostname=node.split(".", 1)[0].lower(),
                            fqdn=node.lower() if "." in node else None),
                        attributes={"k8s_kind": "Node"}, origin=w.origin))
            why = f"pods of {w.ref} run on {', '.join(sorted(nodes))} (spec.nodeName)"
            if len(nodes) == 1:
                rels.append(RelationshipRecord(
                    rel_type="RUNS_ON", source=Identifiers(native_key=wkey),
                    target=Identifiers(native_key=f"node/{nodes[0]}"), evidence=why,
                    basis=RelationshipBasis.DISCOVERED, origin=w.origin))
                continue
            group = f"{wkey}/pods"
            cis.append(CIRecord(
                ci_class="Cluster", name=f"{w.namespace}/{w.name} pods",
                identifiers=Identifiers(native_key=group),
                attributes={"redundancy": "1", "nodes": sorted(nodes),
                            **({"replicas": w.attributes["replicas"]}
                               if "replicas" in w.attributes else {})},
                origin=w.origin))
            rels.append(RelationshipRecord(
                rel_type="RUNS_ON", source=Identifiers(native_key=wkey),
                target=Identifiers(native_key=group), evidence=why,
                basis=RelationshipBasis.DISCOVERED, origin=w.origin))
            for node in nodes:
                rels.append(RelationshipRecord(
                    rel_type="MEMBER_OF", source=Identifiers(native_key=f"node/{node}"),
                    target=Identifiers(native_key=group), evidence=why,
                    basis=RelationshipBasis.DISCOVERED, origin=w.origin))
        return cis, rels


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
    """Kubernetes manifests (multi-document YAML, one file or many) -> Container,
    StorageVolume and ApplicationService CIs, declared and inferred DEPENDS_ON.

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
    description = ("Kubernetes manifests (API reference: apps/v1, batch/v1, v1 Service, Pod, "
                   "PersistentVolume(Claim), List)")
    folder_suffixes = (".yaml", ".yml", ".json")
    folds_files = True

    def __init__(self, *, default_namespace: str = "default") -> None:
        self.default_namespace = default_namespace

    def read(self, path: Path) -> Documents:
        return load_yaml_documents(path)

    def fold(self, docs: Sequence[tuple[str, Documents | Sequence[Any]]]) -> Documents:
        """The documents of every file of the run as one input, each naming its own file."""
        return Documents.joined(
            (name, d if isinstance(d, Documents) else Documents.of(d)) for name, d in docs)

    # -- reading ----------------------------------------------------------------------------
    @staticmethod
    def _objects(docs: Documents, origin: str) -> Iterator[tuple[Mapping[str, Any], Origin]]:
        if not docs:
            raise InvalidRecordError("no YAML document in file", file=origin)
        counted: dict[str, int] = {}
        for at, (line, doc) in enumerate(docs):
            name = docs.file_of(at, origin)
            index = counted[name] = counted.get(name, 0) + 1
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
        args: list[tuple[str, str, str]] = []
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
            argv = [*(c.get("command") or []), *(c.get("args") or [])]
            if not all(isinstance(a, str | int | float) for a in argv):
                raise bad("command and args must be lists of strings", f"containers[{cname}].args")
            args.extend((cname, k, v) for k, v in argument_pairs([str(a) for a in argv]))
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
        claims: list[tuple[str, str]] = []
        for vol in _dig(template, ("spec", "volumes")) or []:
            claim = _dig(vol, ("persistentVolumeClaim", "claimName"))
            if claim:
                claims.append((str(_dig(vol, ("name",)) or claim), str(claim)))
        templates: list[tuple[str, dict[str, Any]]] = []
        for tmpl in (_dig(obj, ("spec", "volumeClaimTemplates")) or []) if kind == (
                "StatefulSet") else []:
            tname = _dig(tmpl, ("metadata", "name"))
            if not tname:
                raise bad("a volume claim template needs a name",
                          "spec.volumeClaimTemplates.metadata.name")
            templates.append((str(tname), _claim_attributes(_dig(tmpl, ("spec",)))))
        return _Workload(kind, namespace, name, labels, envs, images,
                         Origin(file=origin.file, line=origin.line, record=rec), attributes,
                         config_refs=config_refs, args=args, claims=claims,
                         claim_templates=templates)

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
        labels = _dig(obj, ("metadata", "labels"))
        part_of = labels.get(PART_OF) if isinstance(labels, Mapping) else None
        return _Service(namespace, name, selector, ports, str(spec.get("type") or "ClusterIP"),
                        str(ext) if ext else None,
                        Origin(file=origin.file, line=origin.line, record=rec),
                        part_of=str(part_of) if part_of else None)

    def _claim(self, obj: Mapping[str, Any], origin: Origin) -> _Claim:
        namespace, name, _ = self._metadata(obj, origin)
        rec = f"{origin.record} (PersistentVolumeClaim {namespace}/{name})"
        spec = obj.get("spec")
        volume = _dig(spec, ("volumeName",))
        return _Claim(namespace, name, _claim_attributes(spec), str(volume) if volume else None,
                      Origin(file=origin.file, line=origin.line, record=rec))

    def _volume(self, obj: Mapping[str, Any], origin: Origin) -> _Volume:
        _, name, _ = self._metadata(obj, origin)
        rec = f"{origin.record} (PersistentVolume {name})"
        spec = obj.get("spec")
        attrs = {"k8s_kind": "PersistentVolume", **_storage_attributes(spec)}
        capacity = text_or_none(_dig(spec, ("capacity", "storage")))
        if capacity:
            attrs["capacity"] = capacity
        policy = text_or_none(_dig(spec, ("persistentVolumeReclaimPolicy",)))
        if policy:
            attrs["reclaim_policy"] = policy
        cloud_id = next((str(v) for v in (_dig(spec, p) for p in _DISK_IDS) if v), None)
        nfs = _dig(spec, ("nfs",))
        if isinstance(nfs, Mapping) and nfs.get("server"):
            attrs["nfs"] = f"{nfs['server']}:{nfs.get('path') or '/'}"
        ref = _dig(spec, ("claimRef",))
        claim = None
        if isinstance(ref, Mapping) and ref.get("name"):
            claim = (str(ref.get("namespace") or self.default_namespace), str(ref["name"]))
        return _Volume(name, attrs, cloud_id, claim,
                       Origin(file=origin.file, line=origin.line, record=rec))

    # -- inference --------------------------------------------------------------------------
    @staticmethod
    def _service_name(host: str, namespace: str) -> tuple[str, str] | None:
        """``(namespace, service)`` a cluster-internal host names (``svc``, ``svc.ns``,
        ``svc.ns.svc``, ``svc.ns.svc.cluster.local``), ``None`` for any other host."""
        labels = host.split(".")
        if len(labels) == 1:
            return None if host == "localhost" else (namespace, labels[0])
        if len(labels) == 2 or (len(labels) >= 3 and labels[2] == "svc"):
            return labels[1], labels[0]
        return None

    # -- transform --------------------------------------------------------------------------
    def transform(self, doc: Documents | Sequence[Any], origin: str) -> Iterator[Item]:
        """CI records (workloads, Services of their own, storage, application services),
        then their relationships: declared storage, inferred DEPENDS_ON.

        ``doc`` is the manifests' YAML :class:`~importers.readers.Documents` (of one file, or
        of every file of a run: :meth:`fold`), or a list of API objects (a ``kind: List``
        object holds its objects in ``items``).
        """
        docs = doc if isinstance(doc, Documents) else Documents.of(doc)
        workloads: list[_Workload] = []
        services: dict[tuple[str, str], _Service] = {}
        config_maps: dict[tuple[str, str], Mapping[str, Any]] = {}
        claims: dict[tuple[str, str], _Claim] = {}
        volumes: dict[str, _Volume] = {}
        seen: dict[tuple[str, str, str], Origin] = {}  # objects met, by (kind, ns, name)
        placement = _Placement()
        for obj, where in self._objects(docs, origin):
            kind = str(obj["kind"])
            with guard(where.file, line=where.line, record=where.record):
                if kind in WORKLOAD_KINDS:
                    if _controlled(obj):
                        log.debug("%s: %s: %s is managed by a controller, skipped", where.file,
                                  where.record, kind)
                        ns, obj_name, _ = self._metadata(obj, where)
                        placement.controlled(obj, kind, ns, obj_name)
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
                elif kind == "PersistentVolumeClaim":
                    claim = self._claim(obj, where)
                    yield from _repeated((kind, claim.namespace, claim.name), seen, where)
                    claims[(claim.namespace, claim.name)] = claim
                elif kind == "PersistentVolume":
                    vol = self._volume(obj, where)
                    yield from _repeated((kind, "", vol.name), seen, where)
                    volumes[vol.name] = vol
                else:
                    log.debug("%s: %s: kind %s carries no CI, skipped", where.file,
                              where.record, kind)
        _config_envs(workloads, config_maps)
        _select(workloads, services)
        deps = list(self._dependencies(workloads, services))
        storage_cis, storage_rels = _storage(workloads, claims, volumes)
        app_cis, app_rels = _app_services(workloads, deps)
        log.info("%s: %d workloads, %d services, %d claims, %d volumes, %d inferred "
                 "dependencies, %d application services", origin, len(workloads),
                 len(services), len(claims), len(volumes), len(deps), len(app_cis))
        place_cis, place_rels = placement.records(workloads)
        yield from _cis(workloads, services)
        yield from storage_cis
        yield from app_cis
        yield from place_cis
        yield from storage_rels
        yield from deps
        yield from app_rels
        yield from place_rels

    def _dependencies(self, workloads: list[_Workload],
                      services: Mapping[tuple[str, str], _Service]) -> Iterator[
                          RelationshipRecord]:
        """DEPENDS_ON from a workload to what the Services named in its environment and
        arguments select."""
        seen: set[tuple[str, str]] = set()
        by_name = {(w.namespace, w.name): w for w in workloads}
        for w in workloads:
            for container, key, value, what in _settings(w):
                for address in addresses(key, value):
                    named = self._service_name(address.host, w.namespace)
                    svc = services.get(named) if named is not None else None
                    if svc is None:
                        if named is not None and named != (w.namespace, w.name) and (
                                w.key, "/".join(named)) not in seen:
                            seen.add((w.key, "/".join(named)))
                            yield _unresolved(w, named, by_name.get(named), container, what,
                                              value, address)
                        continue
                    selector = ",".join(f"{k}={v}" for k, v in sorted(svc.selector.items()))
                    base = (
                        f"{what} in {w.ref} (container {container}) -> "
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
                        props = _address_props(f"{svc.namespace}/{svc.name}", what, value,
                                               address.port)
                        yield RelationshipRecord(
                            rel_type="DEPENDS_ON",
                            source=Identifiers(native_key=w.key),
                            target=Identifiers(native_key=target),
                            inferred=True,
                            confidence=address_confidence(address),
                            evidence=evidence,
                            properties=props,
                            origin=w.origin,
                        )


def _address_props(service: str, what: str, value: str, port: int | None) -> dict[str, Any]:
    """The properties of a dependency inferred from an address: the Service it names
    (``ns/name``), the setting and value it was read from, its port."""
    props: dict[str, Any] = {"via_service": service, "evidence_key": what.split("=", 1)[0],
                             "evidence_value": value}
    if port is not None:
        props["port"] = port
    return props


def _unresolved(w: _Workload, named: tuple[str, str], target: _Workload | None,
                container: str, what: str, value: str, address: Address
                ) -> RelationshipRecord:
    """``w -[DEPENDS_ON]->`` what an address names when no Service of the input has that
    name: the workload of that name in the input, else the CI of that service name in the
    system (a workload or Service of an earlier run, or of another source, through the
    ``name_system`` identification rule; the relationship is skipped, with its reason in
    the run's report, when no CI answers to it)."""
    ns, name = named
    base = f"{what} in {w.ref} (container {container}) -> {ns}/{name}"
    props = _address_props(f"{ns}/{name}", what, value, address.port)
    if target is not None:
        ends = Identifiers(native_key=target.key)
        evidence = f"{base}: no Service of that name in the input; the workload {target.ref}"
    else:
        system = (w.part_of or w.namespace) if ns == w.namespace else ns
        ends = Identifiers(service=name, system=system)
        evidence = (f"{base}: not in the input; the CI of service {name} in system {system} "
                    "(an earlier run or another source)")
    return RelationshipRecord(rel_type="DEPENDS_ON", source=Identifiers(native_key=w.key),
                              target=ends, inferred=True, evidence=evidence,
                              confidence=address_confidence(address, in_input=False),
                              properties=props, origin=w.origin)


#: Where a PersistentVolume names the disk behind it (its cloud id).
_DISK_IDS: tuple[tuple[str, ...], ...] = (
    ("csi", "volumeHandle"), ("awsElasticBlockStore", "volumeID"),
    ("gcePersistentDisk", "pdName"), ("azureDisk", "diskURI"), ("cinder", "volumeID"),
)


@dataclass
class _Claim:
    namespace: str
    name: str
    attributes: dict[str, Any]
    volume_name: str | None
    origin: Origin

    @property
    def key(self) -> str:
        return f"{self.namespace}/persistentvolumeclaim/{self.name}"


@dataclass
class _Volume:
    name: str
    attributes: dict[str, Any]
    cloud_id: str | None
    claim: tuple[str, str] | None  # (namespace, name) of spec.claimRef
    origin: Origin

    @property
    def key(self) -> str:
        return f"persistentvolume/{self.name}"


def _storage_attributes(spec: Any) -> dict[str, Any]:
    """Storage class, access modes and volume mode of a claim or volume spec."""
    attrs: dict[str, Any] = {}
    if text_or_none(_dig(spec, ("storageClassName",))):
        attrs["storage_class"] = str(_dig(spec, ("storageClassName",)))
    modes = _dig(spec, ("accessModes",))
    if isinstance(modes, list) and modes:
        attrs["access_modes"] = [str(m) for m in modes]
    if text_or_none(_dig(spec, ("volumeMode",))):
        attrs["volume_mode"] = str(_dig(spec, ("volumeMode",)))
    return attrs


def _claim_attributes(spec: Any) -> dict[str, Any]:
    """The attributes of a claim (or claim template) from its spec."""
    attrs = {"k8s_kind": "PersistentVolumeClaim", **_storage_attributes(spec)}
    request = text_or_none(_dig(spec, ("resources", "requests", "storage")))
    if request:
        attrs["capacity"] = request
    return attrs


def _settings(w: _Workload) -> Iterator[tuple[str, str, str, str]]:
    """(container, key, value, how the evidence names it) of every environment value and
    argument of a workload."""
    for container, variable, value, source in w.envs:
        yield container, variable, value, f"env {variable}={value}{source}"
    for container, key, value in w.args:
        yield container, key, value, f"arg {key}={value}" if key else f"arg {value}"


def _storage(workloads: list[_Workload], claims: Mapping[tuple[str, str], _Claim],
             volumes: Mapping[str, _Volume]) -> tuple[list[CIRecord], list[RelationshipRecord]]:
    """StorageVolume CIs of claims, claim templates and volumes, and the declared
    DEPENDS_ON workload -> claim -> volume."""
    cis: list[CIRecord] = []
    rels: list[RelationshipRecord] = []

    def depends(src: str, dst: str, origin: Origin, declared_by: str) -> None:
        rels.append(RelationshipRecord(
            rel_type="DEPENDS_ON", source=Identifiers(native_key=src),
            target=Identifiers(native_key=dst), properties={"declared_by": declared_by},
            origin=origin))

    for c in claims.values():
        cis.append(CIRecord(ci_class="StorageVolume", name=f"{c.namespace}/pvc/{c.name}",
                            identifiers=Identifiers(native_key=c.key),
                            attributes={"namespace": c.namespace, **c.attributes},
                            origin=c.origin))
    for v in volumes.values():
        cis.append(CIRecord(ci_class="StorageVolume", name=f"pv/{v.name}",
                            identifiers=Identifiers(native_key=v.key, cloud_id=v.cloud_id),
                            attributes=v.attributes, origin=v.origin))
    for w in workloads:
        for volume, claim in w.claims:
            key = f"{w.namespace}/persistentvolumeclaim/{claim}"
            depends(w.key, key, w.origin, f"spec.volumes.{volume}")
        for template, attrs in w.claim_templates:
            key = f"{w.namespace}/persistentvolumeclaim/{template}-{w.name}"
            cis.append(CIRecord(
                ci_class="StorageVolume", name=f"{w.namespace}/pvc/{template}-{w.name}",
                identifiers=Identifiers(native_key=key),
                attributes={"namespace": w.namespace, "per_replica": True, **attrs},
                origin=w.origin))
            depends(w.key, key, w.origin, f"spec.volumeClaimTemplates.{template}")
    bound: set[tuple[str, str]] = set()
    for c in claims.values():
        if c.volume_name:
            bound.add((c.key, f"persistentvolume/{c.volume_name}"))
            depends(c.key, f"persistentvolume/{c.volume_name}", c.origin, "spec.volumeName")
    for v in volumes.values():
        if v.claim is not None:
            key = f"{v.claim[0]}/persistentvolumeclaim/{v.claim[1]}"
            if (key, v.key) not in bound and v.claim in claims:
                depends(key, v.key, v.origin, "spec.claimRef")
    return cis, rels


def _app_services(workloads: list[_Workload], deps: list[RelationshipRecord]
                  ) -> tuple[list[CIRecord], list[RelationshipRecord]]:
    """An ApplicationService CI per application (``app.kubernetes.io/part-of``, else the
    namespace), and its DEPENDS_ON on the workloads that serve it (see the module docstring).
    """
    groups: dict[str, list[_Workload]] = {}
    for w in workloads:
        groups.setdefault(f"app/{w.part_of}" if w.part_of else f"namespace/{w.namespace}",
                          []).append(w)
    cis: list[CIRecord] = []
    rels: list[RelationshipRecord] = []
    for key, members in groups.items():
        first = members[0]
        by_label = first.part_of is not None
        name = str(first.part_of) if by_label else f"namespace {first.namespace}"
        why = (f"label {PART_OF}={first.part_of}" if by_label
               else f"namespace {first.namespace} (no {PART_OF} label)")
        attrs: dict[str, Any] = (
            {"k8s_part_of": name, "namespaces": sorted({w.namespace for w in members})}
            if by_label else {"namespace": first.namespace})
        system = first.part_of or first.namespace
        attrs.update(service_name=system, system=system)
        cis.append(CIRecord(ci_class="ApplicationService", name=name,
                            identifiers=Identifiers(native_key=key), attributes=attrs,
                            origin=first.origin))
        by_key = {m.key: m for m in members}
        for wkey, optional, role in entry_points(
                [(m.key, bool(m.services)) for m in members],
                [(r.source.native_key or "", r.target.native_key or "") for r in deps]):
            w = by_key[wkey]
            rels.append(RelationshipRecord(
                rel_type="DEPENDS_ON", source=Identifiers(native_key=key),
                target=Identifiers(native_key=w.key), optional=optional, inferred=True,
                confidence=GROUPING_CONFIDENCE, evidence=f"{why} groups {w.ref}: {role}",
                properties={"evidence_key": f"label {PART_OF}" if by_label else "namespace",
                            "evidence_value": first.part_of or first.namespace},
                origin=w.origin))
    return cis, rels


def _repeated(key: tuple[str, str, str], seen: dict[tuple[str, str, str], Origin],
              origin: Origin) -> Iterator[InputWarning]:
    """A warning when the object ``(kind, namespace, name)`` was met before (``seen`` holds
    where each object was first met)."""
    first = seen.setdefault(key, origin)
    if first is not origin:
        kind, namespace, name = key
        where = f"{namespace}/{name}" if namespace else name
        yield InputWarning(record_type="input", origin=origin,
                           reason=f"{kind} {where} repeats the one at {first}; the "
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
        attrs["service_name"] = w.name
        attrs["system"] = w.part_of or w.namespace
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
        sattrs["service_name"] = svc.selects
        sattrs["system"] = svc.part_of or svc.namespace
        yield CIRecord(ci_class="Application", name=f"{svc.namespace}/{svc.name}",
                       identifiers=Identifiers(native_key=svc.key), attributes=sattrs,
                       origin=svc.origin)
