"""A Neo4j for the run: the one ``NEO4J_URI`` names, or a fresh one started through devserver."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Neo4jServer", "dir_size"]


def dir_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it does not exist)."""
    total = 0
    if not path.exists():
        return 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


@dataclass
class Neo4jServer:
    """Connection details, and the home when this run started the server itself."""

    uri: str
    user: str
    password: str
    home: Path | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def acquire(cls, timeout: int = 180) -> Neo4jServer:
        """Use ``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD`` when set; else start one.

        The started instance gets a fresh home in a temporary folder, so its store size on disk
        is the benchmark's alone; :meth:`release` stops it and removes the folder.
        """
        uri = os.environ.get("NEO4J_URI")
        if uri:
            return cls(uri, os.environ.get("NEO4J_USER", "neo4j"),
                       os.environ.get("NEO4J_PASSWORD", ""))
        tmp = tempfile.TemporaryDirectory(prefix="cmdb-bench-neo4j-")
        home = Path(tmp.name)
        proc = subprocess.run(
            [sys.executable, "-m", "cmdb_graph.devserver", "start", "--port", "0", "--home",
             str(home), "--timeout", str(timeout)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            tmp.cleanup()
            raise RuntimeError(f"could not start Neo4j: {proc.stderr.strip()[-2000:]}")
        env: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            if line.startswith("export "):
                name, _, value = line[len("export "):].partition("=")
                env[name] = shlex.split(value)[0] if value else ""
        return cls(env["NEO4J_URI"], env.get("NEO4J_USER", "neo4j"),
                   env.get("NEO4J_PASSWORD", ""), home=home, _tmp=tmp)

    def store_size(self) -> dict[str, int] | None:
        """Bytes of the database's store files and of its transaction logs (own server only)."""
        if self.home is None:
            return None
        data = self.home / "data"
        return {
            "store_bytes": dir_size(data / "databases" / "neo4j"),
            "transaction_log_bytes": dir_size(data / "transactions" / "neo4j"),
        }

    def release(self) -> None:
        """Stop the server this run started (nothing for an external one)."""
        if self.home is None:
            return
        subprocess.run(
            [sys.executable, "-m", "cmdb_graph.devserver", "stop", "--home", str(self.home)],
            capture_output=True, text=True, check=False,
        )
        if self._tmp is not None:
            self._tmp.cleanup()
        self.home = None
