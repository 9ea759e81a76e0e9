"""GraphQL types derived from result models (``cmdb_graph.api.derive``): the field list gives
order, names and descriptions, the model gives the types, and a resolver may return the model
itself."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pytest
import strawberry
from pydantic import BaseModel

from cmdb_graph.api.derive import Field, derived, ids, of


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


strawberry.enum(Colour, name="Colour", description="A colour.")


class Inner(BaseModel):
    ci_id: str
    tags: tuple[str, ...] = ()


class Outer(BaseModel):
    name: str
    colour: Colour
    inners: tuple[Inner, ...]
    counts: dict[str, int]
    parent: str | None = None

    @property
    def size(self) -> int:
        return len(self.inners)


@dataclass(frozen=True)
class Plain:
    label: str
    weight: float


@derived(Inner, description="An inner result.", fields={
    "ci_id": ids("The CI."), "tags": "Its tags."})
class InnerType:
    pass


def _colour(root: Outer) -> str:
    return str(root.colour)


@derived(Outer, name="Outer", description="An outer result.", fields={
    "name": "Name.",
    "size": "Inners (a property of the model).",
    "inners": "Inner results.",
    "counts": "Counts by key.",
    "parent": ids("Parent, renamed.", name="parentId"),
    "colour": Field("Colour.", resolver=_colour),
})
class OuterType:
    truncated: bool = strawberry.field(description="An extra value of the API page.")


@derived(Plain, description="A dataclass result.", fields={"weight": "Weight.",
                                                           "label": "Label."})
class PlainType:
    pass


def _schema() -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def outer(self) -> OuterType:
            model = Outer(name="o", colour=Colour.BLUE, counts={"b": 2, "a": 1},
                          inners=(Inner(ci_id="c1", tags=("t",)),), parent="p")
            return of(OuterType, model, truncated=True)

        @strawberry.field
        def plain(self) -> PlainType:
            return Plain(label="x", weight=1.5)  # type: ignore[return-value]

    return strawberry.Schema(query=Query)


def test_the_field_list_orders_names_and_types_the_fields() -> None:
    # Act
    sdl = _schema().as_str()

    # Assert
    outer = sdl[sdl.index('"""An outer result."""'):].split("}")[0]
    fields = [line.split(":")[0].strip() for line in outer.splitlines()
              if ":" in line and not line.strip().startswith('"""')]
    assert fields == ["name", "size", "inners", "counts", "parentId", "colour", "truncated"]
    assert "inners: [InnerType!]!" in outer
    assert "counts: [CountEntry!]!" in outer
    assert "parentId: ID\n" in outer
    assert "ciId: ID!" in sdl and "tags: [String!]!" in sdl
    assert "weight: Float!" in sdl


def test_a_resolver_may_return_the_model_itself() -> None:
    # Act
    result = _schema().execute_sync(
        "{ outer { name size inners { ciId tags } counts { key count } parentId colour "
        "truncated } plain { label weight } }"
    )

    # Assert
    assert result.errors is None
    assert result.data == {
        "outer": {"name": "o", "size": 1, "inners": [{"ciId": "c1", "tags": ["t"]}],
                  "counts": [{"key": "a", "count": 1}, {"key": "b", "count": 2}],
                  "parentId": "p", "colour": "blue", "truncated": True},
        "plain": {"label": "x", "weight": 1.5},
    }


def test_an_empty_optional_id_is_null() -> None:
    # Arrange
    @strawberry.type
    class Query:
        @strawberry.field
        def outer(self) -> OuterType:
            model = Outer(name="o", colour=Colour.RED, counts={}, inners=(), parent="")
            return of(OuterType, model, truncated=False)

    # Act
    result = strawberry.Schema(query=Query).execute_sync("{ outer { parentId } }")

    # Assert
    assert result.errors is None
    assert result.data == {"outer": {"parentId": None}}


def test_a_field_the_model_lacks_is_refused() -> None:
    # Act / Assert
    with pytest.raises(TypeError, match="no field 'nope'"):
        @derived(Inner, description="x", fields={"nope": "Not there."})
        class Broken:
            pass


def test_a_field_both_listed_and_declared_is_refused() -> None:
    # Act / Assert
    with pytest.raises(TypeError, match="both listed and declared"):
        @derived(Inner, description="x", fields={"tags": "Tags."})
        class Twice:
            tags: list[str] = strawberry.field(description="Again.")
