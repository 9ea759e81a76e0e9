"""Schedules in the server process, the sources file, and the sync command."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.connectors.config import load_sources
from cmdb_graph.connectors.schedule import start_schedules
from cmdb_graph.errors import ConfigurationError
from cmdb_graph.model import ImportRun, RunStatus
from cmdb_graph.store import iter_nodes
from cmdb_graph.store.memory import MemoryStore
from tests.helpers.standin import StandIn, serve
from tests.unit.connectors.scenarios import SCENARIOS, TOKEN

_register()

SOURCES = """
sources:
  netbox-dc1:
    kind: netbox
    url: {url}
    auth: {{type: token, token: env:NETBOX_TOKEN}}
    priority: 60
    mode: {mode}
    schedule: "{schedule}"
    page_size: 2
    retry: {{attempts: 2, wait_initial: 0, wait_max: 0, wait_jitter: 0, max_retry_after: 0}}
"""


@pytest.fixture
def netbox() -> StandIn:
    with serve(StandIn()) as standin:
        standin.auth = f"Token {TOKEN}"
        SCENARIOS["netbox"].setup(standin)
        yield standin


def _file(tmp_path: Path, url: str, *, mode: str = "full",
          schedule: str = "* * * * * *") -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCES.format(url=url, mode=mode, schedule=schedule), encoding="utf-8")
    return path


def test_a_scheduled_sync_runs_twice_and_the_second_run_changes_nothing(
        netbox: StandIn, tmp_path: Path, memory_store: MemoryStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: every second, as `serve --schedule` starts it
    monkeypatch.setenv("NETBOX_TOKEN", TOKEN)
    sources = load_sources(_file(tmp_path, netbox.url))

    # Act
    scheduler = start_schedules(memory_store, sources)
    try:
        deadline = time.monotonic() + 20
        runs: list[ImportRun] = []
        while time.monotonic() < deadline and len(runs) < 2:
            time.sleep(0.2)
            runs = [r for r in iter_nodes(memory_store, "ImportRun")
                    if isinstance(r, ImportRun) and r.status is RunStatus.SUCCEEDED]
    finally:
        scheduler.shutdown(wait=True)

    # Assert
    assert len(runs) >= 2
    first, second = sorted(runs, key=lambda r: r.started_at)[:2]
    assert first.counts["created"] > 0
    assert second.counts["created"] == 0 and second.counts["updated"] == 0
    assert second.counts["unchanged"] > 0


def test_sources_file_mistakes_are_one_line_each(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: a literal token, an unknown kind, a bad cron line, a missing variable
    monkeypatch.delenv("MISSING_VAR", raising=False)
    path = tmp_path / "sources.yaml"
    path.write_text("""
sources:
  a: {kind: netbox, url: "https://nb.example.com", auth: {type: token, token: abc123secret}}
  b: {kind: nosuch, url: "https://x.example.com"}
  c: {kind: glpi, url: "https://g.example.com", schedule: "every day"}
  d: {kind: jsm-assets, url: "https://j.example.com", auth: {type: token, token: env:MISSING_VAR}}
""", encoding="utf-8")

    # Act
    with pytest.raises(ConfigurationError) as caught:
        load_sources(path)

    # Assert
    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert any("sources.a.auth.token" in ln and "env:VARIABLE or file:PATH" in ln
               for ln in lines)
    assert any("sources.b.kind" in ln and "unknown connector kind" in ln for ln in lines)
    assert any("sources.c.schedule" in ln for ln in lines)
    assert any("MISSING_VAR is not set" in ln for ln in lines)
    assert "abc123secret" not in str(caught.value)


def test_a_secrets_file_is_read_and_never_printed(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-secret-1234\n", encoding="utf-8")
    path = tmp_path / "sources.yaml"
    path.write_text("""
sources:
  nb: {kind: netbox, url: "https://nb.example.com", auth: {type: token, token: "file:token"}}
""", encoding="utf-8")
    sources = load_sources(path)
    token = sources.source("nb").auth.token
    assert token is not None and token.get_secret_value() == "file-secret-1234"
    assert "file-secret-1234" not in repr(sources)


def test_sync_command_prints_progress_and_the_run(
        netbox: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.setenv("NETBOX_TOKEN", TOKEN)
    path = _file(tmp_path, netbox.url, mode="delta")

    # Act
    first = CliRunner().invoke(app, ["sync", "--all", "--sources", str(path),
                                     "--db", str(tmp_path / "s.db")])
    wrong = CliRunner().invoke(app, ["sync", "netbox-dc1", "--sources", str(path),
                                     "--db", str(tmp_path / "s.db")],
                               env={"NETBOX_TOKEN": "not-the-token"})

    # Assert
    assert first.exit_code == 0, first.stderr
    assert "netbox-dc1 devices: page 1" in first.stderr and "page 2" in first.stderr
    assert "source netbox-dc1 (delta)" in first.stdout
    assert wrong.exit_code == 1
    assert wrong.stderr.count("\n") == 1 or "401" in wrong.stderr
    assert "not-the-token" not in wrong.stderr + wrong.stdout


def test_serve_schedule_refuses_a_bad_sources_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("sources: {a: {kind: nosuch, url: 'https://x.example.com'}}\n")
    result = CliRunner().invoke(app, ["serve", "--schedule", str(path), "--port", "0"])
    assert result.exit_code == 2
    assert "unknown connector kind" in result.stderr
