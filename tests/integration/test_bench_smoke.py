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
from typing import Any

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


def _mixed_smoke(store: str, out: Path) -> dict[str, Any]:
    """``python -m bench mixed --smoke``: 2,000 CIs, 5 s without writes, 5 s under the stream."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "mixed", "--smoke", "--store", store, "--clear-neo4j",
         "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res: dict[str, Any] = json.loads((out / f"mixed-{store}-2k.json").read_text())
    return res


def _assert_clean(res: dict[str, Any]) -> None:
    """Zero errors and zero read-your-writes violations, with every kind of write checked."""
    assert res["errors_total"] == 0, res["writes"]["first_errors"] + res["stream"]["first_errors"]
    assert res["ryw_violations_total"] == 0, res["writes"]["first_violations"]
    assert res["baseline"]["requests"] > 0 and res["stream"]["requests"] > 0
    assert set(res["writes"]["ryw_checks"]) == {"discovery", "incident", "change"}


@pytest.mark.slow
def test_bench_mixed_smoke_embedded_reads_its_writes(tmp_path: Path) -> None:
    """Readers and one writer on a real ``cmdb-graph serve`` (embedded): no error, every write
    seen by the writer's next question (no timing asserted)."""
    # Act
    res = _mixed_smoke("embedded", tmp_path)

    # Assert
    _assert_clean(res)
    assert "| **all reads** |" in (tmp_path / "mixed-embedded-2k.md").read_text()


@pytest.mark.neo4j
def test_bench_mixed_smoke_neo4j_reads_its_writes(neo4j_store: GraphStore, tmp_path: Path) -> None:
    """The same on Neo4j (the test server; the bench clears its database)."""
    # Act
    res = _mixed_smoke("neo4j", tmp_path)

    # Assert
    _assert_clean(res)


@pytest.mark.slow
@pytest.mark.parametrize("store", ["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def test_bench_soak_smoke_finds_every_acknowledged_write(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``python -m bench soak --smoke``: 16 clients reading and writing for 15 s, a kill -9 of
    the server, then every acknowledged write found through a new one (no timing asserted)."""
    # Arrange: on Neo4j, the test server (the bench clears its database)
    if store == "neo4j":
        request.getfixturevalue("neo4j_store")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    # Act
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "soak", "--smoke", "--store", store, "--clear-neo4j",
         "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )

    # Assert: every kind of write acknowledged at least once, nothing lost or duplicated
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / f"soak-{store}-0.25m.json").read_text())
    assert all(n > 0 for n in res["writes"]["acknowledged"].values()), res["writes"]
    assert res["verify"]["lost"] == {"create": 0, "update": 0, "incident": 0, "change": 0}
    assert res["verify"]["duplicated"] == 0
    assert res["verify"]["checked"]["create"] > 0
