"""The plan of an import run and its result: what is created, updated, merged, retired, skipped."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from cmdb_graph.ingest.workset import WorkSet
from cmdb_graph.model import DataSource, ImportRun, Origin
from cmdb_graph.store.base import WriteBatch

__all__ = [
    "COUNT_KEYS",
    "ImportPlan",
    "ImportResult",
    "Merge",
    "PlannedChange",
    "Retirement",
    "Skip",
    "complete",
]

#: The counters of every import run, in display order.
COUNT_KEYS: tuple[str, ...] = ("created", "updated", "unchanged", "merged", "retired", "skipped")


def _origin_dict(origin: Origin | None) -> dict[str, Any] | None:
    return origin.model_dump(mode="json") if origin is not None else None


@dataclass(frozen=True, slots=True)
class Skip:
    """A record (or part of one) that was not applied, and why.

    Attributes
    ----------
    record_type : str
        ``"ci"``, ``"relationship"``, ``"asset"``, ...
    reason : str
        What is wrong, in words a user can act on.
    origin : Origin or None
        The file and line/record of the record.
    """

    record_type: str
    reason: str
    origin: Origin | None

    def __str__(self) -> str:
        where = str(self.origin) if self.origin is not None else "<unknown>"
        return f"{where}: {self.record_type}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {
            "record_type": self.record_type,
            "reason": self.reason,
            "origin": _origin_dict(self.origin),
        }


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """A node or relationship to create or update.

    ``key`` is the node key (``ci_id``, ``asset_id``, ...) or ``"TYPE:source->target"`` for a
    relationship; ``changes`` maps each changed attribute to ``(old, new)`` (JSON values).
    """

    label: str
    key: str
    name: str | None
    changes: dict[str, tuple[Any, Any]]
    origin: Origin | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {
            "label": self.label,
            "key": self.key,
            "name": self.name,
            "changes": {k: [old, new] for k, (old, new) in self.changes.items()},
            "origin": _origin_dict(self.origin),
        }


@dataclass(frozen=True, slots=True)
class Merge:
    """Identification found several CIs for one record: ``duplicate`` merged into ``survivor``.

    The duplicate keeps its data and operational status and gets ``duplicate_of=survivor``.
    """

    survivor: str
    duplicate: str
    rule: str
    origin: Origin | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {
            "survivor": self.survivor,
            "duplicate": self.duplicate,
            "rule": self.rule,
            "origin": _origin_dict(self.origin),
        }


@dataclass(frozen=True, slots=True)
class Retirement:
    """A CI that this full run retires (``operational_status=retired``; never deleted)."""

    ci_id: str
    name: str
    missed_full_runs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {"ci_id": self.ci_id, "name": self.name, "missed_full_runs": self.missed_full_runs}


@dataclass
class ImportPlan:
    """Everything an import run would write, decided before anything is written.

    Attributes
    ----------
    creates, updates : list of PlannedChange
        New and changed nodes and relationships (updates list only value changes; refreshed
        seen-times and lineage alone do not count as an update).
    merges : list of Merge
        Duplicate CIs merged into the oldest match.
    retirements : list of Retirement
        CIs retired by this (full) run.
    misses : dict of str to int
        CIs this full run did not see, with their new ``missed_full_runs`` count.
    skips : list of Skip
        Records (or parts) not applied, with reason and origin.
    warnings : list of Skip
        Records applied in part (e.g. an asset whose CI could not be found).
    by_kind : dict of str to Counter
        Counters per label (``"CI"``, ``"Asset"``, ``"Relationship"``, ...).
    batch : WriteBatch
        The nodes and relationships to upsert in one ``store.apply`` call.
    deletes : list of tuple
        Relationship keys to delete after the batch (relationships moved from a merged
        duplicate to its survivor).
    breaker_tripped : bool
        The run would retire more than the allowed share of the source's CIs.
    removed_rels : list of tuple
        CI-to-CI relationships (``(rel_type, source, target)``) a full run removes: the source
        asserted them before, not in this run, and no other source asserts them.
    active_rels : int
        CI-to-CI relationships whose lineage names the source before a full run.
    active : int
        The source's CIs that were neither retired nor duplicates before a full run (the
        circuit breaker's base).
    applied : list
        Per input record, in input order, what it was applied to: the key of its node
        (``ci_id`` of a CI record, ``asset_id``, ``group_id``...), the ``(rel_type, source,
        target)`` of a relationship or software installation, or ``None`` when it was skipped.
    """

    creates: list[PlannedChange] = field(default_factory=list)
    updates: list[PlannedChange] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    retirements: list[Retirement] = field(default_factory=list)
    misses: dict[str, int] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)
    warnings: list[Skip] = field(default_factory=list)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    batch: WriteBatch = field(default_factory=WriteBatch)
    deletes: list[tuple[str, str, str]] = field(default_factory=list)
    breaker_tripped: bool = False
    active: int = 0
    removed_rels: list[tuple[str, str, str]] = field(default_factory=list)
    active_rels: int = 0
    applied: list[str | tuple[str, str, str] | None] = field(default_factory=list)

    def ci_id_of(self, position: int) -> str | None:
        """The ``ci_id`` the CI record at ``position`` of the input was applied to."""
        found = self.applied[position]
        return found if isinstance(found, str) else None

    def relationship_of(self, position: int) -> tuple[str, str, str] | None:
        """The key of the relationship the record at ``position`` was applied to."""
        found = self.applied[position]
        return found if isinstance(found, tuple) else None

    def counts(self) -> dict[str, int]:
        """The totals of :data:`COUNT_KEYS` over every kind."""
        total: Counter[str] = Counter()
        for c in self.by_kind.values():
            total.update(c)
        out = {k: total.get(k, 0) for k in COUNT_KEYS}
        out["merged"] = len(self.merges)
        out["retired"] = len(self.retirements)
        out["relationships_removed"] = len(self.removed_rels)
        out["skipped"] = len(self.skips)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (without the write batch)."""
        return {
            "counts": self.counts(),
            "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(self.by_kind.items())},
            "creates": [c.to_dict() for c in self.creates],
            "updates": [c.to_dict() for c in self.updates],
            "merges": [m.to_dict() for m in self.merges],
            "retirements": [r.to_dict() for r in self.retirements],
            "skips": [s.to_dict() for s in self.skips],
            "warnings": [w.to_dict() for w in self.warnings],
            "breaker_tripped": self.breaker_tripped,
        }


