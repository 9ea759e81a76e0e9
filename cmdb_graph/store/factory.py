"""Open the store that the settings name."""

from __future__ import annotations

from cmdb_graph.model import Registry
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore

__all__ = ["open_store", "load_registry"]


def load_registry(settings: Settings) -> Registry:
    """The default registry, extended by ``settings.registry_path`` when set.

    Raises
    ------
    ConfigurationError
        The registry file is invalid.
    """
    if settings.registry_path is not None:
        return Registry.from_file(settings.registry_path)
    return Registry()


def open_store(settings: Settings, registry: Registry | None = None) -> GraphStore:
    """A ``Neo4jStore`` or a ``MemoryStore``, as ``settings.store`` says.

    Raises
    ------
    StoreUnavailableError
        Neo4j cannot be reached.
    StoreError
        The embedded store's database cannot be opened.
    """
    reg = registry or load_registry(settings)
    if settings.store == "neo4j":
        from cmdb_graph.store.neo4j import Neo4jStore

        return Neo4jStore.from_settings(settings, registry=reg)
    from cmdb_graph.store.memory import MemoryStore

    return MemoryStore(
        registry=reg,
        database_path=settings.embedded_database(),
        snapshot_path=settings.legacy_snapshot(),
        max_depth=settings.max_depth,
        feed_retention_days=settings.feed_retention_days,
    )
