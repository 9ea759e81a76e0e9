"""``cmdb-graph changes`` and ``cmdb-graph incidents``: the recorded ITSM records with their
ids, states, times and CIs by name (ids in ``--json``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.synthetic import Estate

_register()
pytestmark = pytest.mark.usefixtures("wide_tables")


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def cells(table: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in table.splitlines():
        parts = [p.strip() for p in line.split("│")[1:-1]]
        if parts and parts[0] == first:
            return parts
    raise AssertionError(f"no row {first!r} in\n{table}")


def test_changes_lists_every_change_by_window_with_ci_names(demo_snapshot: Path,
                                                             demo_estate: Estate) -> None:
    # Act
    table = run("changes", "--db", str(demo_snapshot))
    data = json.loads(run("changes", "--json", "--db", str(demo_snapshot)))

    # Assert: JSON has every change, by window start, with ids
    by_window = sorted(demo_estate.changes, key=lambda c: (c.window_start, c.change_id))
    assert [c["change_id"] for c in data] == [c.change_id for c in by_window]
    kernel = next(c for c in demo_estate.changes if c.title == "Kernel update, first node")
    assert next(c for c in data if c["change_id"] == kernel.change_id)["ci_ids"] == kernel.ci_ids
    # the table: id, title, state, window, CIs by name
    name = {c.ci_id: c.name for c in demo_estate.cis}
    assert f"Changes: {len(demo_estate.changes)}" in table
    assert cells(table, kernel.change_id) == [
        kernel.change_id, "Kernel update, first node", kernel.state.value,
        f"{kernel.window_start:%Y-%m-%d %H:%M} - {kernel.window_end:%Y-%m-%d %H:%M}",
        name[kernel.ci_ids[0]]]


def test_changes_filters_by_state_and_ci(demo_snapshot: Path, demo_estate: Estate) -> None:
    # Arrange
    db = next(c for c in demo_estate.cis if c.name == "pay-db-0001")

    # Act
    closed = json.loads(run("changes", "--state", "closed", "--state", "assess", "--json",
                            "--db", str(demo_snapshot)))
    on_db = json.loads(run("changes", "--ci", "pay-db-0001", "--json", "--db",
                           str(demo_snapshot)))

    # Assert
    assert {c["change_id"] for c in closed} == {
        c.change_id for c in demo_estate.changes if c.state in ("closed", "assess")}
    assert {c["change_id"] for c in on_db} == {
        c.change_id for c in demo_estate.changes if db.ci_id in c.ci_ids} != set()


def test_a_listed_change_id_works_with_conflicts(demo_snapshot: Path) -> None:
    # Act
    data = json.loads(run("changes", "--json", "--db", str(demo_snapshot)))
    kernel = next(c for c in data if c["title"] == "Kernel update, first node")
    found = json.loads(run("conflicts", kernel["change_id"], "--json", "--db",
                           str(demo_snapshot)))

    # Assert
    assert found["change"]["change_id"] == kernel["change_id"]
    assert [c["kind"] for c in found["conflicts"]] == ["redundancy_combined"]


def test_incidents_lists_newest_first_with_names_and_groups(demo_snapshot: Path,
                                                            demo_estate: Estate) -> None:
    # Act
    table = run("incidents", "--db", str(demo_snapshot))
    data = json.loads(run("incidents", "--json", "--db", str(demo_snapshot)))

    # Assert
    newest = sorted(demo_estate.incidents, key=lambda i: i.opened_at, reverse=True)
    assert [i["incident_id"] for i in data] == [i.incident_id for i in newest]
    first = newest[0]
    name = {c.ci_id: c.name for c in demo_estate.cis}
    group = {g.group_id: g.name for g in demo_estate.groups}
    assert cells(table, first.incident_id) == [
        first.incident_id, first.title, first.state.value, str(first.priority),
        f"{first.opened_at:%Y-%m-%d %H:%M}", name[first.ci_ids[0]],
        group[str(first.support_group)]]


def test_incidents_open_state_and_ci_filters(demo_snapshot: Path, demo_estate: Estate) -> None:
    # Act
    open_ = json.loads(run("incidents", "--open", "--json", "--db", str(demo_snapshot)))
    new = json.loads(run("incidents", "--state", "new", "--json", "--db", str(demo_snapshot)))
    on_db = json.loads(run("incidents", "--ci", "pay-db-0001", "--json", "--db",
                           str(demo_snapshot)))

    # Assert
    assert {i["incident_id"] for i in open_} == {
        i.incident_id for i in demo_estate.incidents if i.state not in ("resolved", "closed")}
    assert len(open_) < len(demo_estate.incidents)
    assert {i["state"] for i in new} == {"new"}
    db = next(c for c in demo_estate.cis if c.name == "pay-db-0001")
    assert [i["ci_ids"] for i in on_db] == [[db.ci_id]]
