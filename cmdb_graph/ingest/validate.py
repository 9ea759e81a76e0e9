"""Validation of import records before anything is identified or written.

Every record must be an import record, name known CI classes (its own, and those of the
identifiers it refers by) and, for relationships, a known relationship type that links two CIs.
Errors name the record's origin (file, line/record) and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from cmdb_graph.errors import InvalidRecordError, UnknownCIClassError, UnknownRelationshipTypeError
from cmdb_graph.model import (
    AssetRecord,
    CIRecord,
    EntitlementRecord,
    GroupRecord,
    Identifiers,
    LocationRecord,
    Origin,
    PersonRecord,
    Registry,
    RelationshipRecord,
    SoftwareRecord,
)

__all__ = ["validate_records", "validation_error", "where"]


def where(origin: Origin | None) -> dict[str, Any]:
    """The ``file``, ``line`` and ``record`` keywords of an error about a record."""
    if origin is None:
        return {}
    return {"file": origin.file, "line": origin.line, "record": origin.record}


def validation_error(exc: ValidationError, origin: Origin | None, what: str) -> InvalidRecordError:
    """The first problem of a model validation as an error naming the record and the field."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ())) or None
    return InvalidRecordError(f"{what}: invalid value: {err.get('msg')}", field=loc,
                              **where(origin))


def validate_records(registry: Registry, records: Iterable[Any]) -> None:
    """Check every record against the registry.

    Raises
    ------
    UnknownCIClassError
        A record or a reference names a CI class the registry lacks.
    UnknownRelationshipTypeError
        A relationship record's type is unknown.
    InvalidRecordError
        A relationship type that does not link two CIs, or not an import record at all.
    """
    for rec in records:
        origin = getattr(rec, "origin", None)
        if isinstance(rec, CIRecord):
            _check_class(registry, rec.ci_class, origin, "ci_class")
            _check_ids(registry, rec.identifiers, origin, "identifiers")
        elif isinstance(rec, RelationshipRecord):
            _check_relationship(registry, rec, origin)
        elif isinstance(rec, AssetRecord):
            if rec.tracks is not None:
                _check_ids(registry, rec.tracks, origin, "tracks")
        elif isinstance(rec, SoftwareRecord):
            _check_ids(registry, rec.installed_on, origin, "installed_on")
        elif isinstance(rec, EntitlementRecord):
            for i, ids in enumerate(rec.assigned_to_cis):
                _check_ids(registry, ids, origin, f"assigned_to_cis[{i}]")
        elif not isinstance(rec, GroupRecord | PersonRecord | LocationRecord):
            raise InvalidRecordError(f"not an import record: {type(rec).__name__}")


def _check_relationship(registry: Registry, rec: RelationshipRecord,
                        origin: Origin | None) -> None:
    try:
        rt = registry.get_relationship_type(rec.rel_type)
    except UnknownRelationshipTypeError as exc:
        raise UnknownRelationshipTypeError(exc.reason, field="rel_type", **where(origin)) from None
    if not rt.ci_to_ci:
        raise InvalidRecordError(f"relationship type {rec.rel_type!r} does not link two CIs",
                                 field="rel_type", **where(origin))
    _check_ids(registry, rec.source, origin, "source")
    _check_ids(registry, rec.target, origin, "target")


def _check_class(registry: Registry, name: str, origin: Origin | None, field: str) -> None:
    try:
        registry.get_class(name)
    except UnknownCIClassError as exc:
        raise UnknownCIClassError(exc.reason, field=field, **where(origin)) from None


def _check_ids(registry: Registry, ids: Identifiers, origin: Origin | None, field: str) -> None:
    cur: Identifiers | None = ids
    while cur is not None:
        if cur.ci_class is not None:
            _check_class(registry, cur.ci_class, origin, f"{field}.ci_class")
        cur = cur.host
