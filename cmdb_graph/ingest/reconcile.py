"""Reconciliation: which data source's value each attribute keeps.

The rules, applied per attribute of a CI, asset, relationship or other node:

1. A value beats an empty one (``None``, ``""``, ``[]``, ``{}``); an empty value asserted by a
   source never clears anything.
2. The source that holds the value may always update it.
3. Otherwise the source of higher *rank* wins. The rank is the data source's ``priority``
   (higher wins), unless a :class:`ReconciliationPolicy` lists an explicit order for the CI class
   (or node label) and attribute: listed sources then outrank every unlisted one, in list order.
   On equal rank the value already held stays (so two equal sources never flip-flop).
4. A lower-ranked source may take over a value whose holder's assertion is stale: asserted
   longer ago than the holder's ``DataSource.stale_after_days``.

A value without lineage (written through the API, or by a source since deleted) ranks below
every data source. Every value taken records ``AttributeSource(source, asserted_at)`` in the
node's lineage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from cmdb_graph.errors import ConfigurationError
from cmdb_graph.model import AttributeSource, DataSource, Lineage, Registry, SourceSeen

__all__ = [
    "ReconciliationPolicy",
    "SourceRanker",
    "fast_lineage",
    "fast_seen",
    "is_empty",
    "reconcile_values",
]

Rank = tuple[int, int]
M = TypeVar("M", bound=BaseModel)


def is_empty(value: Any) -> bool:
    """Whether a value counts as empty for reconciliation."""
    if value is None:
        return True
    t = type(value)
    if t is str:
        return not value
    if t is bool or t is int or t is float:
        return False
    return value == "" or (isinstance(value, list | tuple | dict | set) and len(value) == 0)


def fast_lineage(sources: dict[str, SourceSeen], attributes: dict[str, AttributeSource]
                 ) -> Lineage:
    """A ``Lineage`` of trusted parts, without validation (``model_construct``, minus its
    per-field bookkeeping: a run builds one per record)."""
    return _construct(Lineage, {"sources": sources, "attributes": attributes})


_FIELDS_SET: dict[type[BaseModel], frozenset[str]] = {}


def _construct(cls: type[M], values: dict[str, Any]) -> M:
    """``cls.model_construct(**values)`` for values that name every field of ``cls``."""
    obj = cls.__new__(cls)
    fields = _FIELDS_SET.get(cls)
    if fields is None:
        fields = _FIELDS_SET[cls] = frozenset(cls.model_fields)
    if len(values) != len(fields):
        raise ValueError(f"{cls.__name__} needs every field: {sorted(fields)}")
    _setattr(obj, "__dict__", values)
    _setattr(obj, "__pydantic_fields_set__", set(fields))
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


_setattr = object.__setattr__


def fast_seen(first_seen: datetime, last_seen: datetime, native_key: str | None,
              missed_full_runs: int, matched_by: str | None = None) -> SourceSeen:
    """A ``SourceSeen`` of trusted values, without validation."""
    return _construct(SourceSeen, {"first_seen": first_seen, "last_seen": last_seen,
                                   "native_key": native_key,
                                   "missed_full_runs": missed_full_runs,
                                   "matched_by": matched_by})


@dataclass(frozen=True)
class ReconciliationPolicy:
    """Per CI class (or node label) and attribute, an explicit order of data sources.

    Parameters
    ----------
    overrides : mapping
        ``{scope: {attribute: [source, ...]}}``, e.g.
        ``{"Server": {"os_version": ["sccm", "glpi"]}}``: for Server CIs (and subclasses), sccm's
        ``os_version`` beats glpi's whatever their priorities. ``scope`` is a CI class name or a
        node label (``"Asset"``, ``"Relationship"``, ``"SupportGroup"``...); the attribute
        ``"*"`` applies to every attribute of the scope.

    Examples
    --------
    >>> p = ReconciliationPolicy({"Server": {"os_version": ["sccm", "glpi"]}})
    >>> p.order_for(["Server", "Hardware", "ConfigurationItem"], "os_version")
    ('sccm', 'glpi')
    """

    overrides: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)

    def order_for(self, scopes: Sequence[str], attribute: str) -> tuple[str, ...] | None:
        """The explicit source order for the first scope (nearest class first) that has one."""
        for scope in scopes:
            attrs = self.overrides.get(scope)
            if not attrs:
                continue
            order = attrs.get(attribute) or attrs.get("*")
            if order:
                return tuple(order)
        return None

    @classmethod
    def from_file(cls, path: str | Path) -> ReconciliationPolicy:
        """Read ``{scope: {attribute: [sources]}}`` from a YAML file.

        Raises
        ------
        ConfigurationError
            Unreadable file or a value of the wrong shape (the message names the entry).
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path}: cannot read reconciliation policy: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{path}: expected {{scope: {{attribute: [sources]}}}}")
        out: dict[str, dict[str, list[str]]] = {}
        for scope, attrs in data.items():
            if not isinstance(attrs, Mapping):
                raise ConfigurationError(f"{path}: {scope}: expected a mapping of attributes")
            out[str(scope)] = {}
            for attr, order in attrs.items():
                if not isinstance(order, list) or not all(isinstance(s, str) for s in order):
                    raise ConfigurationError(f"{path}: {scope}.{attr}: expected a list of names")
                out[str(scope)][str(attr)] = list(order)
        return cls(out)


