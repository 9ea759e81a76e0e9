"""The ``cmdb-graph import`` command on small CSV exports (servicenow-ci importer)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.model import Registry
from cmdb_graph.store.memory import MemoryStore
from importers import IMPORTERS

_register()  # every command module, as the console script does

FIXTURE = (Path(__file__).resolve().parents[1] / "fixtures" / "importers"
           / "servicenow_cmdb_ci_server.csv")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the memory store; returns the database path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    return tmp_path / "estate.db"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["import", *args])
    return result.exit_code, result.stdout, result.stderr


def rows(tmp_path: Path, name: str, keep: list[int]) -> Path:
    """A copy of the fixture with the header and the data rows numbered in ``keep``."""
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    path = tmp_path / name
    path.write_text("\n".join([lines[0], *(lines[i] for i in keep)]) + "\n", encoding="utf-8")
    return path


def load(snapshot: Path) -> MemoryStore:
    return MemoryStore(registry=Registry(), database_path=snapshot)


def test_import_applies_writes_the_database_and_prints_a_summary(env: Path) -> None:
    # Act
    code, out, _ = invoke("servicenow-ci", str(FIXTURE), "--source", "snow", "--priority", "70",
                          "--db", str(env))

    # Assert
    assert code == 0
    assert "created" in out and "skipped" in out and "total" in out
    store = load(env)
    assert store.counts()["CI"] == 3
    assert store.get_node("DataSource", "snow").priority == 70  # type: ignore[attr-defined]


def test_import_help_lists_every_importer_kind() -> None:
    # Act
    result = CliRunner().invoke(app, ["import", "--help"], env={"COLUMNS": "2000"})

    # Assert
    assert result.exit_code == 0
    assert "Importer kind: " + ", ".join(IMPORTERS) + "." in result.stdout


def test_second_import_reports_unchanged_as_json(env: Path) -> None:
    # Arrange
    invoke("servicenow-ci", str(FIXTURE), "--source", "snow", "--db", str(env))

    # Act
    code, out, _ = invoke("servicenow-ci", str(FIXTURE), "--source", "snow", "--db",
                          str(env), "--json")

    # Assert
    assert code == 0
    data = json.loads(out)
    assert data["counts"]["created"] == 0 and data["counts"]["updated"] == 0
    assert data["counts"]["unchanged"] == 3
    assert data["run"]["status"] == "succeeded" and data["run"]["files"] == [str(FIXTURE)]


def test_bad_input_exits_1_with_one_line_naming_the_file(env: Path, tmp_path: Path) -> None:
    # Arrange: the header lacks the required columns
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")

    # Act
    code, out, err = invoke("servicenow-ci", str(bad), "--source", "snow", "--db",
                            str(env))

    # Assert
    assert code == 1
    assert "bad.csv" in err and err.strip().count("\n") == 0
    assert not any(line.startswith("Traceback") for line in err.splitlines())


def test_circuit_breaker_exits_2_and_force_lets_the_run_through(env: Path,
                                                                  tmp_path: Path) -> None:
    # Arrange
    all_rows = rows(tmp_path, "all.csv", [1, 2, 3])
    one_row = rows(tmp_path, "one.csv", [1])
    invoke("servicenow-ci", str(all_rows), "--source", "snow", "--full", "--db", str(env))
    before = load(env).counts()

    # Act
    code, _, err = invoke("servicenow-ci", str(one_row), "--source", "snow", "--full",
                          "--retire-after", "1", "--db", str(env))

    # Assert: refused (esx-lab-03 is retired by the source itself: 1 of 2 active CIs), and
    # the snapshot holds nothing new
    assert code == 2 and "refused" in err and "1 of the source's 2 CIs" in err
    assert load(env).counts()["ImportRun"] == 1
    assert load(env).counts() == before

    # Act: forced
    code, out, _ = invoke("servicenow-ci", str(one_row), "--source", "snow", "--full",
                          "--retire-after", "1", "--force", "--json", "--db", str(env))

    # Assert
    assert code == 0
    assert json.loads(out)["counts"]["retired"] == 1
    assert sorted(c.operational_status.value for c in load(env).list_cis().items) == [
        "operational", "retired", "retired"]


def test_dry_run_prints_the_plan_and_writes_nothing(env: Path) -> None:
    # Act
    code, out, _ = invoke("servicenow-ci", str(FIXTURE), "--source", "snow", "--dry-run",
                          "--db", str(env))

    # Assert
    assert code == 0
    assert "DRY RUN" in out and "Would create" in out and "lnux100" in out
    assert load(env).counts()["CI"] == 0


def test_unknown_kind_and_mapping_for_a_kind_without_one_exit_1(env: Path) -> None:
    code, _, err = invoke("no-such-kind", str(FIXTURE), "--source", "snow")
    assert code == 1 and "unknown importer" in err

    code, _, err = invoke("kubernetes", str(FIXTURE), "--source", "k8s", "--mapping",
                          str(FIXTURE))
    assert code == 1 and "kubernetes" in err


def test_policy_file_overrides_priorities(env: Path, tmp_path: Path) -> None:
    # Arrange
    policy = tmp_path / "policy.yaml"
    policy.write_text("Server:\n  os_name: [team, snow]\n", encoding="utf-8")
    invoke("servicenow-ci", str(FIXTURE), "--source", "snow", "--priority", "70",
           "--db", str(env))

    # Act: a lower-priority source, first in the policy for os_name
    code, _, _ = invoke("servicenow-ci", str(FIXTURE), "--source", "team", "--priority", "10",
                        "--policy", str(policy), "--db", str(env))

    # Assert
    assert code == 0
    ci = next(c for c in load(env).list_cis().items if c.name == "lnux100")
    assert ci.lineage.attributes["os_name"].source == "team"
    assert ci.lineage.attributes["os_version"].source == "snow"
    assert set(ci.lineage.sources) == {"snow", "team"}


SWID_TAG = """<?xml version="1.0" encoding="utf-8"?>
<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
    name="pkg1" tagId="example.pkg1-1.0" version="1.0">
  <Entity name="Example" regid="example.test" role="tagCreator softwareCreator"/>
