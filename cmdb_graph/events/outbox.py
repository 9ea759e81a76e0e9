"""The outbox's durable state: subscriptions, each one's cursor in the feed, and dead letters.

One SQLite file beside the store (``Settings.events_path()``: ``NAME.events.db`` beside the
embedded store's database; ``.cmdb/events.db`` for Neo4j, or ``CMDB_EVENTS_PATH``). The events
themselves are never copied here: they are the store's change feed, read again from each
subscription's cursor. A cursor is ``(seq, index)``, the position of the last event delivered
(or dead-lettered); it is written after each delivery, so a restart re-sends at most the one
event that was in flight (at least once; the receiver deduplicates on ``webhook-id``). The file
is in WAL mode with ``synchronous=NORMAL``: a killed process loses no cursor move; an OS crash
or power cut may lose the last ones, which only re-sends those events with the same ids.

Tables
------
``subscriptions(name, url, secret, events, origin, created_at)``
    Subscriptions made through the API (``origin = 'api'``); those of the webhooks file are
    not stored (the file is read at start), only their cursors.
``cursors(name, seq, idx)``
    Where each subscription is in the feed.
``dead_letters(id, subscription, event_id, type, subject, body, error, attempts, failed_at)``
    Events whose delivery failed for good, with the exact body that was signed.

Subscriptions from a file (``CMDB_WEBHOOKS_FILE``), YAML::

    webhooks:
      itsm-bridge:                          # the subscription's name
        url: https://itsm.example.com/hooks/cmdb
        secret: env:CMDB_WEBHOOK_SECRET     # whsec_... (an env:/file: reference)
        events: [ci.retired, ci.merged, change.conflicts]   # default: every type
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cmdb_graph.connectors.config import resolve_secret
from cmdb_graph.errors import ConfigurationError, InvalidRecordError, NotFoundError, StoreError
from cmdb_graph.events.events import EventType, parse_event_types

__all__ = ["DeadLetter", "Outbox", "Subscription", "load_webhooks", "new_secret"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, events TEXT NOT NULL,
    origin TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL,
    idx INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL, event_id TEXT NOT NULL,
    type TEXT NOT NULL, subject TEXT NOT NULL, body BLOB NOT NULL, error TEXT NOT NULL,
    attempts INTEGER NOT NULL, failed_at TEXT NOT NULL);
"""
_NAME = r"^[A-Za-z0-9_.\-]{1,100}$"


def new_secret() -> str:
    """A new random signing secret in the Standard Webhooks form (``whsec_`` + base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Subscription:
    """One webhook subscription.

    Attributes
    ----------
    name : str
    url : str
        Where events are POSTed.
    secret : str
        The signing secret (``whsec_...``); never shown after creation.
    events : frozenset of EventType
        The event types sent.
    origin : str
        ``file`` (the webhooks file) or ``api`` (``webhookSubscribe``).
    """

    name: str
    url: str
    secret: str
    events: frozenset[EventType]
    origin: str


@dataclass(frozen=True)
class DeadLetter:
    """An event whose delivery failed for good (see :meth:`Outbox.dead_letters`)."""

    id: int
    subscription: str
    event_id: str
    type: str
    subject: str
    body: bytes
    error: str
    attempts: int
    failed_at: datetime


class _WebhookEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    secret: str
    events: list[str] = Field(default_factory=list)

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        parse_event_types(value)
        return value


class _WebhooksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: dict[str, _WebhookEntry] = Field(default_factory=dict)


def load_webhooks(path: Path) -> list[Subscription]:
    """The subscriptions of a webhooks file (see the module docstring).

    Raises
    ------
    ConfigurationError
        The file cannot be read, is not YAML, or an entry is wrong (one line per mistake,
        naming the file and the entry's field), or a secret reference does not resolve.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = _WebhooksFile.model_validate(raw)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the webhooks file ({exc.strerror})"
                                 ) from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigurationError(f"{path}: {problems}") from None
    out: list[Subscription] = []
    for name, entry in parsed.webhooks.items():
        if not re.match(_NAME, name):
            raise ConfigurationError(f"{path}: webhooks.{name}: a name is letters, digits, "
                                     "'_', '.' and '-'")
        try:
            secret = resolve_secret(entry.secret, base=path.parent).get_secret_value()
        except ValueError as exc:
            raise ConfigurationError(f"{path}: webhooks.{name}.secret: {exc}") from None
        out.append(Subscription(name, entry.url, secret, parse_event_types(entry.events),
                                "file"))
    return out


def _valid_secret(secret: str) -> bool:
    if not secret.startswith("whsec_"):
        return False
    try:
        raw = base64.b64decode(secret[6:], validate=True)
    except (binascii.Error, ValueError):
        return False
    return 24 <= len(raw) <= 64


