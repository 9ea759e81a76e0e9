"""`cmdb-graph neo4j`: exports for tests and settings; status without a server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from cmdb_graph import devserver
from cmdb_graph.cli import app, commands  # noqa: F401  (registers the commands)
from cmdb_graph.cli.neo4j import _exports
from cmdb_graph.settings import Settings


def test_exports_switch_cmdb_graph_to_the_started_server(tmp_path: Path) -> None:
    info = devserver.ServerInfo(
        uri="bolt://127.0.0.1:7999", user="neo4j", password="p'w d", pid=1, home=tmp_path
    )

    script = _exports(info) + 'env | grep -E "^(CMDB_|NEO4J_)" | sort\n'
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout

    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["NEO4J_URI"] == env["CMDB_NEO4J_URI"] == "bolt://127.0.0.1:7999"
    assert env["CMDB_NEO4J_PASSWORD"] == "p'w d"
    settings = Settings(
        neo4j_uri=env["CMDB_NEO4J_URI"], store=env["CMDB_STORE"]  # type: ignore[arg-type]
    )
    assert settings.store == "neo4j"


def test_status_without_a_server_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["neo4j", "status", "--home", str(tmp_path / "none")])

    assert result.exit_code == 3
    assert "No Neo4j is running" in result.output
