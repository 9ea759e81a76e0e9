"""``iter_cis`` / ``iter_nodes``: every item of a listing, page by page, on both stores."""

from __future__ import annotations

import pytest

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model import ConfigurationItem, SupportGroup
from cmdb_graph.store import MAX_PAGE_SIZE, CIFilter, Page, iter_cis, iter_nodes, iter_pages
from cmdb_graph.store.base import GraphStore, WriteBatch
from tests.contract.estate import ci


def test_iter_cis_reads_every_page_of_a_filtered_listing(store: GraphStore) -> None:
    # Arrange: more servers than one page holds, and a few CIs of another class
    servers = [ci(f"s{i:05d}", "Server") for i in range(MAX_PAGE_SIZE + 234)]
    store.apply(WriteBatch(nodes=[*servers, ci("app1", "Application"), ci("zz", "Application")]))

    # Act
    everything = [c.ci_id for c in iter_cis(store)]
    only_servers = [c.ci_id for c in iter_cis(store, CIFilter(ci_class="Server"))]

    # Assert
    assert only_servers == sorted(s.ci_id for s in servers)
    assert everything == sorted([*only_servers, "app1", "zz"])


def test_iter_nodes_reads_every_page_with_equality_filters(store: GraphStore) -> None:
    # Arrange: two pages and a bit of groups, every third one with a manager
    groups = [
        SupportGroup(group_id=f"g{i:05d}", name=f"Group {i}", manager="ann" if i % 3 else None)
        for i in range(2 * MAX_PAGE_SIZE + 5)
    ]
    store.apply(WriteBatch(nodes=list(groups)))

    # Act
    every = [g.key for g in iter_nodes(store, "SupportGroup")]
    managed = [g.key for g in iter_nodes(store, "SupportGroup", where={"manager": "ann"})]

    # Assert
    assert every == sorted(g.group_id for g in groups)
    assert managed == sorted(g.group_id for g in groups if g.manager == "ann")
    assert list(iter_nodes(store, "Person")) == []


def test_iter_nodes_refuses_an_unknown_label_when_read(store: GraphStore) -> None:
    with pytest.raises(InvalidRecordError):
        next(iter_nodes(store, "NoSuchLabel"))


def test_iter_pages_follows_the_cursor_it_is_given(store: GraphStore) -> None:
    # Arrange
    store.apply(WriteBatch(nodes=[ci(f"c{i}", "Server") for i in range(7)]))
    cursors: list[str | None] = []

    def listing(after: str | None) -> Page[ConfigurationItem]:
        cursors.append(after)
        return store.list_cis(after=after, limit=3)

    # Act
    ids = [c.ci_id for c in iter_pages(listing)]

    # Assert: three pages, the second and third after the cursor of the one before
    assert ids == [f"c{i}" for i in range(7)]
    assert len(cursors) == 3 and cursors[0] is None and None not in cursors[1:]
