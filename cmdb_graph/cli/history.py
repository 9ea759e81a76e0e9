"""``cmdb-graph history | diff``: a CI's changes and what changed in the estate, read from the
store's change feed (:mod:`cmdb_graph.service.history`), with names."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from cmdb_graph.cli import app
from cmdb_graph.cli.paths import DbOption
from cmdb_graph.cli.query import AsJson, _ask, _dump, _engine, _utc, ci_ids_of, err, out
from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model import ImportRun, RunStatus
from cmdb_graph.service import diff, history
from cmdb_graph.service.engine import list_all
from cmdb_graph.service.resolve import ci_names
from cmdb_graph.store.base import GraphStore

__all__ = ["diff_command", "history_command", "last_run_start"]


def _value(v: Any) -> str:
    if v is None:
        return "-"
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)


def _changes(changes: tuple[history.FieldChange, ...], names: dict[str, str],
             most: int = 6) -> str:
    shown = [f"{c.name}: {_value(_named(c.old, names))} -> {_value(_named(c.new, names))}"
             for c in changes[:most]]
    if len(changes) > most:
        shown.append(f"... {len(changes) - most} more (--json)")
    return "\n".join(shown)


def _values(entry: history.HistoryEntry, names: dict[str, str]) -> str:
    """The values a row shows: the changed ones; of a new CI its name and class only."""
    if entry.op == "created" and entry.rel_type is None:
        kept = tuple(c for c in entry.changes if c.name in ("name", "ci_class"))
        rest = len(entry.changes) - len(kept)
        return _changes(kept, names) + (f"\n(and {rest} more attributes; --json)"
                                        if rest else "")
    return _changes(entry.changes, names)


def _named(value: Any, names: dict[str, str]) -> Any:
    """A value with the name of the CI it is the id of (a string, or strings of a list)."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_named(v, names) for v in value]
    return value


def _value_ids(changes: Iterable[history.FieldChange]) -> set[str]:
    """The values (and strings of list values) of ``changes`` that may be ids."""
    out: set[str] = set()
    for c in changes:
        for v in (c.old, c.new):
            out.update(x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str))
    return out


def _who(entry: history.HistoryEntry) -> str:
    a = entry.actor
    if a.run_id:
        return f"{a.kind} {a.source or a.name} run {a.run_id}"
    return f"{a.kind} {a.name}" + (f" ({a.role})" if a.role else "")


@app.command("history")
def history_command(
    ci: Annotated[str, typer.Argument(metavar="CI", help="The CI: name, identifier or ci_id.")],
    limit: Annotated[int, typer.Option(min=1, help="Changes shown (the newest).")] = 50,
    db: DbOption = None,
    as_json: AsJson = False,
) -> None:
    """Every change of a CI's attributes and relationships that the change feed still holds:
    old and new values, the import run and data source or the API key that made it, and when.
    """
    with _engine(db) as engine:
        def work() -> tuple[str, list[history.HistoryEntry], int, dict[str, str]]:
            ci_id = ci_ids_of(engine, [ci])[0]
            entries: list[history.HistoryEntry] = []
            after: str | None = None
            while True:
                page = history.ci_history(engine.store, ci_id, first=1000, after=after)
                entries.extend(page.items)
                if page.next_cursor is None:
                    break
                after = page.next_cursor
            shown = entries[-limit:]
            names = history.entry_names(engine.store, shown)
            ids = _value_ids(c for e in shown for c in e.changes)
            return ci_id, shown, len(entries), ci_names(engine.store, ids) | names

        ci_id, entries, total, names = _ask(work)
    if as_json:
        _dump([{"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor.to_json(), "op": e.op,
                "ci_id": e.ci_id, "rel_type": e.rel_type, "source": e.source,
                "target": e.target,
                "changes": [{"name": c.name, "old": c.old, "new": c.new} for c in e.changes]}
               for e in entries])
        return
    table = Table(title=f"History of {names.get(ci_id, ci_id)}: {total} change(s)"
                        + (f", the newest {len(entries)}" if total > len(entries) else ""))
    for col in ("at (UTC)", "by", "change"):
        table.add_column(col, overflow="fold")
    table.add_column("values", overflow="fold")
    for e in entries:
        what = e.op
        if e.rel_type:
            what = (f"{e.op} {names.get(e.source or '', e.source)} -{e.rel_type}-> "
                    f"{names.get(e.target or '', e.target)}")
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), _who(e), what, _values(e, names))
    out.print(table)


