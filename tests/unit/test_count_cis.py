"""The embedded store's cheap CI count (what an import run asks for every batch) is the CI
count of ``counts()``, before and after writes."""

from __future__ import annotations

from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.memory import MemoryStore
from tests.contract.estate import ci, estate_batch


def test_count_cis_is_the_ci_count_of_counts() -> None:
    # Arrange
    store = MemoryStore()
    empty = store.count_cis()
    store.apply(estate_batch())
    # Act
    store.apply(WriteBatch(nodes=[ci("n1", "Application"), ci("n2", "Application")]))
    # Assert
    assert empty == 0
    assert store.count_cis() == store.counts()["CI"] > 2
