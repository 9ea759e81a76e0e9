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
from pathlib import Path
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record, RelationshipRecord
from importers.base import checked_records, load_json, require

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


class AWSEC2Importer:
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

    def parse(self, path: Path) -> Iterator[Record]:
        """Yield instance, network and datacenter CIs, then their relationships.

        Parameters
        ----------
        path : Path
            The JSON printed by ``aws ec2 describe-instances``.

        Raises
        ------
        InvalidRecordError
            Bad input; names the file, the JSON pointer and the field.
        """
        yield from checked_records(path, self._parse(path))

    def _parse(self, path: Path) -> Iterator[Record]:
        """The records of :meth:`parse`, unchecked."""
        name = str(path)
        data = load_json(path)
        if not isinstance(data, Mapping):
            raise InvalidRecordError("expected a JSON object with Reservations", file=name)
        reservations = require(data, "Reservations", file=name, record="/")
        if not isinstance(reservations, list):
            raise InvalidRecordError("Reservations must be a list", file=name, record="/",
                                     field="Reservations")
        cis: list[Record] = []
        rels: list[Record] = []
        others: dict[str, CIRecord] = {}
        edges: set[tuple[str, str, str]] = set()

        def other(kind: str, key: str, ci_name: str, attrs: dict[str, Any],
                  origin: Origin) -> Identifiers:
            ident = Identifiers(native_key=f"aws:{kind}:{key}",
                                cloud_id=key if kind in ("vpc", "subnet") else None)
            if ident.native_key not in others:
                cls = "Network" if kind in ("vpc", "subnet") else "Datacenter"
                others[str(ident.native_key)] = CIRecord(
                    ci_class=cls, name=ci_name, identifiers=ident,
                    attributes={"aws_kind": kind, **attrs}, origin=origin)
            return ident

        def edge(rel: str, src: Identifiers, dst: Identifiers, origin: Origin) -> None:
            key = (rel, str(src.native_key), str(dst.native_key))
            if key in edges:
                return
            edges.add(key)
            rels.append(RelationshipRecord(rel_type=rel, source=src, target=dst, origin=origin))

        for ri, res in enumerate(reservations):
            rptr = f"/Reservations/{ri}"
            if not isinstance(res, Mapping):
                raise InvalidRecordError("a reservation must be an object", file=name,
                                         record=rptr)
            instances = require(res, "Instances", file=name, record=rptr)
            if not isinstance(instances, list):
                raise InvalidRecordError("Instances must be a list", file=name, record=rptr,
                                         field="Instances")
            for ii, inst in enumerate(instances):
                ptr = f"{rptr}/Instances/{ii}"
                origin = Origin(file=name, record=ptr)
                if not isinstance(inst, Mapping):
                    raise InvalidRecordError("an instance must be an object", file=name,
                                             record=ptr)
                iid = str(require(inst, "InstanceId", file=name, record=ptr))
                tags = {
                    str(t.get("Key")): str(t.get("Value") or "")
                    for t in inst.get("Tags") or [] if isinstance(t, Mapping) and t.get("Key")
                }
                attrs: dict[str, Any] = {}
                for src, dst in (("InstanceType", "instance_type"), ("ImageId", "image_id"),
                                 ("PlatformDetails", "platform"),
                                 ("Architecture", "architecture"),
                                 ("LaunchTime", "launch_time"), ("KeyName", "key_name")):
                    if inst.get(src):
                        attrs[dst] = str(inst[src])
                owner = res.get("OwnerId")
                if owner:
                    attrs["aws_account"] = str(owner)
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
                ips: list[str] = []
                macs: list[str] = []
                subnets: list[tuple[str, str | None]] = []
                for key in ("PrivateIpAddress", "PublicIpAddress"):
                    if inst.get(key):
                        ips.append(str(inst[key]))
                if _scalar(inst.get("SubnetId")):
                    subnets.append((str(inst["SubnetId"]), _scalar(inst.get("VpcId"))))
                groups = {str(g.get("GroupId")) for g in inst.get("SecurityGroups") or []
                          if isinstance(g, Mapping) and g.get("GroupId")}
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
                if ips:
                    attrs["ip_addresses"] = list(dict.fromkeys(ips))
                if groups:
                    attrs["security_groups"] = sorted(groups)
                fqdn = str(inst.get("PrivateDnsName") or "").lower() or None
                ident = Identifiers(
                    native_key=iid, cloud_id=iid, fqdn=fqdn,
                    hostname=fqdn.split(".", 1)[0] if fqdn else None,
                    mac_addresses=tuple(dict.fromkeys(macs)),
                )
                cis.append(CIRecord(ci_class="VirtualMachine", name=tags.get("Name") or iid,
                                    identifiers=ident, attributes=attrs, origin=origin))
                me = Identifiers(native_key=iid)
                for subnet, vpc in dict.fromkeys(subnets):
                    sid = other("subnet", subnet, subnet, {}, origin)
                    edge("CONNECTS_TO", me, sid, origin)
                    if vpc:
                        vid = other("vpc", str(vpc), str(vpc), {}, origin)
                        edge("CONNECTS_TO", sid, vid, origin)
                placement = inst.get("Placement")
                zone = placement.get("AvailabilityZone") if isinstance(placement,
                                                                       Mapping) else None
                if zone:
                    region = _region(str(zone))
                    zid = other("zone", str(zone), str(zone), {"region": region}, origin)
                    rid = other("region", region, region, {}, origin)
                    edge("HOSTED_ON", me, zid, origin)
                    edge("LOCATED_IN", zid, rid, origin)
        log.info("%s: %d instances, %d networks/zones, %d relationships", name, len(cis),
                 len(others), len(rels))
        yield from cis
        yield from others.values()
        yield from rels
