"""The shared readers: one input file -> its parsed document, the same strict way for everyone.

Every importer reads its file with one of these, so bad input behaves the same in all of them:
a missing or unreadable file, anything but a regular file (a directory, a named pipe, a device
such as ``/dev/zero`` behind a symlink: refused before reading, so nothing blocks), a file over
:data:`MAX_FILE_BYTES` (checked before reading), an empty file, a wrong encoding, a line over
:data:`MAX_LINE_BYTES`, truncated or malformed JSON/YAML/XML/CSV, nesting deeper than
:data:`MAX_DEPTH`, YAML aliases that expand beyond :data:`MAX_ALIAS_NODES` (an "alias bomb")
or refer to themselves, XML entity attacks (``defusedxml``) and missing required CSV columns
each become one :class:`~cmdb_graph.errors.InvalidRecordError` naming the file (and the line or
field where known). A CSV header that names a column twice is read (the first column wins)
with an :class:`~cmdb_graph.model.records.InputWarning` in :attr:`Table.warnings`.

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
import os
import stat
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import yaml
from defusedxml import DefusedXmlException
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import InputWarning, Origin

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_FILE_BYTES",
    "MAX_DEPTH",
    "MAX_ALIAS_NODES",
    "Documents",
    "Row",
    "Table",
    "read_bytes",
    "read_text",
    "check_depth",
    "load_json",
    "load_yaml_documents",
    "parse_xml",
    "read_csv",
]

#: Longest line (or CSV field) accepted, in bytes; longer input is refused as malformed.
MAX_LINE_BYTES = 1_000_000
#: Largest file accepted, in bytes.
MAX_FILE_BYTES = 2_000_000_000
#: Deepest nesting of JSON/YAML containers or XML elements accepted.
MAX_DEPTH = 100
#: Most nodes that YAML aliases may add to a document when expanded.
MAX_ALIAS_NODES = 100_000

#: One CSV row: header -> stripped cell, ``None`` for an empty cell.
Row = dict[str, str | None]


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def read_bytes(path: Path) -> bytes:
    """The whole content of a regular file of at most :data:`MAX_FILE_BYTES` bytes.

    The file is opened without blocking and checked (``fstat`` of the open file, so a symlink
    is judged by what it points at) before a byte is read: a directory, a named pipe or a
    device is refused, and so is a file whose size is over the limit. A file that grows while
    it is read is cut off at the limit and refused too.

    Raises
    ------
    InvalidRecordError
        Missing or unreadable file, not a regular file, or larger than the limit.
    """
    name = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(
        os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InvalidRecordError(f"cannot read file: {exc.strerror or exc}", file=name) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((k for test, k in _FILE_KINDS if test(info.st_mode)), "not a file")
            raise InvalidRecordError(f"not a regular file ({kind}); give a file to import",
                                     file=name)
        if info.st_size > MAX_FILE_BYTES:
            raise InvalidRecordError(f"file is larger than {MAX_FILE_BYTES} bytes", file=name)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb", buffering=0) as fh:
        data = bytearray()
        try:
            while len(data) <= MAX_FILE_BYTES:
                chunk = fh.read(min(max(info.st_size + 1 - len(data), 1 << 16),
                                    MAX_FILE_BYTES + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise InvalidRecordError(f"cannot read file: {exc.strerror or exc}",
                                     file=name) from exc
    if len(data) > MAX_FILE_BYTES:
        raise InvalidRecordError(f"file is larger than {MAX_FILE_BYTES} bytes", file=name)
    return bytes(data)


def read_text(path: Path, *, encoding: str = "utf-8") -> str:
    """The whole file as text, strictly decoded (a UTF-8 BOM is dropped).

    Raises
    ------
    InvalidRecordError
        Any of :func:`read_bytes`'s errors, an empty file, a wrong encoding (with the line of
        the first bad byte), or a line longer than :data:`MAX_LINE_BYTES`.
    """
    return _decode(read_bytes(path), str(path), encoding)


def _decode(data: bytes, name: str, encoding: str) -> str:
    if not data or data.isspace():
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
    long_line = _long_line(text)
    if long_line is not None:
        raise InvalidRecordError(
            f"line is longer than {MAX_LINE_BYTES} characters", file=name, line=long_line
        )
    return text


def _long_line(text: str) -> int | None:
    """The number of the first line over :data:`MAX_LINE_BYTES` characters, if any.

    Only stretches without a line feed that span a whole block of half the limit are looked
    at closely, so the check costs one ``find`` per block, not one step per line.
    """
    step = max(MAX_LINE_BYTES // 2, 1)
    for start in range(0, len(text), step):
        if text.find("\n", start, start + step) != -1 or len(text) - start < step:
            continue
        begin = text.rfind("\n", 0, start) + 1
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        if end - begin > MAX_LINE_BYTES and max(
                map(len, text[begin:end].split("\r"))) > MAX_LINE_BYTES:
            return text.count("\n", 0, begin) + 1
    return None


def check_depth(doc: Any, file: str) -> None:
    """Refuse a decoded JSON/YAML value whose lists and mappings nest over :data:`MAX_DEPTH`.

    Iterative, so any depth is checked without recursion.

    Raises
    ------
    InvalidRecordError
        Nesting deeper than the limit.
    """
    stack: list[tuple[Any, int]] = [(doc, 1)]
    push = stack.append
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRecordError(f"nested deeper than {MAX_DEPTH} levels", file=file)
        depth += 1
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list or isinstance(child, dict | list):
                push((child, depth))


def load_json(path: Path) -> Any:
    """Parse a JSON file.

    Raises
    ------
    InvalidRecordError
        Any of :func:`read_text`'s errors, malformed/truncated JSON (with line and column), or
        nesting far deeper than :data:`MAX_DEPTH` (the rest is checked by :func:`check_depth`).
    """
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRecordError(
            f"malformed JSON: {exc.msg} (column {exc.colno})", file=str(path), line=exc.lineno
        ) from exc
    except RecursionError:
        raise InvalidRecordError(f"nested deeper than {MAX_DEPTH} levels",
                                 file=str(path)) from None


@dataclass(frozen=True, slots=True)
class Documents:
    """The documents of a (multi-document) YAML file, each with the 1-based line it starts on.

    Iterating gives ``(line, document)`` pairs. Objects that come from an API instead of a file
    have no lines: :meth:`of` wraps them.
    """

    items: list[Any]
    lines: list[int | None]
    #: The file of each document when documents of several files are read as one input
    #: (:meth:`joined`); ``None``: all come from the one origin they are read with.
    files: list[str] | None = None

    @classmethod
    def of(cls, items: Iterable[Any]) -> Documents:
        """Documents without line numbers (e.g. the objects of an API page)."""
        found = list(items)
        return cls(found, [None] * len(found))

    @classmethod
    def joined(cls, parts: Iterable[tuple[str, Documents]]) -> Documents:
        """The documents of several files as one input, each remembering its file and line.

        Parameters
        ----------
        parts : iterable of (str, Documents)
            Each file's name and its documents, in reading order.
        """
        items: list[Any] = []
        lines: list[int | None] = []
        files: list[str] = []
        for name, docs in parts:
            items += docs.items
            lines += docs.lines
            files += docs.files if docs.files is not None else [name] * len(docs.items)
        return cls(items, lines, files)

    def file_of(self, index: int, default: str) -> str:
        """The file of document ``index`` (0-based), ``default`` when they share one."""
        return self.files[index] if self.files is not None else default

    def __iter__(self) -> Iterator[tuple[int | None, Any]]:
        return zip(self.lines, self.items, strict=True)

    def __len__(self) -> int:
        return len(self.items)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses sequences and mappings nested deeper than
    :data:`MAX_DEPTH` while it composes (so a deep document stops early and no recursion limit
    is reached)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = event.start_mark
                raise yaml.YAMLError(_TooDeep(mark.line + 1 if mark is not None else None))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _TooDeep(Exception):
    def __init__(self, line: int | None) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")
        self.line = line


def _check_nodes(root: Node, file: str) -> None:
    """Refuse a composed document whose aliases refer to themselves or, expanded, add more
    than :data:`MAX_ALIAS_NODES` nodes (an alias bomb), or with a mapping that repeats a key
    (YAML requires unique keys; PyYAML would keep the last silently). Iterative and linear in
    the nodes."""
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            total = 1 + sum(size[id(c)] for c in _yaml_children(node))
            size[key] = min(total, MAX_ALIAS_NODES * 10)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise InvalidRecordError("a YAML alias refers to the node that holds it", file=file,
                                     line=node.start_mark.line + 1)
        open_nodes.add(key)
        if isinstance(node, MappingNode):
            _unique_keys(node, file)
        stack.append((node, True))
        stack.extend((c, False) for c in _yaml_children(node))
    if size[id(root)] - len(size) > MAX_ALIAS_NODES:
        raise InvalidRecordError(
            f"YAML aliases expand to more than {MAX_ALIAS_NODES} extra nodes (an alias bomb?)",
            file=file, line=root.start_mark.line + 1)


def _unique_keys(node: MappingNode, file: str) -> None:
    lines: dict[tuple[str, Any], int] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        line = key.start_mark.line + 1
        first = lines.get((key.tag, key.value))
        if first is None:
            lines[(key.tag, key.value)] = line
        else:
            raise InvalidRecordError(
                f"the mapping repeats the key {key.value!r} (line {first} and line {line}); "
                "YAML keys must be unique", file=file, line=line, field=str(key.value))


def _yaml_children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml_documents(path: Path) -> Documents:
    """Parse every document of a (multi-document) YAML file with the safe loader.

    Empty documents (``---`` separators with nothing between, or a bare ``null``) are dropped.
    Each document is checked for depth while it is composed and for its aliases before it is
    constructed, so neither a deep document nor an alias bomb costs more than its own text.

    Raises
    ------
    InvalidRecordError
        Any of :func:`read_text`'s errors, malformed YAML (with its line), nesting deeper than
        :data:`MAX_DEPTH`, or aliases that refer to themselves or expand beyond
        :data:`MAX_ALIAS_NODES` nodes.
    """
    text = read_text(path)
    name = str(path)
    try:
        loader = _Loader(text)  # PyYAML's reader refuses raw control characters here
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise InvalidRecordError(
            f"malformed YAML: control character U+{exc.character:04X} is not allowed raw in "
            "YAML (remove it, or write it escaped in a double-quoted string)",
            file=name, line=line) from None
    items: list[Any] = []
    lines: list[int | None] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or node.tag.endswith(":null"):
                continue
            _check_nodes(node, name)
            items.append(loader.construct_document(node))
            lines.append(node.start_mark.line + 1)
    except yaml.YAMLError as exc:
        cause = exc.args[0] if exc.args else None
        if isinstance(cause, _TooDeep):
            raise InvalidRecordError(str(cause), file=name, line=cause.line) from None
        mark = getattr(exc, "problem_mark", None)
        raise InvalidRecordError(
            f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
            file=name,
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
        Any of :func:`read_text`'s errors, malformed or truncated XML (with its line), a
        forbidden entity/DTD construct, or elements nested deeper than :data:`MAX_DEPTH`.
    """
    name = str(path)
    data = read_bytes(path)
    _decode(data, name, "utf-8")  # uniform errors for empty files, encodings and huge lines
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True,
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
    stack = [(root, 1)]
    while stack:
        elem, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRecordError(f"elements nested deeper than {MAX_DEPTH} levels",
                                     file=name, field=str(elem.tag))
        stack.extend((child, depth + 1) for child in elem)
    return root


