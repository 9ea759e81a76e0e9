"""Orphaned assets and data-quality reports.

Every report is a function with the same signature::

    report(graph, *, now, assets=(), entitlements=(), options=None) -> QualityReport

whose docstring's first paragraph is its definition.

CIs not in service: every report leaves retired CIs out. CIs ``non_operational`` (planned,
in stock, offline) or under ``repair`` are left out where being so is expected behaviour and
not a data-quality problem: an in-stock or planned server that nothing rests on is not
unreachable (:func:`infrastructure_unreachable_from_services`), a planned service has no
infrastructure yet (:func:`services_without_infrastructure`), and a CI that is not running is
not expected to be seen by discovery (:func:`stale_cis`). They stay in the reports where the
problem holds whatever the status: a missing owner or support group, a duplicate, a missing
asset record, a retired asset or a relationship to a retired CI.

:data:`REPORTS` lists them by name so the API and the CLI can list and run them uniformly,
with one :class:`QualityInput` bundle (:func:`run_report`, :func:`run_all`). ``now`` is always
an explicit argument: no report reads the clock.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from cmdb_graph.errors import ConfigurationError
from cmdb_graph.model import (
    Asset,
    Entitlement,
    LifecycleStage,
    OperationalStatus,
    ServiceKind,
)
from impact.graph import ImpactGraph
from impact.results import QualityFinding, QualityReport
from impact.topology import Topology

__all__ = [
    "REPORTS",
    "QualityInput",
    "QualityOptions",
    "QualityReportFn",
    "assets_unseen_by_discovery",
    "cis_without_support_or_owner",
    "duplicate_candidates",
    "entitlements_on_retired",
    "hardware_past_warranty_or_eol",
    "infrastructure_unreachable_from_services",
    "relationships_to_retired",
    "retired_assets_in_use",
    "run_all",
    "run_report",
    "services_without_infrastructure",
    "stale_cis",
    "unmanaged_cis",
]

_GONE_STAGES = frozenset({LifecycleStage.RETIRED, LifecycleStage.DISPOSED})
_MAX_RELATED = 50


@dataclass(frozen=True, slots=True)
class QualityOptions:
    """Thresholds of the reports.

    Attributes
    ----------
    unseen_days : int
        An in-use asset whose CI no discovery source has seen for this many days is reported.
    stale_days : int
        A CI whose ``last_seen`` is older than this many days is stale...
    stale_days_by_class : mapping of str to int
        ...unless its class (or nearest ancestor class) has its own threshold here.
    """

    unseen_days: int = 30
    stale_days: int = 30
    stale_days_by_class: Mapping[str, int] = field(default_factory=dict)


class QualityReportFn(Protocol):
    """Signature shared by every report."""

    def __call__(
        self,
        graph: ImpactGraph,
        *,
        now: datetime,
        assets: Sequence[Asset] = (),
        entitlements: Sequence[Entitlement] = (),
        options: QualityOptions | None = None,
    ) -> QualityReport: ...


@dataclass(frozen=True, slots=True)
class QualityInput:
    """Everything the reports read, bundled for :func:`run_report` and :func:`run_all`."""

    graph: ImpactGraph
    now: datetime
    assets: Sequence[Asset] = ()
    entitlements: Sequence[Entitlement] = ()
    options: QualityOptions = field(default_factory=QualityOptions)


# -- helpers ------------------------------------------------------------------------------


def _dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        out = value
    else:
        try:
            out = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return out.replace(tzinfo=UTC) if out.tzinfo is None else out.astimezone(UTC)


def _live_cis(graph: ImpactGraph) -> list[str]:
    return sorted(c for c in graph.ci_ids() if not graph.is_retired(c))


def _report(name: str, fn: Callable[..., Any], findings: list[QualityFinding]) -> QualityReport:
    findings.sort(key=lambda f: (f.subject_kind, f.subject, f.detail))
    return QualityReport(name=name, definition=_definition(fn), findings=tuple(findings))


def _definition(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _serving_cis(graph: ImpactGraph) -> list[str]:
    """The CIs in service (see :meth:`ImpactGraph.in_service`), sorted."""
    return [c for c in _live_cis(graph) if graph.in_service(c)]


def _services(graph: ImpactGraph) -> list[str]:
    return [c for c in _live_cis(graph) if graph.is_service(c)]


def _ids(topo: Topology, idx: np.ndarray) -> list[str]:
    return [topo.ids[i] for i in idx.tolist()]


# -- reports ------------------------------------------------------------------------------


def retired_assets_in_use(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """Assets retired or disposed in ITAM whose CI is still operational or still depended upon
    (a CI that is not retired needs it directly).

    ``related`` lists the CIs that still depend on it.
    """
    topo = graph.topology
    out: list[QualityFinding] = []
    for a in assets:
        if a.lifecycle_stage not in _GONE_STAGES or not a.ci_id or a.ci_id not in graph:
            continue
        deps, _ = topo.dependents(topo.index[a.ci_id])
        users = sorted(c for c in _ids(topo, deps) if not graph.is_retired(c))
        status = graph.status(a.ci_id)
        if status == str(OperationalStatus.OPERATIONAL) or users:
            why = []
            if status == str(OperationalStatus.OPERATIONAL):
                why.append("its CI is operational")
            if users:
                why.append(f"{len(users)} CI(s) depend on it")
            out.append(QualityFinding(
                subject=a.asset_id, subject_kind="asset", ci_id=a.ci_id,
                related=tuple(users[:_MAX_RELATED]),
                detail=f"asset is {a.lifecycle_stage} but {' and '.join(why)}",
            ))
    return _report("retired_assets_in_use", retired_assets_in_use, out)


def unmanaged_cis(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """CIs (not retired) of a class that expects an asset record (``asset_expected`` in the
    registry) that no asset tracks.

    When an unlinked asset has the same serial number or asset tag, ``related`` names it.
    """
    tracked = {a.ci_id for a in assets if a.ci_id}
    by_serial: dict[str, list[str]] = {}
    by_tag: dict[str, list[str]] = {}
    for a in assets:
        if a.ci_id is None:
            if a.serial_number:
                by_serial.setdefault(a.serial_number.strip().casefold(), []).append(a.asset_id)
            if a.asset_tag:
                by_tag.setdefault(a.asset_tag.strip().casefold(), []).append(a.asset_id)
    out: list[QualityFinding] = []
    for ci in _live_cis(graph):
        cls = graph.registry.classes.get(graph.ci_class(ci))
        if cls is None or not cls.asset_expected or ci in tracked:
            continue
        serial = str(graph.attr(ci, "serial_number", "")).strip().casefold()
        tag = str(graph.attr(ci, "asset_tag", "")).strip().casefold()
        match = sorted(set(by_serial.get(serial, []) if serial else [])
                       | set(by_tag.get(tag, []) if tag else []))
        detail = f"{cls.name} with no asset record"
        if match:
            detail += "; unlinked asset(s) with the same serial number or asset tag exist"
        out.append(QualityFinding(subject=ci, subject_kind="ci", ci_id=ci, related=tuple(match),
                                  detail=detail))
    return _report("unmanaged_cis", unmanaged_cis, out)


def assets_unseen_by_discovery(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """Assets in use whose CI no discovery source has seen for ``options.unseen_days`` days
    (CI ``last_seen`` older, or missing), or that track no CI at all."""
    opts = options or QualityOptions()
    cutoff = now - timedelta(days=opts.unseen_days)
    out: list[QualityFinding] = []
    for a in assets:
        if a.lifecycle_stage is not LifecycleStage.IN_USE:
            continue
        if not a.ci_id:
            detail = "in use but tracks no CI"
        elif a.ci_id not in graph:
            detail = f"in use but its CI {a.ci_id} is not in the CMDB"
        else:
            seen = _dt(graph.attr(a.ci_id, "last_seen"))
            if seen is not None and seen >= cutoff:
                continue
            detail = (f"in use but its CI was last seen {seen.isoformat()}" if seen
                      else "in use but its CI was never seen by discovery")
        out.append(QualityFinding(subject=a.asset_id, subject_kind="asset", ci_id=a.ci_id,
                                  detail=detail))
    return _report("assets_unseen_by_discovery", assets_unseen_by_discovery, out)


def cis_without_support_or_owner(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """CIs (not retired) without a support group or without an owner."""
    out: list[QualityFinding] = []
    for ci in _live_cis(graph):
        missing = [f for f in ("support_group", "owner") if not graph.attr(ci, f)]
        if missing:
            out.append(QualityFinding(subject=ci, subject_kind="ci", ci_id=ci,
                                      detail=f"no {' and no '.join(missing)}"))
    return _report("cis_without_support_or_owner", cis_without_support_or_owner, out)


def infrastructure_unreachable_from_services(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """Infrastructure CIs in service that no business or application service (not retired)
    rests on: their failure reaches no service.

    CIs not in service (``non_operational``: planned, in stock, offline; ``repair``) are left
    out: a server in stock that nothing rests on is expected, not an orphan. A service that is
    itself not in service (planned) still counts as resting on what it needs.
    """
    topo = graph.topology
    services = _services(graph)
    reached: set[str] = set()
    if services:
        nodes, _ = topo.closure(topo.indexes(services), reverse=True)
        reached = set(_ids(topo, nodes))
    out = [
        QualityFinding(subject=ci, subject_kind="ci", ci_id=ci,
                       detail="no service depends on it, directly or indirectly")
        for ci in _serving_cis(graph)
        if graph.kind(ci) is ServiceKind.INFRASTRUCTURE and ci not in reached
    ]
    return _report("infrastructure_unreachable_from_services",
                   infrastructure_unreachable_from_services, out)


def services_without_infrastructure(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """Business or application services in service with no infrastructure CI anywhere
    beneath them (nothing they need, directly or indirectly, is infrastructure).

    Services not in service (``non_operational``: planned; ``repair``) are left out: a planned
    service has no infrastructure yet.
    """
    topo = graph.topology
    infra = [c for c in graph.ci_ids() if graph.kind(c) is ServiceKind.INFRASTRUCTURE]
    reached: set[str] = set()
    if infra:
        nodes, _ = topo.closure(topo.indexes(infra))
        reached = set(_ids(topo, nodes))
    out = [
        QualityFinding(subject=s, subject_kind="ci", ci_id=s,
                       detail="no infrastructure beneath this service")
        for s in _services(graph) if s not in reached and graph.in_service(s)
    ]
    return _report("services_without_infrastructure", services_without_infrastructure, out)


def stale_cis(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """CIs in service whose ``last_seen`` is older than the stale threshold of their class
    (``options.stale_days_by_class`` for the class or its nearest ancestor, else
    ``options.stale_days``). CIs never seen by a source (no ``last_seen``) are not stale.

    CIs not in service (``non_operational``: planned, in stock, offline; ``repair``; retired)
    are left out: discovery is not expected to see a CI that is not running.
    """
    reg = graph.registry
    opts = options or QualityOptions()
    out: list[QualityFinding] = []
    for ci in _serving_cis(graph):
        seen = _dt(graph.attr(ci, "last_seen"))
        if seen is None:
            continue
        cls = graph.ci_class(ci)
        days = opts.stale_days
        chain = reg.ancestors(cls) if cls in reg.classes else [cls]
        for name in chain:
            if name in opts.stale_days_by_class:
                days = int(opts.stale_days_by_class[name])
                break
        if seen < now - timedelta(days=days):
            out.append(QualityFinding(
                subject=ci, subject_kind="ci", ci_id=ci,
                detail=f"last seen {seen.isoformat()}, more than {days} days before now",
            ))
    return _report("stale_cis", stale_cis, out)


def duplicate_candidates(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """Distinct CIs (not retired) that share a serial number, an FQDN, or a name within the
    same CI class (case-insensitive); CIs of the same kind with the same service name
    (attribute ``service_name``) in different or unstated systems (attribute ``system``), which
    the ``name_system`` identification rule does not merge; and CIs marked ``duplicate_of``
    another.

    Each group gives one finding on its smallest ``ci_id`` with the others in ``related``;
    CIs that several rules group alike (the same serial number and FQDN, say) give one
    finding whose detail lists every reason, joined by ``"; "``.
    """
    groups: dict[tuple[str, str], set[str]] = {}
    for ci in _live_cis(graph):
        for label, key in (
            ("serial number", graph.attr(ci, "serial_number")),
            ("FQDN", graph.attr(ci, "fqdn")),
            ("name in class " + graph.ci_class(ci), graph.attr(ci, "name")),
        ):
            if key is not None and str(key).strip():
                groups.setdefault((label, str(key).strip().casefold()), set()).add(ci)
    services: dict[tuple[str, str], dict[str, str]] = {}
    for ci in _live_cis(graph):
        attrs = graph.attr(ci, "attributes", {})
        svc = attrs.get("service_name") if isinstance(attrs, dict) else None
        if isinstance(svc, str) and svc.strip():
            system = str(attrs.get("system") or "").strip()
            services.setdefault((str(graph.kind(ci)), svc.strip().casefold()), {})[ci] = system
    # the reasons of each group of CIs, in rule order: one finding per group
    reasons: dict[tuple[str, ...], list[str]] = {}
    for (label, key), members in groups.items():
        if len(members) > 1:
            reasons.setdefault(tuple(sorted(members)), []).append(f"same {label}: {key!r}")
    for (_, key), systems in services.items():
        if len(systems) > 1 and len({v.casefold() for v in systems.values()}) > 1:
            where = ", ".join(f"{c} in {systems[c] or 'no stated system'!r}"
                              for c in sorted(systems))
            reasons.setdefault(tuple(sorted(systems)), []).append(
                f"same service name {key!r} in different systems ({where}): not merged")
    out: list[QualityFinding] = []
    for (first, *rest), why in reasons.items():
        out.append(QualityFinding(subject=first, subject_kind="ci", ci_id=first,
                                  related=tuple(rest), detail="; ".join(why)))
    for ci in sorted(graph.ci_ids()):
        dup = graph.attr(ci, "duplicate_of")
        if dup:
            out.append(QualityFinding(subject=ci, subject_kind="ci", ci_id=ci,
                                      related=(str(dup),), detail=f"marked duplicate of {dup}"))
    return _report("duplicate_candidates", duplicate_candidates, out)


def relationships_to_retired(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """Relationships with a retired CI at either end.

    The subject is ``"REL_TYPE:source->target"``; ``related`` lists the retired end(s).
    """
    out: list[QualityFinding] = []
    for u, v, rel, _ in graph.relationships():
        ends = [c for c in (u, v) if graph.is_retired(c)]
        if ends:
            out.append(QualityFinding(
                subject=f"{rel}:{u}->{v}", subject_kind="relationship", ci_id=u,
                related=tuple(sorted(set(ends))),
                detail=f"{' and '.join(sorted(set(ends)))} retired",
            ))
    return _report("relationships_to_retired", relationships_to_retired, out)


def hardware_past_warranty_or_eol(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """Assets (not retired or disposed) past their warranty end or end of life, with the
    business and application services that still rest on their CI (in ``related``)."""
    topo = graph.topology
    today = now.date()
    out: list[QualityFinding] = []
    for a in assets:
        if a.lifecycle_stage in _GONE_STAGES:
            continue
        past = []
        if a.warranty_end is not None and a.warranty_end < today:
            past.append(f"warranty ended {a.warranty_end.isoformat()}")
        if a.end_of_life is not None and a.end_of_life < today:
            past.append(f"end of life {a.end_of_life.isoformat()}")
        if not past:
            continue
        services: list[str] = []
        if a.ci_id and a.ci_id in topo.index:
            nodes, _ = topo.closure(topo.indexes([a.ci_id]))
            services = sorted(
                c for c in _ids(topo, nodes)
                if graph.is_service(c) and not graph.is_retired(c)
            )
        detail = "; ".join(past) + (f"; {len(services)} service(s) rest on it" if services
                                    else "")
        out.append(QualityFinding(subject=a.asset_id, subject_kind="asset", ci_id=a.ci_id,
                                  related=tuple(services[:_MAX_RELATED]), detail=detail))
    return _report("hardware_past_warranty_or_eol", hardware_past_warranty_or_eol, out)


def entitlements_on_retired(
    graph: ImpactGraph,
    *,
    now: datetime,
    assets: Sequence[Asset] = (),
    entitlements: Sequence[Entitlement] = (),
    options: QualityOptions | None = None,
) -> QualityReport:
    """Entitlements assigned to a CI that is retired, or whose asset record is retired or
    disposed (one finding per entitlement, the CIs in ``related``)."""
    gone_assets = {a.ci_id for a in assets if a.ci_id and a.lifecycle_stage in _GONE_STAGES}
    out: list[QualityFinding] = []
    for e in entitlements:
        bad = sorted(
            c for c in set(e.assigned_ci_ids)
            if (c in graph and graph.is_retired(c)) or c in gone_assets
        )
        if bad:
            out.append(QualityFinding(
                subject=e.entitlement_id, subject_kind="entitlement", ci_id=bad[0],
                related=tuple(bad),
                detail=f"assigned to {len(bad)} retired CI(s) or asset(s)",
            ))
    return _report("entitlements_on_retired", entitlements_on_retired, out)


#: Every report by name, in a stable order.
REPORTS: dict[str, QualityReportFn] = {
    "retired_assets_in_use": retired_assets_in_use,
    "unmanaged_cis": unmanaged_cis,
    "assets_unseen_by_discovery": assets_unseen_by_discovery,
    "cis_without_support_or_owner": cis_without_support_or_owner,
    "infrastructure_unreachable_from_services": infrastructure_unreachable_from_services,
    "services_without_infrastructure": services_without_infrastructure,
    "stale_cis": stale_cis,
    "duplicate_candidates": duplicate_candidates,
    "relationships_to_retired": relationships_to_retired,
    "hardware_past_warranty_or_eol": hardware_past_warranty_or_eol,
    "entitlements_on_retired": entitlements_on_retired,
}


def run_report(name: str, data: QualityInput) -> QualityReport:
    """Run one report of :data:`REPORTS` on a bundle.

    Raises
    ------
    ConfigurationError
        No report has that name (the message lists them).
    """
    fn = REPORTS.get(name)
    if fn is None:
        raise ConfigurationError(f"unknown report {name!r}; known: {', '.join(REPORTS)}")
    return fn(data.graph, now=data.now, assets=data.assets, entitlements=data.entitlements,
              options=data.options)


def run_all(data: QualityInput) -> dict[str, QualityReport]:
    """Every report on one bundle (the graph's topology is built once), by name."""
    return {name: run_report(name, data) for name in REPORTS}
