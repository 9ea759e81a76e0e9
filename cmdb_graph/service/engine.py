"""The composition layer between a store and the impact engine (used by the API and the CLI).

Impact functions (:mod:`impact`) are pure and run over an :class:`impact.ImpactGraph` (a
networkx graph with its registry and topology); this module decides *which* graph each
question needs, extracts it from the store, wraps it once, and calls them with the server's
caps (:class:`impact.ImpactLimits` from ``Settings.max_depth``/``max_results``).

What each question extracts:

========================  ==================================================================
change impact             upstream closure of the changed CIs, plus the one-hop downstream
                          fringe of every CI in it, so that a reached CI with a redundancy rule
                          sees *all* its inputs (the other members of a cluster), not only the
                          reached ones
change conflicts          the same, seeded with the CIs of the assessed change and of every
                          active change whose window overlaps it; all changes and windows
incident routing          downstream closure of the CI (up to ``max_depth``)
probable cause            downstream closure of the affected CIs; all changes and incidents
quality reports           the whole dependency graph, every asset and entitlement
licence position          every HAS_INSTALLED relationship, entitlement and software product
neighbourhood, paths      the store's neighbourhood of the start CI
service map, SPOF         downstream closure of the service
========================  ==================================================================

By default (``Settings.graph_cache``) the engine keeps the whole dependency graph as one
:class:`impact.ImpactGraph` (with its :class:`impact.Topology`), on both stores, and every
question runs on it: the table above then describes what the impact functions look at, not what
is read from the store. The graph is read from the store once (at the first question) and then
**kept current by following the store's change feed** (:class:`~cmdb_graph.service.follow.
FeedFollower`): on every question the engine reads the store's key, and when it moved applies
the change records since the last one it saw (``GraphStore.feed_since``), in time proportional
to what changed. ITSM records and CI attributes no impact rule reads leave the topology alone;
new CIs and relationship changes fork it (copy-on-write) and patch its arrays. The key:

* the embedded :class:`~cmdb_graph.store.memory.MemoryStore`: its feed head;
* Neo4j: :meth:`~cmdb_graph.store.neo4j.Neo4jStore.cache_key`, one small query: the durable
  write counter every write transaction of every process increments, its random epoch, and
  the count-store totals of nodes and relationships (so raw-Cypher writes that add or remove
  nodes or relationships are seen too, by a rebuild; a property-only edit made outside
  cmdb-graph is not seen until the engine rebuilds: the feed does not record it).

The whole graph is read again (a rebuild) only at the first question, after a reset record, a
:class:`~cmdb_graph.errors.FeedGapError`, on a store that keeps no records, when the key moved
without a record, after a CI was deleted, or when more than ``far_behind`` changes are pending.
Updates run under a lock, one at a time; questions hold a read lease (:meth:`Engine.reading`)
while they run, and records are applied only while no question reads the graph, so every
question sees one version. With ``graph_cache`` off each question extracts its subgraph as in
the table above.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ParamSpec, TypeVar

import networkx as nx

import impact
from cmdb_graph import heap
from cmdb_graph.errors import (
    CINotFoundError,
    ConfigurationError,
    FeedGapError,
    InvalidRecordError,
    NotFoundError,
)
from cmdb_graph.feed import ChangeRecord
from cmdb_graph.metrics import ENGINE_FEED_SEQ
from cmdb_graph.model import (
    Asset,
    Change,
    ChangeState,
    ConfigurationItem,
    Entitlement,
    Incident,
    Node,
    Registry,
    SoftwareProduct,
    Window,
)
from cmdb_graph.service import history
from cmdb_graph.service.follow import FeedFollower, NeedsRebuild, copy_graph, lean_graph
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import MAX_PAGE_SIZE, Direction, GraphStore
from impact.licences import LicencePosition, licence_position

__all__ = ["FAR_BEHIND", "Engine", "ProposedChange", "list_all"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: Changes (node and relationship changes, summed over the records) an engine follows at
#: most; further behind, it rebuilds from the store.
FAR_BEHIND = 200_000
#: Records asked for per ``feed_since`` call.
_FEED_PAGE = 1000


def list_all(store: GraphStore, label: str) -> Iterator[Node]:
    """Every node of ``label``, page by page (sorted by key)."""
    after: str | None = None
    while True:
        page = store.list_nodes(label, after=after, limit=MAX_PAGE_SIZE)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


@dataclass(frozen=True, slots=True)
class ProposedChange:
    """A change not (yet) recorded: its CIs and window, assessed for conflicts."""

    ci_ids: tuple[str, ...]
    window_start: datetime
    window_end: datetime
    change_id: str = "proposed"


#: What the cached graph is keyed on: the store's key and the registry object's identity.
_Key = tuple[Hashable, int]


@dataclass(frozen=True, slots=True)
class _Cached:
    key: _Key
    graph: impact.ImpactGraph
    #: ``None`` for a graph of the past (see :meth:`Engine.as_of`): it is never followed.
    follower: FeedFollower | None


@dataclass(frozen=True, slots=True)
class _Past:
    """The last graph of the past the engine built: as of feed position ``seq`` (in the
    database ``identity``), rewound from feed position ``head``."""

    seq: int
    identity: Hashable
    head: int
    cached: _Cached


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before new readers.

    Readers are the questions running on the cached graph; the writer applies change records
    to it in place. Re-entry is the caller's business (the engine counts it per thread).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _question(method: Callable[P, R]) -> Callable[P, R]:
    """Run an engine method as one question: on one version of the cached graph (a read
    lease held while it runs, so that change records wait for it)."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        engine = args[0]
        assert isinstance(engine, Engine)
        with engine.reading():
            return method(*args, **kwargs)

    return run


