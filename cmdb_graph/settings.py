"""Settings, read from the environment (prefix ``CMDB_``) or a ``.env`` file.

Built once at the entry point (CLI, API) and passed down; library code never reads
``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of one cmdb-graph process.

    Attributes
    ----------
    store : {"memory", "neo4j"}
        Which store to use. Defaults to ``memory``, or ``neo4j`` when ``neo4j_uri`` is set.
    snapshot_path : Path
        Snapshot file of the embedded store.
    neo4j_uri, neo4j_user, neo4j_password, neo4j_database
        Connection to Neo4j (``CMDB_NEO4J_URI``, ...).
    batch_size : int
        Rows per ``UNWIND`` batch / per write transaction.
    registry_path : Path, optional
        YAML file of additional CI classes and relationship types.
    """

    model_config = SettingsConfigDict(env_prefix="CMDB_", env_file=".env", extra="ignore")

    store: Literal["memory", "neo4j"] | None = None
    snapshot_path: Path = Path(".cmdb/estate.snapshot")
    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("")
    neo4j_database: str = "neo4j"
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    registry_path: Path | None = None
    max_depth: int = Field(default=12, ge=1, le=100)
    max_results: int = Field(default=100_000, ge=1)
    max_page_size: int = Field(default=1000, ge=1, le=10_000)

    @model_validator(mode="after")
    def _pick_store(self) -> Settings:
        if self.store is None:
            self.store = "neo4j" if self.neo4j_uri else "memory"
        return self
