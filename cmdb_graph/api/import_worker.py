"""Imports sent through the API: which files they may read, and a worker process that parses
them under memory and time limits.

``importRun`` either sends the content itself or names files on the server. Files are read
only inside the configured import folder (``Settings.import_folder``, ``CMDB_IMPORT_FOLDER``);
with none configured (the default) only inline content is accepted. A path (relative to the
folder, or absolute) is resolved with every symlink followed and must end inside the folder at
a regular file; anything else is refused with one line that names the path as given and
nothing of the file, before a byte of it is read (and before its existence is told to anyone
outside the folder). The folder should be writable only by those who may import.

The importer then runs in a separate Python process (``python -m
cmdb_graph.api.import_worker``), never in the server: its address space is limited to
``Settings.import_memory_mb`` (``RLIMIT_AS``) and it is killed after
``Settings.import_timeout`` seconds, or after 2 s at its memory limit (a process starved
there may spin instead of failing), so no input (a YAML alias bomb, a huge file, an importer
bug) can stall or exhaust the server. It runs in the folder of its input and its environment
holds none of the server's settings or credentials. The worker hands back the records as
JSON, which the server validates again into record models; only then does the import run
(identification, reconciliation, writes) in the server, under its write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import stat
import sys
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cmdb_graph.errors import (
    CmdbError,
    ConfigurationError,
    ImportAbortedError,
    InvalidRecordError,
)
from cmdb_graph.model.records import InputWarning, Record
from cmdb_graph.settings import Settings

__all__ = ["MAX_WORKERS", "ParsedImport", "WorkerError", "parse_in_worker", "read_import",
           "resolve_import_paths"]

#: Import workers one server runs at once; further imports wait for one to end (so a server
#: never holds more than this many times ``import_memory_mb`` in workers).
MAX_WORKERS = 2

_RECORD = TypeAdapter(Record)
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())


def _gate() -> asyncio.Semaphore:
    """The worker semaphore of the running event loop (one per server)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(MAX_WORKERS)
    return gate


@dataclass(frozen=True)
class ParsedImport:
    """What the worker parsed: the importer's records and warnings, in order, and the names
    of the files they came from (relative to the import folder, or the upload's name)."""

    records: list[Record | InputWarning]
    files: list[str]


def resolve_import_paths(folder: Path | None, paths: Sequence[str]) -> list[str]:
    """The files ``paths`` name, relative to the import folder, each checked to be a regular
    file inside it (symlinks followed).

    Parameters
    ----------
    folder : Path or None
        ``Settings.import_folder``; None refuses every path.
    paths : sequence of str
        As the caller gave them: relative to the folder, or absolute.

    Returns
    -------
    list of str
        Each file's path relative to the folder's real path (no symlinks left).

    Raises
    ------
    ConfigurationError
        No import folder is configured, or a path is outside it (also through a symlink), is
        missing, or is not a regular file. The message names the path as given, never any of
        the file's content.
    """
    if folder is None:
        raise ConfigurationError(
            "importRun reads files on the server only from the import folder, and none is "
            "configured (CMDB_IMPORT_FOLDER): send the content instead")
    try:
        root = folder.resolve(strict=True)
    except OSError as exc:
        raise ConfigurationError(f"the import folder (CMDB_IMPORT_FOLDER) cannot be read: "
                                 f"{exc.strerror or exc}") from None
    found = []
    for given in paths:
        outside = ConfigurationError(
            f"{given!r} is outside the import folder (CMDB_IMPORT_FOLDER): refused")
        if "\x00" in given:
            raise outside
        candidate = Path(os.path.normpath(root / given))
        if not candidate.is_relative_to(root):
            raise outside  # told before anything is looked up outside the folder
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            raise ConfigurationError(f"{given!r}: no such file in the import folder") from None
        if not real.is_relative_to(root):
            raise outside  # a symlink out of the folder
        try:
            mode = real.stat().st_mode
        except OSError as exc:
            raise ConfigurationError(f"{given!r}: cannot be read ({exc.strerror})") from None
        if not stat.S_ISREG(mode):
            raise ConfigurationError(f"{given!r} is not a regular file: refused")
        found.append(str(real.relative_to(root)))
    return found