</SoftwareIdentity>
"""


def test_option_reaches_the_importer(env: Path, tmp_path: Path) -> None:
    # Arrange: a server CI first, then a SWID tag that names no device
    code, _, _ = invoke("servicenow-ci", str(FIXTURE), "--source", "snow", "--db", str(env))
    assert code == 0
    tag = tmp_path / "pkg1.swidtag"
    tag.write_text(SWID_TAG, encoding="utf-8")

    # Act
    code, out, err = invoke("swid", str(tag), "--source", "swid", "--option",
                            "host=lnux100.corp.example.com", "--db", str(env), "--json")

    # Assert: the software is installed on the host the option names, nothing skipped
    assert code == 0, err
    result = json.loads(out)
    assert result["counts"]["skipped"] == 0
    assert result["by_kind"]["SoftwareProduct"]["created"] == 1
    assert result["by_kind"]["Relationship"]["created"] == 1  # HAS_INSTALLED on the host


@pytest.mark.parametrize(
    ("option", "message"),
    [("host", "expected KEY=VALUE"), ("=x", "expected KEY=VALUE"),
     ("colour=blue", "colour")],
)
def test_bad_or_unknown_option_exits_1_naming_it(env: Path, tmp_path: Path, option: str,
                                                 message: str) -> None:
    # Arrange
    tag = tmp_path / "pkg1.swidtag"
    tag.write_text(SWID_TAG, encoding="utf-8")

    # Act
    code, _, err = invoke("swid", str(tag), "--source", "swid", "--option", option,
                          "--db", str(env))

    # Assert
    assert code == 1
    assert message in err


def test_skip_lines_are_not_wrapped(env: Path, tmp_path: Path) -> None:
    # Arrange: a relationship whose end no CI matches gives a long skip line
    rel = tmp_path / "rels.csv"
    rel.write_text('"parent","child","type"\n'
                   '"a-parent-ci-with-a-long-name-that-matches-nothing",'
                   '"a-child-ci-with-an-even-longer-name-that-matches-nothing-either",'
                   '"Depends on::Used by"\n', encoding="utf-8")

    # Act
    code, out, err = invoke("servicenow-rel", str(rel), "--source", "snow", "--db", str(env))

    # Assert: the skip reason stays on the line that names the file
    assert code == 0, err
    skip = [line for line in out.splitlines() if "rels.csv" in line]
    assert len(skip) == 1 and "no CI matches" in skip[0]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("special", ["fifo", "devzero", "directory"])
def test_a_file_that_is_not_a_regular_file_exits_1_at_once(env: Path, tmp_path: Path,
                                                            special: str) -> None:
    # Arrange: a snapshot with the fixture, then a named pipe, /dev/zero or a folder
    invoke("servicenow-ci", str(FIXTURE), "--source", "snow", "--db", str(env))
    before = load(env).counts()
    path = tmp_path / f"{special}.csv"
    if special == "fifo":
        os.mkfifo(path)
    elif special == "devzero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()

    # Act
    code, _, err = invoke("servicenow-ci", str(path), "--source", "snow", "--full",
                          "--db", str(env))

    # Assert: one line naming the file; the data is as before (the failed run is recorded)
    assert code == 1
    assert str(path) in err and "not a regular file" in err and err.strip().count("\n") == 0
    after = load(env).counts()
    assert after.pop("ImportRun") == before.pop("ImportRun") + 1 and after == before


def test_input_warnings_are_printed_and_the_run_goes_on(env: Path, tmp_path: Path) -> None:
    # Arrange: a NUL in a name and a column named twice
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    path = tmp_path / "warned.csv"
    path.write_text("\n".join([",".join([*header, header[0]]),
                               *(f"{line},x" for line in lines[1:])]).replace("lnux100",
                                                                              "lnux\x00100")
                    + "\n", encoding="utf-8")

    # Act
    code, out, err = invoke("servicenow-ci", str(path), "--source", "snow", "--db",
                            str(env))

    # Assert
    assert code == 0, err
    assert "Warnings (2)" in out
    assert "control characters removed from name" in out and "2 times" in out
    assert "lnux100" in {c.name for c in load(env).list_cis().items}


REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
BOUTIQUE = REALDATA / "k8s" / "online-boutique-kubernetes-manifests.yaml"


@pytest.mark.skipif(not BOUTIQUE.exists(), reason="../shared/realdata is not there")
def test_kubernetes_folder_of_one_object_per_file_imports_as_the_single_file(
        env: Path, tmp_path: Path) -> None:
    # Arrange: Online Boutique split one object per file
    import yaml

    folder = tmp_path / "k8s"
    folder.mkdir()
    for i, obj in enumerate(d for d in yaml.safe_load_all(BOUTIQUE.read_text()) if d):
        (folder / f"{i:02d}-{obj['kind']}-{obj['metadata']['name']}.yaml").write_text(
            yaml.safe_dump(obj))
    whole = tmp_path / "whole.db"
    invoke("kubernetes", str(BOUTIQUE), "--source", "k8s", "--db", str(whole))

    # Act
    code, out, err = invoke("kubernetes", str(folder), "--source", "k8s", "--db", str(env))

    # Assert: the same CIs and relationships as the single file (one CI per workload)
    assert code == 0, err
    def graph(path: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
        g = load(path).dependency_graph()
        name = {n: d["name"] for n, d in g.nodes(data=True)}
        return ({(d["name"], d["ci_class"]) for _, d in g.nodes(data=True)},
                {(name[u], k, name[v]) for u, v, k in g.edges(keys=True)})
    cis, rels = graph(env)
    assert (cis, rels) == graph(whole)
    assert len(cis) == 13 and ("default/cartservice", "DEPENDS_ON", "default/redis-cart") in rels
    runs = load(env).list_nodes("ImportRun", limit=10).items
    assert len(runs[0].files) == 23  # type: ignore[attr-defined]
def test_a_running_server_sees_a_cli_import_on_its_next_question(env: Path) -> None:
    # Arrange: a "server" process's store and engine on the database, its graph built
    from cmdb_graph.service.engine import Engine
    from cmdb_graph.settings import Settings

    served = load(env)
    engine = Engine(served, Settings())
    before = len(list(engine.whole_graph().ci_ids()))  # the graph is then followed in place

    # Act: `cmdb-graph import` on the same file while it serves
    code, _, err = invoke("servicenow-ci", str(FIXTURE), "--source", "snow", "--db", str(env))

    # Assert: the next question is answered on the imported CIs, without a restart
    assert code == 0, err
    after = engine.whole_graph()
    assert before == 0 and len(list(after.ci_ids())) == 3
    assert served.counts()["CI"] == 3
    assert served.feed_head() == load(env).feed_head() > 0
