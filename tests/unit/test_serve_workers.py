"""``cmdb-graph serve --workers N``: several worker processes only on Neo4j."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import app
from cmdb_graph.cli.serve import check_workers
from cmdb_graph.errors import ConfigurationError
from cmdb_graph.settings import Settings


def test_the_embedded_store_refuses_several_workers(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--workers", "2", "--snapshot", str(tmp_path / "e.snapshot")])

    assert result.exit_code == 2
    assert "single-process" in result.output
    assert not (tmp_path / "e.snapshot").exists()


def test_one_worker_is_always_fine_and_neo4j_takes_several() -> None:
    check_workers(Settings(store="memory"), 1, None)
    check_workers(Settings(store="neo4j", neo4j_uri="bolt://127.0.0.1:7687"), 4, None)


def test_schedules_run_in_one_process_only(tmp_path: Path) -> None:
    neo = Settings(store="neo4j", neo4j_uri="bolt://127.0.0.1:7687")

    with pytest.raises(ConfigurationError, match="each would run them"):
        check_workers(neo, 2, tmp_path / "sources.yaml")
    with pytest.raises(ConfigurationError, match="at least 1"):
        check_workers(neo, 0, None)


def test_a_port_in_use_ends_the_start_with_one_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, [
            "serve", "--host", "127.0.0.1", "--port", str(port),
            "--snapshot", str(tmp_path / "e.snapshot")])

    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert "Serving" not in result.output
    assert result.output.count("error") == 1
    assert not (tmp_path / "e.snapshot").exists()


def test_serve_help_says_who_may_read_metrics() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "2000"})

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Prometheus metrics at /metrics" in text
    assert ("with API keys (CMDB_API_KEYS) any valid key (401 without one), or anyone when "
            "CMDB_METRICS_PUBLIC=true") in text
