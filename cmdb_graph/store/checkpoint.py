"""Checkpoints of the embedded store: its working graph as of one change record, for a fast start.

Loading a large estate from the database decodes every row and rebuilds every index (at 1M CIs,
tens of seconds), and the engine then builds its own graph and topology from it. A checkpoint is
that in-memory state written to one file beside the database, ``<database>.checkpoint``, as of
the change record it had applied. A store that opens the database reads the checkpoint instead
of the rows, then applies the change records committed after it, as it follows other processes'
writes; the engine's state, when the checkpoint holds it, is followed the same way.

A checkpoint is only ever a shortcut: the database stays the record. It is used only when

* it was written by the same code (a digest of the ``cmdb_graph`` and ``impact`` sources) for
  the same registry (CI classes and relationship types);
* the database still holds its change record, byte for byte (the SHA-256 of the record's
  payload): a database that was replaced, restored or cleared is read in full instead;
* every record after it is still kept (a pruned gap means a full read, as for any follower);
* its state is byte for byte what was written (the SHA-256 of the pickle, checked before it
  is unpickled: a damaged file is never half-trusted).

Anything else falls back to reading the database, with one warning saying why. A damaged file,
or one whose database no longer holds its change record, is removed (it can never become usable
again); one written by another version of the code or for another registry, or that is not a
regular file (a folder, a pipe), is left in place (another process may use it; the next
checkpoint written replaces it). An *empty* database beside a checkpoint is an error, not a
fallback: the database was deleted or replaced, and the checkpoint, which then holds the only
copy of the estate, is kept for the operator to restore from the right backup. The file is
written to a temporary file in the same folder, fsync'ed and renamed over the old one, so a
crash while writing leaves the previous checkpoint.

Format: one JSON header line (:class:`CheckpointHeader`), then a :mod:`pickle` (protocol 5) of
the state. Pickle runs code named in the file: the checkpoint must be as trusted as the database
beside it (same folder, same owner); it is never read from anywhere else.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import logging
import os
import pickle
import stat
import threading
import time
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from cmdb_graph import heap
from cmdb_graph.errors import StoreError
from cmdb_graph.model import Registry
from cmdb_graph.store.database import Database, remove_stale_temp_files

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoints",
    "CheckpointHeader",
    "CheckpointUnusable",
    "checkpoint_path",
    "code_digest",
    "prefetch",
    "read_checkpoint",
    "read_header",
    "registry_digest",
    "write_checkpoint",
]

log = logging.getLogger(__name__)

#: Version of the file layout (the header line, then the pickle).
CHECKPOINT_FORMAT = 1

_PACKAGES = ("cmdb_graph", "impact")


@dataclass(frozen=True, slots=True)
class CheckpointHeader:
    """What a checkpoint is of: the first line of the file, as JSON.

    Attributes
    ----------
    format : int
        :data:`CHECKPOINT_FORMAT` of the writer.
    code : str
        :func:`code_digest` of the writer.
    registry : str
        :func:`registry_digest` of the store's registry.
    seq : int
        The last change record applied to the state.
    record : str
        SHA-256 (hex) of that record's stored payload.
    cis : int
        CIs in the state (for the log line).
    engine : bool
        Whether the state holds the engine's graph and topology too.
    payload : str
        SHA-256 (hex) of the pickle that follows the header.
    """

    format: int
    code: str
    registry: str
    seq: int
    record: str
    cis: int
    engine: bool
    payload: str = ""


def checkpoint_path(database: Path) -> Path:
    """The checkpoint file of ``database``: ``<database>.checkpoint`` beside it."""
    return database.with_name(database.name + ".checkpoint")


@functools.cache
def code_digest() -> str:
    """SHA-256 (hex) of the source files of ``cmdb_graph`` and ``impact``, as installed.

    A checkpoint pickles this code's objects; another version of the code may lay them out
    differently, so it reads the database instead.
    """
    import cmdb_graph
    import impact

    h = hashlib.sha256()
    for package in (cmdb_graph, impact):
        assert package.__file__ is not None
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def registry_digest(registry: Registry) -> str:
    """SHA-256 (hex) of a registry's CI classes and relationship types (their reprs, sorted
    by name)."""
    text = repr((sorted(registry.classes.items()), sorted(registry.relationship_types.items())))
    return hashlib.sha256(text.encode()).hexdigest()


def write_checkpoint(path: Path, header: CheckpointHeader, state: Any) -> int:
    """Write ``state`` with ``header`` (its ``payload`` digest filled in) to ``path``
    (atomically: temporary file, fsync, rename).

    Returns
    -------
    int
        The file's size in bytes.

    Raises
    ------
    OSError
        The folder cannot be written (the temporary file is removed).
    pickle.PicklingError
        ``state`` holds an object pickle cannot write.
    """
    data = pickle.dumps(state, protocol=5)
    header = replace(header, payload=hashlib.sha256(data).hexdigest())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(json.dumps(asdict(header)).encode() + b"\n")
            fh.write(data)
            del data
            fh.flush()
            os.fsync(fh.fileno())
            size = fh.tell()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return size


class CheckpointUnusable(Exception):  # noqa: N818 - a reason, said in one line
    """The checkpoint cannot be used; the message says why (for the log line).

    ``keep`` is true when the file may still be of use (written by another version of the
    code or for another registry, which another process may run) or is not a file this
    store writes (a folder, a pipe): the store leaves it in place instead of removing it.
    """

    def __init__(self, reason: str, *, keep: bool = False) -> None:
        super().__init__(reason)
        self.keep = keep


def read_header(path: Path) -> CheckpointHeader | None:
    """The header of the checkpoint at ``path``; ``None`` when there is no file.

    Raises
    ------
    CheckpointUnusable
        The file cannot be read, or its first line is not a header of this format.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe would block the start
            raise CheckpointUnusable("not a regular file", keep=True)
        with open(path, "rb") as fh:
            line = fh.readline(4096)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointUnusable(f"cannot be read ({exc.strerror or exc})") from exc
    try:
        fields = json.loads(line)
        header = CheckpointHeader(**fields)
    except (ValueError, TypeError) as exc:
        raise CheckpointUnusable("damaged or not a checkpoint (no valid header line)") from exc
    if header.format != CHECKPOINT_FORMAT:
        raise CheckpointUnusable(f"written in format {header.format}, this version reads "
                                 f"{CHECKPOINT_FORMAT}", keep=True)
    return header


