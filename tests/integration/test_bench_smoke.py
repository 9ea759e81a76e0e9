"""Smoke test: ``python -m bench run --scale tiny --quick`` gives the same answers.

Runs the bench as a subprocess against the test Neo4j (``NEO4J_URI``), at the tiny scale with
few samples. It asserts only that every "same answers" check passed (import counts equal to
the plain loader's, impacted sets equal across the engine, Cypher, networkx and scipy, GraphQL
answers equal to networkx) and that the results files were written; no timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmdb_graph.store.base import GraphStore

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.neo4j
def test_bench_tiny_gives_the_same_answers(neo4j_store: GraphStore, tmp_path: Path) -> None:
    # Arrange: the fixture skips without NEO4J_URI (fails with CMDB_REQUIRE_NEO4J=1) and hands
    # over an empty database; the bench clears it again when done
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    # Act
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--scale", "tiny", "--quick", "--clear-neo4j",
         "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )

    # Assert
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "tiny.json").read_text())
    failed = [c for c in res["checks"] if not c["ok"]]
    assert failed == []
    names = {c["name"].split(":")[0] for c in res["checks"]}
    assert any(n.startswith("import") for n in names)
    assert any(n.startswith("impact core") for n in names)
    assert any(n.startswith("graphql neo4j") for n in names)
    assert res["same_answers"] is True
    assert "| check | result |" in (out / "tiny.md").read_text()


@pytest.mark.slow
def test_bench_ui_quick_draws_what_it_asked_for(tmp_path: Path) -> None:
    """``python -m bench.ui --quick``: a 50-CI map in headless Chromium (no timing asserted)."""
    from bench.browser import have_chromium

    if not have_chromium():
        if os.environ.get("CMDB_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium and playwright are needed", pytrace=False)
        pytest.skip("chromium and playwright are needed")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    # Act
    proc = subprocess.run(
        [sys.executable, "-m", "bench.ui", "--quick", "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )

    # Assert: it exits 1 when the map did not draw the CIs asked for
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "ui.json").read_text())
    assert [r["nodes"] for r in res["results"]] == [50]
    assert "| 50 |" in (tmp_path / "ui.md").read_text()
