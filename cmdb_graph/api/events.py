"""Outbound events over GraphQL: the live ``events`` subscription (graphql-transport-ws, reader)
and the webhook administration (admin): ``webhookSubscriptions``, ``deadLetters``,
``webhookSubscribe``, ``webhookUnsubscribe``, ``deadLetterReplay``. See ``docs/events.md``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
import strawberry
from strawberry.scalars import JSON

from cmdb_graph.api.auth import require_role
from cmdb_graph.api.common import Info, guarded
from cmdb_graph.api.errors import PublicError, UserError
from cmdb_graph.errors import CmdbError, FeedGapError, InvalidRecordError
from cmdb_graph.events import DeadLetter, DeliveryFailed, Event, EventType, events_of
from cmdb_graph.events.outbox import Subscription
from cmdb_graph.settings import Role

__all__ = ["EventMutation", "EventQuery", "EventSubscription"]

R = TypeVar("R")

EventTypeEnum = strawberry.enum(
    EventType, name="EventType",
    description="Kinds of outbound events (ci.created is CI_CREATED, ...).")


@strawberry.type(name="Event", description="One change as an outbound event, from the change "
                 "feed; the same body a webhook receives.")
class EventGql:
    id: strawberry.ID = strawberry.field(
        description="Idempotency key cmdb-<seq>-<index> (a webhook's webhook-id).")
    type: EventTypeEnum = strawberry.field(description="What happened.")
    seq: int = strawberry.field(description="Sequence number of the change record.")
    index: int = strawberry.field(description="Position of the change in its record.")
    subject: str = strawberry.field(
        description="What it is about: a ci_id (of the CI, or a relationship's source), a "
                    "run_id or a change_id.")
    at: datetime = strawberry.field(description="When the write committed (UTC).")
    data: JSON = strawberry.field(
        description="The webhook body's data: ci (ci_id, name, ci_class), relationship, "
                    "import_run or change and conflicts, with actor, old and new values.")


def _event(e: Event) -> EventGql:
    return EventGql(id=strawberry.ID(e.id), type=e.type, seq=e.seq, index=e.index,
                    subject=e.subject, at=datetime.fromisoformat(e.at),
                    data=e.body()["data"])


@strawberry.type(description="A webhook subscription (its secret is never shown again).")
class WebhookSubscription:
    name: str = strawberry.field(description="Name.")
    url: str = strawberry.field(description="Where events are POSTed.")
    events: list[EventTypeEnum] = strawberry.field(description="The event types sent.")
    origin: str = strawberry.field(description="file (CMDB_WEBHOOKS_FILE) or api.")
    position: int | None = strawberry.field(
        description="Sequence number of the last change record delivered (null: not started).")
    dead_letters: int = strawberry.field(description="Dead letters waiting for a replay.")


@strawberry.type(name="DeadLetter", description="An event whose delivery failed for good.")
class DeadLetterGql:
    id: strawberry.ID = strawberry.field(description="Dead letter number (for a replay).")
    subscription: str = strawberry.field(description="The subscription.")
    event_id: str = strawberry.field(description="The event's idempotency key (webhook-id).")
    type: str = strawberry.field(description="The event type.")
    subject: str = strawberry.field(description="ci_id, run_id or change_id.")
    error: str = strawberry.field(description="The last failure (HTTP status or error).")
    attempts: int = strawberry.field(description="Delivery attempts made.")
    failed_at: datetime = strawberry.field(description="When it was given up (UTC).")
    body: JSON = strawberry.field(description="The event body as it was signed and sent.")


def _letter(d: DeadLetter) -> DeadLetterGql:
    return DeadLetterGql(id=strawberry.ID(str(d.id)), subscription=d.subscription,
                         event_id=d.event_id, type=d.type, subject=d.subject, error=d.error,
                         attempts=d.attempts, failed_at=d.failed_at, body=orjson.loads(d.body))


def _subscription(info: Info, s: Subscription) -> WebhookSubscription:
    outbox = info.context.app.events.outbox
    cursor = outbox.cursor(s.name)
    return WebhookSubscription(
        name=s.name, url=s.url, events=sorted(s.events), origin=s.origin,
        position=cursor[0] if cursor else None,
        dead_letters=len(outbox.dead_letters(s.name, limit=100_000)))


@strawberry.type
class EventQuery:
    """Webhook administration (admin)."""

    @strawberry.field(description="Webhook subscriptions, with their position in the change "
                                  "feed and dead letters (admin).")
    async def webhook_subscriptions(self, info: Info) -> list[WebhookSubscription]:
        def work() -> list[WebhookSubscription]:
            return [_subscription(info, s)
                    for s in info.context.app.events.outbox.subscriptions()]

        return await _admin(info, work)

    @strawberry.field(description="Dead letters, oldest first (admin).")
    async def dead_letters(self, info: Info, subscription: str | None = None,
                           first: int = 100) -> list[DeadLetterGql]:
        def work() -> list[DeadLetterGql]:
            letters = info.context.app.events.outbox.dead_letters(subscription, limit=first)
            return [_letter(d) for d in letters]

        return await _admin(info, work)


async def _admin(info: Info, work: Callable[[], R]) -> R:
    try:
        require_role(info.context.principal, Role.ADMIN)
        return await asyncio.to_thread(work)
    except CmdbError as exc:
        raise PublicError(exc) from exc


@strawberry.input(description="A new webhook subscription.")
class WebhookSubscribeInput:
    name: str = strawberry.field(description="Name (letters, digits, _ . -).")
    url: str = strawberry.field(description="http(s) URL events are POSTed to.")
    events: list[EventTypeEnum] = strawberry.field(
        default_factory=list, description="Event types (none: every type).")
    secret: str | None = strawberry.field(
        default=None, description="Your own signing secret (whsec_ and base64 of 24 to 64 "
                                  "bytes); default: a new random one.")


@strawberry.type(description="A subscription made, and its signing secret (shown only now).")
class WebhookSubscribePayload:
    subscription: WebhookSubscription = strawberry.field(description="The subscription.")
    secret: str = strawberry.field(
        description="The Standard Webhooks signing secret (whsec_...), shown only now.")


@strawberry.type(description="A subscription removed.")
class WebhookUnsubscribePayload:
    name: str = strawberry.field(description="Its name.")
    removed: bool = strawberry.field(description="Whether it existed.")


@strawberry.type(description="One dead letter that could not be replayed.")
class ReplayFailure:
    id: strawberry.ID = strawberry.field(description="The dead letter.")
    error: str = strawberry.field(description="Why.")


@strawberry.type(description="Dead letters sent again.")
class DeadLetterReplayPayload:
    replayed: list[strawberry.ID] = strawberry.field(
        description="Delivered now, and removed from the list.")
    failed: list[ReplayFailure] = strawberry.field(description="Still failing (kept).")


WebhookSubscribeResult = Annotated[WebhookSubscribePayload | UserError,
                                   strawberry.union("WebhookSubscribeResult")]
WebhookUnsubscribeResult = Annotated[WebhookUnsubscribePayload | UserError,
                                     strawberry.union("WebhookUnsubscribeResult")]
DeadLetterReplayResult = Annotated[DeadLetterReplayPayload | UserError,
                                   strawberry.union("DeadLetterReplayResult")]


@strawberry.type
class EventMutation:
    """Webhook subscriptions and dead-letter replays (admin)."""

    @strawberry.mutation(description="Subscribe a URL to events from now on (admin); answers "
                                      "the signing secret once.")
    async def webhook_subscribe(self, info: Info, input: WebhookSubscribeInput
                                ) -> WebhookSubscribeResult:
        app = info.context.app

        def work() -> WebhookSubscribePayload:
            events = frozenset(input.events) or frozenset(EventType)
            sub = app.events.outbox.subscribe(input.name, input.url, events,
                                              head=app.store.feed_head(), secret=input.secret)
            if app.settings.events_dispatch:
                app.events.start()
            return WebhookSubscribePayload(subscription=_subscription(info, sub),
                                           secret=sub.secret)

        return await guarded(info, Role.ADMIN, work)

    @strawberry.mutation(description="Remove a subscription made through the API (admin); its "
                                      "dead letters stay.")
    async def webhook_unsubscribe(self, info: Info, name: str) -> WebhookUnsubscribeResult:
        def work() -> WebhookUnsubscribePayload:
            return WebhookUnsubscribePayload(
                name=name, removed=info.context.app.events.outbox.unsubscribe(name))

        return await guarded(info, Role.ADMIN, work)

    @strawberry.mutation(description="Send dead letters again, each once, with their original "
                                      "webhook-id (admin).")
    async def dead_letter_replay(self, info: Info, ids: list[strawberry.ID]
                                 ) -> DeadLetterReplayResult:
        events = info.context.app.events

        def work() -> DeadLetterReplayPayload:
            numbers: list[int] = []
            for i in ids:
                if not str(i).isdigit():
                    raise InvalidRecordError(f"dead letter id {str(i)!r} is not a number",
                                             field="ids")
                numbers.append(int(str(i)))
            done: list[strawberry.ID] = []
            failed: list[ReplayFailure] = []
            for n in numbers:
                try:
                    events.replay(n)
                    done.append(strawberry.ID(str(n)))
                except (DeliveryFailed, CmdbError) as exc:
                    failed.append(ReplayFailure(id=strawberry.ID(str(n)), error=str(exc)))
            return DeadLetterReplayPayload(replayed=done, failed=failed)

        return await guarded(info, Role.ADMIN, work)


@strawberry.type(name="Subscription")
class EventSubscription:
    """Live events over WebSocket (graphql-transport-ws)."""

    @strawberry.subscription(description="Events from now on, as they are committed (reader); "
                                          "the same events webhooks receive.")
    async def events(self, info: Info, types: list[EventTypeEnum] | None = None
                     ) -> AsyncGenerator[EventGql, None]:
        ctx = info.context
        try:
            require_role(ctx.principal, Role.READER)
        except CmdbError as exc:
            raise PublicError(exc) from exc
        app = ctx.app
        store = app.store
        wanted = frozenset(types) if types else None

        def names(ci_ids: Any) -> dict[str, tuple[str, str]]:
            return {k: (ci.name, ci.ci_class) for k, ci in store.get_cis(list(ci_ids)).items()}

        position: int = await asyncio.to_thread(store.feed_head)
        while True:
            try:
                records = await asyncio.to_thread(store.feed_since, position, limit=200)
            except FeedGapError:
                position = await asyncio.to_thread(store.feed_head)
                continue
            if not records:
                await asyncio.sleep(app.settings.events_poll_interval)
                continue
            found = await asyncio.to_thread(events_of, records, names=names,
                                            conflicts=app.change_conflicts, types=wanted)
            for e in found:
                yield _event(e)
            position = records[-1].seq
