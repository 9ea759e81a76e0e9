"""``cmdb-graph licences``: the licence position of a snapshot, as a table or ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.store.memory import MemoryStore
from tests.contract.test_licence_position import seed

_register()


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "estate.db"
    store = MemoryStore(database_path=path)
    store.apply(seed())
    store.close()
    return path


def test_licences_json_gives_the_position(snapshot: Path) -> None:
    # Act
    result = CliRunner().invoke(app, ["licences", "--as-of", "2026-01-15", "--json",
                                      "--db", str(snapshot)])

    # Assert
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["as_of"] == "2026-01-15"
    assert [(p["product_id"], p["shortfall"]) for p in out["under_licensed"]] == [
        ("editor", 1), ("viewer", 1)
    ]
    assert [(p["product_id"], p["unused_seats"]) for p in out["over_licensed"]] == [
        ("db", 3), ("ghost", 1)
    ]
    assert out["unattributed_entitlements"] == ["E-none"]


def test_licences_table_with_problems_only(snapshot: Path) -> None:
    # Act
    result = CliRunner().invoke(app, ["licences", "--as-of", "2026-01-15", "--problems",
                                      "--db", str(snapshot)])

    # Assert
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "5 product(s), 2 under-licensed, 2 over-licensed" in out
    cells = {tuple(c.strip() for c in line.split("│")[1:-1]) for line in out.splitlines()
             if line.startswith("│")}
    assert ("Editor (Acme)", "under_licensed", "2", "3", "1", "0", "") in cells
    assert ("Database (Dbco)", "over_licensed", "5", "2", "0", "3", "E-db0") in cells
    assert "Idle tool" not in out  # compliant: left out with --problems
    assert "entitlements naming no product: E-none" in out


def test_licences_rejects_a_bad_day(snapshot: Path) -> None:
    # Act
    result = CliRunner().invoke(app, ["licences", "--as-of", "15/01/2026", "--db",
                                      str(snapshot)])

    # Assert
    assert result.exit_code == 2
    assert "--as-of: not an ISO 8601 date" in result.output


def test_problems_leave_out_windows_updates(tmp_path: Path) -> None:
    # Arrange: a GLPI agent inventory with a paid product, Windows updates (one marked by its
    # release type, one by its name) and an open-source library from an SBOM-like record
    inventory = {
        "deviceid": "pc1-2026", "action": "inventory", "itemtype": "Computer",
        "content": {
            "hardware": {"name": "pc1", "uuid": "4c4c4544-0000-0000-0000-000000000001"},
            "softwares": [
                {"name": "Editor", "publisher": "Acme", "version": "4.2"},
                {"name": "KB4019215", "from": "WMI", "release_type": "Security Update"},
                {"name": "Update for Microsoft Office 2010 (KB2553140) 64-Bit Edition",
                 "publisher": "Microsoft", "from": "registry"},
            ],
        },
    }
    source = tmp_path / "pc1.json"
    source.write_text(json.dumps(inventory), encoding="utf-8")
    db = str(tmp_path / "estate.db")
    runner = CliRunner()
    imported = runner.invoke(app, ["import", "glpi", str(source), "--source", "glpi",
                                   "--db", db])
    assert imported.exit_code == 0, imported.output

    # Act
    table = runner.invoke(app, ["licences", "--problems", "--db", db])
    data = json.loads(runner.invoke(app, ["licences", "--json", "--db", db]).stdout)

    # Assert: only the paid product is short of a seat; the updates need no licence
    assert table.exit_code == 0, table.output
    assert "3 product(s), 1 under-licensed, 0 over-licensed, 2 need no licence" in table.stdout
    assert "Editor (Acme)" in table.stdout and "KB" not in table.stdout
    assert [p["name"] for p in data["under_licensed"]] == ["Editor"]
    free = {p["name"]: p["no_licence_reason"] for p in data["products"]
            if p["status"] == "not_required"}
    assert free == {
        "KB4019215": "a Windows update (KB4019215)",
        "Update for Microsoft Office 2010 (KB2553140) 64-Bit Edition":
            "a Windows update (Update for Microsoft Office 2010 (KB2553140) 64-Bit Edition)",
    }
