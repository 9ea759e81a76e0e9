"""The shared readers: one input file -> its parsed document, the same strict way for everyone.

Every importer reads its file with one of these, so bad input behaves the same in all of them:
a missing or unreadable file, an empty file, a wrong encoding, a line over
:data:`MAX_LINE_BYTES`, truncated or malformed JSON/YAML/XML/CSV, XML entity attacks
(``defusedxml``) and missing required CSV columns each become one
:class:`~cmdb_graph.errors.InvalidRecordError` naming the file (and the line or field where
known).

=========================  ===================================================================
reader                     parsed document
=========================  ===================================================================
:func:`read_text`          the text (strict UTF-8 or the given encoding; a BOM is dropped)
:func:`load_json`          the JSON value
:func:`load_yaml_documents` :class:`Documents`: every YAML document with the line it starts on
:func:`parse_xml`          the root :class:`~xml.etree.ElementTree.Element`
:func:`read_csv`           :class:`Table`: the header and the rows with their line numbers
=========================  ===================================================================
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import yaml
from defusedxml import DefusedXmlException

from cmdb_graph.errors import InvalidRecordError

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_FILE_BYTES",
    "Documents",
    "Row",
    "Table",
    "read_text",
    "load_json",
    "load_yaml_documents",
    "parse_xml",
    "read_csv",
]

#: Longest line (or CSV field) accepted, in bytes; longer input is refused as malformed.
MAX_LINE_BYTES = 1_000_000
#: Largest file accepted, in bytes.
MAX_FILE_BYTES = 2_000_000_000

#: One CSV row: header -> stripped cell, ``None`` for an empty cell.
Row = dict[str, str | None]


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
    return _decode(data, name, encoding)


def _decode(data: bytes, name: str, encoding: str) -> str:
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


@dataclass(frozen=True, slots=True)
class Documents:
    """The documents of a (multi-document) YAML file, each with the 1-based line it starts on.

    Iterating gives ``(line, document)`` pairs. Objects that come from an API instead of a file
    have no lines: :meth:`of` wraps them.
    """

    items: list[Any]
    lines: list[int | None]

    @classmethod
    def of(cls, items: Iterable[Any]) -> Documents:
        """Documents without line numbers (e.g. the objects of an API page)."""
        found = list(items)
        return cls(found, [None] * len(found))

    def __iter__(self) -> Iterator[tuple[int | None, Any]]:
        return zip(self.lines, self.items, strict=True)

    def __len__(self) -> int:
        return len(self.items)


def load_yaml_documents(path: Path) -> Documents:
    """Parse every document of a (multi-document) YAML file with the safe loader.

    Empty documents (``---`` separators with nothing between, or a bare ``null``) are dropped.

    Raises
    ------
    InvalidRecordError
        Any of :func:`read_text`'s errors, or malformed YAML (with its line).
    """
    text = read_text(path)
    loader = yaml.SafeLoader(text)
    items: list[Any] = []
    lines: list[int | None] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or node.tag.endswith(":null"):
                continue
            items.append(loader.construct_document(node))
            lines.append(node.start_mark.line + 1)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InvalidRecordError(
            f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
            file=str(path),
            line=(mark.line + 1) if mark is not None else None,
        ) from exc
    finally:
        loader.dispose()
    return Documents(items, lines)


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


@dataclass(frozen=True, slots=True)
class Table:
    """A CSV file as read: its header and its non-blank rows with their first line numbers.

    Iterating gives ``(line, row)`` pairs; a row maps every header to its stripped cell, or
    ``None`` for an empty or missing cell.
    """

    file: str
    header: list[str]
    rows: list[tuple[int, Row]] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[int, Row]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def read_csv(
    path: Path,
    *,
    required: Sequence[str] = (),
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> Table:
    """A CSV file as a :class:`Table`.

    The delimiter is sniffed among ``,;\\t|`` when not given. Header names are stripped. The
    line number of a row is that of its first physical line (quoted fields may span lines).

    Raises
    ------
    InvalidRecordError
        Any of :func:`read_text`'s errors, no header, a missing required column (named), a row
        with more cells than the header, or a field over :data:`MAX_LINE_BYTES`.
    """
    text = read_text(path, encoding=encoding)
    name = str(path)
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    csv.field_size_limit(MAX_LINE_BYTES)
    # strict: a file cut inside a quoted field (truncated) is an error, not a short last row
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InvalidRecordError("CSV has no header row", file=name, line=1) from None
    except csv.Error as exc:
        raise InvalidRecordError(f"malformed CSV: {exc}", file=name, line=1) from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidRecordError(
            f"missing required column(s) {', '.join(missing)}; the header has "
            f"{', '.join(header)}",
            file=name,
            line=1,
            field=missing[0],
        )
    return Table(name, header, list(_rows(reader, header, name)))


def _rows(reader: Any, header: list[str], name: str) -> Iterator[tuple[int, Row]]:
    line_start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidRecordError(f"malformed CSV: {exc}", file=name, line=line_start) from exc
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
        row: Row = dict.fromkeys(header)
        for h, c in zip(header, cells, strict=False):
            c = c.strip()
            row[h] = c if c else None
        yield line, row
