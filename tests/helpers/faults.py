"""Run the ``cmdb-graph`` command with a kill -9 at a chosen point of its writes.

Usage::

    python -m tests.helpers.faults after-writes N -- import servicenow-ci hosts.csv --source a
    python -m tests.helpers.faults before-done -- import ...

``after-writes N``: the process kills itself (SIGKILL) right after its N-th committed write
transaction (Neo4j: ``Neo4jStore._write``; embedded: ``MemoryStore.apply``, one transaction
each). ``before-done``: right before the write that stores a succeeded ``ImportRun`` (the last
write of a run). Nothing of the write path is replaced: the hooks only count and kill, so what
the store holds afterwards is what a real kill at that point leaves.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from cmdb_graph.model import ImportRun, RunStatus
from cmdb_graph.store.batch import WriteBatch
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.store.neo4j import Neo4jStore


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _after(n: int, fn: Callable[..., Any]) -> Callable[..., Any]:
    done = [0]

    @wraps(fn)
    def hooked(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        done[0] += 1
        if done[0] == n:
            _die()
        return out

    return hooked


def _before_done(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def hooked(self: Any, batch: WriteBatch) -> Any:
        if any(isinstance(n, ImportRun) and n.status is RunStatus.SUCCEEDED
               for n in batch.nodes):
            _die()
        return fn(self, batch)

    return hooked


def main(argv: list[str]) -> None:
    """Install the hook that ``argv`` names, then run the command after ``--``."""
    split = argv.index("--")
    point, rest, command = argv[0], argv[1:split], argv[split + 1:]
    if point == "after-writes":
        n = int(rest[0])
        Neo4jStore._write = _after(n, Neo4jStore._write)  # type: ignore[method-assign]
        MemoryStore.apply = _after(n, MemoryStore.apply)  # type: ignore[method-assign]
    elif point == "before-done":
        Neo4jStore.apply = _before_done(Neo4jStore.apply)  # type: ignore[method-assign]
        MemoryStore.apply = _before_done(MemoryStore.apply)  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown kill point {point!r}")
    from cmdb_graph.cli import main as cli

    sys.argv = ["cmdb-graph", *command]
    cli()


if __name__ == "__main__":
    main(sys.argv[1:])
