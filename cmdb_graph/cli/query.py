"""``cmdb-graph impact | conflicts | route | orphans | coverage | licences | map | export``: impact
questions and exports on the configured store, as readable tables or ``--json``.

Every command opens the store that the settings name (``CMDB_STORE``, ``CMDB_NEO4J_URI``,
``CMDB_DATABASE_PATH`` or ``--db``) and answers with the same
:class:`~cmdb_graph.service.engine.Engine` as the GraphQL API, under the same caps.
A CI is named by its ``ci_id``, its name (or a unique part of it) or any identifier
(:func:`~cmdb_graph.service.resolve.resolve_ci`); tables show names, ``--json`` ids.
Exit codes: 0 done, 1 bad input (unknown or ambiguous CI, unknown change, over a cap),
2 bad options.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import networkx as nx
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

import impact
import impact.licences
from cmdb_graph.cli import app
from cmdb_graph.cli.paths import DbOption, SnapshotOption, estate_exists, store_settings
from cmdb_graph.cli.render import RENDERERS, ExportFormat
from cmdb_graph.errors import AmbiguousCIError, CmdbError
from cmdb_graph.model import Change, RelationshipBasis
from cmdb_graph.service.engine import Engine, ProposedChange
from cmdb_graph.service.resolve import (
    GroupContact,
    ci_names,
    ids_in,
    resolve_ci,
    support_contact,
    with_names,
)
from cmdb_graph.store.base import Direction, GraphStore

__all__ = [
    "ci_ids_of",
    "conflicts",
    "coverage",
    "export",
    "impact_command",
    "licences",
    "map_command",
    "orphans",
    "route",
]

out = Console(soft_wrap=True)
err = Console(stderr=True)
T = TypeVar("T")

#: The reports ``cmdb-graph orphans`` runs by default (``--all``: every report).
ORPHAN_REPORTS = ("retired_assets_in_use", "unmanaged_cis", "assets_unseen_by_discovery",
                  "cis_without_support_or_owner", "entitlements_on_retired")

Snapshot = SnapshotOption
_REPORT_HELP = ("Run only these reports (default: the orphan reports; --all: every report): "
                + ", ".join(impact.REPORTS) + ".")
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
AsOf = Annotated[str | None, typer.Option(
    "--as-of", help="Answer on the graph as it was at this ISO 8601 time (UTC unless it says): "
                    "every write committed at or before it, within the change feed's "
                    "retention.")]


@contextmanager
def _engine(db: Path | None, snapshot: Path | None = None) -> Iterator[Engine]:
    from cmdb_graph.store.factory import open_store

    settings = store_settings(db, snapshot)
    if settings.store == "memory" and not estate_exists(settings):
        err.print(f"[red]error:[/red] no estate at {settings.embedded_database()}: run "
                  "`cmdb-graph demo` or `cmdb-graph import` first, or pass --db")
        raise typer.Exit(1)
    try:
        store: GraphStore = open_store(settings)
    except CmdbError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    try:
        yield Engine(store, settings)
    finally:
        store.close()


def _ask(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except AmbiguousCIError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        # the system (compose project, namespace, ...) tells apart CIs of one name and class
        rows = [(h.ci.name, h.ci.ci_class, h.system or "-", h.ci.operational_status.value,
                 h.ci.ci_id, "" if h.matched_on == "name" else f"({h.matched_on} {h.value})")
                for h in exc.candidates]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False))
            err.print(f"  {line}  {row[5]}".rstrip(), markup=False, highlight=False,
                      soft_wrap=True)
        if exc.truncated:
            err.print("  ... and more (cmdb-graph find TEXT --limit N lists them)")
        raise typer.Exit(1) from exc
    except CmdbError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc


def ci_ids_of(engine: Engine, texts: Sequence[str]) -> list[str]:
    """The ``ci_id`` of the CI each of ``texts`` names, in order, each once.

    A text that matched only part of a CI's name is reported on stderr with the CI taken.

    Raises
    ------
    CINotFoundError, AmbiguousCIError
        As :func:`~cmdb_graph.service.resolve.resolve_ci` (for :func:`_ask` to print).
    """
    ids: list[str] = []
    for text in texts:
        hit = resolve_ci(engine.store, text, graph=lambda: engine.whole_graph().graph)
        if hit.matched_on == "name" and hit.value.lower() != text.strip().lower():
            err.print(f"{text!r}: taken as {hit.ci.name} ({hit.ci.ci_class}, {hit.ci.ci_id})",
                      markup=False, highlight=False, soft_wrap=True)
        if hit.ci.ci_id not in ids:
            ids.append(hit.ci.ci_id)
    return ids


def _dump(value: Any) -> None:
    def plain(v: Any) -> Any:
        if isinstance(v, BaseModel):
            return v.model_dump(mode="json")
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    typer.echo(json.dumps(plain(value), indent=2, sort_keys=True, default=str))


def _utc(text: str, option: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        err.print(f"[red]error:[/red] {option}: not an ISO 8601 time: {text!r}")
        raise typer.Exit(2) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def past_time(as_of: str | None) -> datetime | None:
    """The ``--as-of`` time in UTC (``None``: now); exits 2 when it is not a time."""
    return None if as_of is None else _utc(as_of, "--as-of")


def names_then(engine: Engine, ci_ids: Iterable[str]) -> dict[str, str]:
    """Names of ``ci_ids`` on the graph the engine answers on (inside ``Engine.as_of``: the
    names then), else in the store."""
    ids = set(ci_ids)
    graph = engine.whole_graph() if engine.cache_enabled or engine.in_past() else None
    found = {c: graph.name(c) or c for c in ids if c in graph} if graph is not None else {}
    return ci_names(engine.store, ids - set(found)) | found


def _path(p: Sequence[str], names: Mapping[str, str],
          links: Sequence[impact.PathLink] = ()) -> str:
    """A path by names; a hop whose relationship was inferred is drawn ``~>``."""
    if not p:
        return ""
    inferred = {(x.source, x.target) for x in links
                if x.basis is RelationshipBasis.INFERRED}
    text = names.get(p[0], p[0])
    for a, b in zip(p, p[1:], strict=False):
        hop = "~>" if (b, a) in inferred or (a, b) in inferred else "->"
        text += f" {hop} {names.get(b, b)}"
    return text


def _inferred_links(impacted: Iterable[impact.ImpactedCI]) -> list[impact.PathLink]:
    """The inferred relationships on the first path of each impacted CI, each once."""
    found: dict[tuple[str, str, str], impact.PathLink] = {}
    for c in impacted:
        for link in c.links[0] if c.links else ():
            if link.basis is RelationshipBasis.INFERRED:
                found.setdefault((link.rel_type, link.source, link.target), link)
    return list(found.values())


def _listed(ci_ids: Sequence[str], names: Mapping[str, str], most: int = 8) -> str:
    shown = ", ".join(names.get(c, c) for c in ci_ids[:most])
    return shown + (f" and {len(ci_ids) - most} more" if len(ci_ids) > most else "")


# -- impact -------------------------------------------------------------------------------


@app.command("impact")
def impact_command(
    cis: Annotated[
        list[str] | None,
        typer.Argument(metavar="CI", help="CIs under change: name, identifier or ci_id."),
    ] = None,
    change: Annotated[
        str | None, typer.Option(help="Use the CIs of this recorded change.")
    ] = None,
    depth: Annotated[int | None, typer.Option(help="Report up to this many hops.")] = None,
    services_only: Annotated[
        bool, typer.Option("--services-only", help="Only business and application services.")
    ] = False,
    paths: Annotated[int, typer.Option(help="Explaining paths per impacted CI.")] = 1,
    as_of: AsOf = None,
    inferred: Annotated[
        bool | None,
        typer.Option("--inferred/--no-inferred",
                     help="Follow inferred relationships (default: CMDB_IMPACT_INFERRED, on).",
                     show_default=False),
    ] = None,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """What taking CIs down (for a change) impacts, with the paths that explain it.

    A hop over an inferred relationship (a dependency an importer read from a setting, not
    one the source declared) is drawn ``~>`` and listed below the table with its confidence,
    evidence and file; the "sure" column is how sure each impact is (the product of its
    path's confidences: declared 1, discovered 0.9, inferred as the importer judged it).
    --no-inferred leaves inferred relationships out.
    """
    when = past_time(as_of)
    if not cis and change is None:
        err.print("[red]error:[/red] name the CIs under change (CI...) or a recorded change "
                  "(--change ID); `cmdb-graph changes` lists them")
        raise typer.Exit(1)
    with _engine(db, snapshot) as engine:
        def work() -> tuple[impact.ChangeImpact, dict[str, str], impact.ImpactSummary | None]:
            ids = ci_ids_of(engine, cis or [])
            if change is not None:
                ids += engine.change(change).ci_ids
            with engine.as_of(when):
                found = engine.change_impact(sorted(set(ids)), depth=depth,
                                             services_only=services_only, paths_per_ci=paths,
                                             inferred=inferred)
                # what leaving inferred relationships out left out, so that an empty answer
                # is not read as "safe"
                whole = None if inferred is not False else engine.change_impact(
                    sorted(set(ids)), depth=depth, services_only=services_only,
                    paths_per_ci=0, inferred=True).summary
                on_paths = {c for i in found.impacted for p in i.paths for c in p}
                return found, names_then(engine, on_paths | set(found.changed)), whole

        result, names, whole = _ask(work)
    if as_json:
        _dump(result)
        return
    s = result.summary
    then = f" as of {when.isoformat()}" if when else ""
    idle = f", {s.not_in_service} not in service" if s.not_in_service else ""
    table = Table(title=f"Impact of {_listed(result.changed, names)}{then}: {s.total} CI(s), "
                        f"{s.services_hit} service(s){idle}")
    for col in ("status", "depth", "name", "class", "crit.", "sure"):
        table.add_column(col)
    table.add_column("path", overflow="fold")
    for c in result.impacted:
        status = (c.status.value if c.in_service else
                  f"{c.status.value} (not in service: {c.operational_status})")
        table.add_row(status, str(c.depth), c.name, c.ci_class,
                      str(c.business_criticality or ""),
                      "" if c.confidence is None else f"{c.confidence:.2f}",
                      _path(c.paths[0], names, c.links[0] if c.links else ()) if c.paths
                      else "")
    out.print(table)
    inferred_links = _inferred_links(result.impacted)
    if inferred_links:
        out.print("~> inferred by the importer from what the source implies:", highlight=False)
        for x in sorted(inferred_links, key=lambda x: (names.get(x.source, x.source),
                                                       names.get(x.target, x.target))):
            where = f" ({x.evidence_file})" if x.evidence_file else ""
            out.print(f"  {names.get(x.source, x.source)} -[{x.rel_type}]-> "
                      f"{names.get(x.target, x.target)}, confidence {x.confidence:.2f}: "
                      f"{x.evidence or 'no evidence recorded'}{where}", markup=False,
                      highlight=False)
    for g in result.redundancy:
        idle = (f", {g.inputs_not_in_service} not in service" if g.inputs_not_in_service
                else "")
        out.print(f"redundancy group {g.name} (rule {g.rule}): {g.inputs_down} of "
                  f"{g.required_inputs} down{idle}, headroom {g.headroom} -> {g.status.value}",
                  highlight=False)
    if result.truncated:
        out.print(f"(CIs beyond depth {result.depth_limit} left out)")
    if whole is not None and (whole.total, whole.services_hit) != (s.total, s.services_hit):
        out.print(f"--no-inferred left out {whole.total - s.total} CI(s) and "
                  f"{whole.services_hit - s.services_hit} service(s) that inferred "
                  "relationships reach (without the option: "
                  f"{whole.total} CI(s), {whole.services_hit} service(s))", highlight=False)


# -- conflicts ----------------------------------------------------------------------------


@app.command()
def conflicts(
    change_id: Annotated[
        str | None, typer.Argument(metavar="CHANGE_ID", help="A recorded change.")
    ] = None,
    ci: Annotated[
        list[str] | None,
        typer.Option("--ci", help="Proposed change: a CI (name, identifier or ci_id; "
                                  "repeatable)."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="Proposed change: window start.")] = None,
    end: Annotated[str | None, typer.Option(help="Proposed change: window end.")] = None,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """Conflicts of a recorded change, or of a proposed one (--ci, --start, --end)."""
    if (change_id is None) == (not ci):
        err.print("[red]error:[/red] give a change id, or --ci with --start and --end")
        raise typer.Exit(2)
    window: tuple[datetime, datetime] | None = None
    if ci:
        if start is None or end is None:
            err.print("[red]error:[/red] a proposed change needs --start and --end")
            raise typer.Exit(2)
        window = (_utc(start, "--start"), _utc(end, "--end"))
    with _engine(db, snapshot) as engine:
        def work() -> tuple[Change, tuple[impact.ChangeConflict, ...], dict[str, str]]:
            if window is not None:
                proposed: Change | ProposedChange = ProposedChange(
                    ci_ids=tuple(ci_ids_of(engine, ci or [])), window_start=window[0],
                    window_end=window[1])
            else:
                proposed = engine.change(str(change_id))
            assessed, found = engine.change_conflicts(proposed)
            labels = {c.change_id: f"{c.change_id} ({c.title})" if c.title else c.change_id
                      for c in engine.changes()}
            labels |= {w.window_id: w.name or w.window_id for w in engine.windows()}
            shown = {c for f in found for c in (*f.ci_ids, *ids_in(f.detail))}
            return assessed, found, labels | ci_names(engine.store,
                                                      shown | set(assessed.ci_ids))

        assessed, found, names = _ask(work)
    if as_json:
        _dump({"change": assessed, "conflicts": list(found)})
        return
    window_text = (f"{assessed.window_start:%Y-%m-%d %H:%M} - "
                   f"{assessed.window_end:%Y-%m-%d %H:%M} UTC")
    title = ("the proposed change" if window is not None
             else names.get(assessed.change_id, assessed.change_id))
    table = Table(title=f"Conflicts of {title} on {_listed(assessed.ci_ids, names)} "
                        f"({window_text}): {len(found)}")
    for col in ("kind", "with", "CIs", "detail"):
        table.add_column(col, overflow="fold")
    for c in found:
        other = c.other_change_id or c.window_id
        table.add_row(c.kind.value, names.get(other, other) if other else "",
                      _listed(c.ci_ids, names), with_names(c.detail, names))
    out.print(table)


# -- route --------------------------------------------------------------------------------


@app.command()
def route(
    ci: Annotated[str, typer.Argument(metavar="CI", help="The CI the incident is on: name, "
                                                        "identifier or ci_id.")],
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """The support group an incident on a CI goes to (name and contact), and why."""
    with _engine(db, snapshot) as engine:
        def work() -> tuple[impact.Routing, GroupContact | None, dict[str, str]]:
            found = engine.route_incident(ci_ids_of(engine, [ci])[0])
            group = (support_contact(engine.store, found.support_group)
                     if found.support_group else None)
            return found, group, ci_names(engine.store, found.path)

        result, group, names = _ask(work)
    if as_json:
        _dump({**result.model_dump(mode="json"),
               "group": None if group is None else dataclasses.asdict(group)})
        return
    name = names.get(result.ci_id, result.ci_id)
    if group is None:
        out.print(f"An incident on {name} goes to no support group.", highlight=False)
    else:
        out.print(f"An incident on {name} goes to {group.name}", highlight=False)
        out.print(f"  contact: {group.contact() or '(none recorded)'}", highlight=False)
    out.print(f"  why: {with_names(result.reason, names)}", highlight=False)
    if len(result.path) > 1:
        out.print(f"  path: {_path(result.path, names)}", highlight=False)


# -- orphans ------------------------------------------------------------------------------


@app.command()
def orphans(
    reports: Annotated[
        list[str] | None,
        typer.Argument(metavar="REPORT", help=_REPORT_HELP, show_default=False),
    ] = None,
    all_reports: Annotated[
        bool, typer.Option("--all", help="Every data-quality report, not only orphans.")
    ] = False,
    now: Annotated[str | None, typer.Option(help="Reference time (default: now).")] = None,
    unseen_days: Annotated[int, typer.Option(min=0, help="Unseen in-use assets.")] = 30,
    stale_days: Annotated[int, typer.Option(min=0, help="Stale CIs.")] = 30,
    limit: Annotated[int, typer.Option(min=1, help="Findings shown per report.")] = 20,
    as_of: AsOf = None,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """Orphaned assets and CIs (and, with --all, every data-quality report).

    With --as-of the reports run on the graph as it was then (assets and entitlements as they
    are now), with that time as the reference time unless --now says otherwise.
    """
    names = list(reports or (impact.REPORTS if all_reports else ORPHAN_REPORTS))
    unknown = [n for n in names if n not in impact.REPORTS]
    if unknown:
        err.print(f"[red]error:[/red] unknown report(s) {', '.join(unknown)}; known: "
                  f"{', '.join(impact.REPORTS)}")
        raise typer.Exit(2)
    past = past_time(as_of)
    when = _utc(now, "--now") if now else past or datetime.now(UTC)
    options = impact.QualityOptions(unseen_days=unseen_days, stale_days=stale_days)
    with _engine(db, snapshot) as engine:
        def read() -> impact.QualityInput:
            with engine.as_of(past):
                return engine.quality_input(now=when, options=options)

        data = _ask(read)
        results = {n: _ask(lambda n=n: impact.run_report(n, data)) for n in names}  # type: ignore[misc]
    if as_json:
        _dump(results)
        return
    labels = _quality_names(data)
    for name, r in results.items():
        table = Table(title=f"{name}: {r.count} finding(s)", caption=r.definition)
        for col in ("subject", "kind", "CI", "detail"):
            table.add_column(col, overflow="fold")
        for f in r.findings[:limit]:
            # the CI's name on every row about one (a kind=ci row's subject is the CI itself)
            ci = labels.get(f.ci_id, f.ci_id) if f.ci_id else ""
            table.add_row(with_names(f.subject, labels), f.subject_kind, ci,
                          with_names(f.detail, labels))
        if r.count > limit:
            table.add_row("...", "", "", f"{r.count - limit} more (--limit, --json)")
        out.print(table)


def _quality_names(data: impact.QualityInput) -> dict[str, str]:
    """Names of every CI, asset and entitlement the reports may name."""
    found = {str(n): str(name) for n, name in data.graph.graph.nodes(data="name") if name}
    found |= {a.asset_id: a.name for a in data.assets if a.name}
    found |= {e.entitlement_id: e.name for e in data.entitlements}
    return found


# -- coverage -----------------------------------------------------------------------------


@app.command()
def coverage(
    limit: Annotated[int, typer.Option(min=1, help="CIs listed at most per list.")] = 20,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """Coverage of the dependency map: services that need nothing, containers nothing needs,
    and the share of impacting relationships that were inferred rather than declared."""
    with _engine(db, snapshot) as engine:
        result = _ask(engine.coverage)
        names = ci_names(engine.store, [*result.services_without_dependencies,
                                        *result.containers_without_dependents])
    if as_json:
        _dump({**dataclasses.asdict(result), "inferred_share": result.inferred_share})
        return
    out.print(f"{result.inferred_relationships} of {result.relationships} impacting "
              f"relationship(s) inferred ({result.inferred_share:.0%}); impact without them: "
              "cmdb-graph impact --no-inferred", highlight=False)
    for title, found in (("services with no dependencies", result.services_without_dependencies),
                         ("containers nothing depends on",
                          result.containers_without_dependents)):
        table = Table(title=f"{len(found)} {title}")
        table.add_column("name", overflow="fold")
        table.add_column("ci_id", overflow="fold")
        for ci_id in found[:limit]:
            table.add_row(names.get(ci_id, ci_id), ci_id)
        if len(found) > limit:
            table.add_row("...", f"{len(found) - limit} more (--limit, --json)")
        out.print(table)


# -- licences -----------------------------------------------------------------------------


@app.command()
def licences(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Expired entitlements stop counting (default: today, UTC)."),
    ] = None,
    problems: Annotated[
        bool, typer.Option("--problems", help="Only over- and under-licensed products (not "
                                              "those that need no licence).")
    ] = False,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """Licence position: entitled seats against installations per software product."""
    if as_of is None:
        day = datetime.now(UTC).date()
    else:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            err.print(f"[red]error:[/red] --as-of: not an ISO 8601 date: {as_of!r}")
            raise typer.Exit(2) from None
    with _engine(db, snapshot) as engine:
        result = _ask(lambda: engine.licence_position(as_of=day))
    if as_json:
        _dump(result)
        return
    status = impact.licences.LicenceStatus
    rows = [p for p in result.products
            if not problems or p.status in (status.UNDER_LICENSED, status.OVER_LICENSED)]
    free = sum(1 for p in result.products if p.status is status.NOT_REQUIRED)
    table = Table(title=f"Licence position on {day.isoformat()}: {len(result.products)} "
                        f"product(s), {len(result.under_licensed)} under-licensed, "
                        f"{len(result.over_licensed)} over-licensed, {free} need no licence")
    table.add_column("product (vendor)", overflow="fold")
    table.add_column("status", no_wrap=True)
    for col in ("seats", "inst.", "short", "unused"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("expired", overflow="fold")
    for p in rows:
        table.add_row(p.name + (f" ({p.vendor})" if p.vendor else ""), p.status.value,
                      str(p.entitled_seats), str(p.installations), str(p.shortfall),
                      str(p.unused_seats), ", ".join(p.expired_entitlements))
    out.print(table)
    if result.unattributed_entitlements:
        out.print("entitlements naming no product: "
                  + ", ".join(result.unattributed_entitlements))


# -- map ----------------------------------------------------------------------------------


@app.command("map")
def map_command(
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="The service (any CI works): "
                                                                  "name, identifier or ci_id.")],
    depth: Annotated[int | None, typer.Option(help="Hops below the service.")] = None,
    as_of: AsOf = None,
    db: DbOption = None,
    snapshot: Snapshot = None,
    as_json: AsJson = False,
) -> None:
    """A service down to its infrastructure, and its single points of failure.

    Workloads that state how many replicas they run (Kubernetes ``spec.replicas``, compose
    ``deploy.replicas``) show them; ``--json`` gives them as ``replicas`` by ``ci_id``.
    """
    when = past_time(as_of)
    with _engine(db, snapshot) as engine:
        def work() -> tuple[impact.ServiceMap, tuple[impact.SinglePointOfFailure, ...],
                            dict[str, str], dict[str, int]]:
            ci_id = ci_ids_of(engine, [service])[0]
            with engine.as_of(when):
                found = engine.service_map(ci_id, depth=depth)
                spof = engine.single_points_of_failure(ci_id)
                names = {n.ci_id: n.name for n in found.nodes}
                missing = {c for p in spof for c in p.path} - set(names)
                return (found, spof, names | names_then(engine, missing),
                        replicas_of(engine.store, [n.ci_id for n in found.nodes]))

        smap, spof, names, replicas = _ask(work)
    if as_json:
        _dump({"service_map": smap, "single_points_of_failure": list(spof),
               "replicas": replicas})
        return
    classes = {n.ci_id: n.ci_class for n in smap.nodes}

    def label(c: str) -> str:
        extra = f", {replicas[c]} replicas" if c in replicas else ""
        return f"{names.get(c, c)} [{classes.get(c, 'CI')}{extra}]"

    then = f" as of {when.isoformat()}" if when else ""
    table = Table(title=f"Service map of {label(smap.service)}{then}")
    table.add_column("depth")
    table.add_column("CIs")
    for layer in smap.layers:
        table.add_row(str(layer.depth), "\n".join(label(c) for c in layer.ci_ids))
    out.print(table)
    if smap.truncated:
        out.print("(more CIs below the depth shown)")
    spt = Table(title=f"Single points of failure: {len(spof)}")
    for col in ("depth", "name", "class"):
        spt.add_column(col)
    spt.add_column("path", overflow="fold")
    for p in spof:
        spt.add_row(str(p.depth), p.name + (f" ({replicas[p.ci_id]} replicas)"
                                            if p.ci_id in replicas else ""),
                    p.ci_class, _path(p.path, names))
    out.print(spt)


def replicas_of(store: GraphStore, ci_ids: Sequence[str]) -> dict[str, int]:
    """The ``replicas`` attribute (workloads: how many instances run) of the CIs that have
    one, by ``ci_id``."""
    out: dict[str, int] = {}
    for ci_id, ci in store.get_cis(list(ci_ids)).items():
        value = ci.attributes.get("replicas")
        if isinstance(value, int) and not isinstance(value, bool):
            out[ci_id] = value
    return out


# -- export -------------------------------------------------------------------------------


@app.command()
def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Output format.")] = (
        ExportFormat.JSON
    ),
    around: Annotated[
        str | None,
        typer.Option(help="Only the neighbourhood of this CI (name, identifier or ci_id)."),
    ] = None,
    depth: Annotated[int, typer.Option(min=0, help="Hops around --around.")] = 2,
    direction: Annotated[
        Direction, typer.Option(help="upstream, downstream or both (with --around).")
    ] = Direction.BOTH,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    db: DbOption = None,
    snapshot: Snapshot = None,
) -> None:
    """Export the dependency graph (whole estate, or --around a CI) as GraphML, Mermaid, DOT
    or JSON."""
    with _engine(db, snapshot) as engine:
        def work() -> nx.MultiDiGraph:
            if around is None:
                return engine.store.dependency_graph()
            hops = engine.limits.check_depth(depth)
            centre = ci_ids_of(engine, [around])[0]
            return engine.store.neighbourhood(centre, depth=hops, direction=direction)

        graph = _ask(work)
    text = RENDERERS[fmt](graph)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"{graph.number_of_nodes()} CIs, {graph.number_of_edges()} relationships "
                  f"written to {output}")
