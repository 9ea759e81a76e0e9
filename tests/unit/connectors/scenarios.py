"""Stand-in APIs for each connector: real answers from ../shared/realdata where they exist,
else answers written from the vendor's documentation; paged one or two items per page.

Each scenario sets up the routes of one stand-in, names the path that is paged (asked more
than once), a path asked in the middle of the run (where faults go), the ``Authorization``
the API expects, and a check of what must have arrived in the store.
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from cmdb_graph.store.base import GraphStore
from tests.helpers.standin import Reply, Request, StandIn

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "importers"
TOKEN = "s3cr3t-token-value"


def real(path: str) -> Any:
    return json.loads((REALDATA / path).read_text(encoding="utf-8"))


def names(store: GraphStore) -> set[str]:
    from cmdb_graph.store import iter_cis

    return {ci.name for ci in iter_cis(store)}


@dataclass
class Scenario:
    kind: str
    setup: Callable[[StandIn], None]
    paged: str
    middle: str
    header: str
    check: Callable[[GraphStore], None]
    params: dict[str, Any] = field(default_factory=dict)
    auth: dict[str, Any] = field(default_factory=lambda: {"type": "token",
                                                          "token": "env:CONNECTOR_TOKEN"})
    url_suffix: str = ""


def _offset_route(items: list[Any], wrap: Callable[[list[Any], int, Request], Reply],
                  limit: str = "limit", offset: str = "offset") -> Callable[[Request], Reply]:
    def handler(req: Request) -> Reply:
        size = int(req.arg(limit, "1") or 1)
        start = int(req.arg(offset, "0") or 0)
        return wrap(items[start:start + size], start + size, req)
    return handler


# -- NetBox ---------------------------------------------------------------------------------
def _netbox_list(path: str, items: list[Any], base: StandIn) -> Callable[[Request], Reply]:
    def wrap(chunk: list[Any], end: int, req: Request) -> Reply:
        query = {k: v[0] for k, v in req.query.items()} | {"offset": str(end)}
        nxt = f"{base.url}{path}?{urlencode(query)}" if end < len(items) else None
        return Reply(body={"count": len(items), "next": nxt, "previous": None,
                           "results": chunk})
    return _offset_route(items, wrap)


def netbox_setup(s: StandIn) -> None:
    edge = real("netbox/pynetbox-device.json")  # id 1, test1-edge1
    core = copy.deepcopy(edge) | {"id": 2, "name": "test1-core1", "serial": "5555555556"}
    access = copy.deepcopy(edge) | {"id": 3, "name": "test1-access1", "serial": "5555555557"}
    iface = real("netbox/pynetbox-interface.json")  # on device 2, cable 1
    patched = {"id": 5, "url": f"{s.url}/api/dcim/interfaces/5/", "name": "eth9",
               "device": {"id": 1, "name": "test1-edge1"}, "cable": {"id": 9},
               "link_peers_type": "dcim.frontport", "mac_address": None}
    cable = real("netbox/pynetbox-cable.json")  # device 1 <-> device 2
    vm = {"id": 7, "url": f"{s.url}/api/virtualization/virtual-machines/7/",
          "name": "vm-web01", "status": {"value": "active", "label": "Active"},
          "cluster": {"id": 1, "name": "cluster-a"}, "device": {"id": 3, "name": "x"},
          "vcpus": 2, "memory": 4096, "disk": 40}
    trace = [[[{"id": 5, "device": {"id": 1}}], {"id": 9}, [{"id": 20, "name": "front1"}]],
             [[{"id": 21, "name": "rear1"}], {"id": 10}, [{"id": 30, "device": {"id": 3}}]]]
    for path, items in (("/api/dcim/devices/", [edge, core, access]),
                        ("/api/dcim/interfaces/", [iface, patched]),
                        ("/api/dcim/cables/", [cable]),
                        ("/api/virtualization/virtual-machines/", [vm])):
        s.route("GET", path, _netbox_list(path, items, s))
    s.route("GET", "/api/dcim/interfaces/5/trace/", trace)


def netbox_check(store: GraphStore) -> None:
    assert names(store) >= {"test1-edge1", "test1-core1", "test1-access1", "vm-web01"}
    rels = {(r.rel_type, r.source, r.target) for r in store.relationships()}
    by_name = {ci.name: ci.ci_id for ci in __import__("cmdb_graph.store", fromlist=["x"])
               .iter_cis(store)}
    ends = {(t, a, b) for t, a, b in rels}
    assert ("HOSTED_ON", by_name["vm-web01"], by_name["test1-access1"]) in ends
    pairs = {frozenset((a, b)) for t, a, b in ends if t == "CONNECTS_TO"}
    assert frozenset((by_name["test1-edge1"], by_name["test1-access1"])) in pairs  # trace
    assert frozenset((by_name["test1-edge1"], by_name["test1-core1"])) in pairs  # cable


# -- Snipe-IT -------------------------------------------------------------------------------
def snipeit_rows() -> list[dict[str, Any]]:
    """The first rows of Snipe-IT's own asset sample CSV, as GET /api/v1/hardware rows."""
    with (REALDATA / "snipeit/assets-sample.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:4]
    out = []
    for i, r in enumerate(rows, start=1):
        nested = {k: {"id": i, "name": r[c]} if r[c] else None for k, c in (
            ("company", "Company"), ("category", "Category"), ("supplier", "Supplier"),
            ("manufacturer", "Manufacturer"), ("location", "Location"), ("model", "Model"))}
        who = None
        if r["Checkout Type"] == "User":
            who = {"id": 9, "type": "user", "username": r["Checked Out To: Username"],
                   "first_name": r["Checked Out To: First Name"],
                   "last_name": r["Checked Out To: Last Name"],
                   "name": f"{r['Checked Out To: First Name']} "
                           f"{r['Checked Out To: Last Name']}",
                   "email": r["Checked Out To: Email"]}
        elif r["Checkout Type"] == "Location":
            who = {"id": 4, "type": "location", "name": r["Checked Out To: Location"]}
        out.append({"id": i, "name": r["Name"], "asset_tag": r["Asset Tag"], "serial": None,
                    **nested, "model_number": r["Model Number"], "notes": r["Asset Notes"],
                    "order_number": r["Order Number"],
                    "purchase_date": {"date": r["Purchase Date"], "formatted": "x"},
                    "purchase_cost": r["Purchase Cost"], "assigned_to": who,
                    "status_label": {"id": 1, "name": "Ready to Deploy",
                                     "status_type": "deployable"}})
    return out


def _snipe_list(items: list[Any]) -> Callable[[Request], Reply]:
    return _offset_route(items, lambda chunk, _end, _r: Reply(body={"total": len(items),
                                                                    "rows": chunk}))


def snipeit_setup(s: StandIn) -> None:
    lic = {"id": 1, "name": "Argentum Malachite Athletes Foot Relief",
           "product_key": "1aa5b0eb-79c5-40b2-8943-5472a6893c3c",
           "manufacturer": {"id": 2, "name": "Beer, Leannon and Lubowitz"}, "seats": 80,
           "purchase_date": {"date": "2012-07-13", "formatted": "x"}, "purchase_cost": "79.66",
           "license_name": "Cynthia Spencer", "license_email": "cspencer0@gov.uk",
           "expiration_date": {"date": "2016-01-27", "formatted": "x"}, "maintained": False,
           "reassignable": False}
    component = {"id": 1, "name": "RTX 4080", "serial": "123456789", "qty": 10,
                 "category": {"id": 3, "name": "GPU"}, "location": {"id": 1, "name": "Austin"},
                 "company": {"id": 1, "name": "Grokability"}, "order_number": "2790",
                 "purchase_date": {"date": "2024-01-01", "formatted": "x"},
                 "purchase_cost": "5000.00"}
    s.route("GET", "/api/v1/hardware", _snipe_list(snipeit_rows()))
    s.route("GET", "/api/v1/licenses", _snipe_list([lic]))
    s.route("GET", "/api/v1/components", _snipe_list([component]))


def snipeit_check(store: GraphStore) -> None:
    from cmdb_graph.store import iter_nodes

    tags = {getattr(a, "asset_tag", None) for a in iter_nodes(store, "Asset")}
    assert {"ICC-2065556", "WBH-2841795", "NNH-3656031"} <= tags
    assert any(e.name == "Argentum Malachite Athletes Foot Relief"
               for e in iter_nodes(store, "Entitlement"))  # type: ignore[attr-defined]


# -- Lansweeper -----------------------------------------------------------------------------
def lansweeper_setup(s: StandIn) -> None:
    answer = real("lansweeper/dataapi-graphql-assetResources-ip-hunt.json")
    items = answer["data"]["site"]["assetResources"]["items"]

    def handler(req: Request) -> Reply:
        variables = req.json()["variables"]
        cursor = variables["pagination"].get("cursor")
        index = 0 if cursor is None else [i["key"] for i in items].index(cursor)
        nxt = items[index + 1]["key"] if index + 1 < len(items) else None
        page = copy.deepcopy(answer)
        page["data"]["site"]["assetResources"]["items"] = [items[index]]
        page["data"]["site"]["assetResources"]["pagination"] = {
            "limit": 1, "current": items[index]["key"], "next": nxt, "page": "NEXT"}
        return Reply(body=page)
    s.route("POST", "/api/v2/graphql", handler)


def lansweeper_check(store: GraphStore) -> None:
    answer = real("lansweeper/dataapi-graphql-assetResources-ip-hunt.json")
    wanted = {i["assetBasicInfo"]["name"] for i in answer["data"]["site"]["assetResources"][
        "items"]}
    assert names(store) >= wanted and len(wanted) == 2


# -- GLPI -----------------------------------------------------------------------------------
GLPI_COMPUTERS = [
    {"id": 2, "name": "pc-paris-01", "serial": "CZC1234XYZ", "otherserial": "INV-0042",
     "uuid": "4C4C4544-0042-3510-8052-B4C04F4E4E31", "computertypes_id": "Desktop",
     "manufacturers_id": "Dell Inc.", "computermodels_id": "OptiPlex 7090",
     "locations_id": "Paris > Building A", "states_id": "In use", "contact": "jdoe",
     "groups_id_tech": "Workplace", "is_deleted": 0, "is_template": 0},
    {"id": 3, "name": "srv-db-01.example.com", "serial": "VMW-42-AB", "uuid": None,
     "computertypes_id": "Server", "manufacturers_id": "HPE", "is_deleted": 0,
     "is_template": 0},
    {"id": 4, "name": "old-pc", "serial": "X", "is_deleted": 1, "is_template": 0},
]
GLPI_SWITCHES = [{"id": 8, "name": "sw-core-01", "serial": "FOC1234A", "is_deleted": 0,
                  "networkequipmenttypes_id": "Switch", "manufacturers_id": "Cisco"}]


def _glpi_list(items: list[Any]) -> Callable[[Request], Reply]:
    def handler(req: Request) -> Reply:
        a, _, b = (req.arg("range") or "0-49").partition("-")
        chunk = items[int(a):int(b) + 1]
        last = int(a) + len(chunk) - 1
        status = 206 if len(chunk) < len(items) else 200
        return Reply(status, chunk, {"Content-Range": f"{a}-{last}/{len(items)}"})
    return handler


def glpi_setup(s: StandIn) -> None:
    s.auth = None  # GLPI's session tokens are checked by the routes

    def init(req: Request) -> Reply:
        if req.headers.get("authorization") != f"user_token {TOKEN}" or \
                req.headers.get("app-token") != "app-token-value":
            return Reply(401, ["ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems "
                                                              "invalid"])
        return Reply(body={"session_token": "sess-83af7e620c83a50a18d3eac2f6ed05a3ca0bea62"})

    def checked(handler: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
        def inner(req: Request) -> Reply:
            if req.headers.get("session-token") != "sess-83af7e620c83a50a18d3eac2f6ed05a3ca0b" \
                                                   "ea62":
                return Reply(401, ["ERROR_SESSION_TOKEN_INVALID", "session_token seems "
                                                                  "invalid"])
            return handler(req)
        return inner
    s.route("GET", "/apirest.php/initSession", init)
    s.route("GET", "/apirest.php/killSession", checked(lambda _r: Reply(body=None)))
    s.route("GET", "/apirest.php/Computer/", checked(_glpi_list(GLPI_COMPUTERS)))
    s.route("GET", "/apirest.php/NetworkEquipment/", checked(_glpi_list(GLPI_SWITCHES)))
    s.route("GET", "/apirest.php/Printer/", checked(_glpi_list([])))


def glpi_check(store: GraphStore) -> None:
    assert names(store) >= {"pc-paris-01", "srv-db-01.example.com", "sw-core-01"}
    assert "old-pc" not in names(store)


# -- ServiceNow -----------------------------------------------------------------------------
def _value(field: Any) -> Any:
    return field["value"] if isinstance(field, dict) else field


def servicenow_setup(s: StandIn) -> None:
    cis = json.loads((FIXTURES / "servicenow_cmdb_ci_table_api.json").read_text())["result"]
    rels = [{"sys_id": {"value": "r1", "display_value": "r1"},
             "parent": {"value": _value(cis[0]["sys_id"]), "display_value": "Order Processing"},
             "child": {"value": _value(cis[2]["sys_id"]), "display_value": "orders-db"},
             "type": {"value": "1a9cb166f1571100a92eb60da2bce5c5",
                      "display_value": "Depends on::Used by"}}]

    def table(items: list[Any], path: str) -> Callable[[Request], Reply]:
        def handler(req: Request) -> Reply:
            size = int(req.arg("sysparm_limit", "1") or 1)
            start = int(req.arg("sysparm_offset", "0") or 0)
            headers = {"X-Total-Count": str(len(items))}
            if start + size < len(items):
                query = req.arg("sysparm_query") or ""
                headers["Link"] = (f'<{s.url}{path}?sysparm_limit={size}&sysparm_offset='
                                   f'{start + size}&sysparm_display_value=all&sysparm_query='
                                   f'{query}>;rel="next"')
            return Reply(body={"result": items[start:start + size]}, headers=headers)
        return handler
    s.route("GET", "/api/now/table/cmdb_ci", table(cis, "/api/now/table/cmdb_ci"))
    s.route("GET", "/api/now/table/cmdb_rel_ci", table(rels, "/api/now/table/cmdb_rel_ci"))


def servicenow_check(store: GraphStore) -> None:
    assert names(store) >= {"Order Processing", "lnux100", "orders-db"}
    assert any(r.rel_type == "DEPENDS_ON" for r in store.relationships())


# -- JSM Assets -----------------------------------------------------------------------------
def jsm_setup(s: StandIn) -> None:
    objects = json.loads((FIXTURES / "jsm_assets_rest_objects.json").read_text())[
        "objectEntries"]

    def handler(req: Request) -> Reply:
        start = int(req.arg("startAt", "0") or 0)
        size = int(req.arg("maxResults", "1") or 1)
        chunk = objects[start:start + size]
        return Reply(body={"startAt": start, "maxResults": size, "total": len(objects),
                           "isLast": start + size >= len(objects), "values": chunk})
    s.route("POST", "/v1/object/aql", handler)


def jsm_check(store: GraphStore) -> None:
    assert names(store) >= {"pay-app-01", "pay-cluster"}


# -- Kubernetes -----------------------------------------------------------------------------
def kubernetes_setup(s: StandIn) -> None:
    docs = [d for d in yaml.safe_load_all((REALDATA / "k8s/online-boutique-kubernetes-"
                                           "manifests.yaml").read_text()) if d]
    groups = {"Deployment": "/apis/apps/v1/deployments", "Service": "/api/v1/services"}
    for kind, path in groups.items():
        items = [{k: v for k, v in d.items() if k not in ("kind", "apiVersion")}
                 for d in docs if d["kind"] == kind]

        def handler(req: Request, items: list[Any] = items, kind: str = kind) -> Reply:
            size = int(req.arg("limit", "5") or 5)
            start = int(req.arg("continue", "0") or 0)
            more = start + size < len(items)
            return Reply(body={"kind": f"{kind}List", "apiVersion": "v1",
                               "metadata": {"resourceVersion": "1",
                                            "continue": str(start + size) if more else ""},
                               "items": items[start:start + size]})
        s.route("GET", path, handler)
    for path in ("/apis/apps/v1/statefulsets", "/apis/apps/v1/daemonsets",
                 "/apis/apps/v1/replicasets", "/apis/batch/v1/jobs", "/apis/batch/v1/cronjobs",
                 "/api/v1/pods", "/api/v1/configmaps", "/api/v1/persistentvolumeclaims",
                 "/api/v1/persistentvolumes"):
        kind = path.rsplit("/", 1)[1].capitalize().removesuffix("s") + "List"
        s.route("GET", path, {"kind": kind, "apiVersion": "v1", "metadata": {}, "items": []})


def kubernetes_check(store: GraphStore) -> None:
    found = names(store)
    assert {"default/frontend", "default/cartservice", "default/redis-cart"} <= found
    assert sum(1 for r in store.relationships() if r.rel_type == "DEPENDS_ON") >= 10


SCENARIOS = {
    "netbox": Scenario("netbox", netbox_setup, "/api/dcim/devices/", "/api/dcim/interfaces/",
                       f"Token {TOKEN}", netbox_check),
    "snipeit": Scenario("snipeit", snipeit_setup, "/api/v1/hardware", "/api/v1/licenses",
                        f"Bearer {TOKEN}", snipeit_check),
    "lansweeper": Scenario("lansweeper", lansweeper_setup, "/api/v2/graphql",
                           "/api/v2/graphql", f"Token {TOKEN}", lansweeper_check,
                           params={"site_id": "site-1"}, url_suffix="/api/v2/graphql"),
    "glpi": Scenario("glpi", glpi_setup, "/apirest.php/Computer/",
                     "/apirest.php/NetworkEquipment/", "", glpi_check,
                     auth={"type": "glpi", "app_token": "env:GLPI_APP",
                           "user_token": "env:CONNECTOR_TOKEN"}),
    "servicenow": Scenario("servicenow", servicenow_setup, "/api/now/table/cmdb_ci",
                           "/api/now/table/cmdb_rel_ci", "", servicenow_check,
                           auth={"type": "basic", "username": "env:SN_USER",
                                 "password": "env:CONNECTOR_TOKEN"}),
    "jsm-assets": Scenario("jsm-assets", jsm_setup, "/v1/object/aql", "/v1/object/aql",
                           f"Bearer {TOKEN}", jsm_check),
    "kubernetes": Scenario("kubernetes", kubernetes_setup, "/apis/apps/v1/deployments",
                           "/api/v1/services", f"Bearer {TOKEN}", kubernetes_check),
}
