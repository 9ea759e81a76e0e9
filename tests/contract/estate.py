"""A small hand-drawn estate for the contract suite.

::

    svc --DEPENDS_ON--> app --DEPENDS_ON--> web --RUNS_ON--> vm1 --HOSTED_ON--> cl
                         \\                 |  ^                               ^  ^
                          \\--DEPENDS_ON---db  | DEPENDS_ON (cycle web <-> cache)  |  |
                             (optional)   |  cache                  MEMBER_OF |  | MEMBER_OF
                                          RUNS_ON                            hv1  hv2
                                          v                                   ^ \\
                                          vm2 --HOSTED_ON--> cl     rack --CONTAINS  LOCATED_IN
                                                             rack --LOCATED_IN--> dc <-/

Upstream of ``hv1`` (what its failure reaches): MEMBER_OF forward to ``cl``, then HOSTED_ON,
RUNS_ON and DEPENDS_ON in reverse: ``cl, vm1, vm2, web, db, cache, app, svc``; never ``hv2``
(a sibling member), ``rack`` (it contains hv1) or ``dc``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from cmdb_graph.model import (
    Asset,
    AttributeSource,
    ConfigurationItem,
    Lineage,
    Relationship,
    SoftwareProduct,
    SourceSeen,
    SupportGroup,
)
from cmdb_graph.store.base import WriteBatch

T0 = datetime(2024, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)
T1 = datetime(2024, 3, 2, 8, 0, tzinfo=UTC)

CLASSES = {
    "svc": "BusinessService",
    "app": "ApplicationService",
    "web": "Application",
    "db": "Database",
    "cache": "Middleware",
    "vm1": "VirtualMachine",
    "vm2": "VirtualMachine",
    "cl": "Cluster",
    "hv1": "Hypervisor",
    "hv2": "Hypervisor",
    "rack": "Rack",
    "dc": "Datacenter",
}

EDGES: list[tuple[str, str, str]] = [
    ("DEPENDS_ON", "svc", "app"),
    ("DEPENDS_ON", "app", "web"),
    ("DEPENDS_ON", "app", "db"),
    ("DEPENDS_ON", "web", "cache"),
    ("DEPENDS_ON", "cache", "web"),
    ("RUNS_ON", "web", "vm1"),
    ("RUNS_ON", "db", "vm2"),
    ("HOSTED_ON", "vm1", "cl"),
    ("HOSTED_ON", "vm2", "cl"),
    ("MEMBER_OF", "hv1", "cl"),
    ("MEMBER_OF", "hv2", "cl"),
    ("CONTAINS", "rack", "hv1"),
    ("LOCATED_IN", "hv1", "dc"),
    ("LOCATED_IN", "rack", "dc"),
]


def lineage(source: str = "discovery") -> Lineage:
    """A lineage with one source and one attribute."""
    return Lineage(
        sources={source: SourceSeen(first_seen=T0, last_seen=T1, native_key=f"{source}:1")},
        attributes={"name": AttributeSource(source=source, asserted_at=T1)},
    )


def ci(ci_id: str, ci_class: str | None = None, **fields: object) -> ConfigurationItem:
    """A CI of the estate (class from ``CLASSES`` unless given)."""
    return ConfigurationItem.model_validate(
        {
            "ci_id": ci_id,
            "name": fields.pop("name", f"{ci_id} name"),
            "ci_class": ci_class or CLASSES[ci_id],
            **fields,
        }
    )


def estate_cis() -> list[ConfigurationItem]:
    """The CIs, with identifiers on the infrastructure."""
    out = []
    for ci_id in CLASSES:
        extra: dict[str, object] = {}
        if ci_id in ("hv1", "hv2"):
            n = ci_id[-1]
            extra = {
                "serial_number": f"SN-{n}",
                "asset_tag": f"AT-{n}",
                "fqdn": f"HV{n}.Example.COM",
                "hostname": f"HV{n}",
                "mac_addresses": [f"00:1a:2b:00:00:0{n}", f"00:1a:2b:00:01:0{n}"],
                "native_keys": [f"vcenter:host-{n}"],
                "environment": "prod",
                "support_group": "grp-infra",
                "lineage": lineage("vcenter"),
            }
        elif ci_id in ("vm1", "vm2"):
            extra = {"cloud_id": f"i-{ci_id}", "environment": "prod", "lineage": lineage()}
        elif ci_id == "svc":
            extra = {"business_criticality": 1, "support_group": "grp-shop"}
        out.append(ci(ci_id, **extra))  # type: ignore[arg-type]
    return out


def rel(rel_type: str, source: str, target: str, **fields: object) -> Relationship:
    """A CI-to-CI relationship."""
    return Relationship.model_validate(
        {"rel_type": rel_type, "source": source, "target": target, **fields}
    )


def estate_batch() -> WriteBatch:
    """The whole estate as one batch (CIs, a group, a product, an asset, relationships)."""
    rels = [
        rel(t, s, d, optional=(s, d) == ("app", "db"), properties={"weight": 1})
        for t, s, d in EDGES
    ]
    rels.append(
        Relationship(
            rel_type="HAS_INSTALLED",
            source="web",
            target="nginx",
            target_label="SoftwareProduct",
            properties={"version": "1.25"},
        )
    )
    return WriteBatch(
        nodes=[
            *estate_cis(),
            SupportGroup(group_id="grp-infra", name="Infrastructure"),
            SoftwareProduct(product_id="nginx", name="nginx", vendor="F5"),
            Asset(
                asset_id="A-1",
                asset_tag="AT-1",
                serial_number="SN-1",
                ci_id="hv1",
                purchase_date=date(2022, 1, 31),
                warranty_end=date(2027, 1, 31),
                cost=1200.5,
            ),
        ],
        relationships=rels,
    )
