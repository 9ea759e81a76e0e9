"""The one importer pattern: read the source, transform it into records, guard both.

An importer parses one source format into :mod:`cmdb_graph.model.records` and never touches a
store. Every importer is an :class:`Importer` with two steps of its own:

``read(path)``
    The file -> its parsed document, through a shared reader of :mod:`importers.readers`
    (JSON value, YAML :class:`~importers.readers.Documents`, XML root element, CSV
    :class:`~importers.readers.Table`).
``transform(doc, origin)``
    The parsed document -> records. Pure: no I/O, no state but the importer's options; every
    record's :class:`~cmdb_graph.model.records.Origin` names ``origin`` and the record's place
    in the document (JSON pointer, line, element path).

and two the base class gives it:

:meth:`Importer.records`
    ``transform`` under :func:`guard`: the entry point for anything that already holds a
    parsed document, such as a connector that fetches the same data from the source's API page
    by page (one parsing code path for files and APIs).
:meth:`Importer.parse`
    ``read`` then :meth:`~Importer.records`, under the same guard: one file.
:meth:`Importer.parse_files`
    The files of one import run (what ``cmdb-graph import`` and the ``importRun`` mutation
    call): folders walked for the kinds that declare :attr:`~Importer.folder_suffixes`, and,
    for the kinds whose objects refer to each other across files (:attr:`~Importer.folds_files`,
    e.g. Kubernetes manifests kept one object per file), every file read first and transformed
    as one input (:meth:`~Importer.fold`); other kinds parse file by file.

The guard gives bad input one shape everywhere: one :class:`~cmdb_graph.errors.InvalidRecordError`
naming the file, the line or record and the field, whatever went wrong (a value the record
models refuse, a list where a name belongs, a missing key, nesting deeper than
:data:`~importers.readers.MAX_DEPTH`). Each importer reads its whole input before yielding
anything, so ingestion writes nothing from a file that fails.

What the guard can work around it reports as :class:`~cmdb_graph.model.records.InputWarning`
items among the records (ingestion lists them with the run's warnings): control characters
(NUL, escape, DEL, C1 controls, lone surrogates; tab and line breaks are kept) removed from a
record's values (:mod:`cmdb_graph.model.clean`, which ingestion applies to every run's records
as well), a native key that several records of one document share (ingestion makes them
one CI, asset or entitlement), a CSV column the header names twice, and whatever a transform
itself yields. A file that yields nothing at all, neither a record nor a warning that says why,
is an error, not an empty import.

``importers/_template.py`` is a short importer to copy when adding a format.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from xml.etree.ElementTree import Element

from pydantic import ValidationError

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.clean import CONTROL as _CONTROL
from cmdb_graph.model.clean import without_control_characters as _without_control_characters
from cmdb_graph.model.entities import RelationshipBasis
from cmdb_graph.model.records import CIRecord, InputWarning, Origin, Record, RelationshipRecord
from importers.readers import Documents, Table, check_depth, load_json, parse_xml

__all__ = ["Importer", "JSONImporter", "XMLImporter", "Item", "guard", "require",
           "mapping_items", "observed_at", "text_or_none"]

DocT = TypeVar("DocT")

#: What a transform yields: records, and warnings about the input.
Item = Record | InputWarning


#: Errors that bad input can raise deep inside a transform, turned into InvalidRecordError.
_INPUT_ERRORS = (TypeError, AttributeError, ValueError, KeyError, IndexError, OverflowError,
                 RecursionError)


class Importer(ABC, Generic[DocT]):
    """One source format: ``read`` a file, ``transform`` its parsed document into records.

    Subclasses set :attr:`kind` and :attr:`description` and implement :meth:`read` and
    :meth:`transform`; keyword options go to ``__init__``.

    Attributes
    ----------
    kind : str
        The name used on the command line (``cmdb-graph import KIND ...``).
    description : str
        One line: the format and the document it follows.
    """

    kind: ClassVar[str]
    description: ClassVar[str]
    #: File name endings read from a folder given as a path (empty: folders are refused).
    folder_suffixes: ClassVar[tuple[str, ...]] = ()
    #: Whether the files of one run are transformed as one input (:meth:`fold`).
    folds_files: ClassVar[bool] = False
    #: The basis of the relationships this kind reports without inferring them: ``declared``
    #: (the source states them) or ``discovered`` (a discovery tool saw them: a scan, an
    #: inventory agent, a cloud inventory). :meth:`records` stamps it on every relationship
    #: record that names none; inferred ones get ``inferred``.
    relationship_basis: ClassVar[RelationshipBasis] = RelationshipBasis.DECLARED

    @abstractmethod
    def read(self, path: Path) -> DocT:
        """The parsed document of one file (through a reader of :mod:`importers.readers`).

        Raises
        ------
        InvalidRecordError
            The file is unreadable or malformed.
        """

    @abstractmethod
    def transform(self, doc: DocT, origin: str) -> Iterable[Item]:
        """The records of one parsed document (pure: no I/O), and warnings about it.

        Parameters
        ----------
        doc
            What :meth:`read` returns, or the same shape from elsewhere (an API page).
        origin : str
            Where the document came from (a file path, or e.g. an API URL); every record's
            ``origin.file``.

        Raises
        ------
        InvalidRecordError
            Bad input, naming ``origin``, the record and the field.
        """

    def records(self, doc: DocT, origin: str) -> list[Item]:
        """The records of one parsed document, all of them or one located error.

        Connectors that fetch the source's data from its API call this once per page, with
        the page as decoded JSON and an origin such as the page's URL. The records come with
        the warnings of the guard (see the module docstring); an empty page gives an empty
        list.

        Raises
        ------
        InvalidRecordError
            Bad input; names ``origin``, the line or record and the field.
        """
        with guard(origin):
            for item in doc.items if isinstance(doc, Documents) else [doc]:
                if isinstance(item, dict | list):
                    check_depth(item, origin)
            found = list(self.transform(doc, origin))
            records = [r for r in found if not isinstance(r, InputWarning)]
            clean, warnings = _without_control_characters(records)
            clean = [self._with_basis(r) for r in clean]
        return [*(doc.warnings if isinstance(doc, Table) else ()),
                *(r for r in found if isinstance(r, InputWarning)),
                *warnings, *_repeated_keys(clean), *clean]

    def _with_basis(self, record: Record) -> Record:
        """A relationship record with its basis: its own (an inferred one's is ``inferred``),
        else :attr:`relationship_basis`."""
        if not isinstance(record, RelationshipRecord) or record.basis is not None:
            return record
        return record.model_copy(update={"basis": self.relationship_basis})

    def parse(self, path: Path) -> Iterator[Item]:
        """Yield the records of one file (all are read before the first is yielded), warnings
        first.

        Raises
        ------
        InvalidRecordError
            The file is unreadable or malformed, a record is invalid, or the file yields
            nothing (no record and no warning); the message names the file, the line or record
            and the field.
        """
        file = str(path)
        with guard(file):
            doc = self.read(Path(path))
        found = self.records(doc, file)
        if not found:  # with only warnings, the warnings say why
            raise InvalidRecordError(
                f"the file yields no records; is it a {self.description}?", file=file)
        yield from found


    def files(self, paths: Iterable[Path]) -> list[Path]:
        """``paths`` with every folder replaced by the files under it that this kind reads.

        A folder is walked (sorted, symbolic links to folders not followed, hidden files and
        folders skipped) only for a kind with :attr:`folder_suffixes`; for the others it is
        kept as given, and reading it fails with "not a regular file".

        Raises
        ------
        InvalidRecordError
            A folder holds no file this kind reads.
        """
        out: list[Path] = []
        for path in paths:
            if not self.folder_suffixes or not Path(path).is_dir():
                out.append(Path(path))
                continue
            found: list[Path] = []
            for top, dirs, names in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += [Path(top) / n for n in names if not n.startswith(".")
                          and n.lower().endswith(self.folder_suffixes)]
            if not found:
                raise InvalidRecordError(
                    f"the folder holds no {', '.join('*' + s for s in self.folder_suffixes)} "
                    "file", file=str(path))
            out += sorted(found)
        return out

    def fold(self, docs: Sequence[tuple[str, DocT]]) -> DocT:
        """The parsed documents of several files as one input (kinds with
        :attr:`folds_files`).

        Parameters
        ----------
        docs : sequence of (str, document)
            Each file's name and what :meth:`read` gave for it, in reading order.
        """
        raise NotImplementedError(f"{type(self).__name__} does not fold files")

    def parse_files(self, paths: Iterable[Path]) -> Iterator[Item]:
        """Yield the records of one import run's files and folders, warnings first.

        Folders are replaced by their files (:meth:`files`). A kind with :attr:`folds_files`
        reads every file, then transforms them as one input (:meth:`fold`), so that objects
        in different files find each other as in one file; the records name their own file.
        Other kinds :meth:`parse` each file in turn.

        Raises
        ------
        InvalidRecordError
            As :meth:`parse`, naming the file; a folded run fails when the files together
            yield nothing.
        """
        files = self.files(paths)
        if not self.folds_files or len(files) == 1:
            for path in files:
                yield from self.parse(path)
            return
        docs: list[tuple[str, DocT]] = []
        for path in files:
            with guard(str(path)):
                docs.append((str(path), self.read(path)))
        origin = str(files[0]) if files else ""
        found = self.records(self.fold(docs), origin)
        if not found:
            raise InvalidRecordError(
                f"the files yield no records; are they {self.description}?", file=origin)
        yield from found


class JSONImporter(Importer[Any]):
    """An importer of one JSON document per file: ``read`` is
    :func:`~importers.readers.load_json`."""

    def read(self, path: Path) -> Any:
        return load_json(path)


class XMLImporter(Importer[Element]):
    """An importer of one XML document per file: ``read`` is
    :func:`~importers.readers.parse_xml` (the root element)."""

    def read(self, path: Path) -> Element:
        return parse_xml(path)


@contextmanager
def guard(file: str, *, line: int | None = None,
          record: str | int | None = None) -> Iterator[None]:
    """Turn whatever bad input raises inside the block into one located ``InvalidRecordError``.

    An ``InvalidRecordError`` raised inside keeps its message (control characters escaped, so
    that it stays one printable line) and gets the file, line and record it lacks from the
    guard. A pydantic ``ValidationError`` (a value the record models refuse)
    names the field; ``TypeError``, ``AttributeError``, ``ValueError``, ``KeyError``,
    ``IndexError``, ``OverflowError`` and ``RecursionError`` (a list where a name belongs, a
    missing key, nesting too deep) become "a value has an unexpected type or shape". Guards
    nest: a transform guards each item with its record, the base class guards the file.

    Raises
    ------
    InvalidRecordError
        In place of any of the errors above (``from`` it).
    """
    try:
        yield
    except InvalidRecordError as exc:
        reason, fld = _escaped(exc.reason), _escaped(exc.field)
        where = exc.record if exc.record is not None else record
        where = _escaped(where) if isinstance(where, str) else where
        if exc.file is not None and (exc.line is not None or line is None) and (
                reason, fld, where) == (exc.reason, exc.field, exc.record):
            raise
        raise type(exc)(
            reason or "",
            file=exc.file if exc.file is not None else file,
            line=exc.line if exc.line is not None else line,
            record=where,
            field=fld,
        ) from exc
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else None
        loc = ".".join(str(p) for p in first["loc"]) if first else ""
        raise InvalidRecordError(
            f"invalid value: {first['msg'] if first else exc}", file=file, line=line,
            record=record, field=loc or None,
        ) from exc
    except _INPUT_ERRORS as exc:
        raise InvalidRecordError(
            f"a value has an unexpected type or shape ({type(exc).__name__}: {exc})",
            file=file, line=line, record=record,
        ) from exc


def _escaped(text: str | None) -> str | None:
    """``text`` with control characters written as escapes (``\\x00``)."""
    if text is None or _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


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


def mapping_items(
    value: Any, *, file: str, pointer: str, what: str = "an entry", optional: bool = False,
) -> list[tuple[str, Mapping[str, Any]]]:
    """The objects of a JSON/YAML list, each with its JSON pointer.

    Parameters
    ----------
    value : any
        The list (``None`` is an empty list when ``optional``).
    file, pointer : str
        Where the list is, for the pointers and the errors (``/Reservations``).
    what : str
        What one item is, for the error message (``"an instance"``).

    Raises
    ------
    InvalidRecordError
        ``value`` is no list, or an item is no object (naming its pointer).
    """
    if value is None and optional:
        return []
    name = pointer.rsplit("/", 1)[-1] or "the document"
    if not isinstance(value, list):
        raise InvalidRecordError(f"{name} must be a list", file=file,
                                 record=pointer.rsplit("/", 1)[0] or "/", field=name)
    out: list[tuple[str, Mapping[str, Any]]] = []
    for index, item in enumerate(value):
        where = f"{pointer}/{index}"
        if not isinstance(item, Mapping):
            raise InvalidRecordError(f"{what} must be an object", file=file, record=where)
        out.append((where, item))
    return out


def text_or_none(value: Any) -> str | None:
    """A non-empty string or number as stripped text; anything else (objects, lists, booleans,
    ``""``) as ``None``."""
    if value is None or isinstance(value, Mapping | list | bool):
        return None
    text = str(value).strip()
    return text or None


def observed_at(value: Any) -> str | None:
    """When a source saw something, as the ISO 8601 UTC text of a CI record's ``observed_at``
    attribute (ingestion then stamps ``first_seen``/``last_seen`` with it instead of the
    import's time); ``None`` when the value is no time.

    Accepts epoch seconds (nmap's ``starttime``/``endtime``), ISO 8601 with or without a zone
    (Lansweeper's ``lastSeen``) and ``YYYY-MM-DD HH:MM:SS`` (GLPI's ``logdate``); a time without
    a zone is taken as UTC.

    Examples
    --------
    >>> observed_at("1368156706")
    '2013-05-10T03:31:46+00:00'
    >>> observed_at("2020-06-12 14:19:54")
    '2020-06-12T14:19:54+00:00'
    >>> observed_at("soon") is None
    True
    """
    text = text_or_none(value)
    if text is None:
        return None
    try:
        if text.isdigit():
            t = datetime.fromtimestamp(int(text), tz=UTC)
        else:
            t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.isoformat()


_KEYED = {"ci": "CI", "asset": "asset", "entitlement": "entitlement"}


def _repeated_keys(records: list[Record]) -> list[InputWarning]:
    """A warning for every record whose native key an earlier record of its type has."""
    first: dict[tuple[str, str], tuple[int, Origin]] = {}
    warnings: list[InputWarning] = []
    for index, rec in enumerate(records):
        if rec.record_type not in _KEYED:
            continue
        key = rec.identifiers.native_key if isinstance(rec, CIRecord) else getattr(
            rec, "native_key", None)
        if not key:
            continue
        at, seen = first.setdefault((rec.record_type, key), (index, rec.origin))
        if at != index:
            warnings.append(InputWarning(
                record_type=rec.record_type,
                reason=f"native key {key!r} repeats that of {seen}; both describe one "
                       f"{_KEYED[rec.record_type]}",
                origin=rec.origin))
    return warnings
