"""What every importer shares: the ``Importer`` protocol and strict readers for its inputs.

An importer parses one source format into :mod:`cmdb_graph.model.records` and never touches a
store. It reads its whole input before yielding anything that could be applied, so bad input
raises :class:`~cmdb_graph.errors.InvalidRecordError` (naming the file, line/record and field)
before ingestion writes a thing.

The readers here give every importer the same behaviour on bad input: wrong encoding, truncated
or malformed JSON/YAML/XML, XML entity attacks (``defusedxml``), empty files, missing required
columns and oversized lines all become one ``InvalidRecordError``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import yaml
from defusedxml import DefusedXmlException
from pydantic import ValidationError

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import Record

__all__ = [
    "Importer",
    "MAX_LINE_BYTES",
    "MAX_FILE_BYTES",
    "read_text",
    "load_json",
    "load_yaml_documents",
    "parse_xml",
    "read_csv",
    "require",
    "checked_records",
    "checked_build",
]

#: Longest line (or CSV field) accepted, in bytes; longer input is refused as malformed.
MAX_LINE_BYTES = 1_000_000
#: Largest file accepted, in bytes.
MAX_FILE_BYTES = 2_000_000_000


class Importer(Protocol):
    """One source format.

    Attributes
    ----------
    kind : str
        The name used on the command line (``cmdb-graph import KIND ...``).
    description : str
        One line: the format and the document it follows.
    """

    kind: str
    description: str

    def parse(self, path: Path) -> Iterator[Record]:
        """Yield the records of one file.

        Raises
        ------
        InvalidRecordError
            The file is unreadable or malformed; the error names the file and line/record/field.
        """
        ...


def read_text(path: Path, *, encoding: str = "utf-8") -> str:
    """The whole file as text, strictly decoded (a UTF-8 BOM is dropped).

    Raises
    ------
    InvalidRecordError
        Missing or unreadable file, empty file, wrong encoding (with the line of the first bad
        byte), or a line longer than :data:`MAX_LINE_BYTES`.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidRecordError(f"cannot read file: {exc.strerror or exc}", file=name) from exc
    if len(data) > MAX_FILE_BYTES:
        raise InvalidRecordError(f"file is larger than {MAX_FILE_BYTES} bytes", file=name)
    if not data.strip():
        raise InvalidRecordError("file is empty", file=name)
    try:
        text = data.decode("utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidRecordError(
            f"not valid {encoding} (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "re-export the file as UTF-8",
            file=name,
            line=line,
        ) from exc
    for lineno, line_text in enumerate(text.splitlines(), start=1):
        if len(line_text) > MAX_LINE_BYTES:
            raise InvalidRecordError(
                f"line is longer than {MAX_LINE_BYTES} characters", file=name, line=lineno
            )
    return text


def load_json(path: Path) -> Any:
    """Parse a JSON file.

    Raises
    ------
    InvalidRecordError
        Any of :func:`read_text`'s errors, or malformed/truncated JSON (with line and column).
    """
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRecordError(
            f"malformed JSON: {exc.msg} (column {exc.colno})", file=str(path), line=exc.lineno
        ) from exc


def load_yaml_documents(path: Path) -> list[Any]:
    """Parse every document of a (multi-document) YAML file with the safe loader.

    Empty documents (``---`` separators with nothing between) are dropped.

    Raises
    ------
    InvalidRecordError
        Any of :func:`read_text`'s errors, or malformed YAML (with its line).
    """
    text = read_text(path)
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InvalidRecordError(
            f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
            file=str(path),
            line=(mark.line + 1) if mark is not None else None,
        ) from exc


