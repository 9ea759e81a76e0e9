"""Where the embedded store lives: the ``--db`` option every store command takes, and the
deprecated ``--snapshot``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cmdb_graph.settings import Settings

__all__ = ["DbOption", "SnapshotOption", "store_settings", "estate_exists"]

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Embedded store database (default CMDB_DATABASE_PATH, "
                              ".cmdb/estate.db)."),
]
SnapshotOption = Annotated[
    Path | None,
    typer.Option("--snapshot", hidden=True,
                 help="Deprecated: an old snapshot file, migrated once into the database "
                      "beside it (NAME.db) unless --db is given."),
]


def store_settings(db: Path | None = None, snapshot: Path | None = None) -> Settings:
    """The settings with the command's ``--db`` / ``--snapshot`` applied."""
    settings = Settings()
    if snapshot is not None:
        settings.snapshot_path = snapshot
    if db is not None:
        settings.database_path = db
    return settings


def estate_exists(settings: Settings) -> bool:
    """Whether the embedded store has a database, or an old snapshot to migrate (an empty
    file is neither: a reading command must not turn it into a database)."""
    legacy = settings.legacy_snapshot()
    return any(p is not None and p.exists() and p.stat().st_size > 0
               for p in (settings.embedded_database(), legacy))
