"""README.md's "Using it" commands run as written, in order, on the demo estate they create.

Every ``$ cmdb-graph ...`` line of the section's console block runs in this process (the
console script's app, from the repository root, the store in a temporary file through
``CMDB_DATABASE_PATH``) and must exit 0; ``serve`` (it blocks) and the ``neo4j start`` line
(it needs Java; ``test_cli_neo4j`` covers it) are only checked to be commands the CLI has.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app

_register()

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NOT_RUN = ("serve", "neo4j")


def using_it() -> list[list[str]]:
    """The argument lists of the ``$ cmdb-graph`` lines of the "Using it" console block."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None, "no console block under 'Using it'"
    commands = []
    for line in block.group(1).splitlines():
        command = line.removeprefix("$ ").split("  #", 1)[0].strip()
        if command.startswith('eval "$('):
            command = command.removeprefix('eval "$(').removesuffix(')"')
        words = shlex.split(command)
        assert words[0] == "cmdb-graph", line
        commands.append(words[1:])
    return commands


def test_the_section_covers_the_commands_people_need() -> None:
    names = {words[0] for words in using_it()}

    assert {"demo", "find", "impact", "changes", "conflicts", "incidents", "route", "orphans",
            "map", "licences", "export", "import", "serve"} <= names


def test_every_using_it_command_runs_as_written(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: the repository root (paths in the block are relative to it), a fresh store
    monkeypatch.chdir(ROOT)
    for name in ("CMDB_STORE", "CMDB_NEO4J_URI", "CMDB_REGISTRY_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CMDB_DATABASE_PATH", str(tmp_path / "estate.db"))
    runner = CliRunner()

    for words in using_it():
        # Act
        if words[0] in NOT_RUN:
            result = runner.invoke(app, [*words[:2 if words[0] == "neo4j" else 1], "--help"])
        else:
            result = runner.invoke(app, words)

        # Assert
        assert result.exit_code == 0, f"cmdb-graph {shlex.join(words)}:\n{result.output}"