class Outbox:
    """The outbox's SQLite file (see the module docstring). Thread-safe.

    Parameters
    ----------
    path : Path
        The file; created (with its folder) when missing.
    file_subscriptions : list of Subscription
        The webhooks file's subscriptions (listed with the stored ones).

    Raises
    ------
    StoreError
        The file cannot be opened.
    """

    def __init__(self, path: Path, file_subscriptions: list[Subscription] | None = None
                 ) -> None:
        self.path = Path(path)
        self.file_subscriptions = list(file_subscriptions or [])
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a killed process loses nothing; an OS crash or power cut may lose the
            # last cursor moves, which only re-sends those events (at least once, same ids)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._tx():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: cannot open the events outbox: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: events outbox: {exc}") from exc

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: events outbox: {exc}") from exc

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()

    # -- subscriptions --------------------------------------------------------------------
    def subscriptions(self) -> list[Subscription]:
        """Every subscription: the webhooks file's, then the API's (by name)."""
        stored = [Subscription(n, u, s, parse_event_types(orjson.loads(e)), o)
                  for n, u, s, e, o in self._rows(
                      "SELECT name, url, secret, events, origin FROM subscriptions ORDER BY name")]
        names = {s.name for s in self.file_subscriptions}
        return self.file_subscriptions + [s for s in stored if s.name not in names]

    def subscription(self, name: str) -> Subscription:
        """One subscription by name (``NotFoundError`` when there is none)."""
        for sub in self.subscriptions():
            if sub.name == name:
                return sub
        raise NotFoundError(f"no webhook subscription named {name!r}")

    def subscribe(self, name: str, url: str, events: frozenset[EventType], *, head: int,
                  secret: str | None = None) -> Subscription:
        """Add (or replace) an API subscription, starting after feed record ``head``.

        Raises
        ------
        InvalidRecordError
            A bad name or URL, or the name belongs to the webhooks file.
        """
        if not re.match(_NAME, name):
            raise InvalidRecordError("a name is 1-100 letters, digits, '_', '.' and '-'",
                                     field="name")
        if not re.match(r"^https?://[^\s]+$", url):
            raise InvalidRecordError("the URL must be http:// or https://", field="url")
        if any(s.name == name for s in self.file_subscriptions):
            raise InvalidRecordError(f"{name!r} is a subscription of the webhooks file",
                                     field="name")
        if secret is not None and not _valid_secret(secret):
            raise InvalidRecordError("a secret is whsec_ followed by the base64 of 24 to 64 "
                                     "bytes", field="secret")
        sub = Subscription(name, url, secret or new_secret(), events, "api")
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO subscriptions VALUES (?, ?, ?, ?, ?, ?)",
                         (name, url, sub.secret, orjson.dumps(sorted(events)).decode(), "api",
                          datetime.now(UTC).isoformat()))
            conn.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)", (name, head, 1 << 30))
        return sub

    def unsubscribe(self, name: str) -> bool:
        """Remove an API subscription and its cursor (dead letters stay); whether it existed.

        Raises
        ------
        InvalidRecordError
            The name belongs to the webhooks file (remove it there).
        """
        if any(s.name == name for s in self.file_subscriptions):
            raise InvalidRecordError(f"{name!r} is a subscription of the webhooks file; "
                                     "remove it there", field="name")
        with self._tx() as conn:
            found = conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,)).rowcount
            conn.execute("DELETE FROM cursors WHERE name = ?", (name,))
        return bool(found)

    # -- cursors --------------------------------------------------------------------------
    def cursor(self, name: str) -> tuple[int, int] | None:
        """The subscription's position ``(seq, index)``; ``None`` before its first."""
        rows = self._rows("SELECT seq, idx FROM cursors WHERE name = ?", (name,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def advance(self, name: str, position: tuple[int, int]) -> None:
        """Store the subscription's position (durably, before returning)."""
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)", (name, *position))

    # -- dead letters ---------------------------------------------------------------------
    def dead_letter(self, subscription: str, event_id: str, type_: str, subject: str,
                    body: bytes, error: str, attempts: int,
                    position: tuple[int, int] | None = None) -> None:
        """Keep a failed event; with ``position``, advance the cursor in the same
        transaction."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO dead_letters (subscription, event_id, type, subject, body, error, "
                "attempts, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (subscription, event_id, type_, subject, body, error[:2000], attempts,
                 datetime.now(UTC).isoformat()))
            if position is not None:
                conn.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)",
                             (subscription, *position))

    def dead_letters(self, subscription: str | None = None, *, limit: int = 1000
                     ) -> list[DeadLetter]:
        """Dead letters, oldest first (of one subscription, or all)."""
        sql = ("SELECT id, subscription, event_id, type, subject, body, error, attempts, "
               "failed_at FROM dead_letters")
        params: tuple[Any, ...] = ()
        if subscription is not None:
            sql += " WHERE subscription = ?"
            params = (subscription,)
        rows = self._rows(sql + " ORDER BY id LIMIT ?", (*params, limit))
        return [DeadLetter(int(i), s, e, t, subj, bytes(b), err, int(a),
                           datetime.fromisoformat(f))
                for i, s, e, t, subj, b, err, a, f in rows]

    def dead_letter_by_id(self, letter_id: int) -> DeadLetter:
        """One dead letter (``NotFoundError`` when there is none)."""
        rows = self._rows(
            "SELECT id, subscription, event_id, type, subject, body, error, attempts, failed_at "
            "FROM dead_letters WHERE id = ?", (letter_id,))
        if not rows:
            raise NotFoundError(f"no dead letter {letter_id}")
        i, s, e, t, subj, b, err, a, f = rows[0]
        return DeadLetter(int(i), s, e, t, subj, bytes(b), err, int(a), datetime.fromisoformat(f))

    def drop_dead_letter(self, letter_id: int) -> None:
        """Remove a dead letter (it was replayed)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM dead_letters WHERE id = ?", (letter_id,))
