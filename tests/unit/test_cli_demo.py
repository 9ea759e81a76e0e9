"""The ``cmdb-graph demo`` command: a synthetic estate into the embedded store's snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.model import Registry
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import generate_estate

_register()  # every command module, as the console script does


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder without CMDB_* settings from the environment."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "CMDB_STORE", "CMDB_NEO4J_URI", "CMDB_SNAPSHOT_PATH", "CMDB_REGISTRY_PATH",
        "CMDB_HOST", "CMDB_PORT",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["demo", *args])
    return result.exit_code, result.stdout, result.stderr


def test_demo_writes_a_snapshot_with_the_printed_counts(workdir: Path) -> None:
    # Arrange
    snapshot = workdir / "out" / "demo.snapshot"
    expected = generate_estate(1000, seed=42)

    # Act
    code, out, err = invoke("--size", "1000", "--snapshot", str(snapshot))

    # Assert: the table shows each class with its count
    assert code == 0, err
    lines = out.splitlines()
    for ci_class, count in expected.summary().items():
        assert any(ci_class in line and f" {count} " in line for line in lines), ci_class
    assert any("CI-to-CI relationships" in line and f" {len(expected.relationships)} " in line
               for line in lines)  # fmt: skip
    assert "sw-core-fra1-01" in out and "cmdb-graph serve --snapshot" in out

    # Assert: the snapshot loads with the same counts
    counts = MemoryStore(registry=Registry(), snapshot_path=snapshot).counts()
    assert {k.removeprefix("CI:"): v for k, v in counts.items() if k.startswith("CI:")} == (
        expected.summary()
    )
    assert counts["CI"] == 1000
    assert counts["relationships"] == len(expected.relationships)
    assert counts["Asset"] == len(expected.assets)
    assert counts["Change"] == len(expected.changes)
    assert counts["Window"] == len(expected.windows)
    assert counts["Incident"] == len(expected.incidents)


def test_demo_defaults_to_the_settings_snapshot_path(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    target = workdir / "from-env.snapshot"
    monkeypatch.setenv("CMDB_SNAPSHOT_PATH", str(target))

    # Act
    code, _, err = invoke("--size", "1000", "--seed", "9")

    # Assert
    assert code == 0, err
    store = MemoryStore(registry=Registry(), snapshot_path=target)
    assert store.counts()["CI"] == 1000


def test_demo_refuses_to_overwrite_a_snapshot_without_replace(workdir: Path) -> None:
    # Arrange
    snapshot = workdir / "precious.snapshot"
    snapshot.write_bytes(b"someone's estate")

    # Act
    code, _, err = invoke("--size", "1000", "--snapshot", str(snapshot))

    # Assert
    assert code == 1
    assert "--replace" in err
    assert snapshot.read_bytes() == b"someone's estate"


def test_demo_replaces_a_snapshot_when_asked(workdir: Path) -> None:
    # Arrange
    snapshot = workdir / "old.snapshot"
    invoke("--size", "1000", "--seed", "1", "--snapshot", str(snapshot))
    before = MemoryStore(registry=Registry(), snapshot_path=snapshot).get_ci("ci-0000500").name

    # Act
    code, _, err = invoke("--size", "1000", "--seed", "2", "--snapshot", str(snapshot), "--replace")

    # Assert
    assert code == 0, err
    store = MemoryStore(registry=Registry(), snapshot_path=snapshot)
    assert store.counts()["CI"] == 1000
    assert store.get_ci("ci-0000500").name != before


@pytest.mark.parametrize("size", ["999", "2000000", "many"])
def test_demo_rejects_a_bad_size(workdir: Path, size: str) -> None:
    # Act
    code, _, _ = invoke("--size", size, "--snapshot", str(workdir / "x.snapshot"))

    # Assert
    assert code == 2
    assert not (workdir / "x.snapshot").exists()


def test_demo_hint_names_the_configured_address(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    monkeypatch.setenv("CMDB_PORT", "8123")

    # Act
    code, out, err = invoke("--size", "1000", "--snapshot", str(workdir / "e.snapshot"))

    # Assert
    assert code == 0, err
    assert "http://127.0.0.1:8123/graphql" in out
    assert 'changeImpact(ciIds: ["ci-' in out
