"""The change feed: one ordered, durable record of what every write changed.

:mod:`cmdb_graph.feed.records` is the format (:class:`ChangeRecord` and its parts, the stored
bytes); :mod:`cmdb_graph.feed.diff` turns rows into changes and changes back into rows;
:mod:`cmdb_graph.feed.undo` folds a writer's changes and undoes them on a live store. Stores
write one record per write transaction (see ``GraphStore.feed_since``); engines, history,
time travel and outbound events read them.
"""

from cmdb_graph.feed.diff import (
    Replay,
    apply_node,
    apply_rel,
    diff_rows,
    node_change,
    rel_change,
    undo_node,
    undo_rel,
)
from cmdb_graph.feed.records import (
    SYSTEM_ACTOR,
    Actor,
    ActorKind,
    ChangeRecord,
    NodeChange,
    NodeOp,
    RelChange,
    RelOp,
    decode_record,
    encode_record,
)
from cmdb_graph.feed.undo import net_node_changes, net_rel_changes, undo_checked

__all__ = [
    "SYSTEM_ACTOR",
    "Actor",
    "ActorKind",
    "ChangeRecord",
    "NodeChange",
    "NodeOp",
    "RelChange",
    "RelOp",
    "Replay",
    "apply_node",
    "apply_rel",
    "decode_record",
    "diff_rows",
    "encode_record",
    "net_node_changes",
    "net_rel_changes",
    "node_change",
    "rel_change",
    "undo_checked",
    "undo_node",
    "undo_rel",
]
