"""Per-request context: the store, the caller and the DataLoaders (built per request)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from cmdb_graph.api.auth import Principal
from cmdb_graph.api.engine import Engine
from cmdb_graph.model import Asset, ConfigurationItem, Node, Registry
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore

__all__ = ["AppState", "Context", "StoreCallCounter"]


class StoreCallCounter:
    """Counts store calls per request (tests use it to prove DataLoaders batch)."""

    def __init__(self) -> None:
        self.calls = 0


@dataclass
class AppState:
    """What lives as long as the server: settings, registry, store, a lock for writes, and the
    impact :class:`~cmdb_graph.api.engine.Engine` (with its cached topology)."""

    settings: Settings
    registry: Registry
    store: GraphStore
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    counter: StoreCallCounter = field(default_factory=StoreCallCounter)
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = Engine(self.store, self.settings)


class Context(BaseContext):
    """The GraphQL context of one request."""

    def __init__(self, app: AppState, principal: Principal) -> None:
        super().__init__()
        self.app = app
        self.principal = principal
        self.ci_loader: DataLoader[str, ConfigurationItem | None] = DataLoader(self._load_cis)
        self.group_loader: DataLoader[str, Node | None] = DataLoader(
            lambda keys: self._load_nodes("SupportGroup", keys)
        )
        self.person_loader: DataLoader[str, Node | None] = DataLoader(
            lambda keys: self._load_nodes("Person", keys)
        )
        self.location_loader: DataLoader[str, Node | None] = DataLoader(
            lambda keys: self._load_nodes("Location", keys)
        )
        self.assets_by_ci_loader: DataLoader[str, list[Asset]] = DataLoader(
            self._load_assets_by_ci
        )

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
