"""Lineage of a configuration item: which source asserted it, and which value came from where."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmdb_graph.ingest.candidates import list_all_nodes
from cmdb_graph.model import Asset, ConfigurationItem, SourceSeen
from cmdb_graph.store.base import GraphStore

__all__ = ["AttributeValue", "CILineage", "lineage_of"]


@dataclass(frozen=True, slots=True)
class AttributeValue:
    """The current value of one attribute, the data source that gave it and when."""

    value: Any
    source: str
    asserted_at: datetime


@dataclass(frozen=True)
class CILineage:
    """Provenance of one CI.

    Attributes
    ----------
    ci_id : str
        The CI.
    sources : dict of str to SourceSeen
        Per data source: first/last seen, its native key and its missed full runs.
    attributes : dict of str to AttributeValue
        Per attribute (model fields and extra attributes): value, source and time.
    assets : dict of str to dict of str to SourceSeen
        Per asset tracking the CI, the sources that asserted that asset.
    duplicate_of : str or None
        The survivor, when this CI was merged into another.
    """

    ci_id: str
    sources: dict[str, SourceSeen]
    attributes: dict[str, AttributeValue]
    assets: dict[str, dict[str, SourceSeen]] = field(default_factory=dict)
    duplicate_of: str | None = None

    def source_of(self, attribute: str) -> str | None:
        """The data source whose value ``attribute`` holds (``None``: no lineage)."""
        av = self.attributes.get(attribute)
        return av.source if av is not None else None

    def attributes_from(self, source: str) -> dict[str, Any]:
        """The attributes whose value comes from ``source``, with their values."""
        return {k: v.value for k, v in self.attributes.items() if v.source == source}

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {
            "ci_id": self.ci_id,
            "duplicate_of": self.duplicate_of,
            "sources": {k: v.model_dump(mode="json") for k, v in sorted(self.sources.items())},
            "attributes": {
                k: {"value": v.value, "source": v.source, "asserted_at": v.asserted_at.isoformat()}
                for k, v in sorted(self.attributes.items())
            },
            "assets": {
                a: {k: v.model_dump(mode="json") for k, v in sorted(s.items())}
                for a, s in sorted(self.assets.items())
            },
        }


def _value(ci: ConfigurationItem, attr: str) -> Any:
    if attr in ConfigurationItem.model_fields:
        v = getattr(ci, attr)
        return getattr(v, "value", v)
    return ci.attributes.get(attr)


def lineage_of(store: GraphStore, ci_id: str) -> CILineage:
    """The lineage of one CI, as a queryable structure.

    Parameters
    ----------
    store : GraphStore
        The store.
    ci_id : str
        The CI.

    Returns
    -------
    CILineage
        Per source first/last seen; per attribute value, source and time; the assets that
        track the CI with their sources.

    Raises
    ------
    CINotFoundError
        No such CI.
    """
    ci = store.get_ci(ci_id)
    attrs = {
        name: AttributeValue(_value(ci, name), src.source, src.asserted_at)
        for name, src in ci.lineage.attributes.items()
    }
    assets = {node.asset_id: dict(node.lineage.sources)
              for node in list_all_nodes(store, "Asset", where={"ci_id": ci_id})
              if isinstance(node, Asset)}
    return CILineage(ci_id=ci.ci_id, sources=dict(ci.lineage.sources), attributes=attrs,
                     assets=assets, duplicate_of=ci.duplicate_of)