class Engine:
    """Answers impact questions about the estate in one store.

    Parameters
    ----------
    store : GraphStore
        Where the estate lives.
    settings : Settings, optional
        ``max_depth`` and ``max_results`` become the :class:`impact.ImpactLimits`;
        ``graph_cache`` turns the cached whole graph on (default) or off.
    far_behind : int, optional
        Follow at most this many changes (node and relationship changes summed over the
        records) before a rebuild from the store is cheaper (default
        :data:`FAR_BEHIND`).

    Notes
    -----
    Thread-safe: the cache is kept current under a lock (one rebuild or catch-up at a time);
    questions run under a read lease on one version of it; results are immutable.
    Every public method raises the library's own errors (:class:`~cmdb_graph.errors.CmdbError`
    subclasses): ``CINotFoundError`` for unknown CIs, ``TraversalLimitError`` for requests over
    the caps, ``NotFoundError`` for unknown changes.
    """

    def __init__(
        self, store: GraphStore, settings: Settings | None = None, *,
        far_behind: int | None = None,
    ) -> None:
        s = settings or Settings()
        self.store = store
        self.limits = impact.ImpactLimits(max_depth=s.max_depth, max_results=s.max_results)
        #: Whether questions run on the cached whole graph (``Settings.graph_cache``).
        self.cache_enabled = s.graph_cache
        #: Whether change impact follows inferred relationships (``Settings.impact_inferred``).
        self.impact_inferred = s.impact_inferred
        #: Changes to follow at most before a full rebuild is cheaper.
        self.far_behind = FAR_BEHIND if far_behind is None else far_behind
        self._lock = threading.Lock()
        self._rw = _ReadWriteLock()
        self._local = threading.local()
        self._cached: _Cached | None = None
        self._past: _Past | None = None
        self._past_lock = threading.Lock()
        self._probes: history.Probes = {}
        self._probes_of: Hashable = None
        #: Graphs of the past built (:meth:`as_of`) and the records they undid.
        self.past_stats: dict[str, int] = {"graphs": 0, "records": 0}
        #: How the cache was last brought up to date: counters for tests, logs and benches.
        self.stats: dict[str, int] = {"rebuilds": 0, "resumed": 0, "follows": 0, "records": 0,
                                      "topology_changes": 0}

    # -- graphs -----------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        """The store's registry."""
        return self.store.registry

    @contextmanager
    def reading(self) -> Iterator[impact.ImpactGraph | None]:
        """Hold one version of the cached whole graph while the block runs.

        The graph is brought up to date first; change records that arrive meanwhile are
        applied after the block (and every other reader's) ends. Re-entrant per thread: a
        nested call yields the same version. Yields ``None`` without the cache.

        Examples
        --------
        >>> from cmdb_graph.store.memory import MemoryStore
        >>> engine = Engine(MemoryStore())
        >>> with engine.reading() as graph:
        ...     graph is not None and len(graph)
        0
        """
        held: _Cached | None = getattr(self._local, "held", None)
        depth: int = getattr(self._local, "depth", 0)
        if held is not None or depth:
            self._local.depth += 1
            try:
                yield held.graph if held is not None else None
            finally:
                self._local.depth -= 1
            return
        cached = self._current()
        with self._rw.reading():
            cached = self._cached if cached is not None else None
            self._local.held = cached
            self._local.depth = 1
            try:
                yield cached.graph if cached is not None else None
            finally:
                self._local.held = None
                self._local.depth = 0

    def _store_key(self) -> _Key | None:
        """What the cached graph is keyed on now (``None``: do not cache).

        A store with a ``cache_key()`` method (Neo4j: its durable write counter plus the
        count-store totals, one cheap query) is keyed on that, any other on its feed head;
        the identity of the registry object is added either way.
        """
        if not self.cache_enabled:
            return None
        key_of = getattr(self.store, "cache_key", None)
        found: Hashable = key_of() if callable(key_of) else self.store.feed_head()
        return (found, id(self.store.registry))

    def _whole(self) -> _Cached | None:
        """The version of the cached graph this thread holds, or the current one."""
        held: _Cached | None = getattr(self._local, "held", None)
        if held is not None:
            return held
        return self._current()

    def _current(self) -> _Cached | None:
        """The cached whole graph and its topology, brought up to date with the store.

        The key is read on every call (on Neo4j one small query), before the feed or the
        graph, so a cache never holds data older than its key. Updates run under a lock, one
        at a time: a request that finds one in progress waits for it and, when the key it read
        is still current, uses its result instead of updating again.
        """
        key = self._store_key()
        if key is None:
            return None
        cached = self._cached
        if cached is not None and cached.key == key:
            return cached
        with self._lock:
            cached = self._cached
            if cached is not None and cached.key == key:
                return cached
            fresh = self._store_key()  # the key as of now, read before the feed or graph
            if fresh is None:
                return None
            if cached is not None and cached.key == fresh:
                return cached
            updated = None
            if cached is not None and cached.key[1] == fresh[1]:
                updated = self._follow(cached, fresh)
            if updated is None:
                updated = self._rebuild(fresh)
                self._cached = updated
            if updated.follower is not None:
                ENGINE_FEED_SEQ.set(updated.follower.seq)
            return updated

    def _rebuild(self, key: _Key) -> _Cached:
        """The whole graph read from the store (under the update lock), or taken from the
        store's checkpoint and followed from there."""
        resumed = self._resume(key)
        if resumed is not None:
            return resumed
        replacing = self._cached is not None
        seq = self._feed_head()
        build_lean = getattr(self.store, "lean_dependency_graph", None)
        with heap.paused():
            whole = build_lean() if callable(build_lean) else self.store.dependency_graph()
            follower = FeedFollower(whole, self.registry, seq, is_lean=callable(build_lean))
            if replacing:
                self._cached = None  # the old graph goes before the new one is frozen
                heap.release()
            heap.settle(len(whole))
        _release_freed_memory()
        self.stats["rebuilds"] += 1
        return _Cached(key, impact.ImpactGraph(whole, self.registry, follower.topology),
                       follower)

    def _resume(self, key: _Key) -> _Cached | None:
        """The graph and topology of the store's checkpoint (see
        :meth:`~cmdb_graph.store.memory.MemoryStore.claim_checkpoint`), brought up to
        ``key``; ``None`` when there is none or it cannot be followed."""
        claim = getattr(self.store, "claim_checkpoint", None)
        follower = claim() if callable(claim) else None
        if not isinstance(follower, FeedFollower):
            return None
        follower.registry = self.registry
        start = _Cached((follower.seq, key[1]),
                        impact.ImpactGraph(follower.graph, self.registry, follower.topology),
                        follower)
        if _position(key) == (None, follower.seq):
            resumed: _Cached | None = _Cached(key, start.graph, follower)
        else:
            resumed = self._follow(start, key)
        self.stats["resumed"] += resumed is not None
        return resumed

    def save_checkpoint(self) -> Path | None:
        """Write the store's checkpoint with this engine's graph and topology in it, so the
        next process on the database starts from both (see
        :meth:`~cmdb_graph.store.memory.MemoryStore.save_checkpoint`; questions wait while
        it is written).

        Returns
        -------
        Path or None
            The file written; ``None`` when the store keeps no checkpoints (Neo4j, no
            database) or holds nothing yet.

        Raises
        ------
        StoreError
            The file cannot be written.
        """
        save = getattr(self.store, "save_checkpoint", None)
        if not callable(save):
            return None
        with self._lock, self._rw.reading():
            cached = self._cached
            follower = cached.follower if cached is not None else None
            path: Path | None = save(extra=follower)
            return path

    def _feed_head(self) -> int:
        try:
            return self.store.feed_head()
        except NotImplementedError:
            return -1

    def _pending(self, after: int) -> list[ChangeRecord] | None:
        """The records after ``after``, or ``None`` when following them is not possible
        or not worth it (a gap, a reset, more than :attr:`far_behind` changes)."""
        out: list[ChangeRecord] = []
        size = 0
        while True:
            try:
                page = self.store.feed_since(after, limit=_FEED_PAGE)
            except (FeedGapError, NotImplementedError):
                return None
            for record in page:
                if record.reset:
                    return None
                size += len(record)
            if size > self.far_behind:
                return None
            out.extend(page)
            if len(page) < _FEED_PAGE:
                return out
            after = page[-1].seq

    def _follow(self, cached: _Cached, key: _Key) -> _Cached | None:
        """``cached`` with the change records since its position applied, made current
        (``None``: rebuild instead). The graph is changed in place and the new version
        installed while no question reads it."""
        follower = cached.follower
        if follower is None or follower.seq < 0:
            return None
        before, now = _position(cached.key), _position(key)
        if before[0] != now[0]:  # another database (Neo4j: a new epoch)
            return None
        records = self._pending(follower.seq)
        if records is not None and now[1] is not None:
            # Only what the key covers: a write committed after the key was read is left
            # for the next question, whose key will cover it (else that key would move
            # with nothing left to apply, and force a rebuild).
            records = [r for r in records if r.seq <= now[1]]
        if not records:  # the key moved but the feed has nothing: a write it did not record
            return None
        try:
            with self._rw.writing():
                changed = follower.apply(records, getattr(self.store, "live_rows", None))
                graph = cached.graph
                if changed:
                    graph = impact.ImpactGraph(follower.graph, self.registry, follower.topology)
                updated = _Cached(key, graph, follower)
                self._cached = updated
        except NeedsRebuild as exc:
            log.info("feed: rebuilding the whole graph (%s)", exc)
            return None
        self.stats["follows"] += 1
        self.stats["records"] += len(records)
        self.stats["topology_changes"] += int(changed)
        return updated

    # -- the past -----------------------------------------------------------------------------
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

    def _past_graph(self, at: datetime) -> _Cached:
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
        cached = _Cached((("past", seq), id(self.registry)),
                         impact.ImpactGraph(base, self.registry), None)
        with self._past_lock:
            self._past = _Past(seq, identity, head, cached)
            self.past_stats["graphs"] += 1
            self.past_stats["records"] += len(records)
        return cached

    def in_past(self) -> bool:
        """Whether this thread answers on a graph of the past (inside :meth:`as_of`)."""
        return self._in_past() is not None

    def _in_past(self) -> _Cached | None:
        """The graph of the past this thread answers on (inside :meth:`as_of`), if any."""
        held: _Cached | None = getattr(self._local, "held", None)
        return held if held is not None and held.follower is None else None

    def _wrap(self, graph: nx.MultiDiGraph) -> impact.ImpactGraph:
        """An extracted graph for one question (its topology is built if the question needs
        it)."""
        return impact.ImpactGraph(graph, self.registry)

    def whole_graph(self) -> impact.ImpactGraph:
        """The whole dependency graph (cached where the store allows)."""
        cached = self._whole()
        if cached is not None:
            return cached.graph
        return self._wrap(self.store.dependency_graph())

    def _whole_with(self, ci_ids: list[str]) -> impact.ImpactGraph | None:
        """The cached whole graph, after checking it holds ``ci_ids`` (``None``: no cache).

        Raises
        ------
        CINotFoundError
            One of ``ci_ids`` is not in it.
        """
        cached = self._whole()
        if cached is None:
            return None
        cached.graph.require(ci_ids)
        return cached.graph

    def impact_graph(self, ci_ids: Iterable[str]) -> impact.ImpactGraph:
        """Upstream closure of ``ci_ids`` with the one-hop downstream fringe of every CI in it
        (the whole cached graph when there is one).

        Raises
        ------
        CINotFoundError
            One of ``ci_ids`` does not exist (checked on the cached graph; without a cache
            the impact function raises it).
        """
        ids = sorted(set(ci_ids))
        whole = self._whole_with(ids)
        if whole is not None:
            return whole
        closure = self.store.extract_subgraph(ids, direction=Direction.UPSTREAM)
        fringe = self.store.extract_subgraph(
            sorted(closure.nodes), direction=Direction.DOWNSTREAM, depth=1
        )
        return self._wrap(nx.compose(fringe, closure))

    def downstream_graph(
        self, ci_ids: Iterable[str], depth: int | None = None
    ) -> impact.ImpactGraph:
        """What ``ci_ids`` need, up to ``depth`` hops (default ``max_depth``; the whole cached
        graph when there is one).

        Raises
        ------
        CINotFoundError
            One of ``ci_ids`` does not exist (checked on the cached graph; without a cache
            the impact function raises it).
        """
        ids = sorted(set(ci_ids))
        whole = self._whole_with(ids)
        if whole is not None:
            return whole
        hops = self.limits.max_depth if depth is None else depth
        return self._wrap(
            self.store.extract_subgraph(ids, direction=Direction.DOWNSTREAM, depth=hops))

    # -- ITSM records -------------------------------------------------------------------------
    def changes(self) -> list[Change]:
        """Every recorded change."""
        return [n for n in list_all(self.store, "Change") if isinstance(n, Change)]

    def windows(self) -> list[Window]:
        """Every maintenance and blackout window."""
        return [n for n in list_all(self.store, "Window") if isinstance(n, Window)]

    def incidents(self) -> list[Incident]:
        """Every recorded incident."""
        return [n for n in list_all(self.store, "Incident") if isinstance(n, Incident)]

    def change(self, change_id: str) -> Change:
        """One recorded change.

        Raises
        ------
        NotFoundError
            No change has that id.
        """
        node = self.store.get_node("Change", change_id)
        if not isinstance(node, Change):
            raise NotFoundError(f"no change {change_id!r}")
        return node

    # -- questions ----------------------------------------------------------------------------
    @_question
    def change_impact(
        self,
        ci_ids: Sequence[str],
        *,
        depth: int | None = None,
        services_only: bool = False,
        paths_per_ci: int = 3,
        inferred: bool | None = None,
    ) -> impact.ChangeImpact:
        """Impact of taking ``ci_ids`` down (see :func:`impact.change_impact`).

        ``inferred`` (default ``Settings.impact_inferred``) False: relationships marked
        ``inferred`` carry no impact (the question runs on a copy of the graph without them).

        Raises
        ------
        InvalidRecordError
            ``ci_ids`` is empty.
        CINotFoundError, TraversalLimitError
            As :func:`impact.change_impact`.
        """
        if not ci_ids:
            raise InvalidRecordError("at least one CI is needed", field="ciIds")
        self.limits.check_depth(depth)
        graph = self.impact_graph(ci_ids)
        if not (self.impact_inferred if inferred is None else inferred):
            graph = self._wrap(without_inferred(graph.graph))
        return impact.change_impact(
            graph, ci_ids, depth_limit=depth, services_only=services_only,
            paths_per_ci=paths_per_ci, limits=self.limits,
        )

    @_question
    def change_conflicts(
        self, change: Change | ProposedChange
    ) -> tuple[Change, tuple[impact.ChangeConflict, ...]]:
        """Conflicts of a recorded or proposed change with every other change and window.

        Returns
        -------
        (Change, tuple of ChangeConflict)
            The change assessed (a proposed one as a ``Change``) and its conflicts.

        Raises
        ------
        InvalidRecordError
            The proposed window ends before it starts, or names no CI.
        CINotFoundError
            A CI of the assessed change does not exist.
        """
        if isinstance(change, ProposedChange):
            if not change.ci_ids:
                raise InvalidRecordError("a proposed change needs CIs", field="ciIds")
            if change.window_end <= change.window_start:
                raise InvalidRecordError(
                    "the change window must end after it starts", field="windowEnd"
                )
            assessed = Change(change_id=change.change_id, window_start=change.window_start,
                              window_end=change.window_end, ci_ids=list(change.ci_ids),
                              state=ChangeState.SCHEDULED)
        else:
            assessed = change
        others = self.changes()
        seeds = set(assessed.ci_ids)
        for other in others:
            if (other.change_id != assessed.change_id
                    and other.state not in impact.INACTIVE_CHANGE_STATES
                    and other.window_start < assessed.window_end
                    and assessed.window_start < other.window_end):
                seeds.update(other.ci_ids)
        missing = self._missing(assessed.ci_ids)
        if missing:
            raise CINotFoundError(
                f"change {assessed.change_id}: unknown CI(s): {', '.join(missing[:5])}"
            )
        existing = sorted(seeds - set(self._missing(seeds)))
        found = impact.change_conflicts(
            self.impact_graph(existing), assessed, changes=others, windows=self.windows(),
        )
        return assessed, found

    @_question
    def route_incident(self, ci_id: str) -> impact.Routing:
        """Support group for an incident on ``ci_id`` (see :func:`impact.route_incident`)."""
        return impact.route_incident(self.downstream_graph([ci_id]), ci_id, limits=self.limits)

    @_question
    def probable_cause(
        self,
        affected: Sequence[str],
        *,
        now: datetime | None = None,
        lookback: timedelta = timedelta(days=7),
        max_candidates: int = 20,
    ) -> impact.ProbableCauses:
        """Ranked shared dependencies of ``affected`` (see :func:`impact.probable_cause`).

        Raises
        ------
        InvalidRecordError
            ``affected`` is empty.
        """
        if not affected:
            raise InvalidRecordError("at least one affected CI is needed", field="ciIds")
        return impact.probable_cause(
            self.downstream_graph(affected), affected, now=now or datetime.now(UTC),
            changes=self.changes(), incidents=self.incidents(), lookback=lookback,
            max_candidates=max_candidates, limits=self.limits,
        )

    @_question
    def quality_input(
        self, *, now: datetime | None = None, options: impact.QualityOptions | None = None
    ) -> impact.QualityInput:
        """Everything the data-quality reports read: whole graph, assets, entitlements."""
        graph = self.whole_graph()
        assets = [n for n in list_all(self.store, "Asset") if isinstance(n, Asset)]
        ents = [n for n in list_all(self.store, "Entitlement") if isinstance(n, Entitlement)]
        return impact.QualityInput(
            graph=graph, now=now or datetime.now(UTC), assets=assets, entitlements=ents,
            options=options or impact.QualityOptions(),
        )

    @_question
    def report(
        self,
        name: str,
        *,
        now: datetime | None = None,
        options: impact.QualityOptions | None = None,
    ) -> impact.QualityReport:
        """One data-quality report by name (see :data:`impact.REPORTS`).

        Raises
        ------
        ConfigurationError
            No report has that name.
        """
        if name not in impact.REPORTS:
            raise ConfigurationError(
                f"unknown report {name!r}; known: {', '.join(impact.REPORTS)}"
            )
        return impact.run_report(name, self.quality_input(now=now, options=options))

    @_question
    def coverage(self) -> impact.Coverage:
        """The dependency map's coverage (see :func:`impact.coverage`)."""
        return impact.coverage(self.whole_graph())

    def licence_position(self, *, as_of: date | None = None) -> LicencePosition:
        """Entitled seats against installations per software product.

        Reads every ``HAS_INSTALLED`` relationship (``(:CI)-[:HAS_INSTALLED]->
        (:SoftwareProduct)``), every entitlement and every software product, and counts them
        with :func:`impact.licences.licence_position`.

        Parameters
        ----------
        as_of : date, optional
            Entitlements that expired before this day no longer count (``None``: expiry is
            ignored).

        Returns
        -------
        LicencePosition
            Per product positions, the over- and under-licensed products and the entitlements
            that name no product.
        """
        installations = self.store.relationships(rel_types=["HAS_INSTALLED"])
        ents = [n for n in list_all(self.store, "Entitlement") if isinstance(n, Entitlement)]
        products = [n for n in list_all(self.store, "SoftwareProduct")
                    if isinstance(n, SoftwareProduct)]
        return licence_position(installations, ents, products, as_of=as_of)

    def neighbourhood(
        self,
        ci_id: str,
        *,
        depth: int = 1,
        direction: str = "both",
        rel_types: Sequence[str] | None = None,
    ) -> impact.Neighbourhood:
        """CIs within ``depth`` hops of ``ci_id`` (see :func:`impact.neighbourhood`)."""
        hops = self.limits.check_depth(depth)
        past = self._in_past()
        if past is not None:
            return impact.neighbourhood(past.graph, ci_id, depth=hops, direction=direction,
                                        rel_types=rel_types, limits=self.limits)
        graph = self.store.neighbourhood(ci_id, depth=hops, direction=_store_direction(direction),
                                         rel_types=rel_types)
        return impact.neighbourhood(self._wrap(graph), ci_id, depth=hops, direction=direction,
                                    rel_types=rel_types, limits=self.limits)

    @_question
    def paths(
        self,
        source: str,
        target: str,
        *,
        max_paths: int = 10,
        max_length: int | None = None,
        direction: str = "both",
        rel_types: Sequence[str] | None = None,
    ) -> impact.PathsResult:
        """Simple paths between two CIs (see :func:`impact.paths_between`).

        Every path of at most ``max_length`` hops lies within that many hops of ``source``,
        so the store's neighbourhood of ``source`` is all the search needs.
        """
        length = self.limits.check_path_length(max_length)
        self.limits.check_paths(max_paths)
        cached = self._whole()
        if cached is not None:
            graph = cached.graph
        else:
            near = self.store.neighbourhood(source, depth=length,
                                            direction=_store_direction(direction),
                                            rel_types=rel_types)
            if target not in near:
                self.store.get_ci(target)  # CINotFoundError when it does not exist
                near = near.copy()
                near.add_node(target, ci_id=target)
            graph = self._wrap(near)
        return impact.paths_between(graph, source, target, max_paths=max_paths,
                                    max_length=length, direction=direction, rel_types=rel_types,
                                    limits=self.limits)

    @_question
    def service_map(self, service: str, *, depth: int | None = None) -> impact.ServiceMap:
        """A service down to its infrastructure (see :func:`impact.service_map`)."""
        hops = self.limits.check_depth(depth)
        graph = self.downstream_graph([service], depth=min(hops + 1, self.limits.max_depth))
        return impact.service_map(graph, service, depth_limit=depth, limits=self.limits)

    @_question
    def single_points_of_failure(
        self, service: str
    ) -> tuple[impact.SinglePointOfFailure, ...]:
        """CIs whose failure alone takes ``service`` down."""
        cached = self._whole()
        if cached is not None:
            graph = cached.graph
        else:
            graph = self._wrap(
                self.store.extract_subgraph([service], direction=Direction.DOWNSTREAM))
        return impact.single_points_of_failure(graph, service, limits=self.limits)

    # -- helpers ------------------------------------------------------------------------------
    def _missing(self, ci_ids: Iterable[str]) -> list[str]:
        ids = sorted(set(ci_ids))
        cached = self._whole()
        if cached is not None:
            return [c for c in ids if c not in cached.graph]
        found = self.store.get_cis(ids)
        return [c for c in ids if c not in found]


def without_inferred(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of ``graph`` without the relationships marked ``inferred``."""
    out = graph.copy()
    out.remove_edges_from([(u, v, k) for u, v, k, inf in
                           graph.edges(keys=True, data="inferred", default=False) if inf])
    return out


def _position(key: _Key) -> tuple[Hashable, int | None]:
    """The database identity and feed head a cache key holds: Neo4j's ``cache_key()`` is
    ``(epoch, head, nodes, relationships)``, any other store's key its feed head."""
    found = key[0]
    if isinstance(found, tuple) and len(found) >= 2 and isinstance(found[1], int):
        return found[0], found[1]
    return None, found if isinstance(found, int) else None


def _release_freed_memory() -> None:
    """Hand the heap pages freed while a graph was built back to the system (glibc's
    ``malloc_trim``; a no-op elsewhere). A rebuild frees the store-shaped copy of every CI it
    made lean; without this the serving process keeps that memory resident."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _lean(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    lean_graph(graph)
    return graph


def _store_direction(direction: str) -> Direction:
    try:
        return Direction(direction)
    except ValueError:
        raise InvalidRecordError(
            f"direction must be upstream, downstream or both, not {direction!r}",
            field="direction",
        ) from None
