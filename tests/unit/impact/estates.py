"""Small hand-drawn estates in the store graph shape, for the impact tests."""

from __future__ import annotations

from typing import Any

import networkx as nx

from cmdb_graph.model import ConfigurationItem, Relationship
from cmdb_graph.model.entities import dump_flat


def ci(ci_id: str, ci_class: str, **fields: Any) -> ConfigurationItem:
    """A CI model with a name equal to its id unless given."""
    fields.setdefault("name", ci_id)
    return ConfigurationItem(ci_id=ci_id, ci_class=ci_class, **fields)


def graph(cis: list[ConfigurationItem], rels: list[tuple[Any, ...]]) -> nx.MultiDiGraph:
    """Build the store shape: rels are ``(source, rel_type, target[, optional])``."""
    g = nx.MultiDiGraph()
    for item in cis:
        g.add_node(item.ci_id, **dump_flat(item))
    for rel in rels:
        source, rel_type, target = rel[:3]
        optional = bool(rel[3]) if len(rel) > 3 else False
        r = Relationship(rel_type=rel_type, source=source, target=target, optional=optional)
        g.add_edge(source, target, key=rel_type, rel_type=rel_type, optional=r.optional,
                   inferred=r.inferred, evidence=r.evidence, properties=dict(r.properties))
    return g


def shop() -> nx.MultiDiGraph:
    """An online shop.

    ::

        bs_shop (BusinessService, crit 1) -DEPENDS_ON-> as_web (ApplicationService, crit 2)
        bs_blog (BusinessService, crit 3) -DEPENDS_ON-> as_web
        as_web -DEPENDS_ON-> app_web ; as_web -DEPENDS_ON(optional)-> app_search
        app_web -RUNS_ON-> cl_web (Cluster, redundancy "2")
        srv1, srv2, srv3 -MEMBER_OF-> cl_web ; srv1..3 -CONNECTS_TO-> sw1
        app_search -RUNS_ON-> vm_search -HOSTED_ON-> hv1
        sw1 -LOCATED_IN-> dc1 ; hv1 -LOCATED_IN-> dc2
    """
    cis = [
        ci("bs_shop", "BusinessService", business_criticality=1, support_group="grp_shop",
           owner="alice"),
        ci("bs_blog", "BusinessService", business_criticality=3),
        ci("as_web", "ApplicationService", business_criticality=2),
        ci("app_web", "Application"),
        ci("app_search", "Application", support_group="grp_search"),
        ci("cl_web", "Cluster", redundancy="2"),
        ci("srv1", "Server", support_group="grp_unix", serial_number="SN1"),
        ci("srv2", "Server", support_group="grp_unix", serial_number="SN2"),
        ci("srv3", "Server", support_group="grp_unix", serial_number="SN3"),
        ci("sw1", "NetworkDevice", support_group="grp_net"),
        ci("vm_search", "VirtualMachine"),
        ci("hv1", "Hypervisor", support_group="grp_virt"),
        ci("dc1", "Datacenter", support_group="grp_dc"),
        ci("dc2", "Datacenter", support_group="grp_dc"),
    ]
    rels = [
        ("bs_shop", "DEPENDS_ON", "as_web"),
        ("bs_blog", "DEPENDS_ON", "as_web"),
        ("as_web", "DEPENDS_ON", "app_web"),
        ("as_web", "DEPENDS_ON", "app_search", True),
        ("app_web", "RUNS_ON", "cl_web"),
        ("srv1", "MEMBER_OF", "cl_web"),
        ("srv2", "MEMBER_OF", "cl_web"),
        ("srv3", "MEMBER_OF", "cl_web"),
        ("srv1", "CONNECTS_TO", "sw1"),
        ("srv2", "CONNECTS_TO", "sw1"),
        ("srv3", "CONNECTS_TO", "sw1"),
        ("app_search", "RUNS_ON", "vm_search"),
        ("vm_search", "HOSTED_ON", "hv1"),
        ("sw1", "LOCATED_IN", "dc1"),
        ("hv1", "LOCATED_IN", "dc2"),
    ]
    return graph(cis, rels)