async def read_import(settings: Settings, kind: str, *, paths: Sequence[str],
                      content: str | None, filename: str) -> ParsedImport:
    """Parse an ``importRun``'s input (files by path, or inline content) in a worker.

    Parameters
    ----------
    settings : Settings
        The import folder and the worker's limits.
    kind : str
        Importer kind.
    paths : sequence of str
        Files in the import folder (see :func:`resolve_import_paths`); or
    content, filename : str
        The content itself, and a name whose suffix picks the parser.

    Raises
    ------
    InvalidRecordError, ConfigurationError
        Both or neither of paths and content, an unknown kind, a refused path, bad input.
    ImportAbortedError
        The worker went past its memory or time limit.
    """
    from importers import get_importer

    if bool(paths) == (content is not None):
        raise InvalidRecordError("give either paths or content", field="paths")
    get_importer(kind)  # an unknown kind is refused here, before a process is started
    if content is None:
        files = resolve_import_paths(settings.import_folder, paths)
        assert settings.import_folder is not None
        return await parse_in_worker(kind, files, settings, cwd=settings.import_folder.resolve())
    name = Path(filename).name
    if name in ("", ".", ".."):
        name = "upload"
    with tempfile.TemporaryDirectory(prefix="cmdb-import-") as tmp:
        await asyncio.to_thread((Path(tmp) / name).write_text, content, encoding="utf-8")
        return await parse_in_worker(kind, [name], settings, cwd=Path(tmp))


async def parse_in_worker(kind: str, files: Sequence[str], settings: Settings, *,
                          cwd: Path) -> ParsedImport:
    """Run importer ``kind`` over ``files`` (relative to ``cwd``) in a worker process under
    the limits of ``settings``, and validate what it returns (at most :data:`MAX_WORKERS`
    workers at once per event loop; others wait their turn).

    Raises
    ------
    WorkerError
        The importer's own error (its code, message and field).
    ImportAbortedError
        The worker ran out of memory or time, or ended without an answer.
    """
    async with _gate():
        return await _run_worker(kind, files, settings, cwd=cwd)


async def _run_worker(kind: str, files: Sequence[str], settings: Settings, *,
                      cwd: Path) -> ParsedImport:
    request = json.dumps({"kind": kind, "files": list(files),
                          "memory_bytes": settings.import_memory_mb * 1024 * 1024,
                          "cpu_seconds": int(settings.import_timeout) + 5}).encode()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cmdb_graph.api.import_worker", cwd=cwd, env=_worker_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    talk = asyncio.ensure_future(proc.communicate(request))
    try:
        out, _ = await _watch(talk, proc.pid, settings)
    finally:
        if not talk.done():
            talk.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await talk
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return _answer(out, proc.returncode, settings)


#: Seconds a worker may sit at its address-space limit before it is taken as starved there
#: (a process at its ``RLIMIT_AS`` may spin in the allocator instead of raising).
_STARVED_AFTER = 2.0


