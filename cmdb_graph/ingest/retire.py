"""Retirement: what a full run no longer sees, counted, and retired when every source let go.

Full runs only, and only when the whole input was read and planned: each CI the source asserted
before but did not assert in this run gets ``missed_full_runs + 1`` for that source. It is
retired (``operational_status=retired``, never deleted) when that count reaches
``retire_after`` and every *other* source that asserted it has either missed it as many full
runs or let it go stale (its ``last_seen`` older than its ``stale_after_days``). A CI seen again
resets the count, and a CI that retirement (not a source) retired becomes operational again
(:func:`undo_retirement`).

The circuit breaker refuses a run that would retire more than ``breaker_share`` of the source's
active CIs, unless forced: :func:`retire` only marks the plan, the run refuses it.

Relationships (:func:`retire_relationships`, same full runs): every CI-to-CI relationship whose
lineage names the source but that the run did not assert loses the source from its lineage, and
is deleted (in the run's one write batch) when no source asserts it any more. Relationships whose
lineage does not name the source are never touched, whatever CIs they join. The breaker also
trips when a run would remove more than ``breaker_share`` of the source's relationships.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cmdb_graph.ingest.plan import Retirement
from cmdb_graph.ingest.state import RunState
from cmdb_graph.model import (
    AttributeSource,
    ConfigurationItem,
    Lineage,
    OperationalStatus,
)

__all__ = ["RETIREMENT_PREFIX", "retire", "retire_relationships", "undo_retirement"]

#: Prefix of the lineage source that marks a status set by retirement (not by a source).
RETIREMENT_PREFIX = "retirement:"


def undo_retirement(
    ci: ConfigurationItem, current: dict[str, Any], lineage: Lineage, values: dict[str, Any]
) -> Lineage:
    """Before a source asserts ``ci`` again: forget a status that retirement set.

    When retirement (not a source) retired the CI, its status no longer holds: ``current``
    loses it, ``values`` gets ``operational_status=operational`` unless the source says
    otherwise, and the returned lineage no longer names a holder for it. Otherwise nothing
    changes and ``lineage`` is returned.
    """
    held = lineage.attributes.get("operational_status")
    if (ci.operational_status is not OperationalStatus.RETIRED or held is None
            or not held.source.startswith(RETIREMENT_PREFIX)):
        return lineage
    current["operational_status"] = None
    attrs = dict(lineage.attributes)
    del attrs["operational_status"]
    values.setdefault("operational_status", OperationalStatus.OPERATIONAL.value)
    return Lineage.model_construct(sources=lineage.sources, attributes=attrs)


def _others_gone(run: RunState, ci: ConfigurationItem, retire_after: int) -> bool:
    """Whether every other source that asserted ``ci`` missed it as often or went stale."""
    for name, seen in ci.lineage.sources.items():
        if name == run.src:
            continue
        if seen.missed_full_runs >= retire_after:
            continue
        ds = run.ranker.sources.get(name)
        if ds is not None and ds.stale_after_days is not None and \
                seen.last_seen < run.now - timedelta(days=ds.stale_after_days):
            continue
        return False
    return True


def retire(run: RunState, *, retire_after: int, breaker_share: float) -> None:
    """Count the misses of this full run, plan retirements and set the circuit breaker.

    Fills ``plan.misses``, ``plan.retirements``, ``plan.active`` and ``plan.breaker_tripped``;
    the retired CIs' new versions go to the working set (their change is the retirement).
    """
    plan = run.plan
    active = 0
    for ci in run.ws.index.values():
        seen = ci.lineage.sources.get(run.src)
        if seen is None or ci.duplicate_of is not None:
            continue
        if ci.operational_status is OperationalStatus.RETIRED:
            continue
        active += 1
        if ci.ci_id in run.seen_cis:
            continue
        missed = seen.missed_full_runs + 1
        sources = dict(ci.lineage.sources)
        sources[run.src] = seen.model_copy(update={"missed_full_runs": missed})
        attrs = dict(ci.lineage.attributes)
        update: dict[str, Any] = {}
        plan.misses[ci.ci_id] = missed
        if missed >= retire_after and _others_gone(run, ci, retire_after):
            update["operational_status"] = OperationalStatus.RETIRED
            attrs["operational_status"] = AttributeSource(
                source=f"{RETIREMENT_PREFIX}{run.src}", asserted_at=run.now)
            plan.retirements.append(Retirement(ci.ci_id, ci.name, missed))
        update["lineage"] = Lineage(sources=sources, attributes=attrs)
        run.ws.put(ci.model_copy(update=update))
    plan.active = active
    share = len(plan.retirements) / active if active else 0.0
    if plan.retirements and share > breaker_share:
        plan.breaker_tripped = True


def retire_relationships(run: RunState, *, breaker_share: float) -> None:
    """Drop the source from the CI-to-CI relationships this full run no longer asserts.

    A relationship no other source asserts is deleted (``plan.removed_rels``); the others keep
    their remaining sources. Sets ``plan.active_rels`` and trips the breaker when the removed
    share of the source's relationships exceeds ``breaker_share``.
    """
    plan, ws = run.plan, run.ws
    gone = set(ws.deleted)
    active = 0
    for stored in run.cands.store.relationships():
        if (stored.source_label != "CI" or stored.target_label != "CI"
                or run.src not in stored.lineage.sources or stored.key in gone):
            continue
        active += 1
        if stored.key in run.seen_rels:
            continue
        ws.keep_rel(stored)
        rel = ws.rels.get(stored.key)
        if rel is None:
            continue
        sources = {k: v for k, v in rel.lineage.sources.items() if k != run.src}
        if not sources:
            ws.drop_rel(rel.key)
            plan.removed_rels.append(rel.key)
            continue
        lineage = Lineage(sources=sources, attributes=rel.lineage.attributes)
        new = rel.model_copy(update={"lineage": lineage})
        ws.put_rel(new)
    plan.active_rels = active
    if plan.removed_rels and len(plan.removed_rels) / active > breaker_share:
        plan.breaker_tripped = True
