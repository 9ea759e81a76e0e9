"""The embedded store's database: SQLite in WAL mode, one transaction per write.

:class:`~cmdb_graph.store.memory.MemoryStore` keeps its working graph in memory (networkx) and
makes it durable here. Each write of the store (an applied batch, a deletion, a clear) is ONE
SQLite transaction holding exactly the rows it changed and its change record, so a write costs
what it changed, never the size of the estate.

Tables
------
``nodes(label, key, row)``
    Every node, its lean row (:func:`cmdb_graph.store.rows.encode_row`).
``rels(rel_type, source, target, source_label, target_label, row)``
    Every relationship, keyed by ``(rel_type, source, target)``.
``feed(seq INTEGER PRIMARY KEY, at, payload)``
    The change feed: :func:`cmdb_graph.feed.encode_record`'s bytes, ``at`` as ISO UTC text
    (microseconds always written, so the text sorts as the time). Records older than the
    store's ``feed_retention_days`` are pruned (never the newest).
``meta(key, value)``
    Format version; where the estate was migrated from.

Durability and concurrency
--------------------------
* ``journal_mode=WAL``, ``synchronous=FULL``: a commit returns only once its write-ahead log
  frames are fsync'ed, so no write the store acknowledged is lost, not even to a power cut
  (``NORMAL`` would survive a killed process but may lose the last commits to an OS crash or
  power loss; a CMDB that told an API client "written" must not). The log is folded back
  into the database by SQLite's automatic checkpoints.
* Writers are serialised by SQLite's own write lock: a write starts with ``BEGIN IMMEDIATE``
  and waits up to ``timeout`` seconds for another process's write to finish (so
  ``cmdb-graph import`` next to a running ``cmdb-graph serve`` on the same file just works);
  past that, :class:`~cmdb_graph.errors.StoreError` names the file. Readers never wait (WAL).
* Every process holding the database follows the feed table: before a read or a write, when
  ``PRAGMA data_version`` says another connection committed, the store applies the records
  after the last sequence number it has seen (see ``MemoryStore``). So a CLI import is seen
  by a running server on its next question.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cmdb_graph.errors import StoreError
from cmdb_graph.feed import ChangeRecord, decode_record, encode_record
from cmdb_graph.store.rows import decode_row, encode_row

__all__ = [
    "DATABASE_FORMAT",
    "LOCK_TIMEOUT",
    "Database",
    "NodeWrite",
    "RelWrite",
    "is_database",
    "replace_file",
    "remove_stale_temp_files",
    "temp_path",
]

log = logging.getLogger(__name__)

#: Format version written into ``meta``.
DATABASE_FORMAT = "1"
#: Seconds a write waits for another process's write transaction before it fails.
LOCK_TIMEOUT = 30.0
_HEADER = b"SQLite format 3\x00"

#: A node row to write: ``(label, key, row)``; ``row`` ``None`` deletes it.
NodeWrite = tuple[str, str, "dict[str, Any] | None"]
#: A relationship row to write: ``(rel_type, source, target, source_label, target_label,
#: row)``; ``row`` ``None`` deletes it.
RelWrite = tuple[str, str, str, str, str, "dict[str, Any] | None"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    label TEXT NOT NULL, key TEXT NOT NULL, row BLOB NOT NULL, PRIMARY KEY (label, key));
CREATE TABLE IF NOT EXISTS rels (
    rel_type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
    source_label TEXT NOT NULL, target_label TEXT NOT NULL, row BLOB NOT NULL,
    PRIMARY KEY (rel_type, source, target));
CREATE TABLE IF NOT EXISTS feed (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, payload BLOB NOT NULL);
"""