class SourceRanker:
    """Ranks data sources per scope and attribute, and tells stale assertions.

    Parameters
    ----------
    sources : mapping of str to DataSource
        Every known data source by name (unknown names rank lowest and never go stale).
    policy : ReconciliationPolicy
        Explicit orders.
    registry : Registry
        To expand a CI class into its ancestors (a policy for ``Hardware`` covers ``Server``).
    """

    def __init__(
        self, sources: Mapping[str, DataSource], policy: ReconciliationPolicy, registry: Registry
    ) -> None:
        self.sources = dict(sources)
        self.policy = policy
        self.registry = registry
        self._scopes: dict[str, list[str]] = {}

    def scopes(self, scope: str) -> list[str]:
        """``scope`` and, for a CI class, its ancestors (nearest first)."""
        if scope not in self._scopes:
            chain = self.registry.ancestors(scope) if scope in self.registry.classes else [scope]
            self._scopes[scope] = chain if scope in chain else [scope, *chain]
        return self._scopes[scope]

    def rank(self, scope: str, attribute: str, source: str | None) -> Rank:
        """A comparable rank; higher wins."""
        if source is None:
            return (-1, 0)
        order = self.policy.order_for(self.scopes(scope), attribute)
        if order and source in order:
            return (1, len(order) - order.index(source))
        ds = self.sources.get(source)
        return (0, ds.priority if ds is not None else -(10**9))

    def is_stale(self, held: AttributeSource, now: datetime) -> bool:
        """Whether the holder's assertion is older than its source's ``stale_after_days``."""
        ds = self.sources.get(held.source)
        if ds is None or ds.stale_after_days is None:
            return False
        return held.asserted_at < now - timedelta(days=ds.stale_after_days)


@lru_cache(maxsize=256)
def _stamp(source: str, asserted_at: datetime) -> AttributeSource:
    """One ``AttributeSource`` value per (source, time): every attribute a run takes shares it.

    Never mutated (lineage updates replace entries), so sharing is safe; it also lets the
    stores convert it once per batch.
    """
    return AttributeSource.model_construct(source=source, asserted_at=asserted_at)


def reconcile_values(
    current: Mapping[str, Any],
    lineage: Lineage,
    incoming: Mapping[str, Any],
    *,
    source: str,
    asserted_at: datetime,
    scope: str,
    ranker: SourceRanker,
    now: datetime,
) -> tuple[dict[str, Any], Lineage]:
    """Decide, attribute by attribute, which incoming values replace the current ones.

    Parameters
    ----------
    current : mapping
        The node's current values by attribute name (missing = empty).
    lineage : Lineage
        The node's current lineage (not modified).
    incoming : mapping
        Values one source asserts; empty ones are ignored.
    source : str
        Name of the asserting data source.
    asserted_at : datetime
        When it asserted them (timezone-aware UTC).
    scope : str
        CI class or node label, for the policy.
    ranker : SourceRanker
        Source ranks and staleness.
    now : datetime
        The run's time, for staleness.

    Returns
    -------
    taken : dict
        The attributes whose value the incoming source now holds (value possibly unchanged).
    lineage : Lineage
        A new lineage with ``attributes`` updated for every taken value.
    """
    taken: dict[str, Any] = {}
    attrs = dict(lineage.attributes)
    stamp = _stamp(source, asserted_at)
    changed = False
    current_get = current.get
    attrs_get = attrs.get
    for attr, value in incoming.items():
        if value is None or value == "" or is_empty(value):
            continue
        cur = current_get(attr)
        held = attrs_get(attr)
        take: bool
        if held is None or cur is None or is_empty(cur):
            take = True
        elif held.source == source:
            take = asserted_at >= held.asserted_at
        else:
            mine = ranker.rank(scope, attr, source)
            theirs = ranker.rank(scope, attr, held.source)
            take = mine > theirs or ranker.is_stale(held, now)
        if take:
            taken[attr] = value
            if held is None or (held is not stamp and held != stamp):
                attrs[attr] = stamp
                changed = True
    if not changed:
        return taken, lineage
    return taken, fast_lineage(lineage.sources, attrs)
