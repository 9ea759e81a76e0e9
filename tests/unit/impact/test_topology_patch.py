"""A topology changed incrementally (forks, patched CSR arrays, merged ranks) holds exactly
the arrays of one built from scratch with the same CIs, edges and rules."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import CINotFoundError
from impact.topology import Topology

N0 = 8
IDS = [f"c{i:02d}" for i in range(N0 + 6)]
RULES = [None, "all", "1", "2", "50%", "0%"]

_op = st.one_of(
    st.tuples(st.just("add"), st.integers(0, len(IDS) - 1), st.integers(0, len(IDS) - 1),
              st.booleans()),
    st.tuples(st.just("remove"), st.integers(0, len(IDS) - 1), st.integers(0, len(IDS) - 1)),
    st.tuples(st.just("node"), st.integers(N0, len(IDS) - 1)),
    st.tuples(st.just("rule"), st.integers(0, len(IDS) - 1), st.sampled_from(RULES)),
    st.tuples(st.just("query")),
)


def _state(topo: Topology) -> dict[str, Any]:
    topo.refresh()
    order = sorted(range(topo.n), key=lambda i: topo.ids[i])
    pos = {i: k for k, i in enumerate(order)}

    def rows(indptr: Any, indices: Any, flags: Any = None) -> list[Any]:
        out = []
        for i in order:
            a, b = int(indptr[i]), int(indptr[i + 1])
            row = [(topo.ids[int(j)], bool(flags[k]) if flags is not None else True)
                   for k, j in zip(range(a, b), indices[a:b].tolist(), strict=True)]
            out.append(sorted(row))
        return out

    comps: dict[int, set[str]] = {}
    for i in range(topo.n):
        comps.setdefault(int(topo.scc_label[i]), set()).add(topo.ids[i])
    return {
        "fwd": rows(topo.fwd_indptr, topo.fwd_indices, topo.fwd_required),
        "rev": rows(topo.rev_indptr, topo.rev_indices, topo.rev_required),
        "req": rows(topo.req_indptr, topo.req_indices),
        "inputs": [int(topo.required_inputs[i]) for i in order],
        "threshold": [int(topo.threshold[i]) for i in order],
        "slack": [int(topo.slack[i]) for i in order],
        "rule": [bool(topo.has_rule_mask[i]) for i in order],
        "cycles": sorted(topo.ids[int(i)] for i in topo.cycle_nodes),
        "loops": sorted(topo.self_loops),
        "scc": sorted(sorted(c) for c in comps.values()),
        "rank": [int(topo.id_rank()[i]) for i in order] == list(range(topo.n)),
        "pos": len(pos),
    }


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_op, max_size=40), start=st.lists(
    st.tuples(st.integers(0, N0 - 1), st.integers(0, N0 - 1), st.booleans()), max_size=12))
def test_incremental_changes_give_the_arrays_of_a_fresh_build(
    ops: list[tuple[Any, ...]], start: list[tuple[int, int, bool]]
) -> None:
    # Arrange
    edges: list[tuple[str, str, bool]] = [(IDS[a], IDS[b], r) for a, b, r in start]
    nodes = IDS[:N0]
    rules: dict[str, str] = {}
    topo = Topology(nodes, [IDS.index(a) for a, _, _ in edges],
                    [IDS.index(b) for _, b, _ in edges], [r for _, _, r in edges])
    topo.id_rank()

    for op in ops:
        # Act: one change on a fork (copy-on-write), as the engine does
        old = topo
        old_state = _state(old)
        topo = topo.fork()
        if op[0] == "add" and IDS[op[1]] in topo.index and IDS[op[2]] in topo.index:
            topo.add_edges([(IDS[op[1]], IDS[op[2]], op[3])])
            edges.append((IDS[op[1]], IDS[op[2]], op[3]))
        elif op[0] == "remove" and IDS[op[1]] in topo.index and IDS[op[2]] in topo.index:
            topo.remove_edges([(IDS[op[1]], IDS[op[2]])])
            edges = [e for e in edges if (e[0], e[1]) != (IDS[op[1]], IDS[op[2]])]
        elif op[0] == "node" and IDS[op[1]] not in topo.index:
            topo.add_nodes([IDS[op[1]]])
            nodes = [*nodes, IDS[op[1]]]
        elif op[0] == "rule" and IDS[op[1]] in topo.index:
            topo.set_redundancy(IDS[op[1]], op[2])
            if op[2] is None:
                rules.pop(IDS[op[1]], None)
            else:
                rules[IDS[op[1]]] = op[2]
        if op[0] != "query":
            continue
        # Assert: equal to a fresh build; the topology forked from is unchanged
        fresh = Topology(nodes, np.array([nodes.index(a) for a, _, _ in edges], np.int64),
                         np.array([nodes.index(b) for _, b, _ in edges], np.int64),
                         np.array([r for _, _, r in edges], np.bool_), rules)
        assert _state(topo) == _state(fresh)
        assert _state(old) == old_state
    fresh = Topology(nodes, np.array([nodes.index(a) for a, _, _ in edges], np.int64),
                     np.array([nodes.index(b) for _, b, _ in edges], np.int64),
                     np.array([r for _, _, r in edges], np.bool_), rules)
    assert _state(topo) == _state(fresh)


def test_forks_share_the_node_list_but_each_version_sees_only_its_own_cis() -> None:
    # Arrange: a version, a fork that adds a CI, then a second fork of the same version
    base = Topology(["a", "b"], [0], [1], [True])
    first = base.fork()
    first.add_nodes(["c"])
    first.add_edges([("b", "c", True)])
    # Act
    sibling = base.fork()
    sibling.add_nodes(["d"])
    sibling.add_edges([("b", "d", False)])
    later = first.fork()
    later.add_nodes(["e"])
    # Assert: each version answers for its own CIs only; the sibling got index 2 too
    assert (base.n, first.n, sibling.n, later.n) == (2, 3, 3, 4)
    assert first.ids[:3] == ["a", "b", "c"] and sibling.ids[:3] == ["a", "b", "d"]
    assert int(sibling.indexes(["d"])[0]) == 2 and int(later.indexes(["e"])[0]) == 3
    for topo, unknown in ((base, "c"), (base, "d"), (first, "d"), (first, "e"),
                          (sibling, "c"), (sibling, "e")):
        with pytest.raises(CINotFoundError):
            topo.indexes([unknown])
    assert [first.ids[int(j)] for j in first.dependents(1)[0]] == ["c"]
    assert [sibling.ids[int(j)] for j in sibling.dependents(1)[0]] == ["d"]
    assert base.dependents(1)[0].tolist() == []
    assert _state(base) == _state(Topology(["a", "b"], [0], [1], [True]))
    assert pickle.loads(pickle.dumps(base)).ids == ["a", "b"]
