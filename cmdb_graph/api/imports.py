"""Import runs: the ``importRun`` mutation (a registered importer over files on the server
or inline content) and the run report that every write through identification returns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from pydantic import ValidationError

from cmdb_graph.api.auth import require_role
from cmdb_graph.api.common import Info, guarded
from cmdb_graph.api.errors import UserError, user_error
from cmdb_graph.api.import_worker import read_import
from cmdb_graph.errors import CmdbError, InvalidRecordError, NotFoundError
from cmdb_graph.ingest import ImportResult, run_import
from cmdb_graph.model import DataSource, RunMode
from cmdb_graph.settings import Role
from cmdb_graph.store.base import GraphStore

__all__ = ["ImportMutation", "ImportRunType", "data_source", "run_type"]

ImportMode = strawberry.enum(RunMode, name="ImportMode",
                             description="delta: create and update; full: also retire.")


@strawberry.input(description="An import of files by a registered importer (admin).")
class ImportRunInput:
    kind: str = strawberry.field(description="Importer kind, e.g. glpi, netbox, nmap.")
    source: str = strawberry.field(description="Data source name.")
    priority: int | None = strawberry.field(default=None, description="Source priority.")
    paths: list[str] = strawberry.field(
        default_factory=list,
        description="Files in the server's import folder (CMDB_IMPORT_FOLDER), read in order.")
    content: str | None = strawberry.field(default=None,
                                           description="Or the file content itself.")
    filename: str = strawberry.field(
        default="upload", description="Name for inline content (its suffix picks a parser)."
    )
    mode: ImportMode = strawberry.field(default=RunMode.DELTA, description="delta or full.")
    dry_run: bool = strawberry.field(default=False, description="Plan only.")
    force: bool = strawberry.field(default=False,
                                   description="Let a full run through the breaker.")


@strawberry.type(description="Counters of an import run.")
class ImportCounts:
    created: int = strawberry.field(description="Nodes and relationships created.")
    updated: int = strawberry.field(description="Updated (value changes).")
    unchanged: int = strawberry.field(description="Seen again, unchanged.")
    merged: int = strawberry.field(description="Duplicate CIs merged.")
    retired: int = strawberry.field(description="CIs retired.")
    skipped: int = strawberry.field(description="Records skipped.")


@strawberry.type(description="A record (or part) not applied, and why.")
class ImportSkip:
    record_type: str = strawberry.field(description="ci, relationship, asset, ...")
    reason: str = strawberry.field(description="Why.")
    where: str | None = strawberry.field(description="File and line / record.")


@strawberry.type(name="ImportRun", description="One identification and reconciliation run.")
class ImportRunType:
    run_id: str = strawberry.field(description="Run id.")
    source: str = strawberry.field(description="Data source.")
    importer: str = strawberry.field(description="Importer kind, or 'api'.")
    mode: ImportMode = strawberry.field(description="delta or full.")
    status: str = strawberry.field(description="succeeded, dry_run, ...")
    dry_run: bool = strawberry.field(description="Nothing was written.")
    counts: ImportCounts = strawberry.field(description="Counters.")
    skips: list[ImportSkip] = strawberry.field(description="Skipped records.")
    warnings: list[ImportSkip] = strawberry.field(description="Records applied in part.")
    error: str | None = strawberry.field(
        default=None, description="Why the run failed or was aborted; for an interrupted run "
                                  "whose writes were undone, what was undone.")
    feed_from: int | None = strawberry.field(
        default=None, description="The change feed's head right before the run's first write: "
                                  "the run's change records come after it (null: nothing "
                                  "written).")
    undone_at: datetime | None = strawberry.field(
        default=None, description="When an interrupted run's writes were undone (null: not "
                                  "undone).")


def run_type(r: ImportResult) -> ImportRunType:
    """The run report of an import result (at most 200 skips and warnings)."""
    c = r.counts

    def skip(s: Any) -> ImportSkip:
        return ImportSkip(record_type=s.record_type, reason=s.reason,
                          where=str(s.origin) if s.origin else None)

    return ImportRunType(
        run_id=r.run.run_id, source=r.run.source, importer=r.run.importer, mode=r.run.mode,
        status=str(r.run.status), dry_run=r.dry_run,
        counts=ImportCounts(**{k: c.get(k, 0) for k in
                               ("created", "updated", "unchanged", "merged", "retired",
                                "skipped")}),
        skips=[skip(s) for s in r.plan.skips[:200]],
        warnings=[skip(s) for s in r.plan.warnings[:200]],
        error=r.run.error, feed_from=r.run.feed_from, undone_at=r.run.undone_at,
    )


@strawberry.type(description="A finished import run.")
class ImportRunPayload:
    run: ImportRunType = strawberry.field(description="The run.")


ImportRunResult = Annotated[ImportRunPayload | UserError, strawberry.union("ImportRunResult")]


def data_source(store: GraphStore, name: str, priority: int | None) -> DataSource | str:
    """The data source a write names: its name alone, or with ``priority`` the stored source
    (or a new one) at that priority."""
    try:
        if priority is None:
            return DataSource(name=name).name
        try:
            found = store.get_node("DataSource", name)
        except NotFoundError:
            return DataSource(name=name, kind="api", priority=priority)
        assert isinstance(found, DataSource)
        return found.model_copy(update={"priority": priority})
    except ValidationError as exc:
        raise InvalidRecordError(
            f"invalid data source name {name!r}: use letters, digits, '_', '.', '-'",
            field="source",
        ) from exc


@strawberry.type
class ImportMutation:
    """Imports by a registered importer."""

    @strawberry.mutation(description="Run a registered importer over files on the server or "
                                      "inline content (admin).")
    async def import_run(self, info: Info, input: ImportRunInput) -> ImportRunResult:
        store = info.context.store
        try:  # files only from the import folder, parsed in a worker process under limits
            require_role(info.context.principal, Role.ADMIN)
            parsed = await read_import(info.context.app.settings, input.kind, paths=input.paths,
                                       content=input.content, filename=input.filename)
        except CmdbError as exc:
            return user_error(exc, info.context.facts)

        def work() -> ImportRunPayload:
            src = data_source(store, input.source, input.priority)
            result = run_import(store, parsed.records, source=src, importer=input.kind,
                                mode=input.mode, dry_run=input.dry_run, force=input.force,
                                files=parsed.files, actor=info.context.actor)
            return ImportRunPayload(run=run_type(result))

        return await guarded(info, Role.ADMIN, work, write=True)