def is_database(path: Path) -> bool:
    """Whether ``path`` is an SQLite file (by its header; ``False`` when absent or empty)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_HEADER)) == _HEADER
    except OSError:
        return False


class Database:
    """One connection to the embedded store's SQLite file (see the module docstring).

    Parameters
    ----------
    path : Path
        The database file; created (with its folder) when missing.
    timeout : float
        Seconds a write waits for another process's write lock.

    Raises
    ------
    StoreError
        The file is not an SQLite database, is of another format, or cannot be opened.

    Notes
    -----
    Not thread-safe by itself: the store calls it under its own lock.
    """

    def __init__(self, path: Path, *, timeout: float = LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        new = not self.path.exists()
        if not new and self.path.stat().st_size and not is_database(self.path):
            raise StoreError(f"{self.path}: not a cmdb-graph database (no SQLite header)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._setup()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc
        if new:
            log.info("%s: created a new, empty database", self.path.resolve())

    def _setup(self) -> None:
        conn = self._conn
        found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "nodes", "rels", "feed"} <= found:
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (DATABASE_FORMAT,))
        fmt = self.meta("format")
        if fmt != DATABASE_FORMAT:
            raise StoreError(f"{self.path}: database format {fmt!r}, this version reads "
                             f"{DATABASE_FORMAT!r}")

    # -- transactions ---------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``; rolled back on error).

        Raises
        ------
        StoreError
            Another process held the write lock past ``timeout``, or SQLite failed.
        """
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(
                    f"{self.path}: another process is writing to this database (waited "
                    f"{self.timeout:g} s for its write lock)") from exc
            raise StoreError(f"{self.path}: cannot start a write: {exc}") from exc
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"{self.path}: cannot commit: {exc}") from exc

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback failed on %s", self.path)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction: every SELECT inside sees the same committed state.

        Raises
        ------
        StoreError
            SQLite failed, or a stored row is not JSON (a damaged database).
        """
        try:
            self._conn.execute("BEGIN")
            try:
                yield
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")
        except (sqlite3.Error, orjson.JSONDecodeError) as exc:
            raise StoreError(f"{self.path}: cannot read the database: {exc}") from exc

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """The first column of the first row of a query (``None``: no row)."""
        try:
            found = self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read the database: {exc}") from exc
        return None if found is None else found[0]

    # -- writes (inside ``transaction``) --------------------------------------------------
    def write(self, record: ChangeRecord | None, nodes: Iterable[NodeWrite],
              rels: Iterable[RelWrite], *, reset: bool = False) -> None:
        """Write changed rows and their change record (call inside :meth:`transaction`).

        Parameters
        ----------
        record : ChangeRecord or None
            The write's change record (``None``: rows only, e.g. nothing changed).
        nodes, rels
            Rows to upsert, or to delete where the row is ``None``.
        reset : bool
            Delete every node and relationship first (``clear``).
        """
        conn = self._conn
        try:
            if reset:
                conn.execute("DELETE FROM nodes")
                conn.execute("DELETE FROM rels")
            put: list[tuple[str, str, bytes]] = []
            gone: list[tuple[str, str]] = []
            for label, key, row in nodes:
                if row is None:
                    gone.append((label, key))
                else:
                    put.append((label, key, encode_row(row)))
            if gone:
                conn.executemany("DELETE FROM nodes WHERE label = ? AND key = ?", gone)
            if put:
                conn.executemany("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?)", put)
            rput: list[tuple[str, str, str, str, str, bytes]] = []
            rgone: list[tuple[str, str, str]] = []
            for t, s, d, sl, dl, rrow in rels:
                if rrow is None:
                    rgone.append((t, s, d))
                else:
                    rput.append((t, s, d, sl, dl, encode_row(rrow)))
            if rgone:
                conn.executemany(
                    "DELETE FROM rels WHERE rel_type = ? AND source = ? AND target = ?", rgone)
            if rput:
                conn.executemany("INSERT OR REPLACE INTO rels VALUES (?, ?, ?, ?, ?, ?)", rput)
            if record is not None:
                self.append(record)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write: {exc}") from exc

    def append(self, record: ChangeRecord) -> None:
        """Append one change record (call inside :meth:`transaction`)."""
        self._conn.execute("INSERT INTO feed VALUES (?, ?, ?)", (
            record.seq, record.at.isoformat(timespec="microseconds"), encode_record(record)))

    def prune(self, before: datetime) -> int:
        """Delete the change records committed before ``before`` (call inside
        :meth:`transaction`), never the newest one (so the head and the gap stay known).
        Returns how many were deleted."""
        cur = self._conn.execute(
            "DELETE FROM feed WHERE at < ? AND seq < (SELECT max(seq) FROM feed)",
            (before.astimezone(UTC).isoformat(timespec="microseconds"),))
        return int(cur.rowcount)

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` value (call inside :meth:`transaction`)."""
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- reads ----------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """A ``meta`` value, or ``None``."""
        found = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if found is None else str(found)

    def data_version(self) -> int:
        """SQLite's ``data_version``: changes when ANOTHER connection commits."""
        return int(self._one("PRAGMA data_version"))

    def head(self) -> int:
        """The newest record's sequence number (0 when the feed is empty)."""
        return int(self._one("SELECT coalesce(max(seq), 0) FROM feed"))

    def oldest_at(self) -> datetime | None:
        """When the oldest kept change record was committed (``None``: the feed is empty)."""
        found = self._one("SELECT at FROM feed ORDER BY seq LIMIT 1")
        return None if found is None else datetime.fromisoformat(str(found))

    def first(self) -> int:
        """The oldest kept record's sequence number (0 when the feed is empty)."""
        return int(self._one("SELECT coalesce(min(seq), 0) FROM feed"))

    def since(self, after: int, limit: int) -> list[ChangeRecord]:
        """Records with ``seq > after``, oldest first, at most ``limit``.

        Raises
        ------
        StoreError
            SQLite failed, or a record cannot be decoded.
        """
        try:
            rows = self._conn.execute(
                "SELECT payload FROM feed WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read the feed: {exc}") from exc
        return [decode_record(payload) for (payload,) in rows]

    def record_digest(self, seq: int) -> str | None:
        """SHA-256 (hex) of the stored payload of change record ``seq``; ``None`` when the
        feed does not hold it (pruned, or never written)."""
        payload = self._one("SELECT payload FROM feed WHERE seq = ?", (seq,))
        return None if payload is None else hashlib.sha256(payload).hexdigest()

    def is_empty(self) -> bool:
        """No node, no relationship and no change record."""
        return all(self._one(f"SELECT NOT EXISTS (SELECT 1 FROM {t})")
                   for t in ("nodes", "rels", "feed"))

    def node_rows(self, stamps: dict[tuple[str, str], dict[str, str]] | None = None
                  ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every node as ``(label, key, row)``, streamed (lineage stamps shared via
        ``stamps``, see :func:`~cmdb_graph.store.rows.decode_row`)."""
        cur = self._conn.execute("SELECT label, key, row FROM nodes")
        while batch := cur.fetchmany(10_000):
            for label, key, data in batch:
                yield label, key, decode_row(data, stamps)

    def rel_rows(self) -> Iterator[tuple[str, str, str, str, str, dict[str, Any]]]:
        """Every relationship as ``(rel_type, source, target, source_label, target_label,
        row)``, streamed."""
        cur = self._conn.execute(
            "SELECT rel_type, source, target, source_label, target_label, row FROM rels")
        while batch := cur.fetchmany(10_000):
            for t, s, d, sl, dl, data in batch:
                yield t, s, d, sl, dl, decode_row(data)

    def close(self) -> None:
        """Close the connection (the last one to close folds the log into the file)."""
        try:
            self._conn.close()
        except sqlite3.Error:
            log.exception("closing %s failed", self.path)


def replace_file(tmp: Path, path: Path) -> None:
    """Move the finished database ``tmp`` over ``path`` (old log files removed first, then
    ``os.replace`` and an fsync of the folder)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def temp_path(path: Path) -> Path:
    """Where a new database for ``path`` is written before it replaces it (this process's)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete the temporary databases for ``path`` (see :func:`temp_path`) that a process
    which no longer runs left behind (killed while writing one); the removed files.

    A file of a process that still runs is left alone (it may be writing it).
    """
    removed: list[Path] = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp*"):
        pid_text = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # that process still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        try:
            tmp.unlink()
        except OSError as exc:
            log.warning("cannot remove the stale temporary file %s: %s", tmp, exc)
            continue
        removed.append(tmp)
    if removed:
        log.info("removed stale temporary files: %s", ", ".join(map(str, removed)))
    return removed
