"""The ``cmdb-graph demo`` command: a synthetic estate, dated from today, into the embedded
store's database where every other command reads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.model import ConfigurationItem, Registry
from cmdb_graph.settings import DEFAULT_DATABASE
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import generate_estate

_register()  # every command module, as the console script does


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder without CMDB_* settings from the environment."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "CMDB_STORE", "CMDB_NEO4J_URI", "CMDB_DATABASE_PATH", "CMDB_SNAPSHOT_PATH",
        "CMDB_REGISTRY_PATH", "CMDB_HOST", "CMDB_PORT",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["demo", *args])
    return result.exit_code, result.stdout, result.stderr


def test_demo_writes_a_snapshot_with_the_printed_counts(workdir: Path) -> None:
    # Arrange
    snapshot = workdir / "out" / "demo.db"
    expected = generate_estate(1000, seed=42)

    # Act
    code, out, err = invoke("--size", "1000", "--db", str(snapshot))

    # Assert: the table shows each class with its count
    assert code == 0, err
    lines = out.splitlines()
    for ci_class, count in expected.summary().items():
        assert any(ci_class in line and f" {count} " in line for line in lines), ci_class
    assert any("CI-to-CI relationships" in line and f" {len(expected.relationships)} " in line
               for line in lines)  # fmt: skip
    assert "sw-core-fra1-01" in out and f"cmdb-graph serve --db {snapshot}" in out
    # the commands to try name the snapshot, and a change id that conflicts shows something for
    kernel = next(c for c in expected.changes if c.title == "Kernel update, first node")
    assert f"cmdb-graph conflicts {kernel.change_id} --db {snapshot}" in out
    assert f"cmdb-graph impact sw-core-fra1-01 --services-only --db {snapshot}" in out

    # Assert: the snapshot loads with the same counts
    counts = MemoryStore(registry=Registry(), database_path=snapshot).counts()
    assert {k.removeprefix("CI:"): v for k, v in counts.items() if k.startswith("CI:")} == (
        expected.summary()
    )
    assert counts["CI"] == 1000
    assert counts["relationships"] == len(expected.relationships)
    assert counts["Asset"] == len(expected.assets)
    assert counts["Change"] == len(expected.changes)
    assert counts["Window"] == len(expected.windows)
    assert counts["Incident"] == len(expected.incidents)


def test_demo_writes_the_checkpoint_the_first_start_resumes_from(workdir: Path) -> None:
    # Arrange
    database = workdir / "estate.db"

    # Act
    code, out, err = invoke("--size", "1000", "--db", str(database))

    # Assert: the checkpoint is beside the database, and a store opened on it takes it with
    # the engine's part (the server's first question needs no build)
    assert code == 0, err
    assert "Checkpoint written beside the database" in out
    assert database.with_name("estate.db.checkpoint").is_file()
    store = MemoryStore(registry=Registry(), database_path=database)
    assert store.claim_checkpoint() is not None
    assert store.counts()["CI"] == 1000


def test_demo_defaults_to_the_settings_snapshot_path(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    target = workdir / "from-env.db"
    monkeypatch.setenv("CMDB_DATABASE_PATH", str(target))

    # Act
    code, _, err = invoke("--size", "1000", "--seed", "9")

    # Assert
    assert code == 0, err
    store = MemoryStore(registry=Registry(), database_path=target)
    assert store.counts()["CI"] == 1000


def test_an_empty_database_path_setting_means_the_default(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CMDB_DATABASE_PATH=`` (set, empty) is the default database, not the current folder."""
    monkeypatch.setenv("CMDB_DATABASE_PATH", "")
    monkeypatch.setenv("CMDB_SNAPSHOT_PATH", " ")

    code, _, err = invoke("--size", "1000", "--seed", "9")

    assert code == 0, err
    assert MemoryStore(registry=Registry(),
                       database_path=workdir / DEFAULT_DATABASE).counts()["CI"] == 1000


def test_demo_refuses_a_file_it_cannot_read_without_replace(workdir: Path) -> None:
    # Arrange
    snapshot = workdir / "precious.db"
    snapshot.write_bytes(b"someone's estate")

    # Act
    code, _, err = invoke("--size", "1000", "--db", str(snapshot))

    # Assert
    assert code == 1
    assert "--replace" in err
    assert snapshot.read_bytes() == b"someone's estate"


def test_demo_fills_the_default_store_that_the_other_commands_read(workdir: Path) -> None:
    # Act
    code, out, err = invoke("--size", "1000")
    found = CliRunner().invoke(app, ["find", "sw-core-fra1-01", "--json"])

    # Assert
    assert code == 0, err
    assert "Database written to .cmdb/estate.db." in out
    assert "  cmdb-graph serve\n" in out and "--db" not in out
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["hits"][0]["ci_id"] == "ci-0000002"


