"""``cmdb-graph history | diff`` and ``--as-of`` on an embedded database: names in the tables,
the import run that made each change, the graph as it was, and the error before the feed's
retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.feed import Actor, ActorKind
from cmdb_graph.model import ImportRun, RunMode, RunStatus
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.memory import MemoryStore
from tests.contract.estate import ci, estate_batch

_register()
pytestmark = pytest.mark.usefixtures("wide_tables")

RUN = Actor(ActorKind.IMPORT, "vcenter", run_id="run-9", source="vcenter")


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


@pytest.fixture
def estate(tmp_path: Path) -> tuple[Path, str]:
    """The contract estate; then a vcenter run moves vm1 off the cluster, renames it and
    adds a CI. Returns the database and the time of the estate's record."""
    path = tmp_path / "estate.db"
    store = MemoryStore(database_path=path)
    store.apply(estate_batch())
    then = store.feed_since(store.feed_head() - 1)[0].at
    started = datetime.now(UTC)
    store.delete_relationships([("HOSTED_ON", "vm1", "cl")], actor=RUN)
    store.apply(WriteBatch(nodes=[ci("vm1", name="vm one"), ci("n1", "Application",
                                                                 name="new app")],
                           actor=RUN))
    store.upsert_nodes([ImportRun(run_id="run-9", source="vcenter", importer="csv",
                                  mode=RunMode.FULL, status=RunStatus.SUCCEEDED,
                                  started_at=started)])
    store.close()
    return path, then.isoformat()


def test_history_names_each_change_and_who_made_it(estate: tuple[Path, str]) -> None:
    db, _ = estate

    out = run("history", "vm one", "--db", str(db))

    assert "History of vm one: 5 change(s)" in out
    assert "name: vm1 name -> vm one" in out
    assert "import vcenter run run-9" in out
    assert "removed vm one -HOSTED_ON-> cl name" in out
    entries = json.loads(run("history", "vm1", "--json", "--db", str(db)))
    assert [e["op"] for e in entries][-2:] == ["removed", "updated"]
    assert entries[-1]["actor"] == {"kind": "import", "name": "vcenter", "run_id": "run-9",
                                    "source": "vcenter"}


def test_diff_since_the_last_run_of_a_source(estate: tuple[Path, str]) -> None:
    db, _ = estate

    out = run("diff", "--since-last-run", "vcenter", "--db", str(db))
    found = json.loads(run("diff", "--since-last-run", "vcenter", "--json", "--db", str(db)))

    assert "(last run of vcenter)" in out
    assert "new app" in out and "vm one" in out
    assert "removed │ vm one -HOSTED_ON-> cl name" in out
    assert {(c["ci_id"], c["status"]) for c in found["cis"]} == {("n1", "created"),
                                                                  ("vm1", "changed")}
    assert run("diff", "--db", str(db), code=2)
    assert "no successful import run" in run("diff", "--since-last-run", "snow", "--db",
                                             str(db), code=1)


def test_as_of_answers_on_the_graph_then(estate: tuple[Path, str]) -> None:
    db, then = estate

    past = json.loads(run("impact", "cl", "--as-of", then, "--json", "--db", str(db)))
    now = json.loads(run("impact", "cl", "--json", "--db", str(db)))
    table = run("impact", "cl", "--as-of", then, "--db", str(db))
    smap = run("map", "svc", "--as-of", then, "--db", str(db))
    report = run("orphans", "infrastructure_unreachable_from_services", "--as-of", then,
                 "--db", str(db))

    assert "vm1" in {c["ci_id"] for c in past["impacted"]}
    assert "vm1" not in {c["ci_id"] for c in now["impacted"]}
    assert "vm1 name" in table  # the name it had then
    assert f"as of {datetime.fromisoformat(then).isoformat()}" in table
    assert "vm1 name" in smap
    assert "finding(s)" in report


def test_as_of_before_the_retained_feed_is_one_clear_error(estate: tuple[Path, str]) -> None:
    db, then = estate
    store = MemoryStore(database_path=db)
    store.prune_feed(before=datetime.now(UTC) + timedelta(days=1))
    store.close()

    out = run("impact", "cl", "--as-of", then, "--db", str(db), code=1)

    assert "oldest retained record" in out and "CMDB_FEED_RETENTION_DAYS" in out
    assert "not an ISO 8601 time" in run("impact", "cl", "--as-of", "yesterday", "--db",
                                         str(db), code=2)