#: ``(device, inode, size, mtime)`` of a file, to tell whether a path still names it.
_Identity = tuple[int, int, int, int]
_prefetched: dict[Path, Future[tuple[_Identity, bytes, str]]] = {}


def _identity(st: os.stat_result) -> _Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read_payload(path: Path) -> tuple[_Identity, bytes, str]:
    """The file's identity, its bytes after the header line and their SHA-256 (hex)."""
    with open(path, "rb") as fh:
        identity = _identity(os.fstat(fh.fileno()))
        fh.readline(4096)
        data = fh.read()
    return identity, data, hashlib.sha256(data).hexdigest()


def prefetch(database: Path) -> None:
    """Start reading the checkpoint beside ``database`` and computing its digest in a
    background thread, for :func:`read_checkpoint` to take.

    A server calls this before it imports the API's modules: reading a file and hashing it
    release the interpreter's lock, so at 1M CIs (a 0.6 GB file) about a second of the start
    overlaps the imports. :func:`read_checkpoint` uses the bytes only if the path still names
    the same file (device, inode, size, modification time) and they match the header's
    digest; anything else (no file, an error, another file since) reads it again as before.
    """
    path = checkpoint_path(database).resolve()
    if path in _prefetched or not path.is_file():
        return
    future: Future[tuple[_Identity, bytes, str]] = Future()

    def work() -> None:
        try:
            future.set_result(_read_payload(path))
        except BaseException as exc:  # noqa: BLE001 - handed to read_checkpoint
            future.set_exception(exc)

    _prefetched[path] = future
    threading.Thread(target=work, name="checkpoint-prefetch", daemon=True).start()


def _take_prefetched(path: Path) -> tuple[bytes, str] | None:
    """The prefetched bytes and digest of ``path`` when it still names the file read."""
    future = _prefetched.pop(path.resolve(), None)
    if future is None:
        return None
    try:
        identity, data, digest = future.result()
        now = _identity(os.stat(path))
    except OSError:
        return None
    return (data, digest) if identity == now else None


def read_checkpoint(path: Path, header: CheckpointHeader) -> Any:
    """The state pickled in the checkpoint at ``path``, once its bytes match ``header``'s
    payload digest (read here, or taken from :func:`prefetch`).

    The cyclic garbage collector is paused while millions of objects are made (it would scan
    them again and again; the state holds no garbage).

    Raises
    ------
    CheckpointUnusable
        The file cannot be read, its pickle is not the one its header describes (damaged,
        truncated), or it does not unpickle.
    """
    taken = _take_prefetched(path)
    if taken is None:
        try:
            _, data, digest = _read_payload(path)
        except OSError as exc:
            raise CheckpointUnusable(f"cannot be read ({exc.strerror or exc})") from exc
    else:
        data, digest = taken
    if digest != header.payload:
        raise CheckpointUnusable("damaged (its contents do not match their digest)")
    collecting = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(data)
    except Exception as exc:  # noqa: BLE001 - whatever a foreign pickle raises
        raise CheckpointUnusable(f"cannot be unpickled ({type(exc).__name__}: {exc})") from exc
    finally:
        if collecting:
            gc.enable()


