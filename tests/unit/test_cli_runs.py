"""``cmdb-graph runs list | undo`` on an embedded database with a run interrupted half-way."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.feed import Actor, ActorKind
from cmdb_graph.model import DataSource, ImportRun, RunStatus
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.memory import MemoryStore
from tests.contract.estate import ci, estate_batch, rel

_register()
pytestmark = pytest.mark.usefixtures("wide_tables")

RUN = "run-20261205T101500-abcd1234"
WHO = Actor(ActorKind.IMPORT, "disc", run_id=RUN, source="disc")


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The contract estate, a succeeded run, and a run stored running with part of its
    writes (a CI created, one renamed, a relationship added)."""
    path = tmp_path / "estate.db"
    store = MemoryStore(database_path=path)
    store.apply(estate_batch())
    store.apply(WriteBatch(nodes=[ImportRun(
        run_id="run-ok", source="disc", importer="csv", status=RunStatus.SUCCEEDED,
        started_at=datetime(2026, 12, 4, tzinfo=UTC))]))
    store.apply(WriteBatch(nodes=[DataSource(name="disc"), ImportRun(
        run_id=RUN, source="disc", importer="csv", status=RunStatus.RUNNING,
        started_at=datetime(2026, 12, 5, 10, 15, tzinfo=UTC), feed_from=store.feed_head())],
        actor=WHO))
    store.apply(WriteBatch(nodes=[ci("new1", "Application"), ci("web", name="web by disc")],
                           relationships=[rel("DEPENDS_ON", "new1", "db")], actor=WHO))
    store.close()
    return path


def test_runs_list_shows_the_runs_newest_first(db: Path) -> None:
    out = run("runs", "list", "--db", str(db))

    assert out.index(RUN) < out.index("run-ok")
    assert "running" in out and "succeeded" in out


def test_runs_undo_puts_the_store_back_and_says_what_it_undid(db: Path) -> None:
    # Act
    out = run("runs", "undo", RUN, "--db", str(db))

    # Assert
    assert f"run {RUN} undone: 2 change records: 2 nodes deleted, 1 restored, " \
           "1 relationships removed, 0 restored" in " ".join(out.split())
    store = MemoryStore(database_path=db)
    assert store.get_cis(["new1"]) == {}
    assert store.get_ci("web").name == "web name"
    stored = store.get_node("ImportRun", RUN)
    assert isinstance(stored, ImportRun) and stored.status is RunStatus.FAILED
    assert "writes were undone" in (stored.error or "")
    store.close()
    listed = json.loads(run("runs", "list", "--db", str(db), "--json"))
    assert [r["status"] for r in listed] == ["failed", "succeeded"]

    # Act / Assert: again, nothing more
    again = json.loads(run("runs", "undo", RUN, "--db", str(db), "--json"))
    assert again["already"] is True and again["nodes_deleted"] == 0


def test_runs_undo_refuses_a_succeeded_run_and_an_unknown_one(db: Path) -> None:
    assert "only an interrupted or failed run" in run("runs", "undo", "run-ok", "--db",
                                                      str(db), code=1)
    assert "run-nope" in run("runs", "undo", "run-nope", "--db", str(db), code=1)


def test_runs_list_never_cuts_a_run_id_on_a_narrow_terminal(db: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    # Arrange: an 80-column terminal (the fixture widens tables; undo that)
    from cmdb_graph.cli.query import out as console

    monkeypatch.setattr(console, "width", 80)

    # Act
    out = run("runs", "list", "--db", str(db))

    # Assert: the whole id stands on one line, ready for `runs undo`
    assert RUN in out
