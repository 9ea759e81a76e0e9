"""Control characters in records: never stored.

:func:`without_control_characters` removes them from every value of a list of records, with a
warning per record naming its fields. Importers call it on what they parse, ingestion on
every run's records, so the API's and the connectors' writes are cleaned too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum
from typing import Any

import pydantic_core
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import InputWarning, Record

__all__ = ["CONTROL", "without_control_characters"]

#: Control characters never stored: C0 but tab, line feed and carriage return; DEL; C1; lone
#: surrogates (from JSON ``\ud800`` escapes); the non-characters U+FFFE and U+FFFF.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

#: In records serialised to JSON: what a control character becomes (escaped C0 but tab, line
#: feed, carriage return; raw DEL, C1, U+FFFE, U+FFFF). A false alarm only costs the slow path.
_CONTROL_IN_JSON = re.compile(
    rb"\\u00[01][0-9a-fA-F]|\\[bf]|\x7f|\xc2[\x80-\x9f]|\xef\xbf[\xbe\xbf]")


def without_control_characters(records: Sequence[Record]
                               ) -> tuple[list[Record], list[InputWarning]]:
    """The records with control characters removed from every value, and a warning for each
    record that had some (naming its fields).

    Importers call it on what they parsed; ingestion on every run's records (the API's and
    the connectors' included), so nothing stores them.

    Raises
    ------
    InvalidRecordError
        A value is nothing but control characters (names the record's origin and field).
    """
    try:
        if _CONTROL_IN_JSON.search(pydantic_core.to_json(records)) is None:
            return list(records), []  # the usual case, found in one pass of compiled code
    except PydanticSerializationError:
        pass  # a lone surrogate: look record by record
    out: list[Record] = []
    warnings: list[InputWarning] = []
    for rec in records:
        fields: list[str] = []
        where = rec.origin
        try:
            clean = _clean(rec, "", fields)
        except InvalidRecordError as exc:
            raise InvalidRecordError(exc.reason or "", file=where.file, line=where.line,
                                     record=where.record, field=exc.field) from exc
        out.append(clean)
        if fields:
            warnings.append(InputWarning(
                record_type=rec.record_type,
                reason=f"control characters removed from {', '.join(dict.fromkeys(fields))}",
                origin=clean.origin))
    return out, warnings


def _clean(value: Any, path: str, fields: list[str]) -> Any:
    """``value`` without control characters (the same object when it has none); the paths of
    the cleaned values go to ``fields``."""
    if isinstance(value, str) and not isinstance(value, Enum):
        if CONTROL.search(value) is None:
            return value
        fields.append(path)
        cleaned = CONTROL.sub("", value)
        if not cleaned:
            raise InvalidRecordError("the value is nothing but control characters",
                                     field=path or None)
        return cleaned
    if isinstance(value, BaseModel):
        changes: dict[str, Any] = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _clean(old, f"{path}.{name}" if path else name, fields)
            if new is not old:
                changes[name] = new
        return value.model_copy(update=changes) if changes else value
    if isinstance(value, dict):
        pairs = [(_clean(k, f"{path} (a key)", fields), _clean(v, f"{path}.{k}", fields))
                 for k, v in value.items()]
        if all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    if isinstance(value, tuple | list):
        items = [_clean(v, path, fields) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    return value
