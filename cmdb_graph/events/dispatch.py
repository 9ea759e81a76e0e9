"""The webhook dispatcher: reads the change feed from each subscription's cursor and POSTs its
events, signed as the Standard Webhooks specification says.

* **Never blocks a write.** Writes only append to the feed (as they always do); the dispatcher
  reads it afterwards, in its own threads.
* **At least once, in order.** One thread per subscription delivers its events one at a time
  in feed order (so in order per CI), and stores the cursor after each; a crash or restart
  re-sends at most the event in flight, with the same ``webhook-id``.
* **Retries** with exponential backoff and jitter (stamina) on connection errors, timeouts,
  408, 425, 429 and 5xx, for up to ``webhook_retry_timeout`` seconds (waits from
  ``webhook_backoff_initial`` up to ``webhook_backoff_max``); then, or at once on any other
  answer (3xx, 4xx), the event becomes a **dead letter** and the subscription moves on. An
  admin lists and replays dead letters (GraphQL ``deadLetters`` / ``deadLetterReplay``, or
  ``cmdb-graph events dead-letters`` / ``replay``).
* **Signed** with the ``standardwebhooks`` library: ``webhook-id`` (the event id,
  ``cmdb-<seq>-<index>``), ``webhook-timestamp`` (when this attempt was sent) and
  ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``), each attempt signed afresh.
* **One dispatching process per outbox file**: a process dispatches only while it holds an
  exclusive lock on ``<outbox>.lock`` (``serve --workers N``: one worker dispatches; another
  takes over if it exits).

Delivery outcomes are reported to the callables registered with :func:`add_delivery_hook`
(for metrics).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import stamina
from standardwebhooks.webhooks import Webhook

from cmdb_graph.errors import CmdbError, FeedGapError, NotFoundError
from cmdb_graph.events.events import ConflictCheck, Event, events_of
from cmdb_graph.events.outbox import DeadLetter, Outbox, Subscription, load_webhooks
from cmdb_graph.metrics import WEBHOOK_DELIVERIES
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore

__all__ = [
    "DeliveryHook",
    "Dispatcher",
    "DeliveryFailed",
    "add_delivery_hook",
    "events_path",
    "post",
    "remove_delivery_hook",
    "replay",
    "sign_headers",
]

log = logging.getLogger(__name__)

#: ``hook(subscription, event_type, outcome)``; outcome is ``delivered``, ``retried`` (one
#: failed attempt that will be retried) or ``dead_lettered``.
DeliveryHook = Callable[[str, str, str], None]
_hooks: list[DeliveryHook] = []
#: A cursor index past every change of its record: the record is done.
_DONE = 1 << 30
_RETRY_STATUS = frozenset({408, 425, 429})


def add_delivery_hook(hook: DeliveryHook) -> None:
    """Call ``hook(subscription, event_type, outcome)`` after every delivery attempt's outcome
    (``delivered``, ``retried``, ``dead_lettered``), from the dispatcher's threads. A hook
    must be quick and must not raise (what it raises is logged and ignored)."""
    _hooks.append(hook)


def remove_delivery_hook(hook: DeliveryHook) -> None:
    """Stop calling ``hook``."""
    if hook in _hooks:
        _hooks.remove(hook)


def _report(subscription: str, event_type: str, outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    for hook in list(_hooks):
        try:
            hook(subscription, event_type, outcome)
        except Exception:
            log.exception("delivery hook %r failed", hook)


def events_path(settings: Settings, store: GraphStore | None = None) -> Path:
    """The outbox file: ``CMDB_EVENTS_PATH``; else ``NAME.events.db`` beside the embedded
    store's database; else ``.cmdb/events.db``."""
    if settings.events_path is not None:
        return settings.events_path
    database = getattr(store, "database_path", None)
    if database is None and store is None and settings.store == "memory":
        database = settings.embedded_database()
    if isinstance(database, Path):
        return database.with_name(database.stem + ".events.db")
    return Path(".cmdb/events.db")