def test_demo_fills_an_empty_store_as_serve_leaves_it(workdir: Path) -> None:
    # Arrange: `cmdb-graph serve` on no estate saves an empty store when it stops
    snapshot = workdir / ".cmdb" / "estate.db"
    MemoryStore(database_path=snapshot).close()
    assert snapshot.exists()

    # Act
    code, _, err = invoke("--size", "1000")

    # Assert
    assert code == 0, err
    assert "Replacing" not in err
    assert MemoryStore(database_path=snapshot).counts()["CI"] == 1000


def test_demo_replaces_an_earlier_demo_estate_and_says_so(workdir: Path) -> None:
    # Arrange
    invoke("--size", "1000", "--seed", "1")

    # Act
    code, _, err = invoke("--size", "2000", "--seed", "2")

    # Assert
    assert code == 0, err
    assert "Replacing the demo estate of 1000 CI(s) in .cmdb/estate.db." in err
    store = MemoryStore(database_path=workdir / ".cmdb" / "estate.db")
    assert store.counts()["CI"] == 2000


def test_demo_keeps_another_estate_unless_replace(workdir: Path) -> None:
    # Arrange: an estate that is not the demo's
    snapshot = workdir / ".cmdb" / "estate.db"
    store = MemoryStore(database_path=snapshot)
    store.apply(WriteBatch(nodes=[ConfigurationItem(ci_id="ci-mine", name="mine",
                                                    ci_class="Server")]))
    store.close()

    # Act
    refused = invoke("--size", "1000")
    replaced = invoke("--size", "1000", "--replace")

    # Assert
    assert refused[0] == 1
    assert " ".join(refused[2].split()) == (
        f"error: {snapshot.relative_to(workdir)} holds an estate of 1 CI(s) that is not a demo "
        "estate; pass --replace to replace it with the demo estate, or --db to write "
        "elsewhere")
    assert replaced[0] == 0, replaced[2]
    assert "Replacing the estate of 1 CI(s)" in replaced[2]
    assert MemoryStore(database_path=snapshot).counts()["CI"] == 1000


def test_demo_is_dated_from_now_and_reproducible_for_a_given_now(workdir: Path) -> None:
    # Act
    invoke("--size", "1000", "--now", "2030-06-01T00:00:00Z", "--db", "a.db")
    invoke("--size", "1000", "--now", "2030-06-01T00:00:00Z", "--db", "b.db")

    # Assert: the same as the generator's estate for that time, twice
    expected = generate_estate(1000, seed=42, now=datetime(2030, 6, 1, tzinfo=UTC))
    a = MemoryStore(database_path=workdir / "a.db")
    b = MemoryStore(database_path=workdir / "b.db")
    for ci in expected.cis[:50]:
        assert a.get_ci(ci.ci_id).last_seen == b.get_ci(ci.ci_id).last_seen == ci.last_seen
    for change in expected.changes:
        assert a.get_node("Change", change.change_id) == change


def test_demo_estate_of_today_is_fresh_and_plans_ahead(workdir: Path) -> None:
    # Act
    invoke("--size", "1000")
    now = datetime.now(UTC)
    stale = CliRunner().invoke(app, ["orphans", "stale_cis", "--json"])
    changes = CliRunner().invoke(app, ["changes", "--json"])

    # Assert: only the planted stale CIs are stale today; changes lie ahead (but the closed one)
    assert stale.exit_code == 0, stale.output
    assert 1 <= len(json.loads(stale.stdout)["stale_cis"]["findings"]) < 20
    windows = {c["state"]: datetime.fromisoformat(c["window_start"])
               for c in json.loads(changes.stdout)}
    assert windows["scheduled"] > now
    assert now - timedelta(days=3) < windows["closed"] < now


def test_demo_replaces_a_snapshot_when_asked(workdir: Path) -> None:
    # Arrange
    snapshot = workdir / "old.db"
    invoke("--size", "1000", "--seed", "1", "--db", str(snapshot))
    before = MemoryStore(registry=Registry(), database_path=snapshot).get_ci("ci-0000500").name

    # Act
    code, _, err = invoke("--size", "1000", "--seed", "2", "--db", str(snapshot), "--replace")

    # Assert
    assert code == 0, err
    store = MemoryStore(registry=Registry(), database_path=snapshot)
    assert store.counts()["CI"] == 1000
    assert store.get_ci("ci-0000500").name != before


@pytest.mark.parametrize("size", ["999", "2000000", "many"])
def test_demo_rejects_a_bad_size(workdir: Path, size: str) -> None:
    # Act
    code, _, _ = invoke("--size", size, "--db", str(workdir / "x.db"))

    # Assert
    assert code == 2
    assert not (workdir / "x.db").exists()


def test_demo_hint_names_the_configured_address(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    monkeypatch.setenv("CMDB_PORT", "8123")

    # Act
    code, out, err = invoke("--size", "1000", "--db", str(workdir / "e.db"))

    # Assert
    assert code == 0, err
    assert "http://127.0.0.1:8123/graphql" in out
    assert 'changeImpact(ciIds: ["ci-' in out
