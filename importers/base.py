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
    ``read`` then :meth:`~Importer.records`, under the same guard: what ``cmdb-graph import``
    and the ``importRun`` mutation call.

The guard gives bad input one shape everywhere: one :class:`~cmdb_graph.errors.InvalidRecordError`
naming the file, the line or record and the field, whatever went wrong (a value the record
models refuse, a list where a name belongs, a missing key). Each importer reads its whole input
before yielding anything, so ingestion writes nothing from a file that fails.

``importers/_template.py`` is a short importer to copy when adding a format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from xml.etree.ElementTree import Element

from pydantic import ValidationError

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import Record
from importers.readers import load_json, parse_xml

__all__ = ["Importer", "JSONImporter", "XMLImporter", "guard", "require", "mapping_items",
           "text_or_none"]

DocT = TypeVar("DocT")

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

    @abstractmethod
    def read(self, path: Path) -> DocT:
        """The parsed document of one file (through a reader of :mod:`importers.readers`).

        Raises
        ------
        InvalidRecordError
            The file is unreadable or malformed.
        """

    @abstractmethod
    def transform(self, doc: DocT, origin: str) -> Iterable[Record]:
        """The records of one parsed document (pure: no I/O).

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

    def records(self, doc: DocT, origin: str) -> list[Record]:
        """The records of one parsed document, all of them or one located error.

        Connectors that fetch the source's data from its API call this once per page, with
        the page as decoded JSON and an origin such as the page's URL.

        Raises
        ------
        InvalidRecordError
            Bad input; names ``origin``, the line or record and the field.
        """
        with guard(origin):
            return list(self.transform(doc, origin))

    def parse(self, path: Path) -> Iterator[Record]:
        """Yield the records of one file (all are read before the first is yielded).

        Raises
        ------
        InvalidRecordError
            The file is unreadable or malformed, or a record is invalid; the message names the
            file, the line or record and the field.
        """
        file = str(path)
        with guard(file):
            doc = self.read(Path(path))
        yield from self.records(doc, file)


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

    An ``InvalidRecordError`` raised inside keeps its message and gets the file, line and record
    it lacks from the guard. A pydantic ``ValidationError`` (a value the record models refuse)
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
        if exc.file is not None and (exc.record is not None or record is None) and (
                exc.line is not None or line is None):
            raise
        raise type(exc)(
            exc.reason,
            file=exc.file if exc.file is not None else file,
            line=exc.line if exc.line is not None else line,
            record=exc.record if exc.record is not None else record,
            field=exc.field,
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