def sign_headers(secret: str, event_id: str, body: bytes,
                 when: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery attempt (and ``content-type``)."""
    now = when or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "user-agent": "cmdb-graph-webhooks",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
    }


class DeliveryFailed(CmdbError):
    """A delivery attempt failed (``retry``: worth another attempt)."""

    code = "DELIVERY_FAILED"

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class _Retry(Exception):
    """A failed attempt that stamina retries."""


class _Stopped(Exception):
    """The dispatcher is stopping: leave the event for the next start."""


class Dispatcher:
    """Delivers each subscription's events (see the module docstring).

    Parameters
    ----------
    store : GraphStore
        Whose change feed is delivered.
    settings : Settings
        ``webhooks_file``, ``events_path``, ``webhook_*`` and ``events_poll_interval``.
    conflicts : callable, optional
        Conflicts of a change request, for ``change.conflicts`` events.
    """

    def __init__(self, store: GraphStore, settings: Settings, *,
                 conflicts: ConflictCheck | None = None) -> None:
        self.store = store
        self.settings = settings
        self.conflicts = conflicts
        self.path = events_path(settings, store)
        self._outbox: Outbox | None = None
        self._open_lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._workers: dict[str, threading.Thread] = {}
        self._lockfile: IO[bytes] | None = None
        self._http = httpx.Client(timeout=settings.webhook_timeout, follow_redirects=False)

    # -- the outbox -----------------------------------------------------------------------
    @property
    def outbox(self) -> Outbox:
        """The outbox file, opened (and created) on first use."""
        with self._open_lock:
            if self._outbox is None:
                subs = (load_webhooks(self.settings.webhooks_file)
                        if self.settings.webhooks_file is not None else [])
                self._outbox = Outbox(self.path, subs)
            return self._outbox

    def has_outbox(self) -> bool:
        """Whether there is anything to dispatch: a webhooks file, or an outbox file."""
        return self.settings.webhooks_file is not None or self.path.exists()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start dispatching in background threads (idempotent; nothing when there is no
        webhooks file and no outbox file yet)."""
        if self._supervisor is not None or not self.has_outbox():
            return
        self.outbox  # noqa: B018 - open it now: a bad webhooks file fails the start
        self._stop.clear()
        self._supervisor = threading.Thread(target=self._supervise, name="webhooks",
                                            daemon=True)
        self._supervisor.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads, waiting at most ``timeout`` seconds in all (an event in flight or
        waiting for its next attempt stays pending), and release the lock."""
        self._stop.set()
        threads = [t for t in (self._supervisor, *self._workers.values()) if t is not None]
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._supervisor = None
        self._workers.clear()
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None
        with self._open_lock:
            if self._outbox is not None:
                self._outbox.close()
                self._outbox = None
        self._http.close()
        self._http = httpx.Client(timeout=self.settings.webhook_timeout,
                                  follow_redirects=False)

    def _hold_lock(self) -> bool:
        if self._lockfile is not None:
            return True
        handle = open(f"{self.path}.lock", "ab")  # held while dispatching
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lockfile = handle
        log.info("dispatching webhooks (pid %d, outbox %s)", os.getpid(), self.path)
        return True

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                if self._hold_lock():
                    subs = {s.name: s for s in self.outbox.subscriptions()}
                    for name, sub in subs.items():
                        worker = self._workers.get(name)
                        if worker is None or not worker.is_alive():
                            worker = threading.Thread(target=self._work, args=(sub,),
                                                      name=f"webhook:{name}", daemon=True)
                            self._workers[name] = worker
                            worker.start()
            except Exception:
                log.exception("webhook dispatcher")
            self._stop.wait(self.settings.events_poll_interval)

    # -- one subscription -----------------------------------------------------------------
    def _names(self, ci_ids: Any) -> dict[str, tuple[str, str]]:
        return {k: (ci.name, ci.ci_class)
                for k, ci in self.store.get_cis(list(ci_ids)).items()}

    def pending(self, sub: Subscription, *, limit: int = 200) -> tuple[list[Event], int | None]:
        """The next events of ``sub`` after its cursor (from at most ``limit`` records), and
        the last record read (``None``: none); a subscription seen for the first time starts
        at the feed head."""
        position = self.outbox.cursor(sub.name)
        if position is None:
            position = (self.store.feed_head(), _DONE)
            self.outbox.advance(sub.name, position)
        seq, index = position
        after = seq if index >= _DONE else seq - 1
        try:
            records = self.store.feed_since(after, limit=limit)
        except FeedGapError:
            head = self.store.feed_head()
            log.error("webhook %s: change records after %d were pruned; resuming at %d "
                      "(those events are lost)", sub.name, seq, head)
            self.outbox.advance(sub.name, (head, _DONE))
            return [], None
        events = [e for e in events_of(records, names=self._names, conflicts=self.conflicts,
                                       types=sub.events) if e.position > position]
        return events, (records[-1].seq if records else None)

    def run_once(self, sub: Subscription) -> int:
        """Deliver what is pending for ``sub`` now (one batch of records); how many events
        were handled (delivered or dead-lettered)."""
        events, last = self.pending(sub)
        for event in events:
            self.deliver(sub, event)
        if last is not None:
            # the records after the last event have nothing for this subscription
            self.outbox.advance(sub.name, (last, _DONE))
        return len(events) if last is None else max(len(events), 1)

    def _work(self, sub: Subscription) -> None:
        while not self._stop.is_set():
            try:
                if sub.name not in {s.name for s in self.outbox.subscriptions()}:
                    return
                if self.run_once(sub):
                    continue
            except _Stopped:
                return
            except Exception:
                log.exception("webhook %s: dispatching failed; trying again", sub.name)
            self._stop.wait(self.settings.events_poll_interval)

    def deliver(self, sub: Subscription, event: Event) -> bool:
        """Deliver one event with retries, then move the cursor past it; ``False`` when it
        became a dead letter.

        Raises
        ------
        _Stopped
            The dispatcher is stopping (the event stays pending).
        """
        body = event.encode()
        s = self.settings
        attempts = 0
        error = ""
        try:
            for attempt in stamina.retry_context(
                on=_Retry, attempts=None, timeout=s.webhook_retry_timeout,
                wait_initial=s.webhook_backoff_initial, wait_max=s.webhook_backoff_max,
                wait_jitter=s.webhook_backoff_initial,
            ):
                if self._stop.is_set():
                    raise _Stopped
                with attempt:
                    attempts += 1
                    try:
                        self.post(sub, event.id, body)
                    except DeliveryFailed as exc:
                        error = str(exc)
                        if not exc.retry:
                            break
                        _report(sub.name, str(event.type), "retried")
                        raise _Retry(error) from exc
                    self.outbox.advance(sub.name, event.position)
                    _report(sub.name, str(event.type), "delivered")
                    return True
        except _Retry:
            pass
        log.warning("webhook %s: event %s dead-lettered after %d attempt(s): %s", sub.name,
                    event.id, attempts, error)
        self.outbox.dead_letter(sub.name, event.id, str(event.type), event.subject, body, error,
                                attempts, event.position)
        _report(sub.name, str(event.type), "dead_lettered")
        return False

    def post(self, sub: Subscription, event_id: str, body: bytes) -> None:
        """One signed POST (see :func:`post`)."""
        post(self._http, sub, event_id, body)

    def replay(self, letter_id: int) -> DeadLetter:
        """Send a dead letter again (see :func:`replay`)."""
        return replay(self.outbox, letter_id, self._http)


def post(client: httpx.Client, sub: Subscription, event_id: str, body: bytes) -> None:
    """One signed POST of ``body`` to the subscription's URL.

    Raises
    ------
    DeliveryFailed
        The receiver did not answer 2xx (``retry`` for connection errors, timeouts, 408, 425,
        429 and 5xx).
    """
    try:
        answer = client.post(sub.url, content=body,
                             headers=sign_headers(sub.secret, event_id, body))
    except httpx.TransportError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}", retry=True) from exc
    status = answer.status_code
    if 200 <= status < 300:
        return
    raise DeliveryFailed(f"HTTP {status}", retry=status in _RETRY_STATUS or status >= 500)


def replay(outbox: Outbox, letter_id: int, client: httpx.Client) -> DeadLetter:
    """Send a dead letter again, once, with its original ``webhook-id`` (signed afresh); on
    success it leaves the list.

    Returns
    -------
    DeadLetter
        The letter replayed.

    Raises
    ------
    NotFoundError
        No such dead letter, or its subscription is gone.
    DeliveryFailed
        The receiver refused it again (the letter stays).
    """
    letter = outbox.dead_letter_by_id(letter_id)
    try:
        sub = outbox.subscription(letter.subscription)
    except NotFoundError as exc:
        raise NotFoundError(f"dead letter {letter_id}: subscription "
                            f"{letter.subscription!r} no longer exists") from exc
    try:
        post(client, sub, letter.event_id, letter.body)
    except DeliveryFailed:
        _report(sub.name, letter.type, "retried")
        raise
    outbox.drop_dead_letter(letter_id)
    _report(sub.name, letter.type, "delivered")
    return letter
