"""The embedded store's snapshot file: plain data, written atomically, read safely.

The snapshot is a pickle (protocol 5) of our own plain data only: dicts, lists, tuples, sets,
strings, numbers, booleans and ``None``. It is read with an unpickler that refuses every global,
so a crafted snapshot cannot make the loader import or call anything. It is written to a
temporary file in the same folder, flushed and fsync'ed, then renamed over the old snapshot with
``os.replace`` and the folder is fsync'ed: a crash mid-write leaves the previous snapshot intact.
What the payload holds is :class:`cmdb_graph.store.memory.MemoryStore`'s business.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from cmdb_graph.errors import StoreError

__all__ = ["SNAPSHOT_FORMAT", "write_snapshot", "read_snapshot"]

#: Format tag and version written into every snapshot.
SNAPSHOT_FORMAT = ("cmdb-graph-snapshot", 1)


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler of plain data only: any global (class, function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"snapshot refers to {module}.{name}; only plain data allowed")


def write_snapshot(path: Path, payload: Any) -> None:
    """Write ``payload`` to ``path`` atomically (temp file, fsync, ``os.replace``, fsync dir).

    Parameters
    ----------
    path : Path
        The snapshot file; its folder is created when missing.
    payload : object
        Plain data (see the module docstring).

    Raises
    ------
    StoreError
        The file cannot be written; the previous snapshot is left as it was.
    """
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StoreError(f"{path}: cannot write snapshot: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(payload, fh, protocol=5)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        if isinstance(exc, OSError | pickle.PicklingError):
            raise StoreError(f"{path}: cannot write snapshot: {exc}") from exc
        raise


def read_snapshot(path: Path) -> dict[str, Any]:
    """Read a snapshot written by :func:`write_snapshot`.

    Raises
    ------
    StoreError
        The file cannot be read, is truncated or corrupt, or is no cmdb-graph snapshot.
    """
    try:
        with open(path, "rb") as fh:
            data = _PlainUnpickler(io.BufferedReader(fh)).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise StoreError(f"{path}: cannot read snapshot: {exc}") from exc
    if not isinstance(data, dict) or tuple(data.get("format", ())) != SNAPSHOT_FORMAT:
        raise StoreError(f"{path}: not a cmdb-graph snapshot (format {SNAPSHOT_FORMAT[1]})")
    return data