def last_run_start(store: GraphStore, source: str) -> datetime:
    """When the last successful import run of data source ``source`` started.

    Raises
    ------
    InvalidRecordError
        The source has no successful run.
    """
    runs = [r for r in list_all(store, "ImportRun") if isinstance(r, ImportRun)
            and r.source == source and r.status is RunStatus.SUCCEEDED]
    if not runs:
        raise InvalidRecordError(f"data source {source!r} has no successful import run",
                                 field="--since-last-run")
    return max(r.started_at for r in runs)


@app.command("diff")
def diff_command(
    since: Annotated[str | None, typer.Option(
        help="From this ISO 8601 time (UTC unless it says).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time (default: now).")] = None,
    since_last_run: Annotated[str | None, typer.Option(
        "--since-last-run", metavar="SOURCE",
        help="From the start of this data source's last successful import run.")] = None,
    source: Annotated[str | None, typer.Option(
        help="Only the writes of this data source's import runs.")] = None,
    db: DbOption = None,
    as_json: AsJson = False,
) -> None:
    """What changed in the estate between two times: CIs created, changed, retired and
    deleted, relationships added, changed and removed, with names."""
    if (since is None) == (since_last_run is None):
        err.print("[red]error:[/red] give --since TIME or --since-last-run SOURCE")
        raise typer.Exit(2)
    end = None if until is None else _utc(until, "--until")
    with _engine(db) as engine:
        def work() -> tuple[datetime, diff.EstateDiff, dict[str, str]]:
            start = (_utc(since, "--since") if since is not None
                     else last_run_start(engine.store, str(since_last_run)))
            found, names = diff.diff_between(engine.store, start, end, source)
            ids = _value_ids(f for c in found.cis for f in c.changes)
            return start, found, ci_names(engine.store, ids) | names

        start, found, names = _ask(work)
    if as_json:
        _dump({"since": found.since, "until": found.until, "records": found.records,
               "seen": found.seen,
               "cis": [{"ci_id": c.ci_id, "name": c.name, "ci_class": c.ci_class,
                        "status": c.status,
                        "changes": [{"name": f.name, "old": f.old, "new": f.new}
                                    for f in c.changes]} for c in found.cis],
               "relationships": [{"rel_type": r.rel_type, "source": r.source,
                                  "target": r.target, "status": r.status}
                                 for r in found.relationships]})
        return
    counts: dict[str, int] = {}
    for c in found.cis:
        counts[c.status] = counts.get(c.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no CI changed"
    out.print(f"Since {start.isoformat()}" + (f" (last run of {since_last_run})"
                                              if since_last_run else "")
              + f": {found.records} write(s); {summary}; {len(found.relationships)} "
                f"relationship(s) changed; {found.seen} only seen again", highlight=False)
    if found.cis:
        table = Table(title="CIs")
        for col in ("status", "name", "class"):
            table.add_column(col)
        table.add_column("changes", overflow="fold")
        for c in found.cis:
            table.add_row(c.status, c.name or c.ci_id, c.ci_class or "",
                          "" if c.status in ("created", "deleted") else
                          _changes(c.changes, names))
        out.print(table)
    if found.relationships:
        rels = Table(title="Relationships")
        for col in ("status", "relationship"):
            rels.add_column(col, overflow="fold")
        for r in found.relationships:
            rels.add_row(r.status, f"{names.get(r.source, r.source)} -{r.rel_type}-> "
                                   f"{names.get(r.target, r.target)}")
        out.print(rels)
