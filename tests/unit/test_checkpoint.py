"""The embedded store's checkpoint: a fast start that answers exactly as a full read.

A store (and its engine) started from ``<database>.checkpoint`` must hold what a store that read
every row holds, including the writes committed after the checkpoint; a checkpoint that does
not match the database (another database, a pruned gap, another version of the code, a damaged
file) must be ignored, never trusted.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import shutil
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from cmdb_graph import heap
from cmdb_graph.api.app import create_app
from cmdb_graph.cli import _register, app
from cmdb_graph.errors import StoreError
from cmdb_graph.service.engine import Engine
from cmdb_graph.settings import Settings
from cmdb_graph.store import checkpoint as checkpoints
from cmdb_graph.store import iter_nodes
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.checkpoint import checkpoint_path, prefetch
from cmdb_graph.store.memory import MemoryStore
from tests.contract.estate import ci, estate_batch, rel
from tests.contract.test_feed_engine import _answers

_register()


def _estate(db: Path) -> MemoryStore:
    store = MemoryStore(database_path=db)
    store.apply(estate_batch())
    return store


def _checkpointed(db: Path) -> tuple[MemoryStore, Path | None]:
    """The estate in ``db``, its engine built, its checkpoint written (the file's path)."""
    store = _estate(db)
    engine = Engine(store, Settings())
    engine.whole_graph()
    return store, engine.save_checkpoint()


def _later_writes(store: MemoryStore) -> None:
    """Writes after the checkpoint: a new CI that the service needs, a criticality change,
    a removed relationship."""
    store.apply(WriteBatch(nodes=[ci("n1", "Application", business_criticality=1)],
                           relationships=[rel("DEPENDS_ON", "svc", "n1"),
                                          rel("RUNS_ON", "n1", "vm1")]))
    store.apply(WriteBatch(nodes=[ci("db", business_criticality=2)]))
    store.apply(WriteBatch(deletes=[("RUNS_ON", "db", "vm2")]))


def _shape(store: MemoryStore) -> dict[str, Any]:
    """What the store holds, compared across stores."""
    graph = store.dependency_graph()
    return {
        "head": store.feed_head(),
        "counts": store.counts(),
        "nodes": sorted((n, sorted(d.items(), key=str)) for n, d in graph.nodes(data=True)),
        "edges": sorted((s, t, k, sorted(d.items(), key=str))
                        for s, t, k, d in graph.edges(keys=True, data=True)),
        "groups": [g.model_dump() for g in iter_nodes(store, "SupportGroup")],
        "by serial": [c.ci_id for c in store.find_cis({"serial_number": "SN-1"})],
        "by name": [c.ci_id for c in store.find_cis_bulk("name", ["n1 name", "db name"])],
    }


def _full_read(db: Path, tmp_path: Path) -> MemoryStore:
    """The same database read in full (a copy without the checkpoint beside it)."""
    copy = tmp_path / "full" / db.name
    copy.parent.mkdir(parents=True)
    shutil.copyfile(db, copy)
    for suffix in ("-wal", "-shm"):
        if Path(f"{db}{suffix}").exists():
            shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")
    assert not checkpoint_path(copy).exists()
    return MemoryStore(database_path=copy)


def test_a_store_and_its_engine_resume_from_the_checkpoint_and_follow_later_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "estate.db"
    store, path = _checkpointed(db)
    assert path == checkpoint_path(db) and path.exists()
    _later_writes(store)
    store.close()

    with caplog.at_level(logging.INFO, logger="cmdb_graph.store.checkpoint"):
        resumed = MemoryStore(database_path=db)
    assert "from its checkpoint at change record 1 " in caplog.text
    full = _full_read(db, tmp_path)
    assert _shape(resumed) == _shape(full)
    assert resumed.get_ci("n1").business_criticality == 1

    resumed_engine = Engine(resumed, Settings())
    answers = _answers(resumed_engine)
    assert resumed_engine.stats["resumed"] == 1 and resumed_engine.stats["rebuilds"] == 0
    assert resumed_engine.stats["records"] == 3  # the three later writes, followed
    assert answers == _answers(Engine(full, Settings()))
    assert "n1" in {i.ci_id for i in resumed_engine.change_impact(["vm1"]).impacted}

    # a write through the resumed store is followed as usual
    resumed.apply(WriteBatch(nodes=[ci("n2", "Application")],
                             relationships=[rel("RUNS_ON", "n2", "vm2")]))
    assert "n2" in {i.ci_id for i in resumed_engine.change_impact(["vm2"]).impacted}


def test_a_checkpoint_without_the_engine_still_starts_the_store(tmp_path: Path) -> None:
    db = tmp_path / "estate.db"
    store = _estate(db)
    assert store.save_checkpoint() == checkpoint_path(db)
    store.close()
    resumed = MemoryStore(database_path=db)
    engine = Engine(resumed, Settings())
    engine.whole_graph()
    assert engine.stats["resumed"] == 0 and engine.stats["rebuilds"] == 1
    assert _shape(resumed) == _shape(_full_read(db, tmp_path))


def test_a_prefetched_checkpoint_is_taken_once_and_only_while_it_is_the_same_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "estate.db"
    store, path = _checkpointed(db)
    assert path is not None
    store.close()

    # read ahead (as `serve` does before its imports), then taken by the store that opens
    prefetch(db)
    assert list(checkpoints._prefetched) == [path.resolve()]
    with caplog.at_level(logging.INFO, logger="cmdb_graph.store.checkpoint"):
        resumed = MemoryStore(database_path=db)
    assert "from its checkpoint at change record 1 " in caplog.text
    assert checkpoints._prefetched == {}  # its bytes are not kept
    assert _shape(resumed) == _shape(_full_read(db, tmp_path))

    # a checkpoint written again after the read-ahead (a new file under the same name):
    # the new file is read, not the bytes read ahead (whose digest no longer matches)
    prefetch(db)
    checkpoints._prefetched[path.resolve()].result()  # the old file, read in full
    _later_writes(resumed)
    assert Engine(resumed, Settings()).save_checkpoint() == path
    resumed.close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cmdb_graph.store.checkpoint"):
        again = MemoryStore(database_path=db)
    assert "from its checkpoint at change record 4 " in caplog.text
    assert "not used" not in caplog.text and path.exists()
    assert checkpoints._prefetched == {}
    assert _shape(again) == _shape(_full_read(db, tmp_path / "second"))
    again.close()

    # read ahead, then not usable (another version of the code): dropped, not kept
    prefetch(db)
    _other_code(path)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        MemoryStore(database_path=db).close()
    assert "another version of cmdb-graph" in caplog.text
    assert checkpoints._prefetched == {}


def _other_code(path: Path) -> None:
    header, _, rest = path.read_bytes().partition(b"\n")
    fields = json.loads(header)
    fields["code"] = "0" * 64
    path.write_bytes(json.dumps(fields).encode() + b"\n" + rest)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flipped(path: Path) -> None:
    """One byte of a CI's name changed: the pickle still loads, with a wrong name."""
    data = bytearray(path.read_bytes())
    at = data.index(b"db name", data.index(b"\n"))
    data[at] ^= 3
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("spoil", "said", "kept"), [
    ("other database", "does not hold its change record", False),
    ("pruned", "does not hold its change record", False),
    ("other code", "another version of cmdb-graph", True),
    ("truncated", "damaged (its contents do not match their digest)", False),
    ("one byte", "damaged (its contents do not match their digest)", False),
    ("no header", "damaged or not a checkpoint", False),
    ("a folder", "not a regular file", True),
    ("a pipe", "not a regular file", True),
])
def test_a_checkpoint_that_does_not_match_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, spoil: str, said: str, kept: bool
) -> None:
    db = tmp_path / "estate.db"
    store, path = _checkpointed(db)
    assert path is not None
    _later_writes(store)
    store.close()
    if spoil == "other database":  # same number of records, other contents
        other = tmp_path / "other.db"
        o = MemoryStore(database_path=other)
        o.apply(WriteBatch(nodes=[ci("x1", "Server")]))
        o.close()
        shutil.copyfile(path, checkpoint_path(other))
        db = other
    elif spoil == "pruned":
        s = MemoryStore(database_path=db, feed_retention_days=None)
        assert s.prune_feed(before=datetime.now(UTC) + timedelta(days=1)) == 3
        s.close()
    elif spoil == "other code":
        _other_code(path)
    elif spoil == "truncated":
        _truncated(path)
    elif spoil == "one byte":
        _flipped(path)
    elif spoil == "a folder":
        path.unlink()
        path.mkdir()
    elif spoil == "a pipe":  # opening it to read would wait for a writer forever
        path.unlink()
        os.mkfifo(path)
    else:
        path.write_bytes(b"\x00\xff garbage")

    with caplog.at_level(logging.INFO):
        store = MemoryStore(database_path=db)
    assert said in caplog.text
    assert "from its checkpoint" not in caplog.text
    # never usable again: removed; another version's, or not a file we write: left alone
    assert checkpoint_path(db).exists() is kept
    assert ("leaving the file in place" in caplog.text) is kept
    if spoil != "other database":
        assert store.get_ci("db").name == "db name"
    assert _shape(store) == _shape(_full_read(db, tmp_path))
    engine = Engine(store, Settings())
    assert _answers(engine) == _answers(Engine(_full_read(db, tmp_path / "again"), Settings()))
    assert engine.stats["resumed"] == 0