class Checkpoints:
    """The checkpoint of :class:`~cmdb_graph.store.memory.MemoryStore` (mixed into it): write
    one, start from one, hand the engine's part to the engine."""

    registry: Registry
    _lock: threading.RLock
    _db: Database | None
    _seq: int
    _data_version: int | None
    _g: nx.MultiDiGraph
    #: The engine's state the checkpoint held (see :meth:`claim_checkpoint`).
    _checkpoint_extra: Any = None

    if TYPE_CHECKING:
        def _follow(self) -> None: ...
        def _state(self) -> dict[str, Any]: ...
        def _set_state(self, state: dict[str, Any]) -> None: ...
        def _reset(self) -> None: ...

    def save_checkpoint(self, extra: Any = None) -> Path | None:
        """Write the working graph, as of the newest change record, to the checkpoint beside
        the database (:mod:`cmdb_graph.store.checkpoint`), with ``extra`` (the engine's
        state; read back by :meth:`claim_checkpoint`). Writers wait while it is written
        (10-15 s per million CIs).

        Without ``extra``, the engine's state this store started from and nobody claimed
        is kept in the new file. Nothing is written when the checkpoint there already holds
        this change record and at least as much (a server stopped without a write).

        Returns
        -------
        Path or None
            The checkpoint (written or already current); ``None`` without a database or
            before the first write.

        Raises
        ------
        StoreError
            The file cannot be written (the previous checkpoint, if any, is left).
        """
        with self._lock:
            self._follow()
            db = self._db
            if db is None or self._seq == 0:
                return None
            digest = db.record_digest(self._seq)
            if digest is None:
                return None
            path = checkpoint_path(db.path)
            if extra is None:
                extra = self._checkpoint_extra
            header = CheckpointHeader(format=CHECKPOINT_FORMAT, code=code_digest(),
                                      registry=registry_digest(self.registry), seq=self._seq,
                                      record=digest, cis=len(self._g),
                                      engine=extra is not None)
            try:
                there = read_header(path)
            except CheckpointUnusable:
                there = None
            if there is not None and replace(there, payload="", engine=header.engine,
                                             cis=header.cis) == header and (
                    there.engine or not header.engine):
                log.info("%s already holds change record %d: not written again", path,
                         header.seq)
                return path
            t0 = time.perf_counter()
            try:
                size = write_checkpoint(path, header, {"store": self._state(), "extra": extra})
            except (OSError, pickle.PicklingError) as exc:
                raise StoreError(f"{path}: cannot write the checkpoint: {exc}") from exc
        log.info("wrote %s (%d CIs, change record %d, %.0f MB) in %.1f s", path, header.cis,
                 header.seq, size / 1e6, time.perf_counter() - t0)
        return path

    def claim_checkpoint(self) -> Any:
        """The ``extra`` state the checkpoint this store started from held, once (then
        ``None``): the engine takes its graph and topology from it."""
        with self._lock:
            extra, self._checkpoint_extra = self._checkpoint_extra, None
            return extra

    def _resume(self, db: Database) -> bool:
        """Take the state of the checkpoint beside ``db`` and apply the change records
        committed after it; ``False`` (nothing changed) when there is no usable one."""
        path = checkpoint_path(db.path)
        remove_stale_temp_files(path)
        t0 = time.perf_counter()
        try:
            return self._resume_from(db, path, t0)
        finally:
            _prefetched.pop(path.resolve(), None)  # not taken (no usable checkpoint): its bytes go

    def _resume_from(self, db: Database, path: Path, t0: float) -> bool:
        try:
            header = read_header(path)
            if header is None:
                return False
            if header.code != code_digest():
                raise CheckpointUnusable("written by another version of cmdb-graph", keep=True)
            if header.registry != registry_digest(self.registry):
                raise CheckpointUnusable("written for other CI classes or relationship types",
                                         keep=True)
            with db.reading():
                if db.record_digest(header.seq) != header.record:
                    if db.head() == 0:
                        raise StoreError(
                            f"{db.path}: the database is empty, but {path.name} beside it "
                            f"holds an estate of {header.cis:,} CIs (change record "
                            f"{header.seq}): the database was deleted or replaced. Restore "
                            "it (the checkpoint is not a backup), or move the checkpoint "
                            "away to start with an empty estate")
                    raise CheckpointUnusable("the database does not hold its change record "
                                             f"{header.seq} as it was (replaced, restored or "
                                             "pruned since)")
            state = read_checkpoint(path, header)
            with heap.paused():
                self._set_state(state["store"])
        except (CheckpointUnusable, KeyError, TypeError) as exc:
            keep = isinstance(exc, CheckpointUnusable) and exc.keep
            log.warning("%s: not used, %s; reading the database instead and %s", path, exc,
                        "leaving the file in place" if keep else "removing it")
            self._reset()
            if not keep:
                with suppress(OSError):
                    path.unlink()
            return False
        heap.settle(len(self._g))
        self._checkpoint_extra = state.get("extra")
        self._seq, self._data_version = header.seq, None
        self._follow()  # the records after it (a pruned gap: the database in full)
        log.info("loaded %s from its checkpoint at change record %d in %.1f s (%d CIs, "
                 "change record %d)", db.path, header.seq, time.perf_counter() - t0,
                 len(self._g), self._seq)
        return True

