"""The upsert: values one source asserts, reconciled into a CI, another node or a relationship.

:func:`upsert` serves CIs and every other node kind alike (:data:`cmdb_graph.model.NODE_SPECS`
gives each label's model and key field); :func:`upsert_rel` does the same for a relationship.
Both reconcile attribute by attribute (:func:`cmdb_graph.ingest.reconcile.reconcile_values`),
stamp the source's first/last seen in the lineage, put the new version into the working set and
note the change there. Values that are no field of the model go to the node's ``attributes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cmdb_graph.ingest.reconcile import fast_lineage, fast_seen, is_empty, reconcile_values
from cmdb_graph.ingest.retire import undo_retirement
from cmdb_graph.ingest.state import RunState
from cmdb_graph.ingest.validate import validation_error
from cmdb_graph.ingest.workset import RelKey, rel_entity, values_of
from cmdb_graph.model import (
    NODE_SPECS,
    ConfigurationItem,
    Lineage,
    Node,
    NodeSpec,
    Origin,
    Relationship,
    RelationshipBasis,
)

__all__ = ["RESERVED_FIELDS", "free_attributes", "record_values", "upsert", "upsert_rel"]

N = TypeVar("N", bound=BaseModel)

#: Record attribute keys that ingestion owns; a source's value is kept as ``source_<key>``.
RESERVED_FIELDS = frozenset(
    {
        "ci_id",
        "asset_id",
        "group_id",
        "person_id",
        "location_id",
        "product_id",
        "entitlement_id",
        "native_keys",
        "lineage",
        "first_seen",
        "last_seen",
        "duplicate_of",
        "attributes",
        "host_id",
        "ci_class",
        "name",
    }
)

#: Reference fields of other nodes that only ingestion sets (from resolved references).
_REF_FIELDS = frozenset({"ci_id", "holder", "product_id", "assigned_ci_ids",
                         "assigned_person_ids", "groups", "parent_id"})

#: The lineage of a node before any source asserted it (shared: lineages are never mutated).
_NO_LINEAGE = Lineage()


def free_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A record's free attributes, with keys that ingestion owns renamed ``source_<key>``."""
    return {(f"source_{k}" if k in RESERVED_FIELDS or k in _REF_FIELDS else k): v
            for k, v in attributes.items()}


