"""The engine's cached whole graph, kept current by following the store's change feed.

:class:`GraphCache` holds the whole dependency graph of a store as one
:class:`impact.ImpactGraph` with its topology, and brings it up to date on every question
(:meth:`GraphCache.reading`): it reads the store's key, and when it moved applies the change
records since the last one it saw (:class:`~cmdb_graph.service.follow.FeedFollower`), or
reads the whole graph again (a rebuild) when that is not possible or not worth it; on the
embedded store it starts from the store's checkpoint when there is one. See
:mod:`cmdb_graph.service.engine` for when each happens, and for the questions asked on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

import impact
from cmdb_graph import heap
from cmdb_graph.errors import FeedGapError
from cmdb_graph.feed import ChangeRecord
from cmdb_graph.metrics import ENGINE_FEED_SEQ
from cmdb_graph.model import Registry
from cmdb_graph.service.follow import FeedFollower, NeedsRebuild, lean_graph
from cmdb_graph.settings import Settings
from cmdb_graph.store.base import GraphStore

__all__ = ["FAR_BEHIND", "Cached", "GraphCache"]

log = logging.getLogger(__name__)

#: Changes (node and relationship changes, summed over the records) an engine follows at
#: most; further behind, it rebuilds from the store.
FAR_BEHIND = 200_000
#: Records asked for per ``feed_since`` call.
_FEED_PAGE = 1000

#: What the cached graph is keyed on: the store's key and the registry object's identity.
_Key = tuple[Hashable, int]


@dataclass(frozen=True, slots=True)
class Cached:
    """One version of the whole graph: the key it holds, the graph, its follower."""

    key: _Key
    graph: impact.ImpactGraph
    #: ``None`` for a graph of the past (see
    #: :meth:`~cmdb_graph.service.past.TimeTravel.as_of`): it is never followed.
    follower: FeedFollower | None


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



class GraphCache:
    """The cached whole graph of ``store`` (see the module docstring).

    Parameters
    ----------
    store : GraphStore
        Where the estate lives.
    settings : Settings, optional
        ``graph_cache`` turns the cached whole graph on (default) or off.
    far_behind : int, optional
        Follow at most this many changes (node and relationship changes summed over the
        records) before a rebuild from the store is cheaper (default :data:`FAR_BEHIND`).

    Notes
    -----
    Thread-safe: the cache is kept current under a lock (one rebuild or catch-up at a time);
    questions run under a read lease on one version of it.
    """

    def __init__(
        self, store: GraphStore, settings: Settings | None = None, *,
        far_behind: int | None = None,
    ) -> None:
        s = settings or Settings()
        self.store = store
        #: Whether questions run on the cached whole graph (``Settings.graph_cache``).
        self.cache_enabled = s.graph_cache
        #: Changes to follow at most before a full rebuild is cheaper.
        self.far_behind = FAR_BEHIND if far_behind is None else far_behind
        self._lock = threading.Lock()
        self._rw = _ReadWriteLock()
        self._local = threading.local()
        self._cached: Cached | None = None
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
        >>> from cmdb_graph.service.engine import Engine
        >>> engine = Engine(MemoryStore())
        >>> with engine.reading() as graph:
        ...     graph is not None and len(graph)
        0
        """
        held: Cached | None = getattr(self._local, "held", None)
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

    def _whole(self) -> Cached | None:
        """The version of the cached graph this thread holds, or the current one."""
        held: Cached | None = getattr(self._local, "held", None)
        if held is not None:
            return held
        return self._current()

    def _current(self) -> Cached | None:
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

    def _rebuild(self, key: _Key) -> Cached:
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
        return Cached(key, impact.ImpactGraph(whole, self.registry, follower.topology),
                       follower)

    def _resume(self, key: _Key) -> Cached | None:
        """The graph and topology of the store's checkpoint (see
        :meth:`~cmdb_graph.store.memory.MemoryStore.claim_checkpoint`), brought up to
        ``key``; ``None`` when there is none or it cannot be followed."""
        claim = getattr(self.store, "claim_checkpoint", None)
        follower = claim() if callable(claim) else None
        if not isinstance(follower, FeedFollower):
            return None
        follower.registry = self.registry
        start = Cached((follower.seq, key[1]),
                        impact.ImpactGraph(follower.graph, self.registry, follower.topology),
                        follower)
        if _position(key) == (None, follower.seq):
            resumed: Cached | None = Cached(key, start.graph, follower)
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

    def _follow(self, cached: Cached, key: _Key) -> Cached | None:
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
                updated = Cached(key, graph, follower)
                self._cached = updated
        except NeedsRebuild as exc:
            log.info("feed: rebuilding the whole graph (%s)", exc)
            return None
        self.stats["follows"] += 1
        self.stats["records"] += len(records)
        self.stats["topology_changes"] += int(changed)
        return updated



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

