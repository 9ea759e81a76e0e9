"""Azure Resource Graph query results: Azure resources as cloud CIs.

Follows the Azure Resource Graph REST API ``Resources`` operation
(https://learn.microsoft.com/rest/api/azureresourcegraph/resourcegraph/resources/resources),
api-version 2021-03-01 and later. Accepted shapes:

- the response body with ``resultFormat`` ``objectArray``: ``{"data": [{...}, ...], ...}``;
- the ``table`` format: ``{"data": {"columns": [{"name": ...}], "rows": [[...], ...]}}``;
- ``az graph query`` output (``{"data": [...], "count": ...}``) or a bare list of rows;
- an API-specification example wrapping one of those
  (``{"responses": {"200": {"body": ...}}}``).

Mapping (the documented decisions):

- Each row needs ``id`` and ``type``. ``id`` (lower-cased: Azure ids are case-insensitive) is
  the ``cloud_id`` and native key; the original spelling is kept as ``azure_id``.
- ``type`` -> CI class: ``microsoft.compute/virtualmachines`` (and scale-set VMs) ->
  ``VirtualMachine``; virtual networks, subnets, network security groups and other
  ``microsoft.network`` networks -> ``Network``; SQL/PostgreSQL/MySQL/Cosmos databases and
  servers -> ``Database``; AKS clusters -> ``Cluster``; web/function apps -> ``Application``;
  anything else (disks, NICs, storage accounts, ...) -> ``CloudResource``.
- ``location`` -> a ``Datacenter`` CI (the Azure region); VMs are ``-[HOSTED_ON]->`` it, other
  resources ``-[LOCATED_IN]->`` it (``global`` and empty locations have none).
- ``subscriptionId``, ``resourceGroup`` (taken from the id when the row lacks them), ``kind``,
  ``sku.name`` and ``tags`` (``tag_<key>``; ``Environment``/``env`` sets ``environment``) are
  attributes.
- References between rows are inferred from ``properties`` (and ``managedBy``): a string value
  that is, or lies under, the id of another row of the result makes the row
  ``-[DEPENDS_ON]->`` that one (``-[CONNECTS_TO]->`` when it is a ``Network``), with
  ``inferred=True`` and the property path as evidence (e.g. a VM's
  ``properties.networkProfile.networkInterfaces[0].id``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import RelationshipBasis
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record, RelationshipRecord
from importers.base import JSONImporter, guard, require

__all__ = ["AzureResourceGraphImporter", "azure_class"]

log = logging.getLogger(__name__)

_VM = ("microsoft.compute/virtualmachines", "microsoft.compute/virtualmachinescalesets/"
       "virtualmachines", "microsoft.classiccompute/virtualmachines")
_NETWORK = ("microsoft.network/virtualnetworks", "microsoft.network/virtualnetworks/subnets",
            "microsoft.network/networksecuritygroups", "microsoft.network/virtualwans",
            "microsoft.network/virtualhubs", "microsoft.classicnetwork/virtualnetworks")
_DATABASE_PREFIXES = ("microsoft.sql/", "microsoft.dbforpostgresql/", "microsoft.dbformysql/",
                      "microsoft.dbformariadb/", "microsoft.documentdb/")
_CLUSTER = ("microsoft.containerservice/managedclusters",)
_APPLICATION = ("microsoft.web/sites",)


def azure_class(resource_type: str) -> str:
    """The CI class of an Azure resource type (case-insensitive).

    Examples
    --------
    >>> azure_class("Microsoft.Compute/virtualMachines")
    'VirtualMachine'
    >>> azure_class("microsoft.storage/storageaccounts")
    'CloudResource'
    """
    t = resource_type.lower()
    if t in _VM:
        return "VirtualMachine"
    if t in _NETWORK:
        return "Network"
    if t.startswith(_DATABASE_PREFIXES):
        return "Database"
    if t in _CLUSTER:
        return "Cluster"
    if t in _APPLICATION:
        return "Application"
    return "CloudResource"


def _rows(data: Any, file: str) -> tuple[list[Any], str]:
    """The result rows and the JSON pointer they sit at."""
    pointer = ""
    if isinstance(data, Mapping) and isinstance(data.get("responses"), Mapping):
        ok = data["responses"].get("200")
        if not isinstance(ok, Mapping) or not isinstance(ok.get("body"), Mapping):
            raise InvalidRecordError("API example has no 200 response body", file=file,
                                     record="/responses", field="200")
        data, pointer = ok["body"], "/responses/200/body"
    if isinstance(data, list):
        return data, pointer or "/"
    if not isinstance(data, Mapping):
        raise InvalidRecordError("expected a Resource Graph response object", file=file)
    body = require(data, "data", file=file, record=pointer or "/")
    pointer += "/data"
    if isinstance(body, list):
        return body, pointer
    if isinstance(body, Mapping):
        columns = require(body, "columns", file=file, record=pointer)
        rows = require(body, "rows", file=file, record=pointer)
        if not isinstance(columns, list) or not isinstance(rows, list):
            raise InvalidRecordError("table format needs lists of columns and rows", file=file,
                                     record=pointer)
        names = []
        for i, c in enumerate(columns):
            if not isinstance(c, Mapping) or not c.get("name"):
                raise InvalidRecordError("a column needs a name", file=file,
                                         record=f"{pointer}/columns/{i}", field="name")
            names.append(str(c["name"]))
        out = []
        for i, r in enumerate(rows):
            if not isinstance(r, list) or len(r) != len(names):
                raise InvalidRecordError(
                    f"a row must be a list of {len(names)} cells", file=file,
                    record=f"{pointer}/rows/{i}",
                )
            out.append(dict(zip(names, r, strict=True)))
        return out, pointer + "/rows"
    raise InvalidRecordError("data must be a list of rows or a table", file=file,
                             record=pointer)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


class AzureResourceGraphImporter(JSONImporter):
    """Azure Resource Graph results -> cloud CIs, regions and inferred references.

    Follows the Resource Graph ``Resources`` REST response; see the module docstring.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: malformed JSON, no ``data``, a malformed table, or a row without
        ``id``/``type`` -- naming the file, the JSON pointer of the row and the field.
    """

    kind = "azure-resource-graph"
    description = "Azure Resource Graph query results (REST Resources response, az graph query)"
    relationship_basis = RelationshipBasis.DISCOVERED

    def transform(self, doc: Any, origin: str) -> Iterator[Record]:
        """Resource and region CIs, then their relationships."""
        rows, pointer = _rows(doc, origin)
        cis: list[Record] = []
        regions: dict[str, CIRecord] = {}
        rels: list[Record] = []
        parsed: list[tuple[str, str, Mapping[str, Any], Origin]] = []
        for i, row in enumerate(rows):
            ptr = f"{pointer.rstrip('/')}/{i}"
            with guard(origin, record=ptr):
                ci = _resource(row, Origin(file=origin, record=ptr))
            cis.append(ci)
            key, location = str(ci.identifiers.native_key), ci.attributes.get("location")
            parsed.append((key, ci.ci_class, row, ci.origin))
            if location and location != "global":
                rkey = f"azure:region:{location}"
                if rkey not in regions:
                    regions[rkey] = CIRecord(
                        ci_class="Datacenter", name=str(location),
                        identifiers=Identifiers(native_key=rkey),
                        attributes={"cloud_provider": "azure"}, origin=ci.origin)
                rels.append(RelationshipRecord(
                    rel_type="HOSTED_ON" if ci.ci_class == "VirtualMachine" else "LOCATED_IN",
                    source=Identifiers(native_key=key), target=Identifiers(native_key=rkey),
                    origin=ci.origin))
        rels.extend(_references(parsed))
        log.info("%s: %d resources, %d regions, %d relationships", origin, len(cis),
                 len(regions), len(rels))
        yield from cis
        yield from regions.values()
        yield from rels


def _resource(row: Any, origin: Origin) -> CIRecord:
    """The CI of one result row."""
    name, ptr = origin.file, origin.record
    if not isinstance(row, Mapping):
        raise InvalidRecordError("a row must be an object", file=name, record=ptr)
    rid = str(require(row, "id", file=name, record=ptr))
    rtype = str(require(row, "type", file=name, record=ptr))
    if not rid.startswith("/"):
        raise InvalidRecordError(f"not an Azure resource id: {rid!r}", file=name,
                                 record=ptr, field="id")
    key = rid.lower()
    segments = rid.strip("/").split("/")
    lower = [s.lower() for s in segments]
    attrs: dict[str, Any] = {"azure_id": rid, "resource_type": rtype.lower()}
    sub = row.get("subscriptionId") or (
        segments[lower.index("subscriptions") + 1] if "subscriptions" in lower[:-1] else None)
    group = row.get("resourceGroup") or (
        segments[lower.index("resourcegroups") + 1] if "resourcegroups" in lower[:-1] else None)
    if sub:
        attrs["subscription_id"] = str(sub)
    if group:
        attrs["resource_group"] = str(group)
    if row.get("kind"):
        attrs["azure_kind"] = str(row["kind"])
    sku = row.get("sku")
    if isinstance(sku, Mapping) and sku.get("name"):
        attrs["sku"] = str(sku["name"])
    tags = row.get("tags")
    if isinstance(tags, Mapping):
        for k, v in tags.items():
            attrs[f"tag_{k}"] = None if v is None else str(v)
        env = tags.get("Environment") or tags.get("environment") or tags.get("env")
        if env:
            attrs["environment"] = str(env)
    location = str(row.get("location") or "").lower()
    if location:
        attrs["location"] = location
    return CIRecord(ci_class=azure_class(rtype), name=str(row.get("name") or segments[-1]),
                    identifiers=Identifiers(native_key=key, cloud_id=key), attributes=attrs,
                    origin=origin)


def _references(parsed: list[tuple[str, str, Mapping[str, Any], Origin]]
                ) -> Iterator[RelationshipRecord]:
    """DEPENDS_ON / CONNECTS_TO inferred from ids in ``properties`` and ``managedBy``."""
    classes = {key: cls for key, cls, _, _ in parsed}
    # longest id first, so that a subnet id maps to its vnet only when no closer row exists
    ordered = sorted(classes, key=len, reverse=True)
    seen: set[tuple[str, str]] = set()
    for key, _cls, row, origin in parsed:
        refs = [*_strings(row.get("properties"), "properties"),
                *_strings(row.get("managedBy"), "managedBy")]
        for where, value in refs:
            v = value.lower().rstrip("/")
            if not v.startswith("/subscriptions/"):
                continue
            target = next((k for k in ordered if v == k or v.startswith(k + "/")), None)
            if target is None or target == key or (key, target) in seen:
                continue
            if key.startswith(target + "/"):
                continue  # a child's reference to its own parent
            seen.add((key, target))
            yield RelationshipRecord(
                rel_type="CONNECTS_TO" if classes[target] == "Network" else "DEPENDS_ON",
                source=Identifiers(native_key=key), target=Identifiers(native_key=target),
                inferred=True, confidence=0.9,  # a resource id the resource holds
                evidence=f"{where} = {value}", origin=origin)
