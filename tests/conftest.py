"""Shared fixtures: the registry and the stores.

``store`` is parametrised over ``["memory", "neo4j"]`` and gives an empty store. The Neo4j
variant carries the ``neo4j`` marker; it reads ``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD``
and is skipped when ``NEO4J_URI`` is unset, or fails when ``CMDB_REQUIRE_NEO4J=1``. One Neo4j
store (one driver) serves the whole session; it is cleared before each test.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmdb_graph.model import Registry
from cmdb_graph.store.base import GraphStore
from cmdb_graph.store.memory import MemoryStore


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Put the root logger back as it was after each test: a test that starts the server in
    this process (``serve``, ``app_from_environment``) installs the server's log handler,
    which would otherwise write into the output of every later CLI test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def registry() -> Registry:
    """A fresh default registry."""
    return Registry()


@pytest.fixture
def memory_store(tmp_path: Path, registry: Registry) -> Iterator[MemoryStore]:
    """An empty ``MemoryStore`` with a database in the test's temp folder."""
    store = MemoryStore(registry=registry, database_path=tmp_path / "estate.db")
    yield store


@pytest.fixture(scope="session")
def _neo4j_session_store() -> Iterator[GraphStore]:
    uri = os.environ.get("NEO4J_URI", "").strip()
    if not uri:
        message = "NEO4J_URI is not set (scripts/test starts Neo4j and sets it)"
        if os.environ.get("CMDB_REQUIRE_NEO4J") == "1":
            pytest.fail(f"{message}, and CMDB_REQUIRE_NEO4J=1 requires a server", pytrace=False)
        pytest.skip(message)
    from pydantic import SecretStr

    from cmdb_graph.settings import Settings
    from cmdb_graph.store.neo4j import Neo4jStore

    settings = Settings(
        store="neo4j",
        neo4j_uri=uri,
        neo4j_user=os.environ.get("NEO4J_USER", "neo4j"),
        neo4j_password=SecretStr(os.environ.get("NEO4J_PASSWORD", "")),
        neo4j_database=os.environ.get("NEO4J_DATABASE", "neo4j"),
    )
    store = Neo4jStore.from_settings(settings, registry=Registry())
    yield store
    store.close()


@pytest.fixture
def neo4j_store(_neo4j_session_store: GraphStore, registry: Registry) -> GraphStore:
    """The session's ``Neo4jStore``, emptied, with a fresh default registry."""
    store = _neo4j_session_store
    store.registry = registry
    store.clear()
    return store


@pytest.fixture(params=["memory", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest) -> GraphStore:
    """An empty store of each kind."""
    name = "memory_store" if request.param == "memory" else "neo4j_store"
    found: GraphStore = request.getfixturevalue(name)
    return found