async def _watch(talk: asyncio.Future[tuple[bytes, bytes]], pid: int,
                 settings: Settings) -> tuple[bytes, bytes]:
    """The worker's output once ``talk`` ends, watched every quarter second.

    Raises
    ------
    ImportAbortedError
        The worker stayed at its memory limit for :data:`_STARVED_AFTER` seconds, or the
        import ran past ``settings.import_timeout``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.import_timeout
    at_limit_since: float | None = None
    while True:
        done, _ = await asyncio.wait({talk}, timeout=max(0.0, min(0.25, deadline - loop.time())))
        if done:
            return talk.result()
        now = loop.time()
        if _at_memory_limit(pid, settings.import_memory_mb, field="VmSize:"):
            at_limit_since = now if at_limit_since is None else at_limit_since
            if now - at_limit_since >= _STARVED_AFTER:
                raise ImportAbortedError(_over_memory(settings))
        else:
            at_limit_since = None
        if now >= deadline:
            if _at_memory_limit(pid, settings.import_memory_mb):
                raise ImportAbortedError(_over_memory(settings))
            raise ImportAbortedError(
                f"the import took longer than {settings.import_timeout:g} s and was stopped "
                "(CMDB_IMPORT_TIMEOUT)")


def _worker_env() -> dict[str, str]:
    """The worker's environment: the server's, without its settings and credentials (the
    worker needs none), and with the server's module search path (it runs elsewhere)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CMDB_", "NEO4J_", "AWS_", "AZURE_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _answer(out: bytes, returncode: int | None, settings: Settings) -> ParsedImport:
    """The worker's answer as a :class:`ParsedImport`, or its error raised again."""
    try:
        answer = json.loads(out) if out else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        if returncode is not None and returncode < 0:  # killed: SIGKILL, SIGXCPU, SIGSEGV...
            raise ImportAbortedError(_over_limits(settings))
        raise ImportAbortedError(
            f"the import worker stopped without an answer (exit code {returncode}), most "
            f"likely out of memory (CMDB_IMPORT_MEMORY_MB={settings.import_memory_mb})")
    if "error" in answer:
        spec = answer["error"]
        raise WorkerError(str(spec.get("code", CmdbError.code)), str(spec.get("message", "")),
                          spec.get("field"))
    try:
        records: list[Record | InputWarning] = [
            InputWarning.model_validate(item["w"]) if "w" in item
            else _RECORD.validate_python(item["r"]) for item in answer["items"]]
        files = [str(f) for f in answer["files"]]
    except (ValidationError, KeyError, TypeError) as exc:
        raise ImportAbortedError(f"the import worker's answer is malformed: {exc}") from None
    return ParsedImport(records=records, files=files)


def _at_memory_limit(pid: int, memory_mb: int, *, field: str = "VmPeak:") -> bool:
    """Whether process ``pid`` has reached (95% of) its address-space limit (Linux):
    at its peak (``VmPeak:``) or now (``VmSize:``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith(field):
            return int(line.split()[1]) >= memory_mb * 1024 * 0.95
    return False


def _over_memory(settings: Settings) -> str:
    return (f"the import needed more than {settings.import_memory_mb} MB of memory and was "
            "stopped (CMDB_IMPORT_MEMORY_MB)")


def _over_limits(settings: Settings) -> str:
    return (f"the import needed more than {settings.import_memory_mb} MB of memory or "
            f"{settings.import_timeout:g} s and was stopped (CMDB_IMPORT_MEMORY_MB, "
            "CMDB_IMPORT_TIMEOUT)")


class WorkerError(CmdbError):
    """An error the worker reported: the code, message and field of the importer's own error
    (an :class:`~cmdb_graph.errors.InvalidRecordError` naming the file, line and field...)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


# -- the worker process ---------------------------------------------------------------------


#: Memory set aside before the limit and given back to answer a MemoryError.
_reserve: bytearray | None = None


def _work(request: dict[str, Any]) -> dict[str, Any]:
    """Parse in this (worker) process: limits first, then the importer over each file."""
    global _reserve
    from importers import get_importer

    importer = get_importer(request["kind"])  # loads the importer's modules before the limit
    _reserve = bytearray(8 << 20)
    memory = int(request["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(request["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    items: list[dict[str, Any]] = []
    # one run's files together: a kind that folds them (kubernetes) reads them as one input
    for item in importer.parse_files([Path(name) for name in request["files"]]):
        dumped = item.model_dump(mode="json")
        items.append({"w": dumped} if isinstance(item, InputWarning) else {"r": dumped})
    return {"items": items, "files": request["files"]}


def main() -> None:
    """The worker: a JSON request on stdin, one JSON answer on stdout."""
    global _reserve
    request = json.loads(sys.stdin.buffer.read())
    over = json.dumps({"error": {"code": ImportAbortedError.code, "message": (
        f"the import needed more than {int(request['memory_bytes']) >> 20} MB of memory "
        "and was stopped (CMDB_IMPORT_MEMORY_MB)")}})
    try:
        # no name holds the records: on a MemoryError they are freed before the answer
        text = json.dumps(_work(request), separators=(",", ":"))
    except CmdbError as exc:
        text = json.dumps({"error": {"code": exc.code, "message": str(exc),
                                     "field": getattr(exc, "field", None)}})
    except MemoryError:
        _reserve = None
        text = over
    sys.stdout.write(text)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
