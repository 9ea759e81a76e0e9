"""NetBox cable traces as physical paths and symmetric links between peers: a trace through two
patch panels (written here in the shape of ``GET /api/dcim/interfaces/{id}/trace/``) is one
CablePath CI; a patch panel's failure shows the two core switches losing each other; planned
cables carry no impact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.model.records import CIRecord, RelationshipRecord
from importers import get_importer

_register()

pytestmark = pytest.mark.usefixtures("wide_tables")

NB = "https://netbox.example/api/dcim"


def device(i: int, name: str, role: str) -> dict[str, Any]:
    return {"id": i, "url": f"{NB}/devices/{i}/", "name": name,
            "role": {"id": 1, "name": role, "slug": role.lower().replace(" ", "-")},
            "status": {"value": "active", "label": "Active"}, "site": {"id": 1, "name": "DC1"}}


def term(kind: str, i: int, name: str, dev: int, dev_name: str) -> dict[str, Any]:
    return {"id": i, "url": f"{NB}/{kind}/{i}/", "name": name,
            "device": {"id": dev, "url": f"{NB}/devices/{dev}/", "name": dev_name}}


def cable(i: int, status: str = "connected") -> dict[str, Any]:
    return {"id": i, "url": f"{NB}/cables/{i}/", "status": {"value": status, "label": status}}


def trace(status: str = "connected", *, reverse: bool = False) -> dict[str, Any]:
    """core1 xe-0/0/1 -> pp-a front/rear -> pp-b rear/front -> core2 xe-0/0/1."""
    segments = [
        [[term("interfaces", 11, "xe-0/0/1", 1, "core1")], cable(901),
         [term("front-ports", 31, "F1", 3, "pp-a")]],
        [[term("rear-ports", 32, "R1", 3, "pp-a")], cable(902, status),
         [term("rear-ports", 42, "R1", 4, "pp-b")]],
        [[term("front-ports", 41, "F1", 4, "pp-b")], cable(903),
         [term("interfaces", 21, "xe-0/0/1", 2, "core2")]],
    ]
    if reverse:
        segments = [[far, c, near] for near, c, far in reversed(segments)]
        return {"url": f"{NB}/interfaces/21/trace/", "trace": segments}
    return {"url": f"{NB}/interfaces/11/trace/", "trace": segments}


DEVICES = [device(1, "core1", "Core"), device(2, "core2", "Core"),
           device(3, "pp-a", "Patch Panel")]  # pp-b is known from the trace only


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def parse(tmp_path: Path, objects: list[dict[str, Any]]) -> list[Any]:
    path = tmp_path / "netbox.json"
    path.write_text(json.dumps(objects), encoding="utf-8")
    return list(get_importer("netbox").parse(path))


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    path = tmp_path / "netbox.json"
    path.write_text(json.dumps([*DEVICES, trace(), trace(reverse=True)]), encoding="utf-8")
    db = tmp_path / "estate.db"
    code, _, err = invoke("import", "netbox", str(path), "--source", "netbox", "--db", str(db))
    assert code == 0, err
    return db


def impacted(db: Path, ci: str) -> dict[str, str]:
    code, out, err = invoke("impact", ci, "--json", "--db", str(db))
    assert code == 0, err
    return {i["name"]: i["status"] for i in json.loads(out)["impacted"]}


def test_a_trace_through_two_patch_panels_is_one_cable_path(tmp_path: Path) -> None:
    # Act: the same path traced from both ends
    records = parse(tmp_path, [*DEVICES, trace(), trace(reverse=True)])

    # Assert: one CablePath CI, needing both panels, linked symmetrically to both cores
    paths = [r for r in records if isinstance(r, CIRecord) and r.ci_class == "CablePath"]
    assert [p.name for p in paths] == ["core1 xe-0/0/1 - core2 xe-0/0/1"]
    assert paths[0].attributes["patch_panels"] == ["pp-a", "pp-b"]
    key = paths[0].identifiers.native_key
    rels = {(r.source.native_key, r.target.native_key, r.optional)
            for r in records if isinstance(r, RelationshipRecord)}
    assert rels == {
        (key, "dcim.device:3", False), (key, "dcim.device:4", False),
        ("dcim.device:1", key, True), (key, "dcim.device:1", False),
        ("dcim.device:2", key, True), (key, "dcim.device:2", False),
    }
    stub = [r for r in records if isinstance(r, CIRecord) and r.name == "pp-b"]
    assert [(s.ci_class, s.identifiers.native_key) for s in stub] == [
        ("Hardware", "dcim.device:4")]


def test_a_patch_panel_failure_shows_the_two_cores_losing_each_other(estate: Path) -> None:
    # Act
    panel = impacted(estate, "pp-b")
    core = impacted(estate, "core1")

    # Assert: the path is down, both cores degraded (each lost its peer); a core's failure
    # degrades the other core through the path, not itself
    assert panel == {"core1 xe-0/0/1 - core2 xe-0/0/1": "down", "core1": "degraded",
                     "core2": "degraded"}
    assert core == {"core1 xe-0/0/1 - core2 xe-0/0/1": "down", "core2": "degraded"}


def test_a_direct_cable_between_peers_is_symmetric(tmp_path: Path) -> None:
    # Arrange: a cable between the two cores, no panel
    direct = {**cable(700), "a_terminations": [{"object": term("interfaces", 11, "x", 1, "c1")}],
              "b_terminations": [{"object": term("interfaces", 21, "x", 2, "c2")}]}

    # Act
    records = parse(tmp_path, [*DEVICES[:2], direct])

    # Assert: both ways, optional (either failure degrades the other), marked peer
    rels = [(r.source.native_key, r.target.native_key, r.optional, r.properties.get("peer"))
            for r in records if isinstance(r, RelationshipRecord)]
    assert sorted(rels) == [("dcim.device:1", "dcim.device:2", True, True),
                            ("dcim.device:2", "dcim.device:1", True, True)]


def test_planned_cables_carry_no_impact(tmp_path: Path) -> None:
    # Arrange: a planned cable, and a trace through a planned cable
    planned = {**cable(701, "planned"),
               "a_terminations": [{"object": term("interfaces", 12, "y", 1, "c1")}],
               "b_terminations": [{"object": term("interfaces", 22, "y", 2, "c2")}]}

    # Act
    records = parse(tmp_path, [*DEVICES, planned, trace("planned")])

    # Assert: no relationship and no cable path
    assert [r for r in records if isinstance(r, RelationshipRecord)] == []
    assert not [r for r in records if isinstance(r, CIRecord) and r.ci_class == "CablePath"]
