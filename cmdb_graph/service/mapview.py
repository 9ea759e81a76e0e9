"""What a dependency map needs beyond the impact questions: a cap on the CIs drawn, and the
data-quality flags shown as badges on its nodes.

The web UI draws neighbourhoods (``impact.neighbourhood``) and marks their CIs with the
findings of the data-quality reports (:data:`impact.REPORTS`); both the API and the command
line may call these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import impact
from cmdb_graph.errors import ConfigurationError, InvalidRecordError

__all__ = ["BADGES", "QualityFlag", "nearest_first", "quality_flags"]

#: The reports whose findings become badges on a CI, and the badge's name.
BADGES: dict[str, str] = {
    "infrastructure_unreachable_from_services": "orphan",
    "stale_cis": "stale",
    "duplicate_candidates": "duplicate",
    "hardware_past_warranty_or_eol": "past_warranty",
    "cis_without_support_or_owner": "unowned",
    "retired_assets_in_use": "retired_in_use",
    "unmanaged_cis": "unmanaged",
}


@dataclass(frozen=True, slots=True)
class QualityFlag:
    """One data-quality finding about a CI.

    Attributes
    ----------
    badge : str
        Short name shown on the map (a value of :data:`BADGES`).
    report : str
        The report that found it (a key of :data:`impact.REPORTS`).
    detail : str
        The finding's sentence.
    """

    badge: str
    report: str
    detail: str


def nearest_first(
    found: impact.Neighbourhood, max_nodes: int | None
) -> tuple[impact.Neighbourhood, int]:
    """Keep the ``max_nodes`` CIs nearest the centre and the relationships among them.

    Parameters
    ----------
    found : impact.Neighbourhood
        Nodes sorted by (distance, ``ci_id``), as :func:`impact.neighbourhood` returns them.
    max_nodes : int or None
        How many CIs to keep (at least 1: the centre); ``None`` keeps all.

    Returns
    -------
    (impact.Neighbourhood, int)
        The neighbourhood cut to the first ``max_nodes`` nodes, and how many nodes it had.

    Raises
    ------
    InvalidRecordError
        ``max_nodes`` is below 1.
    """
    total = len(found.nodes)
    if max_nodes is None or total <= max_nodes:
        return found, total
    if max_nodes < 1:
        raise InvalidRecordError("maxNodes must be at least 1", field="maxNodes")
    nodes = found.nodes[:max_nodes]
    kept = {n.ci_id for n in nodes}
    edges = tuple(e for e in found.edges if e.source in kept and e.target in kept)
    return found.model_copy(update={"nodes": nodes, "edges": edges}), total


def quality_flags(
    data: impact.QualityInput, ci_ids: Iterable[str], *, reports: Iterable[str] | None = None
) -> dict[str, list[QualityFlag]]:
    """The data-quality findings about each of ``ci_ids``.

    Parameters
    ----------
    data : impact.QualityInput
        The whole graph, assets and entitlements, as every report reads them.
    ci_ids : iterable of str
        The CIs to flag (those on the map).
    reports : iterable of str, optional
        Report names among :data:`BADGES` (default: all of them).

    Returns
    -------
    dict
        Every requested ``ci_id`` -> its flags, in :data:`BADGES` order (empty when none).
        A duplicate candidate flags every CI of its group, not only the finding's subject.

    Raises
    ------
    ConfigurationError
        A report name that is not in :data:`BADGES`.
    """
    names = list(BADGES) if reports is None else list(dict.fromkeys(reports))
    unknown = [n for n in names if n not in BADGES]
    if unknown:
        raise ConfigurationError(
            f"not a badge report: {', '.join(unknown)}; known: {', '.join(BADGES)}"
        )
    out: dict[str, list[QualityFlag]] = {c: [] for c in ci_ids}
    for name in names:
        for finding in impact.run_report(name, data).findings:
            about = [finding.ci_id] if finding.ci_id else []
            if name == "duplicate_candidates":
                about += list(finding.related)
            flag = QualityFlag(badge=BADGES[name], report=name, detail=finding.detail)
            for ci in dict.fromkeys(about):
                if ci in out and flag.badge not in {f.badge for f in out[ci]}:
                    out[ci].append(flag)
    return out
