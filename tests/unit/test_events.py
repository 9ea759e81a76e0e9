"""Events derived from change records, the webhooks file, signatures, the delivery hook and the
``cmdb-graph events`` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from cmdb_graph.cli import _register, app
from cmdb_graph.errors import ConfigurationError
from cmdb_graph.events import (
    EventType,
    Outbox,
    add_delivery_hook,
    events_of,
    load_webhooks,
    new_secret,
    parse_event_types,
    remove_delivery_hook,
    replay,
    sign_headers,
)
from cmdb_graph.feed import SYSTEM_ACTOR, ChangeRecord, NodeChange, NodeOp, RelChange, RelOp
from tests.helpers.receiver import Receiver

_register()
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _record(seq: int, nodes: list[NodeChange], rels: list[RelChange] | None = None
            ) -> ChangeRecord:
    return ChangeRecord(seq, AT, SYSTEM_ACTOR, tuple(nodes), tuple(rels or ()))


def test_each_change_gives_its_event_with_a_stable_id() -> None:
    records = [
        _record(1, [NodeChange(NodeOp.CREATED, "CI", "a", None,
                               {"name": "pay-db", "ci_class": "Database"}),
                    NodeChange(NodeOp.CREATED, "SupportGroup", "g", None, {"name": "DBA"})],
                [RelChange(RelOp.ADDED, "DEPENDS_ON", "b", "a", "CI", "CI", None, {}),
                 RelChange(RelOp.CHANGED, "DEPENDS_ON", "c", "a", "CI", "CI",
                           {"optional": None}, {"optional": True})]),
        _record(2, [NodeChange(NodeOp.UPDATED, "CI", "a", {"environment": None},
                               {"environment": "prod"}),
                    NodeChange(NodeOp.RETIRED, "CI", "b", {"operational_status": None},
                               {"operational_status": "retired"}),
                    NodeChange(NodeOp.MERGED, "CI", "c", {"duplicate_of": None},
                               {"duplicate_of": "a"})],
                [RelChange(RelOp.REMOVED, "DEPENDS_ON", "b", "a", "CI", "CI", {}, None)]),
    ]
    asked: list[list[str]] = []

    def names(ids: object) -> dict[str, tuple[str, str]]:
        asked.append(list(ids))  # type: ignore[call-overload]
        return {"a": ("pay-db", "Database"), "b": ("pay-api", "Application")}

    found = events_of(records, names=names)

    assert [(e.id, e.type, e.subject) for e in found] == [
        ("cmdb-1-0", EventType.CI_CREATED, "a"),
        ("cmdb-1-2", EventType.RELATIONSHIP_ADDED, "b"),  # index after the 2 node changes
        ("cmdb-2-0", EventType.CI_CHANGED, "a"),
        ("cmdb-2-1", EventType.CI_RETIRED, "b"),
        ("cmdb-2-2", EventType.CI_MERGED, "c"),
        ("cmdb-2-3", EventType.RELATIONSHIP_REMOVED, "b"),
    ]
    assert asked == [["a", "b", "c"]]  # one lookup for the whole batch
    changed = found[2].body()
    assert changed["type"] == "ci.changed" and changed["timestamp"] == AT.isoformat()
    assert changed["data"]["ci"] == {"ci_id": "a", "name": "pay-db", "ci_class": "Database"}
    assert (changed["data"]["old"], changed["data"]["new"]) == (
        {"environment": None}, {"environment": "prod"})
    assert found[4].data["ci"]["name"] == "c"  # gone from the store: its id stands in
    assert found[4].data["merged_into"] == {"ci_id": "a", "name": "pay-db"}
    assert found[1].data["relationship"]["source_name"] == "pay-api"
    only = events_of(records, names=names, types=parse_event_types(["ci.retired"]))
    assert [e.id for e in only] == ["cmdb-2-1"]


def test_import_finished_and_change_conflicts() -> None:
    run = "ImportRun"
    records = [
        _record(1, [NodeChange(NodeOp.CREATED, run, "r1", None, {"status": "running"})]),
        _record(2, [NodeChange(NodeOp.UPDATED, run, "r1", {"status": "running"},
                               {"status": "succeeded"})]),
        _record(3, [NodeChange(NodeOp.CREATED, run, "r2", None,
                               {"status": "failed", "source": "nmap"})]),
        _record(4, [NodeChange(NodeOp.CREATED, run, "r3", None, {"status": "dry_run"})]),
        _record(5, [NodeChange(NodeOp.CREATED, "Change", "CHG1", None, {"title": "patch"}),
                    NodeChange(NodeOp.CREATED, "Change", "CHG2", None, {"title": "reboot"})]),
    ]
    conflicts = {"CHG1": [{"kind": "same_ci", "detail": "both change pay-db"}], "CHG2": []}

    found = events_of(records, conflicts=lambda change_id, seq: conflicts[change_id])

    assert [(e.id, e.type) for e in found] == [
        ("cmdb-2-0", EventType.IMPORT_FINISHED), ("cmdb-3-0", EventType.IMPORT_FINISHED),
        ("cmdb-5-0", EventType.CHANGE_CONFLICTS)]
    assert found[1].data["import_run"] == {"run_id": "r2", "status": "failed",
                                           "source": "nmap"}
    assert found[2].data["change"] == {"change_id": "CHG1", "title": "patch"}
    assert found[2].data["conflicts"] == conflicts["CHG1"]


def test_unknown_event_type_is_named() -> None:
    with pytest.raises(ValueError, match="ci.deleted_typo"):
        parse_event_types(["ci.created", "ci.deleted_typo"])
    assert parse_event_types([]) == frozenset(EventType)


@pytest.mark.parametrize(("text", "message"), [
    ("webhooks:\n  a:\n    url: ftp://x\n    secret: env:S\n", "webhooks.a.url"),
    ("webhooks:\n  a:\n    url: http://x\n    secret: env:S\n    events: [ci.nope]\n",
     "webhooks.a.events"),
    ("webhooks:\n  a:\n    url: http://x\n    secret: whsec_literal\n", "webhooks.a.secret"),
    ("webhooks:\n  a:\n    url: http://x\n    secret: env:CMDB_TEST_UNSET_SECRET\n",
     "CMDB_TEST_UNSET_SECRET is not set"),
    ("webhooks: [\n", "not YAML"),
])
def test_a_bad_webhooks_file_names_file_and_field(tmp_path: Path, text: str,
                                                  message: str) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_webhooks(path)
    assert str(path) in str(caught.value)


def test_signatures_verify_with_the_library_and_fail_when_tampered() -> None:
    secret = new_secret()
    body = b'{"type":"ci.created"}'
    headers = sign_headers(secret, "cmdb-7-0", body)
    assert headers["webhook-id"] == "cmdb-7-0"
    assert Webhook(secret).verify(body, headers) == {"type": "ci.created"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"created", b"retired"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_dead_letters_listed_and_replayed_from_the_cli(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver(new_secret())
    receiver.start()
    outbox = Outbox(tmp_path / "estate.events.db")
    outbox.subscribe("itsm", receiver.url, frozenset(EventType), head=0,
                     secret=receiver.secret)
    body = (b'{"type":"ci.retired","timestamp":"2026-01-02T03:04:05+00:00","data":{"id":'
            b'"cmdb-3-0","ci":{"ci_id":"ci-1","name":"pay-db"}}}')
    outbox.dead_letter("itsm", "cmdb-3-0", "ci.retired", "ci-1", body, "HTTP 503", 7)
    outbox.dead_letter("itsm", "cmdb-4-0", "ci.created", "ci-2", body, "HTTP 503", 7)
    outbox.close()
    monkeypatch.setenv("CMDB_DATABASE_PATH", str(tmp_path / "estate.db"))
    monkeypatch.delenv("CMDB_EVENTS_PATH", raising=False)
    monkeypatch.delenv("CMDB_STORE", raising=False)
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    outcomes: list[tuple[str, str, str]] = []

    def hook(*args: str) -> None:
        outcomes.append(args)  # type: ignore[arg-type]

    add_delivery_hook(hook)
    runner = CliRunner()
    try:
        listed = runner.invoke(app, ["events", "dead-letters"], catch_exceptions=False)
        assert listed.exit_code == 0, listed.output
        as_json = runner.invoke(app, ["events", "dead-letters", "--json"])
        assert '"name": "pay-db"' in as_json.output and '"error": "HTTP 503"' in as_json.output
        subs = runner.invoke(app, ["events", "subscriptions", "--json"])
        assert '"dead_letters": 2' in subs.output
        done = runner.invoke(app, ["events", "replay", "1", "99"])
        assert done.exit_code == 1  # 99 does not exist
        assert "replayed 1: ci.retired pay-db" in done.output
        assert receiver.ids() == ["cmdb-3-0"]
        assert outcomes == [("itsm", "ci.retired", "delivered")]
        rest = Outbox(tmp_path / "estate.events.db")
        assert [d.event_id for d in rest.dead_letters()] == ["cmdb-4-0"]
        receiver.status = 500
        with pytest.raises(Exception, match="HTTP 500"):
            import httpx

            with httpx.Client() as client:
                replay(rest, 2, client)
        assert outcomes[-1] == ("itsm", "ci.created", "retried")
        assert len(rest.dead_letters()) == 1
    finally:
        remove_delivery_hook(hook)
        receiver.stop()


def test_serve_refuses_a_bad_webhooks_file_in_one_line(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("webhooks:\n  itsm:\n    url: http://127.0.0.1:9/hook\n"
                     "    secret: env:CMDB_TEST_UNSET_SECRET\n")
    monkeypatch.setenv("CMDB_WEBHOOKS_FILE", str(hooks))
    monkeypatch.setenv("CMDB_DATABASE_PATH", str(tmp_path / "estate.db"))
    monkeypatch.delenv("CMDB_NEO4J_URI", raising=False)
    monkeypatch.delenv("CMDB_STORE", raising=False)

    result = CliRunner().invoke(app, ["serve", "--port", "0"], env={"COLUMNS": "2000"})

    assert result.exit_code == 2
    assert "webhooks.itsm.secret: environment variable CMDB_TEST_UNSET_SECRET is not set" in (
        result.output)
    assert not (tmp_path / "estate.db").exists()  # refused before the store was opened


def test_nothing_subscribed_is_no_dead_letters_and_exit_0(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: a store with no events outbox and no webhooks file
    monkeypatch.setenv("CMDB_DATABASE_PATH", str(tmp_path / "estate.db"))
    for name in ("CMDB_EVENTS_PATH", "CMDB_STORE", "CMDB_NEO4J_URI", "CMDB_WEBHOOKS_FILE"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    # Act
    letters = runner.invoke(app, ["events", "dead-letters"])
    as_json = runner.invoke(app, ["events", "dead-letters", "--json"])
    subs = runner.invoke(app, ["events", "subscriptions"])

    # Assert
    assert letters.exit_code == 0, letters.output
    assert letters.stdout.startswith("no dead letters: no webhook subscriptions (no events "
                                     "outbox at")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []
    assert subs.exit_code == 0 and subs.stdout.startswith("no webhook subscriptions (")
    assert not (tmp_path / "estate.events.db").exists()
