"""The change-record format and the row diff: round trips, classification, apply and undo."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmdb_graph.errors import StoreError
from cmdb_graph.feed import (
    Actor,
    ActorKind,
    ChangeRecord,
    NodeOp,
    RelOp,
    Replay,
    apply_node,
    decode_record,
    encode_record,
    node_change,
    rel_change,
    undo_node,
)

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
IMPORT = Actor(ActorKind.IMPORT, "vcenter", run_id="run-1", source="vcenter")

values = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3), st.booleans(),
                   st.lists(st.text(max_size=2), max_size=2))
rows = st.dictionaries(st.sampled_from(["name", "fqdn", "environment", "tags", "x"]), values)


def _lean(row: dict[str, object]) -> dict[str, object]:
    """Lean rows leave ``None`` (the default) out."""
    return {k: v for k, v in row.items() if v is not None}


@given(rows, rows)
def test_apply_then_undo_round_trips_any_pair_of_rows(old: dict[str, object],
                                                      new: dict[str, object]) -> None:
    # Arrange
    before, after = _lean(old), _lean(new)

    # Act
    change = node_change("CI", "c1", before, after)

    # Assert: no change for equal rows; otherwise forward gives new, backward gives old
    if before == after:
        assert change is None
        return
    assert change is not None
    assert apply_node(before, change) == after
    assert undo_node(after, change) == before


def test_ops_are_classified_from_the_changed_fields() -> None:
    # Arrange
    row = {"name": "web01", "ci_class": "Server"}

    # Act
    created = node_change("CI", "c1", None, row)
    retired = node_change("CI", "c1", row, {**row, "operational_status": "retired"})
    merged = node_change("CI", "c2", row, {**row, "duplicate_of": "c1"})
    deleted = node_change("Change", "CHG1", {"state": "scheduled"}, None)
    other = node_change("Asset", "a1", {"lifecycle_stage": "in_use"},
                        {"lifecycle_stage": "retired", "operational_status": "retired"})

    # Assert
    assert created is not None and created.op is NodeOp.CREATED and created.old is None
    assert retired is not None and retired.op is NodeOp.RETIRED
    assert retired.old == {"operational_status": None}
    assert merged is not None and merged.op is NodeOp.MERGED and merged.merged_into == "c1"
    assert deleted is not None and deleted.op is NodeOp.DELETED and deleted.new is None
    assert other is not None and other.op is NodeOp.UPDATED  # only CIs retire or merge
    assert created.name == "web01" and created.fields == ("ci_class", "name")


def test_a_record_survives_encoding_small_and_compressed() -> None:
    # Arrange: one small record and one large enough to be compressed
    small = ChangeRecord(
        seq=7, at=AT, actor=IMPORT,
        nodes=(node_change("CI", "c1", None, {"name": "web01", "ci_class": "Server"}),),  # type: ignore[arg-type]
        relationships=(rel_change(("RUNS_ON", "a", "c1"), ("CI", "CI"), None, {"optional": True}),),  # type: ignore[arg-type]
    )
    large = ChangeRecord(
        seq=8, at=AT, actor=Actor(ActorKind.API, "itsm", role="writer", request_id="r-1"),
        nodes=tuple(node_change("CI", f"c{i}", {"name": f"n{i}"}, {"name": f"m{i}"})  # type: ignore[misc]
                    for i in range(200)),
        reset=True, meta={"note": "x"},
    )

    # Act
    small_bytes, large_bytes = encode_record(small), encode_record(large)

    # Assert
    assert decode_record(small_bytes) == small
    assert decode_record(large_bytes) == large
    assert small_bytes[:1] == b"j" and large_bytes[:1] == b"z"
    assert len(large_bytes) < 2048


def test_bytes_that_are_not_a_record_raise_a_store_error() -> None:
    with pytest.raises(StoreError, match="unreadable change record"):
        decode_record(b"j{\"v\": 99}")
    with pytest.raises(StoreError):
        decode_record(b"zgarbage")


def test_replay_applies_creations_updates_removals_and_resets() -> None:
    # Arrange
    first = ChangeRecord(1, AT, IMPORT, nodes=(
        node_change("CI", "a", None, {"name": "a"}),  # type: ignore[arg-type]
        node_change("CI", "b", None, {"name": "b"}),  # type: ignore[arg-type]
    ), relationships=(rel_change(("DEPENDS_ON", "a", "b"), ("CI", "CI"), None, {}),))  # type: ignore[arg-type]
    second = ChangeRecord(2, AT, IMPORT, nodes=(
        node_change("CI", "a", {"name": "a"}, {"name": "a2"}),  # type: ignore[arg-type]
    ), relationships=(rel_change(("DEPENDS_ON", "a", "b"), ("CI", "CI"), {}, None),))  # type: ignore[arg-type]
    third = ChangeRecord(3, AT, IMPORT, nodes=(
        node_change("CI", "z", None, {"name": "z"}),  # type: ignore[arg-type]
    ), reset=True)

    # Act
    after_two = Replay().apply([first, second])
    after_three = Replay().apply([first, second, third])

    # Assert
    assert after_two.nodes == {("CI", "a"): {"name": "a2"}, ("CI", "b"): {"name": "b"}}
    assert after_two.rels == {} and after_two.seq == 2
    assert after_three.nodes == {("CI", "z"): {"name": "z"}} and after_three.seq == 3
    assert second.relationships[0].op is RelOp.REMOVED
