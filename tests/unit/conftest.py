"""Fixtures of the command-line tests: the demo estate in a snapshot, and tables wide enough
that no name is wrapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb_graph.cli.query import out as console
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.synthetic import Estate, generate_estate


@pytest.fixture(scope="module")
def demo_estate() -> Estate:
    """The 1,000-CI synthetic estate (seed 42, the generator's default "now")."""
    return generate_estate(1000)


@pytest.fixture(scope="module")
def demo_snapshot(tmp_path_factory: pytest.TempPathFactory, demo_estate: Estate) -> Path:
    """A database holding :func:`demo_estate` (one per test module; tests only read it)."""
    path = tmp_path_factory.mktemp("estate") / "estate.db"
    store = MemoryStore(database_path=path)
    store.apply(demo_estate.to_batch())
    store.close()
    return path


@pytest.fixture
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The query commands' tables as wide as they need (a name is never wrapped)."""
    monkeypatch.setattr(console, "width", 400)
