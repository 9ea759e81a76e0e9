"""What the phases of one import run share: who imports, when, against what, and the plan so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cmdb_graph.ingest.candidates import Candidates
from cmdb_graph.ingest.plan import ImportPlan, Skip
from cmdb_graph.ingest.reconcile import SourceRanker
from cmdb_graph.ingest.workset import WorkSet
from cmdb_graph.model import Origin, Registry

__all__ = ["RunState"]


@dataclass(eq=False)
class RunState:
    """One import run while it is planned (nothing here writes to the store).

    Attributes
    ----------
    src : str
        Name of the importing data source.
    now : datetime
        The run's time (UTC): every time the run writes is this one.
    ranker : SourceRanker
        Source priorities, policy and staleness for reconciliation.
    cands : Candidates
        Reads candidates from the store into ``ws``.
    ws : WorkSet
        Every node and relationship the run read or planned.
    plan : ImportPlan
        Merges, retirements, skips and warnings so far; completed by
        :func:`cmdb_graph.ingest.plan.complete`.
    seen_cis : set of str
        The CIs the run's CI records were identified as.
    seen_rels : set of tuple
        The relationships (``(rel_type, source, target)``) the run's records asserted.
    observed : dict of str to datetime
        When the source saw each CI whose record gave a time (``observed_at``): the
        relationships the run asserts between them are seen then too.
    """

    src: str
    now: datetime
    ranker: SourceRanker
    cands: Candidates
    plan: ImportPlan = field(default_factory=ImportPlan)
    seen_cis: set[str] = field(default_factory=set)
    seen_rels: set[tuple[str, str, str]] = field(default_factory=set)
    observed: dict[str, datetime] = field(default_factory=dict)

    @property
    def ws(self) -> WorkSet:
        """The working set the candidates fill."""
        return self.cands.ws

    @property
    def registry(self) -> Registry:
        """CI classes and relationship types."""
        return self.cands.registry

    def skip(self, kind: str, reason: str, origin: Origin | None) -> None:
        """A record (or part) not applied, and why."""
        self.plan.skips.append(Skip(kind, reason, origin))

    def warn(self, kind: str, reason: str, origin: Origin | None) -> None:
        """A record applied in part, and what was left out."""
        self.plan.warnings.append(Skip(kind, reason, origin))
