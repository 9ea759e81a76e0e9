"""Settings, read from the environment (prefix ``CMDB_``) or a ``.env`` file.

Built once at the entry point (CLI, API) and passed down; library code never reads
``os.environ``.
"""

from __future__ import annotations

import hashlib
import json
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from cmdb_graph.errors import ConfigurationError

__all__ = ["ApiKey", "Role", "Settings", "hash_api_key", "DEFAULT_DATABASE", "DEFAULT_SNAPSHOT"]

#: The embedded store's database when none is configured.
DEFAULT_DATABASE = Path(".cmdb/estate.db")
#: Where earlier versions kept the embedded store (migrated once into the database).
DEFAULT_SNAPSHOT = Path(".cmdb/estate.snapshot")

_ENV_PREFIX = "CMDB_"


class Role(IntEnum):
    """API roles; each includes the rights of the ones below it."""

    READER = 1
    WRITER = 2
    ADMIN = 3

    def __str__(self) -> str:
        """The role's name as configured and logged: ``reader``, ``writer``, ``admin``."""
        return self.name.lower()


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which an API key is configured (keys are never stored)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKey(BaseModel):
    """One configured API key: a name for logs, its role and the SHA-256 of the key."""

    name: str
    role: Literal["reader", "writer", "admin"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @property
    def level(self) -> Role:
        """The role as a comparable :class:`Role`."""
        return Role[self.role.upper()]


class Settings(BaseSettings):
    """Configuration of one cmdb-graph process.

    Attributes
    ----------
    store : {"memory", "neo4j"}
        Which store to use. Defaults to ``memory``, or ``neo4j`` when ``neo4j_uri`` is set.
    database_path : Path, optional
        SQLite database of the embedded store (``CMDB_DATABASE_PATH``; empty means unset;
        see :meth:`embedded_database` for the default).
    snapshot_path : Path, optional
        Deprecated (``CMDB_SNAPSHOT_PATH``): an old snapshot file of the embedded store. It is
        migrated once into the database (the database beside it, ``NAME.db``, unless
        ``database_path`` is set), then left untouched.
    neo4j_uri, neo4j_user, neo4j_password, neo4j_database
        Connection to Neo4j (``CMDB_NEO4J_URI``, ...).
    batch_size : int
        Rows per ``UNWIND`` batch / per write transaction.
    registry_path : Path, optional
        YAML file of additional CI classes and relationship types.
    max_depth, max_results, max_page_size : int
        Server-side caps on traversal depth, result size and page size.
    host, port : str, int
        Where ``cmdb-graph serve`` listens.
    api_keys : list of ApiKey
        ``CMDB_API_KEYS`` as JSON, e.g.
        ``[{"name": "snow", "role": "writer", "sha256": "<hex>"}]``
        (``cmdb-graph apikey`` prints a new key and its entry). With none configured the
        server binds loopback only.
    max_query_depth, max_aliases, max_tokens : int
        GraphQL query limits.
    graph_cache : bool
        Whether the API/CLI engine keeps the whole dependency graph and its topology in memory
        and answers every question from it, rebuilt after each write (default on). Off: each
        question extracts its subgraph from the store (for estates too large to hold).
    import_folder : Path, optional
        The only folder whose files ``importRun`` may read by path (``CMDB_IMPORT_FOLDER``);
        none by default: the API then imports inline content only.
    import_timeout, import_memory_mb : float, int
        Wall-clock seconds and address space (MB) of the worker process that parses an import
        sent through the API; past either it is stopped and the import refused.
    allowed_hosts : list of str
        Host header values the server answers besides loopback names (``CMDB_ALLOWED_HOSTS``,
        comma-separated or a JSON list; ``*.example.com`` matches subdomains, ``*`` any). Empty:
        loopback names only in local mode, any host when API keys are configured.
    max_body_bytes : int
        Largest request body accepted (413 beyond).
    header_timeout, body_timeout : float
        Seconds a client may take to send a request's headers, and its body.
    introspection : bool
        Whether GraphQL introspection (``__schema``, ``__type``) is answered.
    impact_inferred : bool
        Whether change impact follows relationships an importer inferred (``inferred``: from
        environment values, arguments, connection strings; default on). Off
        (``CMDB_IMPACT_INFERRED=false``, or ``cmdb-graph impact --no-inferred`` per question):
        only declared and discovered relationships carry impact.
    feed_retention_days : float
        How long the change feed keeps its records (default 90 days; 0: for ever), on both
        stores. Older records are pruned (on Neo4j by a write at most once an hour, or by
        ``Neo4jStore.prune_feed()``); a follower that missed pruned records gets
        ``FeedGapError`` and rebuilds once from the store.
    checkpoint_on_exit : bool
        Embedded store: when the server stops, write the working graph and the engine's
        topology to ``<database>.checkpoint`` (``CMDB_CHECKPOINT_ON_EXIT``, default on), so
        the next start reads that instead of every row (see
        :mod:`cmdb_graph.store.checkpoint`; ``cmdb-graph checkpoint`` writes one at any time).
    log_level : {"DEBUG", "INFO", "WARNING", "ERROR"}
        Level of the server's log (``CMDB_LOG_LEVEL``, default ``INFO``: one line per
        request, see :mod:`cmdb_graph.logs`).
    log_format : {"json", "text"}
        ``json`` (default): one JSON object per line, for log shippers; ``text``: one
        readable line per record.
    metrics_public : bool
        Whether ``/metrics`` answers without an API key when keys are configured (default
        off: any valid key may read it; in local mode it answers loopback callers only).
    webhooks_file : Path, optional
        YAML file of webhook subscriptions (``CMDB_WEBHOOKS_FILE``; see ``docs/events.md``).
    events_path : Path, optional
        The outbox file: subscriptions made through the API, each subscription's cursor in the
        change feed, dead letters (default ``NAME.events.db`` beside the embedded store's
        database, ``.cmdb/events.db`` with Neo4j).
    events_dispatch : bool
        Whether ``serve`` delivers webhooks (default on; off on all replicas but one when
        several hosts serve one Neo4j database).
    events_poll_interval : float
        Seconds between two looks at the change feed when there was nothing to deliver (also
        for GraphQL subscriptions).
    webhook_timeout : float
        Seconds one delivery attempt may take.
    webhook_retry_timeout : float
        Seconds an event is retried before it becomes a dead letter.
    webhook_backoff_initial, webhook_backoff_max : float
        First and longest wait between two attempts (exponential backoff with jitter).
    """

    model_config = SettingsConfigDict(env_prefix=_ENV_PREFIX, env_file=".env", extra="ignore")

    store: Literal["memory", "neo4j"] | None = None
    database_path: Path | None = None
    snapshot_path: Path | None = None
    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("")
    neo4j_database: str = "neo4j"
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    registry_path: Path | None = None
    max_depth: int = Field(default=12, ge=1, le=100)
    max_results: int = Field(default=100_000, ge=1)
    max_page_size: int = Field(default=1000, ge=1, le=10_000)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_keys: list[ApiKey] = Field(default_factory=list)
    max_query_depth: int = Field(default=12, ge=2, le=50)
    max_aliases: int = Field(default=20, ge=1, le=1000)
    max_tokens: int = Field(default=3000, ge=100, le=100_000)
    graph_cache: bool = True
    import_folder: Path | None = None
    import_timeout: float = Field(default=300.0, gt=0, le=86_400)
    import_memory_mb: int = Field(default=2048, ge=64, le=1_048_576)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    header_timeout: float = Field(default=10.0, gt=0, le=3600)
    body_timeout: float = Field(default=60.0, gt=0, le=3600)
    introspection: bool = True
    feed_retention_days: float = Field(default=90, ge=0)
    checkpoint_on_exit: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    metrics_public: bool = False
    impact_inferred: bool = True
    webhooks_file: Path | None = None
    events_path: Path | None = None
    events_dispatch: bool = True
    events_poll_interval: float = Field(default=0.5, gt=0, le=60)
    webhook_timeout: float = Field(default=10.0, gt=0, le=300)
    webhook_retry_timeout: float = Field(default=3600.0, ge=0)
    webhook_backoff_initial: float = Field(default=1.0, gt=0, le=3600)
    webhook_backoff_max: float = Field(default=60.0, gt=0, le=3600)

    def __init__(self, **values: Any) -> None:
        """Read the settings; any error becomes one :class:`ConfigurationError` line.

        Raises
        ------
        ConfigurationError
            A value is malformed or out of range (the message names each ``CMDB_`` variable
            and what is wrong with it, never the value itself, which may be a secret).
        """
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(_validation_message(exc)) from None
        except SettingsError as exc:
            raise ConfigurationError(_settings_error_message(exc)) from None

    @field_validator("database_path", "snapshot_path", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        """``CMDB_DATABASE_PATH=`` (empty) means unset, not the current folder."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            value = value.strip()
            return value.upper() if info.field_name == "log_level" else value.lower()
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError as exc:
                    raise ValueError("not a JSON list of host names") from exc
            return [h.strip() for h in text.split(",") if h.strip()]
        return value

    def embedded_database(self) -> Path:
        """The embedded store's database: ``database_path``; else (deprecated) the ``.db``
        beside ``snapshot_path``; else ``.cmdb/estate.db``."""
        if self.database_path is not None:
            return self.database_path
        if self.snapshot_path is not None:
            return self.snapshot_path if self.snapshot_path.suffix == ".db" else (
                self.snapshot_path.with_suffix(".db"))
        return DEFAULT_DATABASE

    def legacy_snapshot(self) -> Path | None:
        """The old snapshot file to migrate into an empty database: ``snapshot_path``, or the
        old default ``.cmdb/estate.snapshot`` when no path is configured at all."""
        if self.snapshot_path is not None:
            return self.snapshot_path
        return DEFAULT_SNAPSHOT if self.database_path is None else None

    @model_validator(mode="after")
    def _pick_store(self) -> Settings:
        if self.store is None:
            self.store = "neo4j" if self.neo4j_uri else "memory"
        return self


def _env_name(loc: tuple[int | str, ...]) -> str:
    """``("api_keys", 0, "sha256")`` -> ``CMDB_API_KEYS[0].sha256``."""
    if not loc:
        return "settings"
    name = _ENV_PREFIX + str(loc[0]).upper()
    for part in loc[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def _validation_message(exc: ValidationError) -> str:
    """One line naming every wrong setting and what is wrong (never the value itself)."""
    problems = [f"{_env_name(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
    return "invalid settings: " + "; ".join(problems)


def _settings_error_message(exc: SettingsError) -> str:
    """One line for a value pydantic-settings could not decode (e.g. malformed JSON)."""
    text = str(exc)
    field = text.split('"')[1] if text.count('"') >= 2 else ""
    cause = exc.__cause__
    detail = f" ({cause})" if isinstance(cause, ValueError) else ""
    if field:
        return (f"invalid settings: {_ENV_PREFIX}{field.upper()} is not valid JSON{detail}"
                + (' (expected a JSON list of {"name", "role", "sha256"}; '
                   "`cmdb-graph apikey` prints one)" if field == "api_keys" else ""))
    return f"invalid settings: {text}"