def record_values(explicit: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Free attributes overlaid by the record's explicit, non-empty fields."""
    out = free_attributes(attributes)
    out.update({k: v for k, v in explicit.items() if not is_empty(v)})
    return out


def _seen(run: RunState, lineage: Lineage, native_key: str | None,
          matched_by: str | None = None, seen_at: datetime | None = None) -> Lineage:
    """``lineage`` with this run's source seen at ``seen_at`` (default: the run's time): first/
    last seen, its native key and, the first time, the rule that matched it (``matched_by``)."""
    prev = lineage.sources.get(run.src)
    now = seen_at or run.now
    if prev is None:
        seen = fast_seen(now, now, native_key or None, 0, matched_by)
    else:
        seen = fast_seen(min(prev.first_seen, now), max(prev.last_seen, now),
                         native_key or prev.native_key, 0, prev.matched_by or matched_by)
        if prev == seen:
            return lineage
    sources = dict(lineage.sources)
    sources[run.src] = seen
    return fast_lineage(sources, lineage.attributes)


def _build(
    model: type[N], cur: N | None, updates: Mapping[str, Any], origin: Origin | None, what: str
) -> N:
    """A new model from ``updates`` (validated), or a copy of ``cur`` with the changed fields
    assigned (each assignment validated), which keeps re-runs cheap.

    Raises
    ------
    InvalidRecordError
        A value is invalid; the error names the origin and the field.
    """
    try:
        if cur is None:
            return model.model_validate(updates)
        new = cur.model_copy()
        for f, v in updates.items():
            if getattr(new, f) != v:
                setattr(new, f, v)
        return new
    except ValidationError as exc:
        raise validation_error(exc, origin, what) from exc


def upsert(
    run: RunState,
    label: str,
    key: str,
    values: dict[str, Any],
    origin: Origin | None,
    *,
    native_key: str | None = None,
    scope: str | None = None,
    what: str | None = None,
    new: Mapping[str, Any] | None = None,
    matched_by: str | None = None,
    seen_at: datetime | None = None,
) -> Node:
    """Reconcile ``values`` from the run's source into the CI or node ``(label, key)``.

    Parameters
    ----------
    run : RunState
        The run (source, time, ranks, working set).
    label, key : str
        ``"CI"`` or another label of :data:`cmdb_graph.model.NODE_SPECS`, and the node's key.
    values : dict
        What the source asserts, by field or free attribute name (empty values are ignored).
        A CI retired by retirement (not by a source) gets ``operational_status`` operational
        unless ``values`` says otherwise.
    origin : Origin or None
        The record, for errors and the plan.
    native_key : str, optional
        ``"source:key"``, added to ``native_keys`` and the source's lineage.
    scope : str, optional
        The CI class (or label) the reconciliation policy applies to; default ``label``, and a
        stored CI's own class.
    what : str, optional
        How errors name the node; default ``"<label> <key>"``.
    new : mapping, optional
        Fields of a node this call creates, before reconciliation (default: key as name).
    matched_by : str, optional
        How identification matched the record to an existing CI (kept in the source's lineage
        the first time).
    seen_at : datetime, optional
        When the source saw the node (a scan's or inventory's own time); default the run's
        time. ``first_seen``/``last_seen`` of the node and of the source's lineage take it.

    Returns
    -------
    Node
        The new version (also in the working set).

    Raises
    ------
    InvalidRecordError
        A value is invalid for the model.
    """
    spec = NODE_SPECS[label]
    fields = spec.model.model_fields
    cur = run.cands.get(label, key)
    lineage: Lineage = _NO_LINEAGE
    current: dict[str, Any] = {}
    seen = seen_at or run.now
    if cur is None:
        data = _created(spec, key, new, seen)
    else:
        data = {}
        lineage = getattr(cur, "lineage", _NO_LINEAGE)
        current = values_of(cur)
        if "last_seen" in fields:
            prev = getattr(cur, "last_seen", None)
            data["last_seen"] = max(prev, seen) if prev else seen
            first = getattr(cur, "first_seen", None)
            if first is not None and seen < first:
                data["first_seen"] = seen
        if isinstance(cur, ConfigurationItem):
            scope = cur.ci_class
            lineage = undo_retirement(cur, current, lineage, values)
    taken, lineage = reconcile_values(
        current, lineage, values, source=run.src, asserted_at=run.now, scope=scope or label,
        ranker=run.ranker, now=run.now)
    attrs = dict(getattr(cur, "attributes", None) or {})
    for attr, value in taken.items():
        if attr in fields:
            data[attr] = value
        else:
            attrs[attr] = value
    if "attributes" in fields:
        data["attributes"] = attrs
    if "lineage" in fields:
        data["lineage"] = _seen(run, lineage, native_key, matched_by, seen_at)
    old_keys: list[str] = getattr(cur, "native_keys", None) or []
    if "native_keys" in fields and native_key and native_key not in old_keys:
        data["native_keys"] = sorted({*old_keys, native_key})
    node = _build(spec.model, cur, data, origin, what or f"{label} {key}")
    run.ws.put(node)
    run.ws.note((label, key), origin, cur, node)
    return node


def _created(spec: NodeSpec, key: str, new: Mapping[str, Any] | None,
             now: datetime) -> dict[str, Any]:
    """The fields of a node before the first source's values: key, name, first/last seen."""
    fields = spec.model.model_fields
    data: dict[str, Any] = dict(new) if new is not None else {}
    if new is None and "name" in fields:
        data["name"] = key  # unless a source names it
    data[spec.key] = key
    if "first_seen" in fields:
        data["first_seen"] = now
        data["last_seen"] = now
    return data


#: The relationship fields reconciled one by one (``confidence`` and ``evidence`` follow
#: ``basis``: see :func:`upsert_rel`).
_REL_RECONCILED = ("optional", "basis", "properties")


def upsert_rel(
    run: RunState,
    key: RelKey,
    values: Mapping[str, Any],
    origin: Origin | None,
    *,
    source_label: str = "CI",
    target_label: str = "CI",
    seen_at: datetime | None = None,
) -> Relationship:
    """Reconcile a relationship ``(rel_type, source, target)`` asserted by the run's source.

    ``values`` holds ``optional``, ``basis``, ``confidence``, ``evidence`` and
    ``properties``; the relationship is created when new. ``basis``, ``confidence`` and
    ``evidence`` go together: the source whose basis wins also sets the other two (a
    declared relationship keeps no evidence, ``evidence_*`` property or confidence of an
    earlier inference). A declared or discovered basis beats an inferred one whatever the
    sources' priorities, and an inference never replaces either; between two of a kind the
    priorities decide.
    ``seen_at``: when the source saw it (default: the run's time), for ``first_seen``/
    ``last_seen`` and the source's lineage.
    """
    cur = run.cands.rel(key)
    rel_type, source, target = key
    seen = seen_at or run.now
    if cur is None:
        data: dict[str, Any] = {
            "rel_type": rel_type, "source": source, "target": target,
            "source_label": source_label, "target_label": target_label,
            "first_seen": seen, "last_seen": seen,
        }
        lineage = _NO_LINEAGE
        current: dict[str, Any] = {}
    else:
        data = {"last_seen": max(cur.last_seen, seen) if cur.last_seen else seen}
        if cur.first_seen is not None and seen < cur.first_seen:
            data["first_seen"] = seen
        lineage = cur.lineage
        current = {f: getattr(cur, f) for f in _REL_RECONCILED}
    incoming = {f: values.get(f) for f in _REL_RECONCILED}
    basis = incoming.pop("basis")
    taken, lineage = reconcile_values(
        current, lineage, incoming, source=run.src, asserted_at=run.now, ranker=run.ranker,
        now=run.now, scope="Relationship")
    held = current.get("basis")
    inferring = basis == RelationshipBasis.INFERRED
    if basis is not None and not (inferring and held not in (None, RelationshipBasis.INFERRED)):
        # an assertion replaces an inference whatever the priorities (reconciled as if
        # nothing were held), an inference never replaces an assertion, like beats like by
        # priority
        overrules = held == RelationshipBasis.INFERRED and not inferring
        more, lineage = reconcile_values(
            {} if overrules else {"basis": held}, lineage, {"basis": basis}, source=run.src,
            asserted_at=run.now, ranker=run.ranker, now=run.now, scope="Relationship")
        taken.update(more)
    data.update(taken)
    if "basis" in taken:
        data["confidence"] = values.get("confidence")
        data["evidence"] = values.get("evidence")
        if taken["basis"] != RelationshipBasis.INFERRED:  # the inference's evidence goes too
            props = taken.get("properties", current.get("properties")) or {}
            data["properties"] = {k: v for k, v in props.items()
                                  if not k.startswith("evidence_")}
    data["lineage"] = _seen(run, lineage, None, seen_at=seen_at)
    rel = _build(Relationship, cur, data, origin, f"relationship {rel_type}")
    run.ws.put_rel(rel)
    run.seen_rels.add(key)
    run.ws.note(rel_entity(key), origin, cur, rel)
    return rel
