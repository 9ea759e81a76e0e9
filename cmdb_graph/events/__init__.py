"""Outbound events: the change feed as webhooks (an outbox with a durable cursor per
subscription) and as a GraphQL subscription.

:mod:`cmdb_graph.events.events` derives events from change records;
:mod:`cmdb_graph.events.outbox` keeps subscriptions, cursors and dead letters;
:mod:`cmdb_graph.events.dispatch` delivers them. See ``docs/events.md``.
"""

from cmdb_graph.events.dispatch import (
    DeliveryFailed,
    DeliveryHook,
    Dispatcher,
    add_delivery_hook,
    events_path,
    post,
    remove_delivery_hook,
    replay,
    sign_headers,
)
from cmdb_graph.events.events import Event, EventType, events_of, parse_event_types
from cmdb_graph.events.outbox import DeadLetter, Outbox, Subscription, load_webhooks, new_secret

__all__ = [
    "DeadLetter",
    "DeliveryFailed",
    "DeliveryHook",
    "Dispatcher",
    "Event",
    "EventType",
    "Outbox",
    "Subscription",
    "add_delivery_hook",
    "events_of",
    "events_path",
    "load_webhooks",
    "new_secret",
    "parse_event_types",
    "post",
    "remove_delivery_hook",
    "replay",
    "sign_headers",
]
