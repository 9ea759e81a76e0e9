"""The arguments of the store's reads: identifier lookups, listing filters, traversals.

Both stores (through :class:`cmdb_graph.store.base.BaseStore`) check and normalise what a
caller asks with these, so that they accept, refuse and interpret the same arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from cmdb_graph.errors import InvalidRecordError, TraversalLimitError
from cmdb_graph.model import NODE_SPECS, ImpactDirection, Registry
from cmdb_graph.model.entities import OperationalStatus, Scalar
from cmdb_graph.store.rows import field_kinds

__all__ = [
    "Direction",
    "CIFilter",
    "IDENTIFIER_FIELDS",
    "INDEXED_NODE_FIELDS",
    "CASELESS_IDENTIFIERS",
    "LIST_IDENTIFIERS",
    "identifier_value",
    "class_filter",
    "check_where",
    "check_depth",
    "traversal_types",
]

#: CI fields that :meth:`GraphStore.find_cis` can look up through an index.
IDENTIFIER_FIELDS: tuple[str, ...] = (
    "ci_id",
    "native_keys",
    "serial_number",
    "asset_tag",
    "cloud_id",
    "fqdn",
    "hostname",
    "mac_addresses",
    "name",
)

#: Fields of other labels that ``list_nodes(where=...)`` finds through an index, in both stores
#: (a Neo4j range index; the embedded store's value index): what ingestion looks up by value.
INDEXED_NODE_FIELDS: dict[str, tuple[str, ...]] = {
    "Asset": ("serial_number", "asset_tag", "ci_id"),
    # every import run looks for runs left "running" by an interrupted process
    "ImportRun": ("status",),
}

#: Identifier fields compared case-insensitively by ``find_cis``.
CASELESS_IDENTIFIERS: frozenset[str] = frozenset({"fqdn", "hostname"})

#: Identifier fields that hold lists (``find_cis`` matches list membership).
LIST_IDENTIFIERS: frozenset[str] = frozenset({"native_keys", "mac_addresses"})


class Direction(StrEnum):
    """Traversal direction, by impact (see :mod:`cmdb_graph.store.base`)."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class CIFilter:
    """Filter for :meth:`GraphStore.list_cis`; every set field must match.

    ``ci_class`` matches the class and its subclasses. ``name_contains`` is case-insensitive.
    ``source`` matches CIs that the data source asserted.
    """

    ci_class: str | None = None
    operational_status: OperationalStatus | None = None
    environment: str | None = None
    support_group: str | None = None
    name_contains: str | None = None
    source: str | None = None


def identifier_value(name: str, value: Scalar) -> str | None:
    """The normalised lookup value of an identifier (lower-cased for fqdn/hostname).

    Raises
    ------
    InvalidRecordError
        ``name`` is not one of ``IDENTIFIER_FIELDS``.
    """
    if name not in IDENTIFIER_FIELDS:
        raise InvalidRecordError(
            f"not an identifier field (expected one of {', '.join(IDENTIFIER_FIELDS)})",
            field=name,
        )
    if value is None:
        return None
    text = str(value)
    return text.lower() if name in CASELESS_IDENTIFIERS else text


def class_filter(flt: CIFilter | None, registry: Registry) -> set[str] | None:
    """The CI classes a filter's ``ci_class`` matches (with subclasses), or ``None``.

    Raises
    ------
    UnknownCIClassError
        The filter names an unknown class.
    """
    if flt is None or flt.ci_class is None:
        return None
    return registry.subclasses(registry.get_class(flt.ci_class).name)


def check_where(label: str, where: Mapping[str, Scalar] | None) -> dict[str, Scalar]:
    """Validate the equality filters of ``list_nodes``: scalar fields of the label's model.

    Raises
    ------
    InvalidRecordError
        Unknown label, or a field that is not a scalar field of the model.
    """
    spec = NODE_SPECS.get(label)
    if spec is None:
        raise InvalidRecordError(f"unknown node label {label!r}", field="label")
    kinds = field_kinds(spec.model)
    out: dict[str, Scalar] = {}
    for name, value in (where or {}).items():
        if name not in kinds.scalars:
            raise InvalidRecordError(
                f"{label} has no scalar field {name!r} to filter on", field=name
            )
        out[name] = str(value) if isinstance(value, Enum) else value
    return out


def traversal_types(
    registry: Registry, direction: Direction, rel_types: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """Which CI-to-CI types a traversal follows forward and which in reverse.

    Upstream follows each type against its impact direction's start: ``END_TO_START`` (and
    ``NONE``) types in reverse (``end -> start``), ``START_TO_END`` types forward; downstream
    the other way round; ``both`` follows every type both ways.

    Returns
    -------
    forward, reverse : list of str
        Sorted relationship type names.

    Raises
    ------
    UnknownRelationshipTypeError
        A type is unknown.
    InvalidRecordError
        A type does not join two configuration items.
    """
    names = registry.ci_relationship_types() if rel_types is None else list(rel_types)
    forward: set[str] = set()
    reverse: set[str] = set()
    direction = Direction(direction)
    for name in names:
        rtype = registry.get_relationship_type(name)
        if not rtype.ci_to_ci:
            raise InvalidRecordError(
                f"{name} does not join two configuration items", field="rel_types"
            )
        along = rtype.impact is ImpactDirection.START_TO_END
        if direction is Direction.BOTH:
            forward.add(name)
            reverse.add(name)
        elif (direction is Direction.UPSTREAM) == along:
            forward.add(name)
        else:
            reverse.add(name)
    return sorted(forward), sorted(reverse)


def check_depth(depth: int | None, maximum: int | None) -> None:
    """Raise :class:`TraversalLimitError` when ``depth`` is negative or over ``maximum``."""
    if depth is None:
        return
    if depth < 0:
        raise TraversalLimitError(f"depth must be at least 0, got {depth}")
    if maximum is not None and depth > maximum:
        raise TraversalLimitError(f"depth {depth} is over the maximum of {maximum}")
