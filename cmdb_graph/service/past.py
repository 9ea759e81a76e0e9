"""Time travel: the engine's questions answered on the graph as it was at a past time.

:class:`TimeTravel` adds to :class:`~cmdb_graph.service.cache.GraphCache` the graph of the
past (:meth:`TimeTravel.as_of`: the current graph with the change records committed after
the time undone, :func:`cmdb_graph.service.history.rewind_graph`) and a CI as it was
(:meth:`TimeTravel.past_ci`).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime  # noqa: F401 - UTC: as_of's example

import impact
from cmdb_graph.model import ConfigurationItem
from cmdb_graph.service import history
from cmdb_graph.service.cache import Cached, GraphCache, _lean, _position
from cmdb_graph.service.follow import copy_graph
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore

__all__ = ["TimeTravel"]


@dataclass(frozen=True, slots=True)
class _Past:
    """The last graph of the past the engine built: as of feed position ``seq`` (in the
    database ``identity``), rewound from feed position ``head``."""

    seq: int
    identity: Hashable
    head: int
    cached: Cached


class TimeTravel(GraphCache):
    """:class:`~cmdb_graph.service.cache.GraphCache` with the graph of the past (see the
    module docstring; same parameters)."""

    def __init__(
        self, store: GraphStore, settings: Settings | None = None, *,
        far_behind: int | None = None,
    ) -> None:
        super().__init__(store, settings, far_behind=far_behind)
        self._past: _Past | None = None
        self._past_lock = threading.Lock()
        self._probes: history.Probes = {}
        self._probes_of: Hashable = None
        #: Graphs of the past built (:meth:`as_of`) and the records they undid.
        self.past_stats: dict[str, int] = {"graphs": 0, "records": 0}

    @contextmanager
    def as_of(self, at: datetime | None) -> Iterator[None]:
        """Answer the questions asked in the block on the graph as it was at ``at``.

        ``at`` stands for every write committed at or before it. The graph of the past is the
        current one (the cached graph, or one read from the store) with the change records
        committed after ``at`` undone, newest first
        (:func:`cmdb_graph.service.history.rewind_graph`); the last one built is kept, so the
        next question at a time that resolves to the same feed position costs only the search
        for that position. ``None``: the block answers on the current graph.

        Raises
        ------
        HistoryUnavailableError
            ``at`` is before the feed's oldest retained record or its first record (when the
            store holds any), or the store was cleared after it.

        Examples
        --------
        >>> from cmdb_graph.store.memory import MemoryStore
        >>> from cmdb_graph.service.engine import Engine
        >>> engine = Engine(MemoryStore())
        >>> with engine.as_of(datetime(2020, 1, 1, tzinfo=UTC)):
        ...     len(engine.whole_graph())
        0
        """
        if at is None:
            yield
            return
        past = self._past_graph(at)
        held = getattr(self._local, "held", None)
        depth: int = getattr(self._local, "depth", 0)
        self._local.held, self._local.depth = past, depth + 1
        try:
            yield
        finally:
            self._local.held, self._local.depth = held, depth

    def past_ci(self, ci_id: str, at: datetime) -> ConfigurationItem | None:
        """The CI ``ci_id`` as it was at ``at`` (``None``: it did not exist then).

        Raises
        ------
        HistoryUnavailableError
            As :meth:`as_of`.
        """
        found = self.store.get_cis([ci_id]).get(ci_id)
        head = self.store.feed_head()
        seq = history.position_at(self.store, at, head=head, probes=self._probes_for(head))
        history.require_history(self.store, seq, head, at)
        return history.rewind_ci(found, ci_id, history.records_between(self.store, seq, head),
                                 at)

    def _probes_for(self, head: int) -> history.Probes:
        """The remembered feed probes of :func:`history.position_at`, forgotten when the
        database changes (a new Neo4j epoch, or a head below what was probed: the store was
        replaced). Shared by threads: dict operations are atomic."""
        identity = self._identity()
        probes = self._probes
        if identity != self._probes_of or (probes and max(probes) > head + 1):
            self._probes, self._probes_of = {}, identity
        return self._probes

    def _identity(self) -> Hashable:
        key = self._store_key()
        return None if key is None else (_position(key)[0], key[1])

    def _past_graph(self, at: datetime) -> Cached:
        """The graph as of ``at`` (the last one built when ``at`` resolves to its position
        and no clear came since). Built outside any lock: two threads may both build it."""
        head = self.store.feed_head()
        seq = history.position_at(self.store, at, head=head, probes=self._probes_for(head))
        history.require_history(self.store, seq, head, at)
        identity = self._identity()
        with self._past_lock:
            past = self._past
        if past is not None and (past.seq, past.identity) == (seq, identity):
            if past.head < head:  # a clear since then makes the past unreachable
                history.require_no_reset(
                    history.records_between(self.store, past.head, head), at)
            return past.cached
        with self.reading() as current:
            base = (copy_graph(current.graph) if current is not None
                    else _lean(self.store.dependency_graph()))
        # the graph holds at most the writes up to the head read after it; undoing a record
        # it does not hold yet sets what it holds already
        head = self.store.feed_head()
        records = history.records_between(self.store, seq, head)
        history.rewind_graph(base, records, self.registry, at)
        cached = Cached((("past", seq), id(self.registry)),
                         impact.ImpactGraph(base, self.registry), None)
        with self._past_lock:
            self._past = _Past(seq, identity, head, cached)
            self.past_stats["graphs"] += 1
            self.past_stats["records"] += len(records)
        return cached

    def in_past(self) -> bool:
        """Whether this thread answers on a graph of the past (inside :meth:`as_of`)."""
        return self._in_past() is not None

    def _in_past(self) -> Cached | None:
        """The graph of the past this thread answers on (inside :meth:`as_of`), if any."""
        held: Cached | None = getattr(self._local, "held", None)
        return held if held is not None and held.follower is None else None