def parse_xml(path: Path) -> Element:
    """Parse an XML file with defusedxml and return its root element.

    Entity declarations (billion laughs, external entities) and DTDs that pull external
    resources are refused.

    Raises
    ------
    InvalidRecordError
        Unreadable/empty file, wrong encoding, malformed or truncated XML (with its line), or a
        forbidden entity/DTD construct.
    """
    read_text(path)  # uniform errors for empty files, encodings and huge lines
    name = str(path)
    try:
        tree = SafeET.parse(str(path), forbid_dtd=False, forbid_entities=True,
                            forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidRecordError(
            f"refused XML: {type(exc).__name__} ({exc}); entity declarations and external "
            "references are not allowed",
            file=name,
        ) from exc
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InvalidRecordError(f"malformed XML: {exc}", file=name, line=line) from exc
    root = tree.getroot()
    if root is None:
        raise InvalidRecordError("XML has no root element", file=name)
    return root


def read_csv(
    path: Path,
    *,
    required: Sequence[str] = (),
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> Iterator[tuple[int, dict[str, str | None]]]:
    """Rows of a CSV file as ``(line_number, row)``; empty cells become ``None``.

    The delimiter is sniffed among ``,;\\t|`` when not given. Header names are stripped. The
    line number is that of the row's first physical line (quoted fields may span lines).

    Raises
    ------
    InvalidRecordError
        Any of :func:`read_text`'s errors, no header, a missing required column (named), a row
        with more cells than the header, or a field over :data:`MAX_LINE_BYTES`.
    """
    text = read_text(path, encoding=encoding)
    name = str(path)
    if delimiter is None:
        head = text[:8192]
        try:
            delimiter = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    csv.field_size_limit(MAX_LINE_BYTES)
    # strict: a file cut inside a quoted field (truncated) is an error, not a short last row
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidRecordError("CSV has no header row", file=name, line=1) from None
    except csv.Error as exc:
        raise InvalidRecordError(f"malformed CSV: {exc}", file=name, line=1) from exc
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidRecordError(
            f"missing required column(s) {', '.join(missing)}; the header has "
            f"{', '.join(header)}",
            file=name,
            line=1,
            field=missing[0],
        )
    line_start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidRecordError(
                f"malformed CSV: {exc}", file=name, line=line_start
            ) from exc
        line = line_start
        line_start = reader.line_num + 1
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise InvalidRecordError(
                f"row has {len(cells)} cells but the header has {len(header)}",
                file=name,
                line=line,
            )
        row: dict[str, str | None] = dict.fromkeys(header)
        for h, c in zip(header, cells, strict=False):
            c = c.strip()
            row[h] = c if c else None
        yield line, row


def require(
    mapping: Mapping[str, Any], key: str, *, file: str, record: str | int | None = None,
    line: int | None = None,
) -> Any:
    """``mapping[key]``, or an ``InvalidRecordError`` naming the file, record and field.

    An empty string or ``None`` counts as missing.
    """
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    if value is None or value == "":
        raise InvalidRecordError(
            "required field is missing or empty", file=file, record=record, line=line, field=key
        )
    return value


def checked_records(path: Path, records: Iterable[Record]) -> list[Record]:
    """All of an importer's records, read before any is used.

    Input files are untrusted: a list where a name belongs, or a value that the record models
    refuse, must give one ``InvalidRecordError`` naming the file, never a ``TypeError``,
    ``AttributeError`` or pydantic ``ValidationError`` from deep inside an importer.

    Raises
    ------
    InvalidRecordError
        Passed through unchanged, or made from one of the errors above (``from`` it).
    """
    try:
        return list(records)
    except InvalidRecordError:
        raise
    except ValidationError as exc:
        errors = exc.errors()
        loc = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        msg = errors[0]["msg"] if errors else str(exc)
        raise InvalidRecordError(
            f"a value does not fit the record model: {msg}",
            file=str(path),
            field=loc or None,
        ) from exc
    except (TypeError, AttributeError) as exc:
        raise InvalidRecordError(
            f"a value has an unexpected type ({exc})", file=str(path)
        ) from exc


def checked_build(
    file: str, where: str, build: Callable[..., list[Record]], *args: Any, **kwargs: Any
) -> list[Record]:
    """``build(*args, **kwargs)``; a value the record models refuse becomes an
    ``InvalidRecordError`` naming the file, the record (``where``) and the field.

    Raises
    ------
    InvalidRecordError
        From the pydantic ``ValidationError`` of one record.
    """
    try:
        return build(*args, **kwargs)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidRecordError(
            f"invalid value: {first['msg']}", file=file, record=where, field=field
        ) from exc
