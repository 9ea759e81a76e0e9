"""Each distinct query text is validated once per schema, and the limits still hold: an
invalid text is refused every time, a schema with stricter limits refuses what a laxer one
accepted, and the remembered texts are bounded."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from cmdb_graph.api.app import GraphQLApp
from cmdb_graph.api.auth import Principal
from cmdb_graph.api.context import AppState, Context
from cmdb_graph.api.schema import ValidDocuments, build_schema
from cmdb_graph.settings import Role, Settings
from cmdb_graph.store.memory import MemoryStore


def _nested(levels: int) -> str:
    inner = "ciId"
    for _ in range(levels):
        inner = f"ciId assets {{ assetId ci {{ {inner} }} }}"
    return f'{{ ci(ciId: "x") {{ {inner} }} }}'


def _aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: reports {{ name }}" for i in range(n)) + " }"


def _execute(schema: Any, query: str, settings: Settings | None = None) -> Any:
    store = MemoryStore()
    state = AppState(settings=settings or Settings(), registry=store.registry, store=store)
    ctx = Context(state, Principal("test", Role.READER))
    return asyncio.run(schema.execute(query, context_value=ctx))


@pytest.mark.parametrize(("query", "needle"), [
    (_nested(8), "exceeds maximum operation depth"),
    (_aliases(50), "aliases found"),
    ("{ reports { " + " ".join(["name"] * 4000) + " } }", "token"),
    ("{ reports { nosuchfield } }", "nosuchfield"),
])
def test_an_invalid_query_is_refused_every_time(query: str, needle: str) -> None:
    # Arrange
    schema = build_schema()

    # Act
    results = [_execute(schema, query) for _ in range(3)]

    # Assert
    for result in results:
        assert result.data is None
        assert result.errors
        assert needle in result.errors[0].message.lower()


def test_a_valid_query_runs_again_with_the_same_answer() -> None:
    # Arrange
    schema = build_schema()
    query = _nested(2)

    # Act
    first = _execute(schema, query)
    again = _execute(schema, query)

    # Assert
    assert first.errors is None and again.errors is None
    assert first.data == again.data == {"ci": None}


def test_a_stricter_schema_refuses_what_a_laxer_one_accepted() -> None:
    # Arrange: the same text, valid under the defaults, over the strict limits
    lax = build_schema(Settings())
    strict = build_schema(Settings(max_query_depth=3, max_aliases=2))
    deep, aliased = _nested(2), _aliases(5)
    assert _execute(lax, deep).errors is None
    assert _execute(lax, aliased).errors is None

    # Act
    deep_strict = _execute(strict, deep)
    aliased_strict = _execute(strict, aliased)

    # Assert
    assert deep_strict.errors and "exceeds maximum operation depth" in deep_strict.errors[0].message
    assert aliased_strict.errors and "aliases found" in aliased_strict.errors[0].message


def test_remembered_texts_are_bounded_least_recently_used_first() -> None:
    # Arrange
    valid = ValidDocuments(maxsize=2)

    # Act
    valid.add("a")
    valid.add("b")
    assert "a" in valid  # a is now the most recently used
    valid.add("c")

    # Assert
    assert len(valid) == 2
    assert "a" in valid and "c" in valid and "b" not in valid


def test_json_bodies_fall_back_to_the_standard_library() -> None:
    # Arrange
    store = MemoryStore()
    app = GraphQLApp(AppState(settings=Settings(), registry=store.registry, store=store))

    # Act / Assert: what orjson refuses, json still encodes and decodes as before
    big = {"n": 2**70, "s": "é"}
    assert json.loads(app.encode_json(big)) == big
    decoded = app.decode_json(b'{"x": NaN}')
    assert isinstance(decoded, dict) and math.isnan(decoded["x"])
    with pytest.raises(json.JSONDecodeError):
        app.decode_json(b"{not json")
