"""Frozen result models of the impact engine.

Every result is a frozen pydantic model whose tuples are sorted deterministically (the sort
key is stated on each field), so two runs over the same graph give equal results, whatever
store extracted the graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from cmdb_graph.model.entities import RelationshipBasis
from impact.lazy import ItemSource, LazyItems

__all__ = [
    "ChangeConflict",
    "ChangeImpact",
    "ConflictKind",
    "EdgeRef",
    "ImpactStatus",
    "ImpactSummary",
    "ImpactedCI",
    "ImpactedCIs",
    "ImpactedSource",
    "ItemSource",
    "LazyItems",
    "Neighbourhood",
    "NodeRef",
    "PathLink",
    "PathsResult",
    "ProbableCause",
    "ProbableCauses",
    "QualityFinding",
    "QualityReport",
    "RedundancyImpact",
    "RedundancyImpacts",
    "Routing",
    "ServiceLayer",
    "ServiceMap",
    "SinglePointOfFailure",
    "StatusResult",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImpactStatus(StrEnum):
    """Status of a CI under a failure or change: down (a required input down beyond its
    redundancy rule's slack, or failed itself), degraded (reached by the failure but not
    down) or operational (not reached); see :func:`impact.passes.propagate`."""

    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    DOWN = "down"


class StatusResult(_Frozen):
    """Outcome of status propagation.

    Attributes
    ----------
    failed : tuple of str
        The failed CIs (sorted).
    down, degraded : tuple of str
        CIs down / degraded because of the failure, failed CIs excluded (sorted).
    cycles : tuple of tuple of str
        Cycles of impact relationships among the reached CIs (each sorted, list sorted);
        propagation terminated on them.
    """

    failed: tuple[str, ...]
    down: tuple[str, ...]
    degraded: tuple[str, ...]
    cycles: tuple[tuple[str, ...], ...] = ()

    def status_of(self, ci_id: str) -> ImpactStatus:
        """The status of one CI (operational when not reached)."""
        if ci_id in self.failed or ci_id in self.down:
            return ImpactStatus.DOWN
        if ci_id in self.degraded:
            return ImpactStatus.DEGRADED
        return ImpactStatus.OPERATIONAL


class PathLink(_Frozen):
    """The relationship that carries impact over one hop of an explaining path.

    Attributes
    ----------
    source, target : str
        ``ci_id`` of its ends in stored orientation (dependent -> what it needs), whatever
        the direction of the hop.
    rel_type : str
        Its relationship type.
    basis : RelationshipBasis
        Declared, discovered or inferred.
    confidence : float
        In (0, 1]: recorded, or the basis's default.
    evidence : str or None
        What an inference rests on (the setting and its value).
    evidence_file : str or None
        The file it was read from.
    """

    source: str
    target: str
    rel_type: str
    basis: RelationshipBasis
    confidence: float
    evidence: str | None = None
    evidence_file: str | None = None


class ImpactedCI(_Frozen):
    """One CI reached by a change or failure.

    Attributes
    ----------
    ci_id, name, ci_class : str
        Identity of the CI.
    kind : str
        Its class's :class:`cmdb_graph.model.ServiceKind` value.
    status : ImpactStatus
        Down or degraded.
    depth : int
        Hops from the nearest changed CI along impact edges.
    business_criticality : int or None
        1 (most critical) to 4.
    operational_status : str or None
        The CI's operational status (``None`` when not recorded).
    in_service : bool
        Whether the CI is in service (its status is not ``non_operational``, ``repair`` or
        ``retired``): a CI not in service is still listed, with its status, but is no
        outage: the summary does not count it as a service hit.
    paths : tuple of tuple of str
        Paths that explain the status, each from a changed CI to this one; shortest first,
        then lexicographic, at most the requested number. A down CI is explained by paths of
        down CIs over required relationships.
    links : tuple of tuple of PathLink
        For each path, the relationship of each hop (``len(path) - 1`` each): when several
        join two CIs, the most certain (highest confidence, then relationship type).
    confidence : float or None
        How sure the impact is: over the paths, the highest product of their hops'
        confidences (``None`` without paths).
    """

    ci_id: str
    name: str
    ci_class: str
    kind: str
    status: ImpactStatus
    depth: int
    business_criticality: int | None = None
    operational_status: str | None = None
    in_service: bool = True
    paths: tuple[tuple[str, ...], ...] = ()
    links: tuple[tuple[PathLink, ...], ...] = ()
    confidence: float | None = None


class ImpactedSource(ItemSource["ImpactedCI"], Protocol):
    """An :class:`ItemSource` of :class:`ImpactedCI` that also gives every status cheaply."""

    def statuses(self) -> dict[str, ImpactStatus]: ...


class ImpactedCIs(LazyItems[ImpactedCI]):
    """The impacted CIs of a :class:`ChangeImpact` (a :class:`LazyItems`), with the status of
    each by ``ci_id`` without building items (:meth:`status_of`).

    Items and their explaining paths are built when read, and are the same as if built
    eagerly.
    """

    __slots__ = ("_statuses",)
    item_type = ImpactedCI

    def __init__(
        self, items: Iterable[ImpactedCI] = (), *, source: ImpactedSource | None = None
    ) -> None:
        super().__init__(items, source=source)
        self._statuses: dict[str, ImpactStatus] | None = None

    def status_of(self, ci_id: str) -> ImpactStatus | None:
        """The status of an item by ``ci_id``; ``None`` when it is not in the sequence."""
        if self._statuses is None:
            src = self._source
            self._statuses = (src.statuses() if hasattr(src, "statuses")
                              else {c.ci_id: c.status for c in self._all()})
        return self._statuses.get(ci_id)


class RedundancyImpact(_Frozen):
    """A CI with a redundancy rule that lost headroom.

    Attributes
    ----------
    ci_id, name, rule : str
        The group and its rule (``all``, ``k``, ``k%``).
    required_inputs : int
        Members or required dependencies counted by the rule.
    inputs_not_in_service : int
        How many of them are not in service (planned, in stock, under repair, retired): they
        give no redundancy.
    inputs_down : int
        How many of the others are down.
    threshold : int
        How many must be up.
    headroom : int
        ``required_inputs - inputs_not_in_service - inputs_down - threshold``: inputs that may
        still fail before the CI goes down; negative when below the threshold.
    status : ImpactStatus
    """

    ci_id: str
    name: str
    rule: str
    required_inputs: int
    inputs_down: int
    inputs_not_in_service: int = 0
    threshold: int
    headroom: int
    status: ImpactStatus


class RedundancyImpacts(LazyItems[RedundancyImpact]):
    """The redundancy impacts of a :class:`ChangeImpact` (a :class:`LazyItems`)."""

    __slots__ = ()
    item_type = RedundancyImpact


class ImpactSummary(_Frozen):
    """Counts over the reported impacted CIs.

    ``total``, ``by_status`` and ``by_class`` count every reported CI; ``not_in_service``
    how many of them are not in service (see :attr:`ImpactedCI.in_service`).
    ``services_hit``: the impacted business and application services that are in service (a
    planned or retired service losing its server is no outage).
    ``most_critical_service``: of those, the one with the lowest business criticality number
    (down before degraded, then ``ci_id``), if any.
    """

    total: int
    by_status: dict[str, int]
    by_class: dict[str, int]
    services_hit: int
    not_in_service: int = 0
    most_critical_service: str | None = None
    most_critical_level: int | None = None


class ChangeImpact(_Frozen):
    """Result of :func:`impact.change_impact`.

    Attributes
    ----------
    changed : tuple of str
        CIs under change (sorted); they are down and are not repeated in ``impacted``.
    impacted : ImpactedCIs
        Sorted by depth, then ``ci_id``: a sequence that behaves as a tuple of
        :class:`ImpactedCI` (equal to one), whose items and their paths are built when read.
    redundancy : RedundancyImpacts
        Groups that lost headroom, sorted by ``ci_id`` (a sequence that behaves as a tuple of
        :class:`RedundancyImpact`, whose items are built when read).
    cycles : tuple of tuple of str
        Cycles met during propagation.
    summary : ImpactSummary
    depth_limit : int
        Depth up to which CIs are reported.
    truncated : bool
        Whether CIs beyond ``depth_limit`` were reached and left out.
    """

    changed: tuple[str, ...]
    impacted: ImpactedCIs
    redundancy: RedundancyImpacts
    cycles: tuple[tuple[str, ...], ...]
    summary: ImpactSummary
    depth_limit: int
    truncated: bool = False

    def impacted_ids(self) -> tuple[str, ...]:
        """``ci_id`` of the impacted CIs, in the order of ``impacted`` (builds no item)."""
        return self.impacted.ci_ids()

    def status_of(self, ci_id: str) -> ImpactStatus | None:
        """Status of a changed (down) or reported impacted CI; ``None`` for any other CI.

        Builds no item of ``impacted``.
        """
        if ci_id in self.changed:
            return ImpactStatus.DOWN
        return self.impacted.status_of(ci_id)


class ConflictKind(StrEnum):
    """Kinds of change conflicts (each is defined in :func:`impact.change_conflicts`)."""

    SAME_CI = "same_ci"
    IMPACT_OVERLAP = "impact_overlap"
    BLACKOUT = "blackout"
    OUTSIDE_MAINTENANCE = "outside_maintenance"
    REDUNDANCY_COMBINED = "redundancy_combined"


class ChangeConflict(_Frozen):
    """One conflict of a change.

    Attributes
    ----------
    kind : ConflictKind
    change_id : str
        The change assessed.
    other_change_id : str or None
        The change it collides with (same CI, impact overlap, combined redundancy between two
        changes); ``None`` for a combination of three or more changes.
    other_change_ids : tuple of str
        Every other change involved (sorted); one for pairwise conflicts.
    window_id : str or None
        The blackout or maintenance window concerned.
    ci_ids : tuple of str
        The CIs concerned (sorted): shared CIs, impacted services in blackout, CIs changed
        outside maintenance, redundancy groups pushed below threshold.
    detail : str
        One sentence for people.
    """

    kind: ConflictKind
    change_id: str
    other_change_id: str | None = None
    other_change_ids: tuple[str, ...] = ()
    window_id: str | None = None
    ci_ids: tuple[str, ...] = ()
    detail: str = ""


class Routing(_Frozen):
    """Where an incident on a CI goes.

    Attributes
    ----------
    ci_id : str
        The CI the incident is on.
    support_group : str or None
        The group to route to; ``None`` when no CI on the way has one.
    routed_via : str or None
        The CI whose group was taken (``ci_id`` itself when it has one).
    path : tuple of str
        From ``ci_id`` down its dependencies to ``routed_via``.
    reason : str
    """

    ci_id: str
    support_group: str | None
    routed_via: str | None
    path: tuple[str, ...] = ()
    reason: str = ""


class ProbableCause(_Frozen):
    """A candidate cause for several affected CIs.

    Attributes
    ----------
    ci_id, name, ci_class : str
    explains : tuple of str
        Affected CIs that this CI's failure reaches (itself included when affected), sorted.
    distance : int
        Sum over ``explains`` of the hops from this CI to each.
    recent_changes : tuple of str
        ``change_id`` of changes on this CI whose window falls in the look-back period.
    open_incidents : tuple of str
        ``incident_id`` of its own open incidents.
    support_group : str or None
    """

    ci_id: str
    name: str
    ci_class: str
    explains: tuple[str, ...]
    distance: int
    recent_changes: tuple[str, ...] = ()
    open_incidents: tuple[str, ...] = ()
    support_group: str | None = None


class ProbableCauses(_Frozen):
    """Ranked candidates: most affected CIs explained, then recent changes, then own open
    incidents, then the smallest total distance, then ``ci_id``."""

    affected: tuple[str, ...]
    candidates: tuple[ProbableCause, ...]


class QualityFinding(_Frozen):
    """One finding of a data-quality report.

    Attributes
    ----------
    subject : str
        What the finding is about: a ``ci_id``, an ``asset_id``, an ``entitlement_id`` or a
        relationship key ``"REL_TYPE:source->target"``.
    subject_kind : str
        ``ci``, ``asset``, ``entitlement`` or ``relationship``.
    ci_id : str or None
        The CI concerned, when there is one.
    related : tuple of str
        Other ids that the finding involves (duplicates, services resting on the CI, ...).
    detail : str
    """

    subject: str
    subject_kind: str
    ci_id: str | None = None
    related: tuple[str, ...] = ()
    detail: str = ""


class QualityReport(_Frozen):
    """A named data-quality report; findings sorted by ``(subject_kind, subject)``."""

    name: str
    definition: str
    findings: tuple[QualityFinding, ...]

    @property
    def count(self) -> int:
        """Number of findings."""
        return len(self.findings)


class NodeRef(_Frozen):
    """A CI in an exploration result, with its distance (hops) from the start."""

    ci_id: str
    name: str
    ci_class: str
    distance: int = 0


class EdgeRef(_Frozen):
    """A relationship in stored orientation (dependent -> dependency)."""

    source: str
    target: str
    rel_type: str
    optional: bool = False


class Neighbourhood(_Frozen):
    """CIs within a depth of a CI, and the relationships among them.

    ``nodes`` sorted by (distance, ``ci_id``), ``edges`` by (source, target, rel_type).
    """

    center: str
    depth: int
    direction: str
    nodes: tuple[NodeRef, ...]
    edges: tuple[EdgeRef, ...]


class PathsResult(_Frozen):
    """Paths between two CIs: each a tuple of ``ci_id``; ``rel_types[i]`` are the relationship
    types of the hops of ``paths[i]``. Shortest first, then lexicographic."""

    source: str
    target: str
    paths: tuple[tuple[str, ...], ...]
    rel_types: tuple[tuple[str, ...], ...]
    truncated: bool = False


class ServiceLayer(_Frozen):
    """The CIs at one depth below a service (sorted)."""

    depth: int
    ci_ids: tuple[str, ...]


class ServiceMap(_Frozen):
    """A service down to its infrastructure: nodes, edges and a layered listing."""

    service: str
    nodes: tuple[NodeRef, ...]
    edges: tuple[EdgeRef, ...]
    layers: tuple[ServiceLayer, ...]
    truncated: bool = False


class SinglePointOfFailure(_Frozen):
    """A CI whose failure alone takes a service down; ``path``: service ... CI (dependencies)."""

    ci_id: str
    name: str
    ci_class: str
    depth: int
    path: tuple[str, ...] = Field(default=())
