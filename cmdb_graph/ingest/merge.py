"""Merges: a CI that identification found twice (or more) becomes one.

The duplicate is merged into the survivor (the oldest match, see
:func:`cmdb_graph.ingest.identify.oldest`):

* each of the duplicate's values is offered to the survivor as asserted by the source that
  holds it (or, without lineage, by ``merge:<duplicate>`` at its last-seen time), so the
  usual reconciliation decides which value stays;
* per data source the first/last seen times, native keys and missed full runs are combined;
  native keys are united, first/last seen span both;
* the duplicate keeps its data and status and gets ``duplicate_of=<survivor>``;
* CIs hosted on the duplicate, assets tracking it and its relationships move to the survivor
  (a relationship that would become a self-loop is dropped; one the survivor already has
  keeps the survivor's values and gains the duplicate's sources).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cmdb_graph.ingest.plan import Merge
from cmdb_graph.ingest.reconcile import is_empty, reconcile_values
from cmdb_graph.ingest.state import RunState
from cmdb_graph.ingest.validate import validation_error
from cmdb_graph.ingest.workset import rel_entity, values_of
from cmdb_graph.model import ConfigurationItem, Lineage, Origin, SourceSeen

__all__ = ["merge"]

#: Fields a merge never takes from the duplicate as values.
_NOT_VALUES = frozenset({"ci_id", "native_keys", "lineage", "first_seen", "last_seen",
                         "duplicate_of", "attributes"})


def merge(run: RunState, survivor_id: str, dup_id: str, rule: str, origin: Origin | None) -> None:
    """Merge CI ``dup_id`` into ``survivor_id`` (values by priority, lineage, links).

    Parameters
    ----------
    run : RunState
        The run; both CIs are in its working set.
    survivor_id, dup_id : str
        The CI that stays and the one merged into it.
    rule : str
        The identifier rule that matched both (recorded in the plan).
    origin : Origin or None
        The record that matched both.

    Raises
    ------
    InvalidRecordError
        The merged values do not make a valid CI.
    """
    ws = run.ws
    surv = ws.index.get(survivor_id)
    dup = ws.index.get(dup_id)
    assert surv is not None and dup is not None
    new_surv = _merged(run, surv, dup, origin)
    ws.put(new_surv)
    ws.put(dup.model_copy(update={"duplicate_of": survivor_id}))
    ws.merged.add(dup_id)
    ws.note(("CI", survivor_id), origin, surv, new_surv)
    run.plan.merges.append(Merge(survivor_id, dup_id, rule, origin))
    _move_dependents(run, dup_id, survivor_id, origin)
    _move_assets(run, dup_id, survivor_id, origin)
    _move_relationships(run, dup_id, survivor_id, origin)


def _merged(run: RunState, surv: ConfigurationItem, dup: ConfigurationItem,
            origin: Origin | None) -> ConfigurationItem:
    """The survivor with the duplicate's values, sources, native keys and seen times."""
    fields = ConfigurationItem.model_fields
    current = values_of(surv)
    lineage = surv.lineage
    for attr, value in sorted(values_of(dup).items()):
        if attr in _NOT_VALUES or is_empty(value):
            continue
        held = dup.lineage.attributes.get(attr)
        src = held.source if held is not None else f"merge:{dup.ci_id}"
        at = held.asserted_at if held is not None else (dup.last_seen or run.now)
        taken, lineage = reconcile_values(
            current, lineage, {attr: value}, source=src, asserted_at=at, scope=surv.ci_class,
            ranker=run.ranker, now=run.now)
        current.update(taken)
    data = surv.model_dump()
    extras = dict(surv.attributes)
    for attr, value in current.items():
        if attr in fields:
            if attr not in _NOT_VALUES:
                data[attr] = value
        else:
            extras[attr] = value
    data["attributes"] = extras
    data["lineage"] = Lineage(sources=_merged_sources(lineage.sources, dup.lineage.sources),
                              attributes=dict(lineage.attributes))
    data["native_keys"] = sorted({*surv.native_keys, *dup.native_keys})
    firsts = [t for t in (surv.first_seen, dup.first_seen) if t is not None]
    lasts = [t for t in (surv.last_seen, dup.last_seen) if t is not None]
    data["first_seen"] = min(firsts) if firsts else None
    data["last_seen"] = max(lasts) if lasts else None
    try:
        return ConfigurationItem.model_validate(data)
    except ValidationError as exc:
        what = f"merge of {dup.ci_id} into {surv.ci_id}"
        raise validation_error(exc, origin, what) from exc


def _merged_sources(mine: dict[str, SourceSeen], theirs: dict[str, SourceSeen]
                    ) -> dict[str, SourceSeen]:
    """Per source: the earliest first seen, latest last seen, a native key, fewest misses."""
    sources = dict(mine)
    for name, seen in theirs.items():
        have = sources.get(name)
        if have is None:
            sources[name] = seen
        else:
            sources[name] = SourceSeen(
                first_seen=min(have.first_seen, seen.first_seen),
                last_seen=max(have.last_seen, seen.last_seen),
                native_key=have.native_key or seen.native_key,
                missed_full_runs=min(have.missed_full_runs, seen.missed_full_runs),
                matched_by=have.matched_by or seen.matched_by,
            )
    return sources


def _move_dependents(run: RunState, dup_id: str, survivor_id: str, origin: Origin | None) -> None:
    """CIs hosted on the duplicate are hosted on the survivor."""
    ws = run.ws
    run.cands.source_cis(run.src)  # the store has no index by host: the source's CIs at least
    for ci in ws.index.values():
        if ci.host_id == dup_id:
            moved = ci.model_copy(update={"host_id": survivor_id})
            ws.put(moved)
            ws.note(("CI", ci.ci_id), origin, ci, moved)


def _move_assets(run: RunState, dup_id: str, survivor_id: str, origin: Origin | None) -> None:
    """Assets tracking the duplicate track the survivor."""
    ws = run.ws
    run.cands.nodes_where("Asset", "ci_id", dup_id)
    for k, node in list(ws.nodes.items()):
        if k[0] == "Asset" and getattr(node, "ci_id", None) == dup_id:
            moved = node.model_copy(update={"ci_id": survivor_id})
            ws.put(moved)
            ws.note(k, origin, node, moved)


def _move_relationships(run: RunState, dup_id: str, survivor_id: str,
                        origin: Origin | None) -> None:
    """The duplicate's relationships become the survivor's."""
    ws = run.ws
    run.cands.rels_of(dup_id)
    for key, rel in list(ws.rels.items()):
        if dup_id not in (rel.source, rel.target):
            continue
        s = survivor_id if rel.source == dup_id and rel.source_label == "CI" else rel.source
        t = survivor_id if rel.target == dup_id and rel.target_label == "CI" else rel.target
        if (s, t) == (rel.source, rel.target):
            continue
        ws.drop_rel(key)
        if s == t:
            continue
        new_key = (rel.rel_type, s, t)
        existing = run.cands.rel(new_key)
        moved = rel.model_copy(update={"source": s, "target": t})
        if existing is not None:
            srcs: dict[str, Any] = dict(moved.lineage.sources)
            srcs.update(existing.lineage.sources)
            moved = existing.model_copy(update={"lineage": Lineage(
                sources=srcs, attributes=dict(existing.lineage.attributes))})
        ws.put_rel(moved)
        ws.note(rel_entity(new_key), origin, existing, moved)