def test_an_empty_database_beside_a_checkpoint_is_an_error_that_keeps_the_checkpoint(
    tmp_path: Path,
) -> None:
    """The database deleted (or replaced by an empty one), its checkpoint left: the
    checkpoint then holds the only copy of the estate, so opening fails with one error that
    says so, and the checkpoint stays."""
    db = tmp_path / "estate.db"
    store, path = _checkpointed(db)
    assert path is not None
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"the database is empty, but estate\.db\.checkpoint "
                       r"beside it holds an estate of \d+ CIs .* Restore it"):
        MemoryStore(database_path=db)
    assert path.read_bytes() == before
    # the operator moves it away: the store starts empty
    path.rename(tmp_path / "aside.checkpoint")
    assert MemoryStore(database_path=db).counts().get("CI", 0) == 0


async def _serve_one_question(api: FastAPI) -> dict[str, Any]:
    """Start the application (its lifespan), ask one question, stop it."""
    async with api.router.lifespan_context(api):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                     base_url="http://127.0.0.1") as client:
            resp = await client.post("/graphql", json={"query": (
                '{ changeImpact(ciIds: ["vm1"]) '
                '{ ... on ChangeImpact { impacted { ci { name } } } } }')})
    found: dict[str, Any] = resp.json()
    return found


