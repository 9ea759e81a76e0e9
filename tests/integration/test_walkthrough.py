"""docs/walkthrough.md, executed against Neo4j: the document is the test's source.

How the document is read
------------------------
* Only fenced blocks whose info string is ``console`` run. Other blocks (``sh``, ``text``,
  ``graphql``, ...) are shown to the reader and never run.
* In a ``console`` block a line starting with ``$ `` is a command; a command whose line ends
  with a backslash continues on the next line. Every other line, up to the next command, is
  that command's expected output.
* The commands run in order in ONE bash (so ``export``, shell functions and background jobs
  carry over), from the repository root, with ``.venv/bin`` first on ``PATH``, stderr merged
  into stdout. Every command must exit 0.

How output is checked
---------------------
Each expected output line must appear in the command's real output, in the order shown (other
real lines may come between: the document trims long output and says so). A line that is
exactly ``...`` only marks a cut and is not compared. Before comparing, both sides are
normalised: runs of whitespace become one space (table padding and JSON indentation do not
matter), and these volatile values become placeholders:

* import run ids ``run-20261129T144415-58ce708d`` -> ``run-<ID>``
* local ports ``127.0.0.1:36909`` -> ``127.0.0.1:<PORT>``
* times of day printed with seconds ``14:44:15`` -> ``<TIME>`` (first/last seen, run starts)
* dates, with the time of day when one follows (``2026-11-29``, ``2026-11-29 14:44:15``,
  ``2026-11-29T14:44:15.123456+00:00``) -> ``<DATE>`` (history rows, ``--as-of`` titles)

Substitutions the test makes (and only these)
---------------------------------------------
* ``eval "$(cmdb-graph neo4j start)"`` is replaced by exports that point at the Neo4j server
  of the test environment (``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD`` from
  ``scripts/test``, mapped to ``CMDB_STORE=neo4j`` and ``CMDB_NEO4J_*``); no second Neo4j is
  started. ``cmdb-graph neo4j stop`` is skipped. The test empties that database first.
* The API port ``8000`` in ``127.0.0.1:8000`` and ``--port 8000`` becomes a free port.
* ``COLUMNS=200`` is set, so that rich tables and messages are not wrapped by width.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cmdb_graph.settings import Settings
from cmdb_graph.store.factory import open_store

pytestmark = pytest.mark.neo4j

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "walkthrough.md"
REALDATA = ROOT / ".." / "shared" / "realdata"

NEO4J_START = 'eval "$(cmdb-graph neo4j start)"'
NEO4J_STOP = "cmdb-graph neo4j stop"

_VOLATILE = [
    (re.compile(r"run-\d{8}T\d{6}-[0-9a-f]{8}"), "run-<ID>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
                r"(?:Z|[+-]\d{2}:\d{2})?"), "<DATE>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<PORT>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b"), "<TIME>"),
]


@dataclass
class Step:
    """One ``$`` command of the document and the output lines it shows."""

    line: int
    command: str
    expected: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    """One line with volatile values replaced and whitespace collapsed."""
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def parse(markdown: str) -> list[Step]:
    """The steps of every ``console`` block, in document order."""
    steps: list[Step] = []
    in_console = False
    in_other = False
    pending: Step | None = None  # a command still continued by a trailing backslash
    for number, raw in enumerate(markdown.splitlines(), start=1):
        fence = raw.strip()
        if fence.startswith("```"):
            if in_console or in_other:
                in_console = in_other = False
                pending = None
            elif fence[3:].strip().split(" ")[0] == "console":
                in_console = True
            else:
                in_other = True
            continue
        if not in_console:
            continue
        if pending is not None:
            pending.command += "\n" + raw
            if not raw.endswith("\\"):
                pending = None
            continue
        if raw.startswith("$ "):
            step = Step(line=number, command=raw[2:])
            steps.append(step)
            if raw.endswith("\\"):
                pending = step
        elif steps and raw.strip() and raw.strip() != "...":
            steps[-1].expected.append(raw)
    return steps


def missing_lines(expected: list[str], actual: str) -> list[str]:
    """Expected lines not found in ``actual`` in order (empty when all are there)."""
    lines = [normalise(a) for a in actual.splitlines()]
    at = 0
    for i, want in enumerate(expected):
        norm = normalise(want)
        while at < len(lines) and lines[at] != norm:
            at += 1
        if at == len(lines):
            return expected[i:]
        at += 1
    return []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script(steps: list[Step], port: int, marker: str) -> str:
    """One bash script: every step between markers that carry its index and exit code."""
    parts = ["exec 2>&1", "trap 'kill $(jobs -p) 2>/dev/null' EXIT"]
    for index, step in enumerate(steps):
        command = step.command
        if command.strip() == NEO4J_START:
            command = ('export CMDB_STORE=neo4j CMDB_NEO4J_URI="$NEO4J_URI" '
                       'CMDB_NEO4J_USER="${NEO4J_USER:-neo4j}" '
                       'CMDB_NEO4J_PASSWORD="${NEO4J_PASSWORD:-}"')
        elif command.strip() == NEO4J_STOP:
            command = ":"
        command = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        command = command.replace("--port 8000", f"--port {port}")
        parts.append(f"echo '{marker} start {index}'")
        parts.append(command)
        parts.append(f"echo \"{marker} end {index} $?\"")
    return "\n".join(parts) + "\n"


def run_steps(steps: list[Step], env: dict[str, str]) -> dict[int, tuple[int, str]]:
    """Run the steps in one bash; index -> (exit code, output)."""
    marker = f"@@walkthrough-{uuid.uuid4().hex}@@"
    proc = subprocess.run(
        ["bash", "-c", _script(steps, _free_port(), marker)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    results: dict[int, tuple[int, str]] = {}
    current: int | None = None
    buffer: list[str] = []
    for line in proc.stdout.splitlines():
        if line.startswith(f"{marker} start "):
            current, buffer = int(line.split()[-1]), []
        elif line.startswith(f"{marker} end ") and current is not None:
            results[current] = (int(line.split()[-1]), "\n".join(buffer))
            current = None
        elif current is not None:
            buffer.append(line)
    if current is not None:  # the script died inside a step
        results[current] = (-1, "\n".join(buffer) + f"\n[bash exited {proc.returncode}]")
    return results


def test_parse_reads_commands_continuations_and_expected_lines() -> None:
    # Arrange
    doc = "\n".join([
        "```sh", "$ not run", "```",
        "```console", "$ echo a \\", "  b", "a b", "...", "$ true", "```",
    ])

    # Act
    steps = parse(doc)

    # Assert
    assert [(s.command, s.expected) for s in steps] == [("echo a \\\n  b", ["a b"]),
                                                        ("true", [])]


def test_missing_lines_keeps_order_and_normalises() -> None:
    # Arrange
    actual = "x\nImport run-20261129T144415-58ce708d: ok\n│ CI  │  12 │\nGET 127.0.0.1:4321"

    # Act / Assert
    assert missing_lines(["Import run-20261201T000000-00000000: ok", "│ CI │ 12 │"], actual) == []
    assert missing_lines(["│ CI │ 12 │", "Import run-20261201T000000-00000000: ok"],
                         actual) == ["Import run-20261201T000000-00000000: ok"]


def test_walkthrough_runs_as_documented(neo4j_env: object) -> None:
    # Arrange: the realdata beside the clone, an empty database, the environment of a reader
    if not REALDATA.is_dir():
        pytest.fail(f"{REALDATA} is missing: the walkthrough imports the shared real data")
    steps = parse(DOC.read_text(encoding="utf-8"))
    assert any(s.command.strip() == NEO4J_START for s in steps)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMDB_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    env["NO_COLOR"] = "1"
    settings = Settings(store="neo4j", neo4j_uri=os.environ["NEO4J_URI"],
                        neo4j_user=os.environ.get("NEO4J_USER", "neo4j"),
                        neo4j_password=os.environ.get("NEO4J_PASSWORD", ""))
    store = open_store(settings)
    try:
        store.clear()
    finally:
        store.close()

    # Act
    results = run_steps(steps, env)

    # Assert: every step ran, exited 0 and printed what the document shows
    problems: list[str] = []
    for index, step in enumerate(steps):
        if index not in results:
            problems.append(f"docs/walkthrough.md:{step.line}: did not run: {step.command}")
            break
        code, output = results[index]
        if code != 0:
            problems.append(f"docs/walkthrough.md:{step.line}: exit {code}: {step.command}\n"
                            f"{output[-2000:]}")
            break
        missing = missing_lines(step.expected, output)
        if missing:
            problems.append(f"docs/walkthrough.md:{step.line}: {step.command}\n"
                            f"  expected line not found (in order): {missing[0]!r}\n"
                            f"  real output:\n{output[-3000:]}")
    assert not problems, "\n\n".join(problems)
