"""Folding a writer's changes into one net change, and undoing it on what a store holds now."""

from __future__ import annotations

from cmdb_graph.feed import (
    NodeChange,
    NodeOp,
    RelChange,
    RelOp,
    net_node_changes,
    net_rel_changes,
    undo_checked,
)

K = ("CI", "a")


def n(op: NodeOp, old: dict[str, object] | None, new: dict[str, object] | None) -> NodeChange:
    return NodeChange(op, "CI", "a", old, new)


def test_created_then_updated_is_created_with_the_last_row() -> None:
    net = net_node_changes([
        n(NodeOp.CREATED, None, {"name": "a", "ci_class": "Server", "fqdn": "x"}),
        n(NodeOp.UPDATED, {"name": "a", "fqdn": "x"}, {"name": "b", "fqdn": None}),
    ])

    assert net[K] == NodeChange(NodeOp.CREATED, "CI", "a", None,
                                {"name": "b", "ci_class": "Server"})


def test_created_then_deleted_and_a_field_set_back_are_no_change() -> None:
    assert net_node_changes([n(NodeOp.CREATED, None, {"name": "a"}),
                             n(NodeOp.DELETED, {"name": "a"}, None)]) == {}
    assert net_node_changes([n(NodeOp.UPDATED, {"name": "a"}, {"name": "b"}),
                             n(NodeOp.UPDATED, {"name": "b"}, {"name": "a"})]) == {}


def test_a_field_changed_twice_goes_from_its_first_old_to_its_last_new_value() -> None:
    net = net_node_changes([
        n(NodeOp.UPDATED, {"name": "a"}, {"name": "b"}),
        n(NodeOp.UPDATED, {"name": "b", "environment": None}, {"name": "c", "environment": "p"}),
    ])

    assert net[K].op is NodeOp.UPDATED
    assert net[K].old == {"name": "a", "environment": None}
    assert net[K].new == {"name": "c", "environment": "p"}


def test_updated_then_deleted_is_deleted_with_the_row_before_the_update() -> None:
    net = net_node_changes([
        n(NodeOp.UPDATED, {"name": "a"}, {"name": "b"}),
        n(NodeOp.DELETED, {"name": "b", "ci_class": "Server"}, None),
    ])

    assert net[K] == NodeChange(NodeOp.DELETED, "CI", "a", {"name": "a", "ci_class": "Server"},
                                None)


def test_undo_puts_back_the_fields_that_still_hold_the_writers_value() -> None:
    change = n(NodeOp.UPDATED, {"name": "a", "fqdn": None, "os_name": "x"},
               {"name": "b", "fqdn": "f", "os_name": "y"})

    row, kept = undo_checked({"ci_class": "Server", "name": "b", "fqdn": "f", "os_name": "z"},
                             change)

    assert row == {"ci_class": "Server", "name": "a", "os_name": "z"}
    assert kept == ["os_name"]


def test_undo_of_creations_and_deletions() -> None:
    assert undo_checked({"name": "b"}, n(NodeOp.CREATED, None, {"name": "a"})) == (None, [])
    assert undo_checked(None, n(NodeOp.DELETED, {"name": "a"}, None)) == ({"name": "a"}, [])
    assert undo_checked({"name": "c"}, n(NodeOp.DELETED, {"name": "a"}, None)) == (
        {"name": "c"}, ["(exists)"])
    assert undo_checked(None, n(NodeOp.UPDATED, {"name": "a"}, {"name": "b"})) == (
        None, ["(absent)"])


def test_relationships_fold_and_undo_alike() -> None:
    key = ("DEPENDS_ON", "a", "b")
    added = RelChange(RelOp.ADDED, *key, "CI", "CI", None, {"optional": True})
    changed = RelChange(RelOp.CHANGED, *key, "CI", "CI", {"optional": True}, {"optional": None})
    removed = RelChange(RelOp.REMOVED, *key, "CI", "CI", {"properties": {"w": 1}}, None)

    assert net_rel_changes([added, changed])[key].op is RelOp.ADDED
    assert net_rel_changes([added, changed])[key].new == {}
    assert undo_checked(None, net_rel_changes([removed])[key]) == ({"properties": {"w": 1}}, [])
