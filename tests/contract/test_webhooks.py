"""Webhooks from the change feed on both stores: a real receiver on 127.0.0.1 that is down,
then up; a dispatcher restarted in between (its cursor is in the outbox file); every event
arrives, in order, signed, each idempotency key handled once; dead letters and their replay.

Backoff is configured short (waits of 0.05..0.3 s) so the receiver's outage costs seconds; the
30-second outage against a real ``cmdb-graph serve`` process is in
``tests/e2e/test_events.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cmdb_graph.events import Dispatcher, EventType, events_of, new_secret
from cmdb_graph.model import ImportRun, Relationship, RunStatus
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore, WriteBatch
from tests.contract.estate import T0, ci
from tests.helpers.receiver import Receiver


def _settings(tmp_path: Path, receiver: Receiver, secret: str, **extra: object) -> Settings:
    hooks = tmp_path / "webhooks.yaml"
    (tmp_path / "secret").write_text(secret + "\n")
    hooks.write_text(f"webhooks:\n  itsm:\n    url: {receiver.url}\n"
                     "    secret: file:secret\n")
    values: dict[str, object] = {
        "webhooks_file": hooks, "events_path": tmp_path / "events.db",
        "events_poll_interval": 0.05, "webhook_backoff_initial": 0.05,
        "webhook_backoff_max": 0.3, "webhook_retry_timeout": 120, "webhook_timeout": 5}
    values.update(extra)
    return Settings(**values)


def _wait(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _write(store: GraphStore, n: int) -> None:
    """CIs created, changed and retired, and relationships added and removed."""
    for i in range(n):
        store.apply(WriteBatch(nodes=[ci(f"app{i}", "Application", name=f"app-{i}")]))
        store.apply(WriteBatch(nodes=[ci(f"app{i}", "Application", name=f"app-{i}",
                                         environment="prod")]))
    for i in range(1, n):
        store.apply(WriteBatch(relationships=[
            Relationship(rel_type="DEPENDS_ON", source=f"app{i}", target="app0")]))
    store.delete_relationships([("DEPENDS_ON", "app1", "app0")])
    store.apply(WriteBatch(nodes=[ci("app2", "Application", name="app-2", environment="prod",
                                     operational_status="retired")]))


def test_receiver_down_then_up_and_a_restart(store: GraphStore, tmp_path: Path) -> None:
    secret = new_secret()
    receiver = Receiver(secret)
    settings = _settings(tmp_path, receiver, secret)
    start = store.feed_head()
    first = Dispatcher(store, settings)
    first.start()  # the subscription starts at the feed head: nothing before it is sent
    _wait(lambda: first.outbox.cursor("itsm") is not None)
    _write(store, 4)
    time.sleep(1.0)  # the dispatcher retries against a port that refuses connections
    assert receiver.requests == 0
    first.stop()  # a restart while the receiver is down: nothing was delivered
    assert first.path.exists()

    expected = events_of(store.feed_since(start, limit=10_000))
    assert {e.type for e in expected} >= {EventType.CI_CREATED, EventType.CI_CHANGED,
                                          EventType.CI_RETIRED, EventType.RELATIONSHIP_ADDED,
                                          EventType.RELATIONSHIP_REMOVED}
    second = Dispatcher(store, settings)
    second.start()
    time.sleep(0.5)
    receiver.start()
    try:
        _wait(lambda: len(receiver.handled) >= len(expected))
        # a write while it is up arrives too, after the others
        store.apply(WriteBatch(nodes=[ci("app0", "Application", name="app-0b")]))
        _wait(lambda: len(receiver.handled) == len(expected) + 1)
    finally:
        second.stop()
        receiver.stop()
    assert receiver.bad_signatures == 0
    ids = receiver.ids()
    assert ids[:-1] == [e.id for e in expected], receiver.dump()
    assert receiver.types()[-1] == "ci.changed"
    assert receiver.handled[-1]["data"]["ci"] == {"ci_id": "app0", "name": "app-0b",
                                                  "ci_class": "Application"}
    # in order per CI: each subject's events by increasing (seq, index)
    per_ci: dict[str, list[tuple[int, int]]] = {}
    for p in receiver.handled:
        d = p["data"]
        subject = d["ci"]["ci_id"] if "ci" in d else d["relationship"]["source"]
        per_ci.setdefault(subject, []).append((d["seq"], d["index"]))
    assert all(v == sorted(v) for v in per_ci.values())
    # an update names its CI although the change itself does not carry the name
    retired = [p for p in receiver.handled if p["type"] == "ci.retired"]
    assert retired[0]["data"]["ci"]["name"] == "app-2"
    assert retired[0]["data"]["new"] == {"operational_status": "retired"}
    rel = [p for p in receiver.handled if p["type"] == "relationship.removed"][0]["data"]
    assert rel["relationship"]["source_name"] == "app-1"
    # the cursor is in the outbox file: a third dispatcher has nothing to send
    third = Dispatcher(store, settings)
    assert third.outbox.cursor("itsm") is not None
    assert third.run_once(third.outbox.subscription("itsm")) == 0
    third.stop()


def test_dead_letters_and_replay(store: GraphStore, tmp_path: Path) -> None:
    secret = new_secret()
    receiver = Receiver(secret)
    receiver.status = 400  # refuses everything: no retry, straight to the dead letters
    receiver.start()
    settings = _settings(tmp_path, receiver, secret)
    dispatcher = Dispatcher(store, settings)
    sub = dispatcher.outbox.subscription("itsm")
    assert dispatcher.run_once(sub) == 0  # starts at the head
    store.apply(WriteBatch(nodes=[ci("db1", "Database", name="pay-db")]))
    run = ImportRun(run_id="run-1", source="discovery", importer="csv",
                    status=RunStatus.SUCCEEDED, started_at=T0, finished_at=T0)
    store.apply(WriteBatch(nodes=[run]))
    try:
        assert dispatcher.run_once(sub) == 2
        letters = dispatcher.outbox.dead_letters("itsm")
        assert [(d.type, d.subject, d.error, d.attempts) for d in letters] == [
            ("ci.created", "db1", "HTTP 400", 1), ("import.finished", "run-1", "HTTP 400", 1)]
        assert receiver.handled == []
        receiver.status = 204
        replayed = dispatcher.replay(letters[1].id)
        assert replayed.event_id == letters[1].event_id
        assert receiver.types() == ["import.finished"]
        assert receiver.handled[0]["data"]["import_run"]["status"] == "succeeded"
        assert receiver.ids() == [letters[1].event_id]
        assert [d.id for d in dispatcher.outbox.dead_letters()] == [letters[0].id]
    finally:
        dispatcher.stop()
        receiver.stop()


@pytest.mark.parametrize("status", [500, 429])
def test_retry_gives_up_after_the_retry_timeout(store: GraphStore, tmp_path: Path,
                                                status: int) -> None:
    secret = new_secret()
    receiver = Receiver(secret)
    receiver.status = status
    receiver.start()
    settings = _settings(tmp_path, receiver, secret, webhook_retry_timeout=0.5)
    dispatcher = Dispatcher(store, settings)
    sub = dispatcher.outbox.subscription("itsm")
    dispatcher.run_once(sub)
    store.apply(WriteBatch(nodes=[ci("db1", "Database", name="pay-db")]))
    try:
        dispatcher.run_once(sub)
        [letter] = dispatcher.outbox.dead_letters()
        assert letter.error == f"HTTP {status}"
        assert letter.attempts > 1
        assert receiver.requests == letter.attempts
    finally:
        dispatcher.stop()
        receiver.stop()
