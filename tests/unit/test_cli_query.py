"""``cmdb-graph impact | conflicts | route | orphans | map | export`` on a demo snapshot: ids in
``--json``, names in the tables."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.model import ConfigurationItem, Relationship
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import Estate

PAY_DB = "ci-0000041"
PAYMENTS = "ci-0000039"

_register()
pytestmark = pytest.mark.usefixtures("wide_tables")


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_impact_json_lists_services_with_paths(demo_snapshot: Path) -> None:
    # Act
    out = json.loads(run("impact", PAY_DB, "--services-only", "--json", "--db",
                         str(demo_snapshot)))

    # Assert
    payments = next(c for c in out["impacted"] if c["ci_id"] == PAYMENTS)
    assert payments["status"] == "down"
    assert payments["paths"][0][0] == PAY_DB and payments["paths"][0][-1] == PAYMENTS
    assert out["summary"]["most_critical_service"] == PAYMENTS


def test_impact_table_names_the_services_and_the_path(demo_snapshot: Path) -> None:
    out = run("impact", "--change", "CHG0001004", "--services-only", "--db",
              str(demo_snapshot))

    assert "Impact of pay-db-0001:" in out
    payments = next(line for line in out.splitlines()
                    if line.count("│") > 3 and line.split("│")[3].strip() == "Payments")
    assert "pay-db-0001 -> Payments API -> Payments" in payments
    assert "ci-00" not in out  # names, not ids


def test_impact_by_name_equals_impact_by_id(demo_snapshot: Path) -> None:
    # Act
    by_id = json.loads(run("impact", PAY_DB, "--json", "--db", str(demo_snapshot)))
    by_name = json.loads(run("impact", "pay-db-0001", "--json", "--db", str(demo_snapshot)))

    # Assert
    assert by_name == by_id
    assert by_id["changed"] == [PAY_DB]


def test_conflicts_of_recorded_and_proposed_changes(demo_snapshot: Path) -> None:
    # Act
    recorded = json.loads(run("conflicts", "CHG0001002", "--json", "--db",
                              str(demo_snapshot)))
    proposed = json.loads(run("conflicts", "--ci", PAY_DB, "--start", "2026-01-27T00:00",
                              "--end", "2026-01-27T02:00", "--json", "--db",
                              str(demo_snapshot)))

    # Assert
    assert [(c["kind"], c["other_change_id"]) for c in recorded["conflicts"]] == [
        ("redundancy_combined", "CHG0001003")
    ]
    assert {(c["kind"], c["window_id"]) for c in proposed["conflicts"]} >= {("blackout",
                                                                            "WIN0003")}


def test_conflicts_table_names_changes_windows_and_cis(demo_snapshot: Path) -> None:
    # Act
    recorded = run("conflicts", "CHG0001002", "--db", str(demo_snapshot))
    proposed = run("conflicts", "--ci", "pay-db-0001", "--start", "2026-01-27T00:00", "--end",
                   "2026-01-27T02:00", "--db", str(demo_snapshot))

    # Assert
    assert "Conflicts of CHG0001002 (Kernel update, first node) on vm-fra1-pay-001 " in recorded
    row = next(line for line in recorded.splitlines() if "redundancy_combined" in line)
    assert "CHG0001003 (Kernel update, second node)" in row and "cl-fra1-pay-import" in row
    assert "services: Payments, Payments API" in " ".join(recorded.split())
    assert "Conflicts of the proposed change on pay-db-0001 " in proposed
    assert "Quarter-end close freeze" in proposed
    assert "ci-00" not in recorded + proposed


def test_route_without_own_group_names_the_path(demo_snapshot: Path,
                                                 demo_estate: Estate) -> None:
    # Arrange: generated CIs without a support group
    orphan = next(c.ci_id for c in demo_estate.cis if not c.support_group)

    # Act
    out = json.loads(run("route", orphan, "--json", "--db", str(demo_snapshot)))
    table = run("route", orphan, "--db", str(demo_snapshot))

    # Assert: ids in JSON, names in the table
    name = {c.ci_id: c.name for c in demo_estate.cis}
    group = {g.group_id: g for g in demo_estate.groups}[out["support_group"]]
    assert out["path"][0] == orphan and out["routed_via"] != orphan
    assert out["group"]["name"] == group.name and out["group"]["email"] == group.email
    assert f"An incident on {name[orphan]} goes to {group.name}" in table
    assert f"contact: {group.email}, on call " in table
    assert f"why: {name[orphan]} has no support group; routed to the group of " \
           f"{name[out['routed_via']]}" in table
    assert "path: " + " -> ".join(name[c] for c in out["path"]) in table


def test_orphans_runs_the_orphan_reports(demo_snapshot: Path) -> None:
    out = json.loads(run("orphans", "--now", "2026-01-01T00:00:00Z", "--json", "--db",
                         str(demo_snapshot)))

    assert set(out) == {"retired_assets_in_use", "unmanaged_cis",
                         "assets_unseen_by_discovery", "cis_without_support_or_owner",
                        "entitlements_on_retired"}
    assert len(out["retired_assets_in_use"]["findings"]) >= 1


def test_orphans_takes_reports_as_arguments(demo_snapshot: Path, demo_estate: Estate) -> None:
    # Act
    out = json.loads(run("orphans", "stale_cis", "duplicate_candidates", "--now",
                         "2026-01-01T00:00:00Z", "--json", "--db", str(demo_snapshot)))
    table = run("orphans", "stale_cis", "--now", "2026-01-01T00:00:00Z", "--db",
                str(demo_snapshot))

    # Assert
    assert set(out) == {"stale_cis", "duplicate_candidates"}
    stale = out["stale_cis"]["findings"][0]
    name = {c.ci_id: c.name for c in demo_estate.cis}[stale["ci_id"]]
    assert f"│ {name} " in table and stale["ci_id"] not in table


def test_orphans_table_names_the_ci_of_ci_rows(demo_snapshot: Path,
                                               demo_estate: Estate) -> None:
    # Act
    out = json.loads(run("orphans", "cis_without_support_or_owner", "--now",
                         "2026-01-01T00:00:00Z", "--json", "--db", str(demo_snapshot)))
    table = run("orphans", "cis_without_support_or_owner", "--now", "2026-01-01T00:00:00Z",
                "--limit", "1000", "--db", str(demo_snapshot))

    # Assert: a kind=ci row shows the CI's name in the CI column too
    first = out["cis_without_support_or_owner"]["findings"][0]
    assert first["subject_kind"] == "ci" and first["subject"] == first["ci_id"]
    name = {c.ci_id: c.name for c in demo_estate.cis}[first["ci_id"]]
    row = next(line for line in table.splitlines() if line.startswith(f"│ {name} "))
    assert [c.strip() for c in row.split("│")[1:4]] == [name, "ci", name]


def test_orphans_rejects_an_unknown_report(demo_snapshot: Path) -> None:
    result = CliRunner().invoke(app, ["orphans", "nope", "--db", str(demo_snapshot)])

    assert result.exit_code == 2
    assert "unknown report(s) nope" in result.output


def test_map_lists_layers_and_single_points_of_failure(demo_snapshot: Path) -> None:
    out = json.loads(run("map", PAYMENTS, "--json", "--db", str(demo_snapshot)))
    table = run("map", "Payments", "--db", str(demo_snapshot))

    assert out["service_map"]["layers"][0]["ci_ids"] == [PAYMENTS]
    spof = [p["ci_id"] for p in out["single_points_of_failure"]]
    assert PAY_DB in spof and "ci-0000047" not in spof
    assert "Service map of Payments [BusinessService]" in table
    assert "pay-db-0001 [Database]" in table
    assert "Payments -> Payments API -> pay-db-0001" in table
    assert "ci-00" not in table


def test_unknown_ci_is_a_clear_error(demo_snapshot: Path) -> None:
    result = CliRunner().invoke(app, ["route", "ci-nope", "--db", str(demo_snapshot)])

    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no CI matches 'ci-nope' (by ci_id, name or " \
                                    "identifier)"


def test_impact_of_nothing_says_what_to_name(demo_snapshot: Path) -> None:
    result = CliRunner().invoke(app, ["impact", "--db", str(demo_snapshot)])

    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        "error: name the CIs under change (CI...) or a recorded change (--change ID); "
        "`cmdb-graph changes` lists them")


def test_export_graphml_round_trips_the_whole_estate(demo_snapshot: Path, tmp_path: Path,
                                                      demo_estate: Estate) -> None:
    # Arrange
    target = tmp_path / "estate.graphml"

    # Act
    run("export", "--format", "graphml", "-o", str(target), "--db", str(demo_snapshot))

    # Assert
    graph = nx.read_graphml(target)
    assert graph.number_of_nodes() == 1000
    assert graph.nodes[PAYMENTS]["name"] == "Payments"
    assert graph.number_of_edges() == len(demo_estate.relationships)


def test_graphml_of_values_with_control_characters_parses_without_them() -> None:
    # Arrange: values XML cannot hold (stored by a write that did not pass an importer)
    from cmdb_graph.cli.render import render_graphml

    graph = nx.MultiDiGraph()
    graph.add_node("ci-1", name="bad\x01name\x00", tags=["a\x0bb"], description="tab\tok")

    # Act
    parsed = nx.parse_graphml(render_graphml(graph))

    # Assert
    assert parsed.nodes["ci-1"]["name"] == "badname"
    assert json.loads(parsed.nodes["ci-1"]["tags"]) == ["a\x0bb"]  # escaped in JSON text
    assert parsed.nodes["ci-1"]["description"] == "tab\tok"


def test_export_neighbourhood_as_mermaid_dot_and_json(demo_snapshot: Path) -> None:
    # Act
    mermaid = run("export", "--format", "mermaid", "--around", "pay-db-0001", "--depth", "1",
                  "--db", str(demo_snapshot))
    dot = run("export", "--format", "dot", "--around", PAY_DB, "--depth", "1", "--db",
              str(demo_snapshot))
    data = json.loads(run("export", "--format", "json", "--around", PAY_DB, "--depth", "1",
                          "--db", str(demo_snapshot)))

    # Assert
    ids = {n["ci_id"] for n in data["nodes"]}
    assert PAY_DB in ids and "ci-0000040" in ids  # the Payments API depends on it
    assert all({r["source"], r["target"]} <= ids for r in data["relationships"])
    assert mermaid.startswith("flowchart LR\n")
    assert mermaid.count("-->") + mermaid.count("-.->") == len(data["relationships"])
    assert dot.startswith("digraph cmdb {")
    assert f'"{PAY_DB}" [label="pay-db-0001 (Database)"]' in dot
    assert dot.count(" -> ") == len(data["relationships"])


def test_impact_table_marks_cis_not_in_service(tmp_path: Path) -> None:
    # Arrange: a retired and an in-service business service on one server
    path = tmp_path / "estate.db"
    store = MemoryStore(database_path=path)
    store.upsert_nodes([
        ConfigurationItem(ci_id="srv", name="srv-01", ci_class="Server"),
        ConfigurationItem(ci_id="shop", name="Shop", ci_class="BusinessService"),
        ConfigurationItem(ci_id="old", name="Old shop", ci_class="BusinessService",
                          operational_status="retired"),
    ])
    store.upsert_relationships([
        Relationship(rel_type="RUNS_ON", source="shop", target="srv"),
        Relationship(rel_type="RUNS_ON", source="old", target="srv"),
    ])
    store.close()

    # Act
    out = run("impact", "srv-01", "--db", str(path))

    # Assert
    assert "Impact of srv-01: 2 CI(s), 1 service(s), 1 not in service" in out
    old = next(line for line in out.splitlines() if "Old shop" in line)
    assert "down (not in service: retired)" in old
    shop = next(line for line in out.splitlines() if "│ Shop" in line)
    assert "not in service" not in shop
