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
        batched = getattr(self.store, "assets_tracking", None)
        if callable(batched):  # one store call for the whole batch (MemoryStore)
            found: dict[str, list[Asset]] = await self.call(batched, list(keys))
            return [found.get(k, []) for k in keys]
        # one listing per CI: count each, so that the counter tells the truth
        self.app.counter.calls += max(len(set(keys)) - 1, 0)
        assets: list[Asset] = await self.call(_assets_tracking, self.store, list(keys))
        by_ci: dict[str, list[Asset]] = {k: [] for k in keys}
        for a in assets:
            if a.ci_id in by_ci:
                by_ci[a.ci_id].append(a)
        return [by_ci[k] for k in keys]


def _assets_tracking(store: GraphStore, ci_ids: list[str]) -> list[Asset]:
    out: list[Asset] = []
    for ci_id in dict.fromkeys(ci_ids):
        page = store.list_nodes("Asset", where={"ci_id": ci_id}, limit=100)
        out.extend(n for n in page.items if isinstance(n, Asset))
    return out
