"""The committed SDL (``graphql/schema.graphql``) is the schema the code builds."""

from __future__ import annotations

from pathlib import Path

from graphql import parse, validate

from cmdb_graph.api.schema import build_schema, export_sdl

GRAPHQL = Path(__file__).resolve().parents[2] / "graphql"


def test_committed_schema_equals_the_exported_one() -> None:
    # Arrange
    committed = (GRAPHQL / "schema.graphql").read_text(encoding="utf-8")

    # Act
    exported = export_sdl()

    # Assert
    assert exported == committed, (
        "graphql/schema.graphql is out of date: run `cmdb-graph schema -o graphql/schema.graphql`"
    )


def test_every_documented_operation_validates_against_the_schema() -> None:
    # Arrange
    schema = build_schema()._schema
    files = sorted((GRAPHQL / "operations").glob("*.graphql"))

    # Act
    errors = {f.name: [e.message for e in validate(schema, parse(f.read_text()))] for f in files}

    # Assert
    assert files
    assert errors == {f.name: [] for f in files}


def test_every_type_and_field_is_described() -> None:
    # Arrange
    schema = build_schema()._schema
    ours = [t for name, t in schema.type_map.items()
            if not name.startswith("__") and hasattr(t, "fields")]

    # Act
    undescribed = [f"{t.name}.{fname}" for t in ours for fname, f in t.fields.items()
                   if not f.description]

    # Assert
    assert undescribed == []
