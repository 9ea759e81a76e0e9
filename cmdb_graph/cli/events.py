"""``cmdb-graph events subscriptions | dead-letters | replay``: the webhook outbox of the
configured store (``CMDB_EVENTS_PATH``, or beside the store; ``CMDB_WEBHOOKS_FILE``), read and
replayed without a server. See ``docs/events.md``.

Exit codes: 0 done (also when nothing is subscribed: ``subscriptions`` and ``dead-letters``
then say so and list none), 1 a replay failed or a dead letter was not found, 2 bad settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cmdb_graph.cli import app
from cmdb_graph.cli.paths import DbOption, store_settings
from cmdb_graph.cli.query import err, out
from cmdb_graph.errors import CmdbError
from cmdb_graph.events import DeadLetter, Outbox, events_path, load_webhooks, replay

__all__ = ["dead_letters", "replay_letters", "subscriptions"]

events_app = typer.Typer(help="Webhook subscriptions and dead letters (docs/events.md).",
                         no_args_is_help=True)
app.add_typer(events_app, name="events")

AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]


def _nothing_subscribed(db: Path | None) -> str | None:
    """Why nothing is subscribed (no outbox file and no webhooks file), or None."""
    settings = store_settings(db)
    path = events_path(settings)
    if settings.webhooks_file is None and not path.exists():
        return f"no events outbox at {path} and no CMDB_WEBHOOKS_FILE"
    return None


def _outbox(db: Path | None) -> Outbox:
    settings = store_settings(db)
    subs = load_webhooks(settings.webhooks_file) if settings.webhooks_file else []
    path = events_path(settings)
    if not path.exists() and not subs:
        raise CmdbError(f"no events outbox at {path} and no CMDB_WEBHOOKS_FILE: nothing is "
                        "subscribed")
    return Outbox(path, subs)


def _subject_name(letter: DeadLetter) -> str:
    data = orjson.loads(letter.body).get("data", {})
    if "ci" in data:
        return str(data["ci"].get("name") or letter.subject)
    if "relationship" in data:
        rel = data["relationship"]
        return f"{rel.get('source_name')} -{rel.get('rel_type')}-> {rel.get('target_name')}"
    return letter.subject


@events_app.command()
def subscriptions(db: DbOption = None, as_json: AsJson = False) -> None:
    """List webhook subscriptions, their position in the change feed and dead letters."""
    try:
        if (why := _nothing_subscribed(db)) is not None:
            if as_json:
                typer.echo("[]")
            else:
                out.print(f"no webhook subscriptions ({why})", markup=False, highlight=False)
            return
        outbox = _outbox(db)
        rows: list[dict[str, Any]] = []
        for s in outbox.subscriptions():
            cursor = outbox.cursor(s.name)
            rows.append({"name": s.name, "url": s.url, "origin": s.origin,
                         "events": sorted(s.events), "position": cursor[0] if cursor else None,
                         "dead_letters": len(outbox.dead_letters(s.name, limit=100_000))})
    except CmdbError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "url", "origin", "events", "position", "dead letters")
    for r in rows:
        table.add_row(r["name"], r["url"], r["origin"], ", ".join(r["events"]),
                      str(r["position"] or "-"), str(r["dead_letters"]))
    out.print(table)


@events_app.command("dead-letters")
def dead_letters(
    subscription: Annotated[str | None, typer.Option(help="Only this subscription's.")] = None,
    db: DbOption = None,
    as_json: AsJson = False,
) -> None:
    """List dead letters (events whose delivery failed for good), oldest first."""
    try:
        if (why := _nothing_subscribed(db)) is not None:
            if as_json:
                typer.echo("[]")
            else:
                out.print(f"no dead letters: no webhook subscriptions ({why})", markup=False,
                          highlight=False)
            return
        letters = _outbox(db).dead_letters(subscription, limit=100_000)
    except CmdbError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps([
            {"id": d.id, "subscription": d.subscription, "event_id": d.event_id,
             "type": d.type, "subject": d.subject, "name": _subject_name(d), "error": d.error,
             "attempts": d.attempts, "failed_at": d.failed_at.isoformat(),
             "body": orjson.loads(d.body)} for d in letters], indent=2))
        return
    if not letters:
        out.print("no dead letters" + (f" for {subscription}" if subscription else ""),
                  markup=False, highlight=False)
        return
    table = Table("id", "subscription", "event", "type", "CI / subject", "error", "attempts",
                  "failed at")
    for d in letters:
        table.add_row(str(d.id), d.subscription, d.event_id, d.type, _subject_name(d), d.error,
                      str(d.attempts), f"{d.failed_at:%Y-%m-%d %H:%M:%S}")
    out.print(table)


@events_app.command("replay")
def replay_letters(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    subscription: Annotated[str | None, typer.Option(
        help="With --all: only this subscription's.")] = None,
    db: DbOption = None,
) -> None:
    """Send dead letters again, each once, with their original webhook-id (delivered ones
    leave the list)."""
    try:
        outbox = _outbox(db)
        wanted = list(ids or [])
        if all_:
            wanted += [d.id for d in outbox.dead_letters(subscription, limit=100_000)]
        if not wanted:
            err.print("name dead letter ids, or --all")
            raise typer.Exit(2)
        failed = 0
        with httpx.Client(timeout=store_settings(db).webhook_timeout) as client:
            for n in wanted:
                try:
                    letter = replay(outbox, n, client)
                    out.print(f"replayed {n}: {letter.type} {_subject_name(letter)} "
                              f"({letter.event_id}) to {letter.subscription}")
                except CmdbError as exc:
                    failed += 1
                    err.print(f"[red]dead letter {n}:[/red] {escape(str(exc))}")
    except CmdbError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    if failed:
        raise typer.Exit(1)
