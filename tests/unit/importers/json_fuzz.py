"""Property check shared by the JSON and YAML importer tests: any value anywhere in a valid document
gives records or one ``InvalidRecordError`` naming the file, never another exception."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from importers.base import Importer

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into a JSON document, the root included."""
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += json_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += json_paths(value, (*prefix, index))
    return out


def replaced(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``node`` with the value at ``path`` replaced."""
    if not path:
        return value
    copy = json.loads(json.dumps(node))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


def check_mutant(importer: Importer, document: Any, data: st.DataObject) -> None:
    """Replace one value of ``document`` by arbitrary JSON and parse it with ``importer``."""
    _check(importer, document, data, suffix=".json", dump=json.dumps)


def check_yaml_mutant(importer: Importer, documents: list[Any], data: st.DataObject) -> None:
    """Replace one value of a multi-document YAML file and parse it with ``importer``."""

    def dump(mutant: Any) -> str:
        return yaml.safe_dump_all(mutant if isinstance(mutant, list) else [mutant])

    _check(importer, documents, data, suffix=".yaml", dump=dump)


def _check(
    importer: Importer, document: Any, data: st.DataObject, *, suffix: str,
    dump: Callable[[Any], str],
) -> None:
    path_in_doc = data.draw(st.sampled_from(json_paths(document)))
    mutant = replaced(document, path_in_doc, data.draw(JSON_VALUES))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"mutant{suffix}"
        path.write_text(dump(mutant), encoding="utf-8")
        try:
            records = list(importer.parse(path))
        except InvalidRecordError as exc:
            assert str(path) in str(exc), f"error does not name the file: {exc}"
        else:
            assert all(r.origin.file == str(path) for r in records)
