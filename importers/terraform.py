"""Terraform state files (format versions 3 and 4): managed resources as CIs.

Follows Terraform's state format as documented in the Terraform internals
(``internal/states/statefile``: ``version`` 3 written by Terraform 0.11 and earlier, ``version``
4 by 0.12 and later; https://developer.hashicorp.com/terraform/language/state):

- version 3: ``modules[]`` with ``path`` (``["root", "child", ...]``) and a ``resources`` map
  from ``type.name[.index]`` (``data.type.name`` for data sources) to ``{type, depends_on,
  primary: {id, attributes}}``, attributes flattened (``tags.Name``,
  ``network_interface.0.mac``);
- version 4: ``resources[]`` with ``mode``, ``type``, ``name``, optional ``module``, and
  ``instances[]`` with ``index_key``, ``attributes`` and ``dependencies`` (0.13+) or
  ``depends_on`` (0.12), plus a resource-level ``depends_on`` in some upgraded states.

Mapping (the documented decisions):

- Each instance of a *managed* resource is a CI; data sources are read-only lookups and are
  skipped, as are resources that are no infrastructure (``random_*``, ``null_resource``,
  ``terraform_data``, ``tls_*``, ``local_*``, ``time_*``, ``template_*``, ``external``).
- Class by resource type: ``aws_instance``, ``libvirt_domain``, ``azurerm_*virtual_machine``,
  ``google_compute_instance``, ``vsphere_virtual_machine``, ``openstack_compute_instance_v2``,
  ``proxmox_*_qemu``, ``digitalocean_droplet`` -> ``VirtualMachine``; types ending
  ``_network``, ``_vpc``, ``_subnet``, ``_subnetwork``, ``_virtual_network`` ->
  ``Network``; database instances/servers -> ``Database``; Kubernetes clusters ->
  ``Cluster``; everything else -- volumes, disks, pools and buckets included, which are virtual
  storage and expect no asset record -- ``CloudResource`` (``resource_type`` attribute).
- Name: the ``name`` attribute, else tag ``Name``, else ``bucket``, else the resource
  address. Native key: ``<lineage>:<address>`` (the address alone without a lineage).
  ``cloud_id`` = ``id``.
  IP and MAC addresses of ``network_interface`` blocks (libvirt, ...) and AWS ``private_ip``,
  ``public_ip``, ``private_dns`` are identifiers/attributes.
- Dependencies -> ``dependent -[DEPENDS_ON]-> dependency`` for every instance of the named
  resource (dependencies on data sources or skipped resources are dropped). Terraform records
  creation order, which usually but not always means a runtime need, so these are
  ``inferred=True`` with the state entry as evidence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record, RelationshipRecord
from importers.base import JSONImporter, guard, mapping_items, require

__all__ = ["TerraformStateImporter", "terraform_class"]

log = logging.getLogger(__name__)

_VM_TYPES = {
    "aws_instance", "libvirt_domain", "azurerm_virtual_machine",
    "azurerm_linux_virtual_machine", "azurerm_windows_virtual_machine",
    "google_compute_instance", "vsphere_virtual_machine", "openstack_compute_instance_v2",
    "proxmox_vm_qemu", "digitalocean_droplet", "hcloud_server",
}
_NETWORK_SUFFIXES = ("_network", "_vpc", "_subnet", "_subnetwork", "_virtual_network")
_DATABASE_TYPES = {
    "aws_db_instance", "aws_rds_cluster", "google_sql_database_instance",
    "azurerm_mssql_server", "azurerm_postgresql_server", "azurerm_mysql_server",
    "azurerm_postgresql_flexible_server", "azurerm_mssql_database",
}
_CLUSTER_TYPES = {"aws_eks_cluster", "azurerm_kubernetes_cluster", "google_container_cluster"}
_SKIP_PREFIXES = ("random_", "tls_", "local_", "time_", "template_")
_SKIP_TYPES = {"null_resource", "terraform_data", "external"}
_INDEX = re.compile(r"\[[^\]]*\]$")


def terraform_class(resource_type: str) -> str | None:
    """The CI class of a Terraform resource type; ``None`` for non-infrastructure types.

    Examples
    --------
    >>> terraform_class("libvirt_domain")
    'VirtualMachine'
    >>> terraform_class("aws_subnet")
    'Network'
    >>> terraform_class("libvirt_volume")
    'CloudResource'
    >>> terraform_class("random_id") is None
    True
    """
    if resource_type in _SKIP_TYPES or resource_type.startswith(_SKIP_PREFIXES):
        return None
    if resource_type in _VM_TYPES:
        return "VirtualMachine"
    if resource_type.endswith(_NETWORK_SUFFIXES):
        return "Network"
    if resource_type in _DATABASE_TYPES:
        return "Database"
    if resource_type in _CLUSTER_TYPES:
        return "Cluster"
    return "CloudResource"


@dataclass
class _Instance:
    resource: str  # module-qualified resource address without index
    address: str
    rtype: str
    attributes: Mapping[str, Any]
    depends: list[str]
    origin: Origin
    flat: bool  # version 3 flatmap attributes
    extra: dict[str, Any] = field(default_factory=dict)


def _nested_list(attrs: Mapping[str, Any], flat: bool, block: str, key: str) -> list[str]:
    """Values of ``block[*].key`` (a string or a list of strings) in either attribute style."""
    out: list[str] = []
    if flat:
        pat = re.compile(rf"^{re.escape(block)}\.\d+\.{re.escape(key)}(\.\d+)?$")
        for k, v in attrs.items():
            if pat.match(k) and isinstance(v, str) and v:
                out.append(v)
        return out
    items = attrs.get(block)
    if not isinstance(items, list):
        return out
    for item in items:
        if not isinstance(item, Mapping):
            continue
        v = item.get(key)
        if isinstance(v, str) and v:
            out.append(v)
        elif isinstance(v, list):
            out.extend(str(x) for x in v if x)
    return out


class TerraformStateImporter(JSONImporter):
    """Terraform state (v3 or v4) -> cloud/virtual CIs and DEPENDS_ON from dependencies.

    Follows Terraform's state file format; see the module docstring for the mapping.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed JSON, a ``version`` other than 3 or 4, or a resource or
        module missing a required field -- naming the file, the JSON pointer and the field.
    """

    kind = "terraform"
    description = "Terraform state file, format versions 3 and 4"

    def transform(self, doc: Any, origin: str) -> Iterator[Record]:
        """One CI per managed resource instance, then DEPENDS_ON relationships."""
        if not isinstance(doc, Mapping):
            raise InvalidRecordError("a state file must be a JSON object", file=origin)
        version = require(doc, "version", file=origin, record="/")
        if version == 4:
            instances = _v4(doc, origin)
        elif version == 3:
            instances = _v3(doc, origin)
        else:
            raise InvalidRecordError(f"state format version {version!r} is not supported "
                                     "(3 or 4)", file=origin, record="/", field="version")
        key_prefix = f"{doc['lineage']}:" if doc.get("lineage") else ""
        by_resource: dict[str, list[_Instance]] = {}
        cis: list[Record] = []
        for inst in instances:
            ci_class = terraform_class(inst.rtype)
            if ci_class is None:
                continue
            by_resource.setdefault(inst.resource, []).append(inst)
            with guard(origin, record=inst.origin.record):
                cis.append(_ci(inst, ci_class, key_prefix))
        rels = list(_dependencies(by_resource, key_prefix))
        log.info("%s: state v%s, %d CIs, %d dependencies", origin, version, len(cis), len(rels))
        yield from cis
        yield from rels


def _v4(state: Mapping[str, Any], name: str) -> list[_Instance]:
    """The instances of a version 4 state."""
    require(state, "resources", file=name, record="/")
    out: list[_Instance] = []
    for ptr, res in mapping_items(state["resources"], file=name, pointer="/resources",
                                  what="a resource"):
        rtype = str(require(res, "type", file=name, record=ptr))
        rname = str(require(res, "name", file=name, record=ptr))
        mode = str(res.get("mode") or "managed")
        if mode not in ("managed", "data"):
            raise InvalidRecordError(f"mode {mode!r} is neither managed nor data", file=name,
                                     record=ptr, field="mode")
        if not isinstance(res.get("instances"), list):
            raise InvalidRecordError("required field is missing or not a list", file=name,
                                     record=ptr, field="instances")
        prefix = f"{res['module']}." if res.get("module") else ""
        base = f"{prefix}{'data.' if mode == 'data' else ''}{rtype}.{rname}"
        res_deps = [str(d) for d in res.get("depends_on") or []]
        for iptr, inst in mapping_items(res["instances"], file=name, pointer=f"{ptr}/instances",
                                        what="an instance"):
            attrs = inst.get("attributes")
            if not isinstance(attrs, Mapping):
                raise InvalidRecordError("required field is missing or not an object",
                                         file=name, record=iptr, field="attributes")
            idx = inst.get("index_key")
            address = base if idx is None else (
                f'{base}["{idx}"]' if isinstance(idx, str) else f"{base}[{idx}]")
            deps = [*res_deps, *(str(d) for d in inst.get("dependencies") or []),
                    *(str(d) for d in inst.get("depends_on") or [])]
            # dependencies are module-qualified in 0.13+; 0.12 depends_on is module-relative
            deps = [d if d.startswith("module.") or not prefix else f"{prefix}{d}"
                    for d in deps]
            if mode != "managed":
                continue
            out.append(_Instance(base, address, rtype, attrs, deps,
                                 Origin(file=name, record=iptr), flat=False))
    return out


def _v3(state: Mapping[str, Any], name: str) -> list[_Instance]:
    """The instances of a version 3 state (flatmap attributes)."""
    require(state, "modules", file=name, record="/")
    out: list[_Instance] = []
    for ptr, mod in mapping_items(state["modules"], file=name, pointer="/modules",
                                  what="a module"):
        path = require(mod, "path", file=name, record=ptr)
        if not isinstance(path, list) or not path:
            raise InvalidRecordError("path must be a non-empty list", file=name, record=ptr,
                                     field="path")
        prefix = "".join(f"module.{p}." for p in path[1:])
        resources = mod.get("resources") or {}
        if not isinstance(resources, Mapping):
            raise InvalidRecordError("resources must be an object", file=name, record=ptr,
                                     field="resources")
        for key, res in resources.items():
            rptr = f"{ptr}/resources/{key}"
            if not isinstance(res, Mapping):
                raise InvalidRecordError("a resource must be an object", file=name,
                                         record=rptr)
            if str(key).startswith("data."):
                continue
            rtype = str(require(res, "type", file=name, record=rptr))
            primary = res.get("primary")
            if not isinstance(primary, Mapping):
                raise InvalidRecordError("required field is missing or not an object",
                                         file=name, record=rptr, field="primary")
            raw = primary.get("attributes") or {}
            if not isinstance(raw, Mapping):
                raise InvalidRecordError("attributes must be an object", file=name,
                                         record=rptr, field="primary.attributes")
            attrs = dict(raw)
            if primary.get("id") and "id" not in attrs:
                attrs["id"] = primary["id"]
            parts = str(key).split(".")
            if len(parts) < 2:
                raise InvalidRecordError(f"resource key {key!r} is not type.name[.index]",
                                         file=name, record=rptr)
            base = f"{prefix}{parts[0]}.{parts[1]}"
            address = base if len(parts) == 2 else f"{base}[{parts[2]}]"
            deps = [f"{prefix}{d}" for d in (str(x) for x in res.get("depends_on") or [])]
            out.append(_Instance(base, address, rtype, attrs, deps,
                                 Origin(file=name, record=rptr), flat=True))
    return out


#: attribute -> our attribute, copied when it is a non-empty string or number
_COPIED = (("instance_type", "instance_type"), ("vcpu", "vcpus"), ("memory", "memory_mb"),
           ("size", "size_bytes"), ("availability_zone", "availability_zone"),
           ("location", "location"), ("region", "region"))


def _ci(inst: _Instance, ci_class: str, key_prefix: str) -> CIRecord:
    """The CI of one managed resource instance."""
    a, flat = inst.attributes, inst.flat
    tag_name = a.get("tags.Name") if flat else (
        a["tags"].get("Name") if isinstance(a.get("tags"), Mapping) else None)
    ci_name = str(a.get("name") or tag_name or a.get("bucket") or inst.address)
    macs = [m.lower() for m in _nested_list(a, flat, "network_interface", "mac")]
    macs += [m.lower() for m in _nested_list(a, flat, "network_interface", "mac_address")]
    ips = _nested_list(a, flat, "network_interface", "addresses")
    for k in ("private_ip", "public_ip", "ipv4_address", "private_ip_address",
              "public_ip_address"):
        if isinstance(a.get(k), str) and a[k]:
            ips.append(a[k])
    hostnames = _nested_list(a, flat, "network_interface", "hostname")
    fqdn = a.get("private_dns") if isinstance(a.get("private_dns"), str) else None
    attrs: dict[str, Any] = {"resource_type": inst.rtype, "terraform_address": inst.address}
    if ips:
        attrs["ip_addresses"] = list(dict.fromkeys(ips))
    if ci_class == "Network":
        cidrs = a.get("addresses") if not flat else [
            v for k, v in sorted(a.items()) if re.match(r"^addresses\.\d+$", k)]
        if isinstance(a.get("cidr_block"), str):
            attrs["cidr"] = a["cidr_block"]
        elif isinstance(cidrs, list) and cidrs:
            attrs["cidr"] = ", ".join(str(c) for c in cidrs)
    for k, out in _COPIED:
        v = a.get(k)
        if isinstance(v, str | int | float) and not isinstance(v, bool) and v != "":
            attrs[out] = v
    if isinstance(a.get("running"), bool):
        attrs["operational_status"] = "operational" if a["running"] else "non_operational"
    return CIRecord(
        ci_class=ci_class, name=ci_name,
        identifiers=Identifiers(
            native_key=f"{key_prefix}{inst.address}",
            cloud_id=str(a["id"]) if a.get("id") else None,
            fqdn=fqdn.lower() if fqdn else None,
            hostname=hostnames[0].lower() if hostnames else None,
            mac_addresses=tuple(dict.fromkeys(macs)),
        ),
        attributes=attrs, origin=inst.origin,
    )


def _dependencies(by_resource: Mapping[str, list[_Instance]],
                  key_prefix: str) -> Iterator[RelationshipRecord]:
    """DEPENDS_ON from each instance to every instance of each resource it depends on."""
    seen: set[tuple[str, str]] = set()
    for group in by_resource.values():
        for inst in group:
            for dep in inst.depends:
                target_res = _INDEX.sub("", dep.removesuffix(".*"))
                if target_res.count(".") > 1 and not target_res.startswith(("module.", "data.")):
                    target_res = ".".join(target_res.split(".")[:2])  # v3 type.name.N
                for target in by_resource.get(target_res, []):
                    pair = (inst.address, target.address)
                    if pair in seen or target is inst:
                        continue
                    seen.add(pair)
                    yield RelationshipRecord(
                        rel_type="DEPENDS_ON",
                        source=Identifiers(native_key=f"{key_prefix}{inst.address}"),
                        target=Identifiers(native_key=f"{key_prefix}{target.address}"),
                        inferred=True,
                        confidence=0.9,  # Terraform computed the dependency itself
                        evidence=f"terraform state: {inst.address} depends on {dep}",
                        origin=inst.origin,
                    )