def test_the_server_writes_the_checkpoint_when_it_stops(tmp_path: Path) -> None:
    db = tmp_path / "estate.db"
    _estate(db).close()
    for on_exit in (False, True):
        store = MemoryStore(database_path=db)
        body = asyncio.run(_serve_one_question(
            create_app(Settings(checkpoint_on_exit=on_exit), store)))
        assert "errors" not in body and body["data"]["changeImpact"]["impacted"], body
        assert checkpoint_path(db).exists() is on_exit
    resumed = Engine(MemoryStore(database_path=db), Settings())
    resumed.whole_graph()
    assert resumed.stats["resumed"] == 1


def test_a_server_stopped_without_a_question_keeps_the_engine_in_the_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "estate.db"
    store = _estate(db)
    engine = Engine(store, Settings())
    engine.whole_graph()
    engine.save_checkpoint()
    store.close()
    written = checkpoint_path(db).read_bytes()
    # a server that answers nothing: the checkpoint is current, nothing is rewritten (said)
    with caplog.at_level(logging.INFO, logger="cmdb_graph.store.checkpoint"):
        asyncio.run(_stop_at_once(create_app(Settings(), MemoryStore(database_path=db))))
    assert checkpoint_path(db).read_bytes() == written
    assert "already holds change record 1: not written again" in caplog.text
    # one write, still no question: rewritten, with the unclaimed engine state kept
    store = MemoryStore(database_path=db)
    store.apply(WriteBatch(nodes=[ci("n1", "Application")],
                           relationships=[rel("RUNS_ON", "n1", "vm1")]))
    asyncio.run(_stop_at_once(create_app(Settings(), store)))
    assert json.loads(checkpoint_path(db).read_bytes().partition(b"\n")[0])["seq"] == 2
    resumed = Engine(MemoryStore(database_path=db), Settings())
    assert "n1" in {i.ci_id for i in resumed.change_impact(["vm1"]).impacted}
    assert resumed.stats["resumed"] == 1 and resumed.stats["rebuilds"] == 0


async def _stop_at_once(api: FastAPI) -> None:
    async with api.router.lifespan_context(api):
        pass


def test_the_checkpoint_command(tmp_path: Path) -> None:
    db = tmp_path / "estate.db"
    runner = CliRunner()
    missing = runner.invoke(app, ["checkpoint", "--db", str(db)])
    assert missing.exit_code == 2 and "no database here" in missing.output
    _estate(db).close()
    done = runner.invoke(app, ["checkpoint", "--db", str(db)])
    assert done.exit_code == 0, done.output
    assert f"Wrote {checkpoint_path(db)} (12 CIs)" in done.output
    engine = Engine(MemoryStore(database_path=db), Settings())
    engine.whole_graph()
    assert engine.stats["resumed"] == 1


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_release_collects_frozen_cycles() -> None:
    assert heap.settle(heap.FREEZE_FROM - 1) is False
    try:
        cycle = _Cycle()
        dead = weakref.ref(cycle)
        assert heap.settle(heap.FREEZE_FROM) is True
        del cycle
        gc.collect()
        assert dead() is not None  # frozen: the collector leaves it
        heap.release()
        assert dead() is None
    finally:
        gc.unfreeze()
