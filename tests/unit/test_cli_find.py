"""``cmdb-graph find``, and every command that takes a CI taking a name or any identifier:
the one CI it names, or the candidates and exit 1 when it names several."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.synthetic import Estate

_register()

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
BOUTIQUE = REALDATA / "k8s" / "online-boutique-kubernetes-manifests.yaml"


pytestmark = pytest.mark.usefixtures("wide_tables")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_find_lists_name_class_status_and_id(demo_snapshot: Path, demo_estate: Estate) -> None:
    # Act
    code, out, _ = invoke("find", "pay-db", "--db", str(demo_snapshot))
    data = json.loads(invoke("find", "pay-db", "--json", "--db", str(demo_snapshot))[1])

    # Assert
    expected = sorted(c.ci_id for c in demo_estate.cis if "pay-db" in c.name)
    assert code == 0
    assert sorted(h["ci_id"] for h in data["hits"]) == expected
    assert data["truncated"] is False
    db = next(c for c in demo_estate.cis if c.name == "pay-db-0001")
    line = next(line for line in out.splitlines() if "│ pay-db-0001 " in line)
    assert [c.strip() for c in line.split("│")[1:-1]] == [
        "pay-db-0001", "Database", "-", "operational", db.ci_id, "name"]


def test_find_by_identifier_says_which(demo_snapshot: Path, demo_estate: Estate) -> None:
    # Arrange
    server = next(c for c in demo_estate.cis if c.ci_class == "Server" and c.serial_number)

    # Act
    data = json.loads(invoke("find", str(server.serial_number), "--json", "--db",
                             str(demo_snapshot))[1])

    # Assert
    assert [(h["ci_id"], h["matched_on"]) for h in data["hits"]] == [
        (server.ci_id, "serial_number")]


def test_find_filters_by_class_and_status_and_limits(demo_snapshot: Path,
                                                      demo_estate: Estate) -> None:
    # Act
    dbs = json.loads(invoke("find", "pay", "--class", "Database", "--json", "--db",
                            str(demo_snapshot))[1])
    retired = json.loads(invoke("find", "srv", "--status", "retired", "--json", "--db",
                                str(demo_snapshot))[1])
    few = json.loads(invoke("find", "vm-", "--limit", "3", "--json", "--db",
                            str(demo_snapshot))[1])

    # Assert
    assert dbs["hits"] and {h["ci_class"] for h in dbs["hits"]} == {"Database"}
    assert {h["ci_id"] for h in retired["hits"]} == {
        c.ci_id for c in demo_estate.cis if "srv" in c.name and c.operational_status == "retired"}
    assert len(few["hits"]) == 3 and few["truncated"] is True


def test_find_nothing_exits_1(demo_snapshot: Path) -> None:
    code, _, err = invoke("find", "no-such-thing", "--db", str(demo_snapshot))

    assert code == 1
    assert err.strip() == "no CI matches 'no-such-thing'"


def test_an_empty_file_is_no_estate_and_stays_empty(tmp_path: Path) -> None:
    # Arrange: a zero-byte file given as the database
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")

    # Act
    code, _, err = invoke("find", "redis", "--db", str(empty))

    # Assert: the reading command says there is no estate and writes nothing
    assert code == 1
    assert "no estate at" in err and str(empty) in " ".join(err.split())
    assert empty.stat().st_size == 0


def test_commands_take_names_and_identifiers(demo_snapshot: Path, demo_estate: Estate) -> None:
    # Arrange
    db = next(c for c in demo_estate.cis if c.name == "pay-db-0001")
    core = next(c for c in demo_estate.cis if c.name == "sw-core-fra1-01")
    snap = ("--db", str(demo_snapshot))

    # Act
    route = json.loads(invoke("route", str(db.fqdn or db.name), "--json", *snap)[1])
    smap = json.loads(invoke("map", "payments", "--json", *snap)[1])
    proposed = json.loads(invoke("conflicts", "--ci", "pay-db-0001", "--start",
                                 "2026-01-27T00:00", "--end", "2026-01-27T02:00", "--json",
                                 *snap)[1])
    around = json.loads(invoke("export", "--around", str(core.ip_addresses[0]), "--depth", "0",
                               *snap)[1])
    impact = json.loads(invoke("impact", str(core.serial_number), "pay-db-0001", "--json",
                               *snap)[1])

    # Assert
    payments = next(c for c in demo_estate.cis if c.name == "Payments")
    assert route["ci_id"] == db.ci_id
    assert smap["service_map"]["service"] == payments.ci_id
    assert proposed["change"]["ci_ids"] == [db.ci_id]
    assert [n["ci_id"] for n in around["nodes"]] == [core.ci_id]
    assert impact["changed"] == sorted([core.ci_id, db.ci_id])


def test_a_name_of_several_cis_lists_them_and_exits_1(demo_snapshot: Path,
                                                       demo_estate: Estate) -> None:
    # Act
    code, out, err = invoke("route", "pay-db", "--db", str(demo_snapshot))

    # Assert: one error line, then one line per candidate (name, class, system, status, ci_id)
    assert code == 1 and out == ""
    first, *rest = err.strip().splitlines()
    assert first == ("error: 'pay-db' matches 4 CIs: name one by its ci_id or a more exact "
                     "name or identifier")
    expected = {c.ci_id: c for c in demo_estate.cis if "pay-db" in c.name}
    assert len(rest) == 4
    for line in rest:
        name, ci_class, system, status, ci_id = line.split()
        c = expected[ci_id]
        assert (name, ci_class, system, status) == (
            c.name, c.ci_class, "-", c.operational_status.value)


def test_candidates_of_one_name_say_their_system(tmp_path: Path) -> None:
    # Arrange: the same service in two compose projects (two CIs, not merged)
    db = str(tmp_path / "e.db")
    for project in ("shop", "blog"):
        (tmp_path / f"{project}.yaml").write_text(
            f"name: {project}\nservices:\n  redis:\n    image: redis:7\n", encoding="utf-8")
    code, _, _ = invoke("import", "compose", str(tmp_path / "shop.yaml"),
                        str(tmp_path / "blog.yaml"), "--source", "dc", "--db", db)
    assert code == 0

    # Act
    code, out, err = invoke("route", "redis", "--db", db)
    found = json.loads(invoke("find", "redis", "--json", "--db", db)[1])

    # Assert: the candidates differ by their compose project
    assert code == 1 and out == ""
    rows = sorted(line.split()[:3] for line in err.strip().splitlines()[1:])
    assert rows == [["redis", "Container", "blog"], ["redis", "Container", "shop"]]
    assert sorted(h["system"] for h in found["hits"]) == ["blog", "shop"]


def test_many_candidates_say_there_are_more(demo_snapshot: Path) -> None:
    code, _, err = invoke("impact", "vm-", "--db", str(demo_snapshot))

    assert code == 1
    lines = err.strip().splitlines()
    assert "matches 20+ CIs" in lines[0] and len(lines) == 22
    assert lines[-1].strip().startswith("... and more")


def test_a_part_of_one_name_is_taken_and_said(demo_snapshot: Path, demo_estate: Estate) -> None:
    # Arrange: exactly one CI name contains it
    gateway = next(c for c in demo_estate.cis if c.name == "Online Shop Gateway")

    # Act
    code, out, err = invoke("route", "shop gateway", "--json", "--db", str(demo_snapshot))

    # Assert
    assert code == 0
    assert json.loads(out)["ci_id"] == gateway.ci_id
    assert err.strip() == ("'shop gateway': taken as Online Shop Gateway (ApplicationService, "
                           f"{gateway.ci_id})")


@pytest.mark.skipif(not BOUTIQUE.exists(), reason="../shared/realdata is not there")
def test_impact_by_name_after_importing_online_boutique(tmp_path: Path) -> None:
    # Arrange
    boutique = tmp_path / "boutique.db"
    manifests = tmp_path / "boutique.yaml"
    shutil.copyfile(BOUTIQUE, manifests)
    code, _, err = invoke("import", "kubernetes", str(manifests), "--source", "k8s",
                          "--db", str(boutique))
    assert code == 0, err

    # Act
    code, out, err = invoke("impact", "redis-cart", "--db", str(boutique))
    data = json.loads(invoke("impact", "redis-cart", "--json", "--db",
                             str(boutique))[1])

    # Assert: the Redis store named by (part of) its name; cartservice needs it
    assert code == 0, err
    assert "Impact of default/redis-cart:" in out
    cart = next(c for c in data["impacted"] if c["name"] == "default/cartservice")
    assert cart["status"] == "down"
    assert "default/redis-cart ~> default/cartservice" in out  # an inferred hop


def test_the_deprecated_snapshot_option_migrates_an_old_snapshot_once(
    tmp_path: Path, demo_estate: Estate
) -> None:
    # Arrange: an estate in the snapshot format of earlier versions
    from cmdb_graph.store.memory import MemoryStore, write_snapshot

    old = MemoryStore()
    old.apply(demo_estate.to_batch())
    snapshot = tmp_path / "estate.snapshot"
    write_snapshot(snapshot, old.snapshot_payload())
    before = snapshot.read_bytes()

    # Act
    first = invoke("find", "pay-db", "--json", "--snapshot", str(snapshot))
    again = invoke("find", "pay-db", "--json", "--db", str(tmp_path / "estate.db"))

    # Assert: the database beside it answers, the snapshot is left as it was
    assert first[0] == 0, first[2]
    assert json.loads(first[1]) == json.loads(again[1])
    assert (tmp_path / "estate.db").exists() and snapshot.read_bytes() == before


def test_explain_a_ci_no_source_reported_says_so(demo_snapshot: Path) -> None:
    code, out, err = invoke("explain", "pay-db-0001", "--db", str(demo_snapshot))

    assert code == 0, err
    assert out.splitlines()[0].startswith("pay-db-0001 [Database]")
    assert "no data source has reported it" in " ".join(out.split())
    assert "Identified by data source" not in out
