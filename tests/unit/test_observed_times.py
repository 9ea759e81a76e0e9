"""Observed-at times: a CI's ``first_seen``/``last_seen`` are when the source saw it (nmap's
scan times, GLPI's inventory date, Lansweeper's last scan), not the import's time, so the
stale report tells the truth. Real files from ``../shared/realdata``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.store.memory import MemoryStore

_register()

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
NMAP = REALDATA / "nmap" / "libnmap-1_os_banner_scripts.xml"
GLPI = REALDATA / "glpi" / "computer_1.json"
LANSWEEPER = REALDATA / "lansweeper" / "dataapi-graphql-assetResources-ip-hunt.json"

pytestmark = [
    pytest.mark.usefixtures("wide_tables"),
    pytest.mark.skipif(not NMAP.is_file(), reason="../shared/realdata is not there"),
]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CMDB_STORE", "memory")
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    return tmp_path / "estate.db"


def imported(db: Path, kind: str, path: Path) -> dict[str, dict[str, object]]:
    code, _, err = invoke("import", kind, str(path), "--source", kind, "--db", str(db))
    assert code == 0, err
    code, out, err = invoke("export", "--format", "json", "--db", str(db))
    assert code == 0, err
    return {str(n["name"]): n for n in json.loads(out)["nodes"]}


def test_an_nmap_scan_dates_its_cis_and_they_are_stale(db: Path) -> None:
    # Act: the scan of 10 May 2013 (host starttime 1368156682, endtime 1368156706)
    cis = imported(db, "nmap", NMAP)
    code, out, err = invoke("orphans", "stale_cis", "--json", "--db", str(db))
    code2, text, _ = invoke("explain", "localhost", "--db", str(db))

    # Assert: the host and its services were seen at the host's endtime, and are stale today
    assert code == 0, err
    scanned = "2013-05-10T03:31:46"
    assert cis and all(str(c["last_seen"]).startswith(scanned) for c in cis.values())
    assert all(str(c["first_seen"]).startswith(scanned) for c in cis.values())
    stale = {f["ci_id"] for f in json.loads(out)["stale_cis"]["findings"]}
    assert stale == {str(c["ci_id"]) for c in cis.values()}
    assert code2 == 0 and "2013-05-10 03:31" in text


def test_a_later_import_of_an_older_scan_keeps_the_latest_time(db: Path, tmp_path: Path) -> None:
    # Arrange: the same host scanned again a year later, imported first
    later = tmp_path / "later.xml"
    later.write_text(NMAP.read_text().replace('endtime="1368156706"', 'endtime="1399692706"'))
    imported(db, "nmap", later)

    # Act: the older scan after it
    cis = imported(db, "nmap", NMAP)

    # Assert: last_seen is the later scan's, first_seen the older one's
    host = cis["localhost"]
    assert str(host["last_seen"]).startswith("2014-05-10T03:31:46")
    assert str(host["first_seen"]).startswith("2013-05-10T03:31:46")


def test_inventory_dates_of_glpi_and_lansweeper(db: Path) -> None:
    # Act
    glpi = imported(db, "glpi", GLPI)
    lansweeper = imported(db, "lansweeper", LANSWEEPER)

    # Assert: GLPI's accesslog.logdate, Lansweeper's lastSeen per asset
    assert [str(c["last_seen"])[:19] for c in glpi.values()
            if c["ci_class"] in ("Computer", "Server")] == ["2020-06-12T14:19:54"]
    seen = sorted(str(c["last_seen"])[:19] for n, c in lansweeper.items() if n not in glpi)
    assert seen == ["2012-08-27T12:18:52", "2013-03-18T11:25:46"]


def test_relationships_are_seen_when_the_inventory_saw_their_ends(db: Path) -> None:
    # Act: GLPI's inventory of 12 June 2020, imported today
    imported(db, "glpi", GLPI)
    store = MemoryStore(database_path=db)

    # Assert: what it lists as installed was seen then, not at the import
    rels = store.relationships(None)
    assert rels and {r.rel_type for r in rels} == {"HAS_INSTALLED"}
    assert {(str(r.first_seen)[:19], str(r.last_seen)[:19]) for r in rels} == {
        ("2020-06-12 14:19:54", "2020-06-12 14:19:54")}
    store.close()


def test_a_time_in_the_future_is_not_taken(db: Path, tmp_path: Path) -> None:
    # Arrange: the scan's host says it was seen in 2031 (a clock or typing mistake)
    future = tmp_path / "future.xml"
    future.write_text(NMAP.read_text().replace('endtime="1368156706"', 'endtime="1924992000"'))

    # Act
    code, out, err = invoke("import", "nmap", str(future), "--source", "nmap", "--db", str(db))
    cis = imported(db, "nmap", NMAP)

    # Assert: one warning names the CI and the time; the host keeps the import's time, so
    # an honest scan can still date it and the stale report can still see it
    assert code == 0, err
    assert "observed_at 2031-01-01T00:00:00+00:00 is in the future" in out + err
    assert not str(cis["localhost"]["last_seen"]).startswith("2031")
