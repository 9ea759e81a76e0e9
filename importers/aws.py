"""AWS EC2 inventory: the output of ``aws ec2 describe-instances`` (JSON).

Follows the EC2 API reference for ``DescribeInstances``
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html) as the AWS
CLI v2 prints it: ``{"Reservations": [{"Instances": [...], "OwnerId": ...}]}``.

Mapping (the documented decisions):

- Each instance is a ``VirtualMachine`` CI: name = tag ``Name`` (else the instance id);
  identifiers ``cloud_id`` = ``InstanceId``, ``fqdn`` = ``PrivateDnsName`` (and its first label
  as host name), the MAC addresses of its network interfaces; attributes: IP addresses
  (private, public and every ENI address), instance type, image, platform, architecture, launch
  time, account, security groups, and each tag as ``tag_<Key>`` (tag ``Environment``/``env``
  also sets ``environment``).
- ``State.Name`` -> ``operational_status``: pending/running -> operational, stopping/stopped ->
  non_operational, shutting-down/terminated -> retired.
- Every subnet of the instance (``SubnetId`` and those of its ENIs) and every VPC are
  ``Network`` CIs (native key and ``cloud_id`` = the AWS id): instance ``-[CONNECTS_TO]->``
  subnet ``-[CONNECTS_TO]->`` VPC.
- ``Placement.AvailabilityZone`` and its region are ``Datacenter`` CIs: instance
  ``-[HOSTED_ON]->`` zone ``-[LOCATED_IN]->`` region.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import RelationshipBasis
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record, RelationshipRecord
from importers.base import JSONImporter, guard, mapping_items, require

__all__ = ["AWSEC2Importer", "EC2_STATUS"]

log = logging.getLogger(__name__)

#: EC2 instance state -> operational_status.
EC2_STATUS = {
    "pending": "operational",
    "running": "operational",
    "stopping": "non_operational",
    "stopped": "non_operational",
    "shutting-down": "retired",
    "terminated": "retired",
}
#: instance field -> attribute
_ATTRIBUTES = (("InstanceType", "instance_type"), ("ImageId", "image_id"),
               ("PlatformDetails", "platform"), ("Architecture", "architecture"),
               ("LaunchTime", "launch_time"), ("KeyName", "key_name"))


def _scalar(value: Any) -> str | None:
    """A non-empty string or number as text; anything else (lists, objects, "") as None."""
    if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
        return str(value)
    return None


def _region(zone: str) -> str:
    """``us-east-1a`` -> ``us-east-1``; local/wavelength zones keep their region prefix."""
    parts = zone.split("-")
    if len(parts) >= 3 and parts[2][:1].isdigit():
        return "-".join(parts[:2] + [parts[2].rstrip("abcdefghijklmnopqrstuvwxyz")])
    return zone.rstrip("abcdefghijklmnopqrstuvwxyz")


class _Estate:
    """The subnets, VPCs, zones and regions met so far, and the relationships between them."""

    def __init__(self) -> None:
        self.others: dict[str, CIRecord] = {}
        self.rels: list[Record] = []
        self._edges: set[tuple[str, str, str]] = set()

    def other(self, kind: str, key: str, attrs: dict[str, Any], origin: Origin) -> Identifiers:
        """The identifiers of a subnet/VPC (``Network``) or zone/region (``Datacenter``) CI."""
        ident = Identifiers(native_key=f"aws:{kind}:{key}",
                            cloud_id=key if kind in ("vpc", "subnet") else None)
        if str(ident.native_key) not in self.others:
            cls = "Network" if kind in ("vpc", "subnet") else "Datacenter"
            self.others[str(ident.native_key)] = CIRecord(
                ci_class=cls, name=key, identifiers=ident,
                attributes={"aws_kind": kind, **attrs}, origin=origin)
        return ident

    def edge(self, rel: str, src: Identifiers, dst: Identifiers, origin: Origin) -> None:
        key = (rel, str(src.native_key), str(dst.native_key))
        if key not in self._edges:
            self._edges.add(key)
            self.rels.append(RelationshipRecord(rel_type=rel, source=src, target=dst,
                                                origin=origin))


class AWSEC2Importer(JSONImporter):
    """``aws ec2 describe-instances`` JSON -> VM, subnet/VPC and zone/region CIs.

    Follows the EC2 DescribeInstances response; see the module docstring for the mapping.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed JSON, no ``Reservations`` list, or an instance without
        ``InstanceId`` -- naming the file, the JSON pointer and the field.
    """

    kind = "aws-ec2"
    description = "AWS EC2 describe-instances JSON (EC2 API DescribeInstances)"
    relationship_basis = RelationshipBasis.DISCOVERED

    def transform(self, doc: Any, origin: str) -> Iterator[Record]:
        """Instance, network and datacenter CIs, then their relationships."""
        if not isinstance(doc, Mapping):
            raise InvalidRecordError("expected a JSON object with Reservations", file=origin)
        require(doc, "Reservations", file=origin, record="/")
        cis: list[Record] = []
        estate = _Estate()
        for rptr, res in mapping_items(doc["Reservations"], file=origin,
                                       pointer="/Reservations", what="a reservation"):
            require(res, "Instances", file=origin, record=rptr)
            for ptr, inst in mapping_items(res["Instances"], file=origin,
                                           pointer=f"{rptr}/Instances", what="an instance"):
                with guard(origin, record=ptr):
                    cis.append(_instance(inst, res, estate, Origin(file=origin, record=ptr)))
        log.info("%s: %d instances, %d networks/zones, %d relationships", origin, len(cis),
                 len(estate.others), len(estate.rels))
        yield from cis
        yield from estate.others.values()
        yield from estate.rels


def _instance(inst: Mapping[str, Any], res: Mapping[str, Any], estate: _Estate,
              origin: Origin) -> CIRecord:
    """The VirtualMachine CI of one instance; its subnets and zone go to ``estate``."""
    iid = str(require(inst, "InstanceId", file=origin.file, record=origin.record))
    tags = {
        str(t.get("Key")): str(t.get("Value") or "")
        for t in inst.get("Tags") or [] if isinstance(t, Mapping) and t.get("Key")
    }
    attrs: dict[str, Any] = {dst: str(inst[src]) for src, dst in _ATTRIBUTES if inst.get(src)}
    if res.get("OwnerId"):
        attrs["aws_account"] = str(res["OwnerId"])
    state = inst.get("State")
    sname = str(state.get("Name")) if isinstance(state, Mapping) else None
    if sname:
        attrs["aws_state"] = sname
        if sname in EC2_STATUS:
            attrs["operational_status"] = EC2_STATUS[sname]
    for k, v in tags.items():
        attrs[f"tag_{k}"] = v
    env = tags.get("Environment") or tags.get("environment") or tags.get("env")
    if env:
        attrs["environment"] = env
    ips, macs, subnets = _interfaces(inst)
    if ips:
        attrs["ip_addresses"] = list(dict.fromkeys(ips))
    groups = {str(g.get("GroupId")) for g in inst.get("SecurityGroups") or []
              if isinstance(g, Mapping) and g.get("GroupId")}
    if groups:
        attrs["security_groups"] = sorted(groups)
    fqdn = str(inst.get("PrivateDnsName") or "").lower() or None
    ident = Identifiers(
        native_key=iid, cloud_id=iid, fqdn=fqdn,
        hostname=fqdn.split(".", 1)[0] if fqdn else None,
        mac_addresses=tuple(dict.fromkeys(macs)),
    )
    me = Identifiers(native_key=iid)
    for subnet, vpc in dict.fromkeys(subnets):
        sid = estate.other("subnet", subnet, {}, origin)
        estate.edge("CONNECTS_TO", me, sid, origin)
        if vpc:
            estate.edge("CONNECTS_TO", sid, estate.other("vpc", vpc, {}, origin), origin)
    placement = inst.get("Placement")
    zone = placement.get("AvailabilityZone") if isinstance(placement, Mapping) else None
    if zone:
        region = _region(str(zone))
        zid = estate.other("zone", str(zone), {"region": region}, origin)
        estate.edge("HOSTED_ON", me, zid, origin)
        estate.edge("LOCATED_IN", zid, estate.other("region", region, {}, origin), origin)
    return CIRecord(ci_class="VirtualMachine", name=tags.get("Name") or iid, identifiers=ident,
                    attributes=attrs, origin=origin)


def _interfaces(inst: Mapping[str, Any]) -> tuple[list[str], list[str],
                                                  list[tuple[str, str | None]]]:
    """The IP addresses, MAC addresses and (subnet, VPC) pairs of an instance and its ENIs."""
    ips = [str(inst[k]) for k in ("PrivateIpAddress", "PublicIpAddress") if inst.get(k)]
    macs: list[str] = []
    subnets: list[tuple[str, str | None]] = []
    if _scalar(inst.get("SubnetId")):
        subnets.append((str(inst["SubnetId"]), _scalar(inst.get("VpcId"))))
    for eni in inst.get("NetworkInterfaces") or []:
        if not isinstance(eni, Mapping):
            continue
        if eni.get("MacAddress"):
            macs.append(str(eni["MacAddress"]).lower())
        for pip in eni.get("PrivateIpAddresses") or []:
            if isinstance(pip, Mapping):
                if pip.get("PrivateIpAddress"):
                    ips.append(str(pip["PrivateIpAddress"]))
                assoc = pip.get("Association")
                if isinstance(assoc, Mapping) and assoc.get("PublicIp"):
                    ips.append(str(assoc["PublicIp"]))
        for v6 in eni.get("Ipv6Addresses") or []:
            if isinstance(v6, Mapping) and v6.get("Ipv6Address"):
                ips.append(str(v6["Ipv6Address"]))
        if _scalar(eni.get("SubnetId")):
            subnets.append((str(eni["SubnetId"]), _scalar(eni.get("VpcId"))))
    return ips, macs, subnets
