"""``cmdb-graph find | explain | changes | incidents``: look CIs up, explain how a CI was
identified, and list the recorded changes and incidents, with names where people read them and
ids in ``--json``.

``find`` is the web UI's search (:func:`cmdb_graph.service.search.search`): a part of a name,
or any identifier. Exit codes: 0 done, 1 nothing found (``find``) or bad input, 2 bad options.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from cmdb_graph.cli import app
from cmdb_graph.cli.paths import DbOption
from cmdb_graph.cli.query import (
    AsJson,
    Snapshot,
    _ask,
    _dump,
    _engine,
    _listed,
    ci_ids_of,
    err,
    out,
)
from cmdb_graph.model import (
    Change,
    ChangeState,
    Incident,
    IncidentState,
    OperationalStatus,
    SupportGroup,
)
from cmdb_graph.service.engine import Engine
from cmdb_graph.service.resolve import ci_names
from cmdb_graph.service.search import SearchResult, search
from impact.incident import CLOSED_INCIDENT_STATES

__all__ = ["changes", "explain", "find", "incidents"]

OnCI = Annotated[
    str | None,
    typer.Option("--ci", help="Only those on this CI (name, identifier or ci_id)."),
]


def _when(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M}"


def _group_names(engine: Engine, group_ids: Sequence[str | None]) -> dict[str, str]:
    found = engine.store.get_nodes("SupportGroup", sorted({g for g in group_ids if g}))
    return {k: g.name for k, g in found.items() if isinstance(g, SupportGroup)}


@app.command()
def find(
    text: Annotated[str, typer.Argument(
        metavar="TEXT", help="A part of a name, or an identifier: ci_id, FQDN, host name, "
                             "serial number, asset tag, cloud id, MAC, IP address, source:key.")],
    ci_class: Annotated[
        str | None, typer.Option("--class", help="Only this CI class (and its subclasses).")
    ] = None,
    status: Annotated[
        OperationalStatus | None, typer.Option(help="Only CIs with this operational status.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="CIs listed at most.")] = 20,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """Find CIs by name or by any identifier: identifier matches first, then names."""
    with _engine(db, snapshot) as engine:
        result: SearchResult = _ask(lambda: search(
            engine.store, text, ci_class=ci_class, status=status, limit=limit,
            graph=lambda: engine.whole_graph().graph))
    if as_json:
        _dump({"truncated": result.truncated, "hits": [
            {"ci_id": h.ci.ci_id, "name": h.ci.name, "ci_class": h.ci.ci_class,
             "system": h.system, "operational_status": h.ci.operational_status.value,
             "matched_on": h.matched_on, "value": h.value} for h in result.hits]})
    elif result.hits:
        more = " (more match: --limit, or a longer text)" if result.truncated else ""
        table = Table(title=f"{len(result.hits)} CI(s) matching {text!r}{more}")
        for col in ("name", "class", "system", "status", "ci_id", "matched"):
            table.add_column(col, overflow="fold")
        for h in result.hits:
            matched = "name" if h.matched_on == "name" else f"{h.matched_on} {h.value}"
            table.add_row(h.ci.name, h.ci.ci_class, h.system or "-",
                          h.ci.operational_status.value, h.ci.ci_id, matched)
        out.print(table)
    if not result.hits:
        err.print(f"no CI matches {text!r}", highlight=False)
        raise typer.Exit(1)


@app.command()
def changes(
    state: Annotated[
        list[ChangeState] | None, typer.Option(help="Only changes in this state (repeatable).")
    ] = None,
    ci: OnCI = None,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """Recorded changes by window start: id, title, state, window (UTC) and CIs.

    `cmdb-graph conflicts CHANGE_ID` assesses one; `cmdb-graph impact --change CHANGE_ID`
    shows what it takes down.
    """
    with _engine(db, snapshot) as engine:
        def work() -> tuple[list[Change], dict[str, str]]:
            only = ci_ids_of(engine, [ci])[0] if ci else None
            found = sorted((c for c in engine.changes()
                            if (not state or c.state in state)
                            and (only is None or only in c.ci_ids)),
                           key=lambda c: (c.window_start, c.change_id))
            return found, ci_names(engine.store, {i for c in found for i in c.ci_ids})

        found, names = _ask(work)
    if as_json:
        _dump(found)
        return
    table = Table(title=f"Changes: {len(found)}")
    for col in ("change", "title", "state", "window (UTC)", "CIs"):
        table.add_column(col, overflow="fold")
    for c in found:
        table.add_row(c.change_id, c.title or "", c.state.value,
                      f"{_when(c.window_start)} - {_when(c.window_end)}",
                      _listed(c.ci_ids, names))
    out.print(table)


@app.command()
def incidents(
    state: Annotated[
        list[IncidentState] | None,
        typer.Option(help="Only incidents in this state (repeatable)."),
    ] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only incidents not resolved or closed.")
    ] = False,
    ci: OnCI = None,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """Recorded incidents, newest first: id, title, state, priority, opened (UTC), CIs and
    support group.

    `cmdb-graph route CI` says where an incident on a CI goes.
    """
    with _engine(db, snapshot) as engine:
        def work() -> tuple[list[Incident], dict[str, str]]:
            only = ci_ids_of(engine, [ci])[0] if ci else None
            found = sorted((i for i in engine.incidents()
                            if (not state or i.state in state)
                            and not (open_only and i.state in CLOSED_INCIDENT_STATES)
                            and (only is None or only in i.ci_ids)),
                           key=lambda i: (-i.opened_at.timestamp(), i.incident_id))
            names = ci_names(engine.store, {c for i in found for c in i.ci_ids})
            return found, names | _group_names(engine, [i.support_group for i in found])

        found, names = _ask(work)
    if as_json:
        _dump(found)
        return
    table = Table(title=f"Incidents: {len(found)}")
    for col in ("incident", "title", "state", "prio.", "opened (UTC)", "CIs", "support group"):
        table.add_column(col, overflow="fold")
    for i in found:
        group = names.get(i.support_group, i.support_group) if i.support_group else ""
        table.add_row(i.incident_id, i.title or "", i.state.value,
                      str(i.priority or ""), _when(i.opened_at), _listed(i.ci_ids, names),
                      group)
    out.print(table)


@app.command()
def explain(
    ci: Annotated[str, typer.Argument(
        metavar="CI", help="The CI: its name, any identifier or its ci_id.")],
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """How a CI was identified: per data source, when it saw the CI, its key and the rule that
    matched its record to the CI; CIs merged into it; duplicate candidates not merged."""
    with _engine(db, snapshot) as engine:
        ci_id = _ask(lambda: ci_ids_of(engine, [ci]))[0]
        item = engine.store.get_cis([ci_id])[ci_id]
        report = _ask(lambda: engine.report("duplicate_candidates"))
        related = [f for f in report.findings
                   if f.subject == ci_id or ci_id in f.related]
        names = ci_names(engine.store, sorted({c for f in related
                                               for c in (f.subject, *f.related)}))
    seen = sorted(item.lineage.sources.items(), key=lambda kv: (kv[1].first_seen, kv[0]))
    sources = [
        {"source": name, "first_seen": s.first_seen.isoformat(),
         "last_seen": s.last_seen.isoformat(), "native_key": s.native_key,
         "identified_by": s.matched_by or ("created it" if i == 0 else "its own key")}
        for i, (name, s) in enumerate(seen)]
    merged = [f.subject for f in related if f.detail.startswith("marked duplicate of")
              and f.subject != ci_id]
    candidates = [{"ci_ids": [c for c in (f.subject, *f.related) if c != ci_id],
                   "evidence": f.detail} for f in related
                  if not f.detail.startswith("marked duplicate of")]
    if as_json:
        _dump({"ci_id": ci_id, "name": item.name, "ci_class": item.ci_class,
               "native_keys": item.native_keys,
               "service_name": item.attributes.get("service_name"),
               "system": item.attributes.get("system"), "duplicate_of": item.duplicate_of,
               "sources": sources, "merged": merged, "duplicate_candidates": candidates})
        return
    out.print(f"{item.name} [{item.ci_class}] {ci_id}", markup=False, highlight=False)
    svc, system = item.attributes.get("service_name"), item.attributes.get("system")
    if svc or system:
        out.print(f"service {svc or item.name!r} in system {system or 'not stated'!r}",
                  markup=False, highlight=False)
    if item.duplicate_of:
        out.print(f"merged into {names.get(item.duplicate_of, item.duplicate_of)} "
                  f"({item.duplicate_of})", markup=False, highlight=False)
    if not seen:
        out.print("no data source has reported it: it was written directly (through the API "
                  "or by `cmdb-graph demo`); `cmdb-graph history` shows by whom",
                  markup=False, highlight=False)
    else:
        table = Table(title="Identified by data source (first seen first)")
        for col in ("source", "first seen", "last seen", "native key", "identified by"):
            table.add_column(col, overflow="fold")
        for name, s in seen:
            table.add_row(name, _when(s.first_seen), _when(s.last_seen), s.native_key or "",
                          s.matched_by or ("created it" if name == seen[0][0]
                                           else "its own key"))
        out.print(table)
    for m in merged:
        out.print(f"merged into it: {names.get(m, m)} ({m})", markup=False, highlight=False)
    for c in candidates:
        who = ", ".join(f"{names.get(x, x)} ({x})" for x in c["ci_ids"])
        out.print(f"duplicate candidate: {who}: {c['evidence']}", markup=False,
                  highlight=False)