#: Counter kind of each skipped record type.
_SKIP_KIND = {"ci": "CI", "relationship": "Relationship", "asset": "Asset",
              "software": "Relationship", "entitlement": "Entitlement"}


def complete(plan: ImportPlan, ws: WorkSet) -> ImportPlan:
    """Fill in the write batch, the creates, the updates and the counters from the working set.

    Every entity a record asserted counts once per label as created, updated (a value changed)
    or unchanged; merged duplicates do not count, retired CIs count as retired.
    """
    plan.batch = ws.batch()
    plan.deletes = list(ws.deleted)
    retired = {r.ci_id for r in plan.retirements}
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for k, origin in ws.touched.items():
        label = k[0]
        if label == "CI" and k[1] in ws.merged:
            continue
        name = ws.name_of(k)
        if k in ws.created:
            by_kind[label]["created"] += 1
            plan.creates.append(PlannedChange(label, k[1], name, {}, origin))
        elif ws.changes.get(k):
            by_kind[label]["updated"] += 1
            plan.updates.append(PlannedChange(label, k[1], name, ws.changes[k], origin))
        elif not (label == "CI" and k[1] in retired):
            by_kind[label]["unchanged"] += 1
    for r in plan.retirements:
        by_kind["CI"]["retired"] += 1
        before = ws.original_ci(r.ci_id)
        old = before.operational_status.value if before is not None else None
        plan.updates.append(PlannedChange(
            "CI", r.ci_id, r.name, {"operational_status": (old, "retired")}, None))
    by_kind["CI"]["merged"] = len(plan.merges)
    for s in plan.skips:
        by_kind[_SKIP_KIND.get(s.record_type, s.record_type)]["skipped"] += 1
    plan.by_kind = dict(by_kind)
    return plan


@dataclass
class ImportResult:
    """Outcome of :func:`cmdb_graph.ingest.run_import`.

    Attributes
    ----------
    run : ImportRun
        The run record (written to the store unless ``dry_run``).
    source : DataSource
        The data source (upserted unless ``dry_run``).
    plan : ImportPlan
        What was (or, in a dry run, would be) written.
    dry_run : bool
        Nothing was written.
    """

    run: ImportRun
    source: DataSource
    plan: ImportPlan
    dry_run: bool = False

    @property
    def counts(self) -> dict[str, int]:
        """created, updated, unchanged, merged, retired, skipped."""
        return self.plan.counts()

    @property
    def skips(self) -> list[Skip]:
        """Skipped records with reason and origin."""
        return self.plan.skips

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {
            "run": self.run.model_dump(mode="json"),
            "source": self.source.model_dump(mode="json"),
            "dry_run": self.dry_run,
            **self.plan.to_dict(),
        }
