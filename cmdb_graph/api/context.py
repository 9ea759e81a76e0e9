"""Per-request context: the store, the caller, the DataLoaders (built on first use) and the
nodes a resolver fetched ahead for its sub-fields."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.requestlog import RequestFacts, request_id_of
from cmdb_graph.errors import CmdbError
from cmdb_graph.events import Dispatcher
from cmdb_graph.feed import Actor, ActorKind
from cmdb_graph.model import Asset, ConfigurationItem, Node, Registry
from cmdb_graph.service.engine import Engine
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore

__all__ = ["AppState", "Context", "StoreCallCounter", "CI_LABEL"]

#: The label of configuration items in :meth:`Context.prefetch`.
CI_LABEL = ConfigurationItem.LABEL


class StoreCallCounter:
    """Counts store calls per request (tests use it to prove DataLoaders batch)."""

    def __init__(self) -> None:
        self.calls = 0


@dataclass
class AppState:
    """What lives as long as the server: settings, registry, store, a lock for writes, the
    impact :class:`~cmdb_graph.service.engine.Engine` (with its cached topology) and the
    webhook :class:`~cmdb_graph.events.Dispatcher`."""

    settings: Settings
    registry: Registry
    store: GraphStore
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    counter: StoreCallCounter = field(default_factory=StoreCallCounter)
    engine: Engine = field(init=False)
    events: Dispatcher = field(init=False)
    _conflicts: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    _conflicts_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.engine = Engine(self.store, self.settings)
        self.events = Dispatcher(self.store, self.settings, conflicts=self.change_conflicts)

    def change_conflicts(self, change_id: str, seq: int) -> list[dict[str, Any]]:
        """The conflicts of a recorded change as JSON objects (none when it is gone or its
        CIs are), for the ``change.conflicts`` event of change record ``seq``: asked of the
        engine once per record, whatever the number of subscribers."""
        key = (change_id, seq)
        with self._conflicts_lock:
            if key in self._conflicts:
                return self._conflicts[key]
        try:
            _, found = self.engine.change_conflicts(self.engine.change(change_id))
            answer = [c.model_dump(mode="json") for c in found]
        except CmdbError:
            answer = []
        with self._conflicts_lock:
            self._conflicts[key] = answer
            while len(self._conflicts) > 256:
                self._conflicts.pop(next(iter(self._conflicts)))
        return answer


class Context(BaseContext):
    """The GraphQL context of one request.

    The DataLoaders are built on first use (most operations need none or one of them).
    :attr:`prefetched` holds nodes a resolver fetched ahead, in one store call, for the
    sub-fields it sees selected (see :meth:`prefetch`); the resolvers of those sub-fields
    answer from it without a DataLoader round trip.
    """

    def __init__(self, app: AppState, principal: Principal,
                 facts: RequestFacts | None = None) -> None:
        super().__init__()
        self.app = app
        self.principal = principal
        #: What the request log says about this request (the id, the operation, errors).
        self.facts = facts or RequestFacts(request_id_of(None), principal)
        #: (label, key) -> the node, or None when the store has none
        self.prefetched: dict[tuple[str, str], Node | None] = {}

    @cached_property
    def actor(self) -> Actor:
        """The caller as the change feed records it (API key name and role, request id)."""
        role = self.principal.role
        return Actor(ActorKind.API, self.principal.name,
                     role=str(role) if role is not None else None,
                     request_id=self.facts.request_id)

    @cached_property
    def ci_loader(self) -> DataLoader[str, ConfigurationItem | None]:
        """CIs by ci_id (one store call per batch)."""
        return DataLoader(self._load_cis)

    @cached_property
    def group_loader(self) -> DataLoader[str, Node | None]:
        """Support groups by group_id."""
        return DataLoader(lambda keys: self._load_nodes("SupportGroup", keys))

    @cached_property
    def person_loader(self) -> DataLoader[str, Node | None]:
        """People by person_id."""
        return DataLoader(lambda keys: self._load_nodes("Person", keys))

    @cached_property
    def location_loader(self) -> DataLoader[str, Node | None]:
        """Locations by location_id."""
        return DataLoader(lambda keys: self._load_nodes("Location", keys))

    @cached_property
    def assets_by_ci_loader(self) -> DataLoader[str, list[Asset]]:
        """The assets tracking each CI, by ci_id."""
        return DataLoader(self._load_assets_by_ci)

    def prefetch(self, label: str, keys: Iterable[str]) -> dict[str, Node | None]:
        """Fetch the nodes of ``label`` among ``keys`` in one blocking store call.

        Keys fetched before in this request are not asked again. Meant for a resolver's
        worker thread (see :meth:`call`) that knows which nodes its selected sub-fields will
        need; the call is counted like a DataLoader's.

        Parameters
        ----------
        label : str
            ``CI_LABEL`` or another node label (``"SupportGroup"``, ...).
        keys : iterable of str
            Node keys; duplicates are fetched once.

        Returns
        -------
        dict
            Every key of ``keys`` -> its node, or None when the store has none.
        """
        wanted = list(dict.fromkeys(keys))
        missing = [k for k in wanted if (label, k) not in self.prefetched]
        if missing:
            self.app.counter.calls += 1
            found: dict[str, Node]
            if label == CI_LABEL:
                found = dict(self.store.get_cis(missing))
            else:
                found = self.store.get_nodes(label, missing)
            for k in missing:
                self.prefetched[(label, k)] = found.get(k)
        return {k: self.prefetched[(label, k)] for k in wanted}

    @property
    def store(self) -> GraphStore:
        """The process's store."""
        return self.app.store

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store call in a worker thread, counting it."""
        self.app.counter.calls += 1
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _load_cis(self, keys: Sequence[str]) -> list[ConfigurationItem | None]:
        found: dict[str, ConfigurationItem] = await self.call(self.store.get_cis, list(keys))
        return [found.get(k) for k in keys]

    async def _load_nodes(self, label: str, keys: Sequence[str]) -> list[Node | None]:
        found: dict[str, Node] = await self.call(self.store.get_nodes, label, list(keys))
        return [found.get(k) for k in keys]

    async def _load_assets_by_ci(self, keys: Sequence[str]) -> list[list[Asset]]:
        # one store call for the whole batch (GraphStore.assets_tracking)
        found: dict[str, list[Asset]] = await self.call(self.store.assets_tracking, list(keys))
        return [found.get(k, []) for k in keys]