@dataclass(frozen=True, slots=True)
class Table:
    """A CSV file as read: its header and its non-blank rows with their first line numbers.

    Iterating gives ``(line, row)`` pairs; a row maps every header to its stripped cell, or
    ``None`` for an empty or missing cell. ``warnings`` says what reading worked around (a
    column named twice in the header: the first one is read).
    """

    file: str
    header: list[str]
    rows: list[tuple[int, Row]] = field(default_factory=list)
    warnings: list[InputWarning] = field(default_factory=list)

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
    When the header names a column twice, the first of them is read and the table carries a
    warning naming the columns.

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
    warnings = _repeated_columns(header, name)
    return Table(name, header, list(_rows(reader, header, name, bool(warnings))), warnings)


def _repeated_columns(header: list[str], name: str) -> list[InputWarning]:
    counts = Counter(h for h in header if h)
    return [
        InputWarning(
            record_type="input",
            reason=f"the header names column {h!r} {n} times (columns "
                   f"{', '.join(str(i + 1) for i, x in enumerate(header) if x == h)}); only "
                   "the first is read",
            origin=Origin(file=name, line=1),
        )
        for h, n in counts.items() if n > 1
    ]


def _rows(reader: Any, header: list[str], name: str,
          repeated: bool) -> Iterator[tuple[int, Row]]:
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
            hint = "; is the file delimited by another character?" if len(header) == 1 else ""
            raise InvalidRecordError(
                f"row has {len(cells)} cells but the header has {len(header)}{hint}",
                file=name,
                line=line,
            )
        row: Row = dict.fromkeys(header)
        pairs = list(zip(header, cells, strict=False))
        for h, c in reversed(pairs) if repeated else pairs:  # a repeated column: the first wins
            c = c.strip()
            row[h] = c if c else None
        yield line, row
