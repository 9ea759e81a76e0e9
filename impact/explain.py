"""Explanation: which inputs, and which paths from the changed CIs, explain a CI's status.

A down CI is explained by its required inputs that went down in an earlier round of the
fixed point; a degraded CI by its reached inputs one hop nearer to the seeds. Following these
links from any reached CI always ends at a seed, so every reached CI has explaining paths
(seed ... CI); :class:`ExplainingPaths` keeps the shortest few of each.
"""

from __future__ import annotations

import numpy as np

from impact.csr import TopologyArrays
from impact.passes import DOWN, Propagation
from impact.scratch import IntArray, gather

__all__ = ["ExplainingPaths", "explaining_inputs"]


def explaining_inputs(
    topo: TopologyArrays, prop: Propagation, owners: IntArray | None = None
) -> dict[int, list[int]]:
    """For every reached CI except the seeds, the inputs that explain its status.

    A down CI is explained by its required inputs that went down in an earlier round; a
    degraded CI by its reached inputs one hop nearer to the seeds. Following these links
    from any reached CI always ends at a seed (the links strictly decrease the round, or
    the depth, so they form no cycle).

    Parameters
    ----------
    topo : TopologyArrays
        The arrays ``prop`` was computed over.
    prop : Propagation
        A propagation over ``topo``.
    owners : ndarray of int, optional
        Positions in ``prop.nodes`` of the CIs to explain (default: every reached CI);
        seeds among them are skipped.

    Returns
    -------
    dict of int to list of int
        Sorted input indexes by CI index (CIs without explaining inputs are left out).
    """
    topo.refresh()
    if owners is None:
        owner_pos = np.flatnonzero(prop.depth > 0)
    else:
        owner_pos = np.asarray(owners, dtype=np.int64)
        owner_pos = owner_pos[prop.depth[owner_pos] > 0]
    if not owner_pos.size:
        return {}
    targets = prop.nodes[owner_pos]
    counts = topo.rev_indptr[targets + 1] - topo.rev_indptr[targets]
    offs = gather(topo.rev_indptr, targets)
    owner_pos = np.repeat(owner_pos, counts)
    pred = topo.rev_indices[offs]
    req = topo.rev_required[offs]
    pred_pos = prop.positions(pred)
    reached = pred_pos >= 0
    owner_pos, pred, req, pred_pos = (owner_pos[reached], pred[reached], req[reached],
                                      pred_pos[reached])
    own_down = prop.status[owner_pos] == DOWN
    ok_down = own_down & req & (prop.status[pred_pos] == DOWN) & (
        prop.down_round[pred_pos] < prop.down_round[owner_pos]
    )
    ok_deg = ~own_down & (prop.depth[pred_pos] == prop.depth[owner_pos] - 1)
    keep = ok_down | ok_deg
    owner = prop.nodes[owner_pos[keep]]
    pred = pred[keep]
    order = np.lexsort((pred, owner))
    out: dict[int, list[int]] = {}
    for o, p in zip(owner[order].tolist(), pred[order].tolist(), strict=True):
        out.setdefault(o, []).append(p)
    return out


class ExplainingPaths:
    """Explaining paths of the CIs a propagation reached, computed on demand and memoised.

    The paths of a CI are the ``per_ci`` first, by (length, lexicographic), of the paths of
    its explaining inputs extended by the CI; a seed's only path is itself. The explaining
    inputs of a CI are read per CI while few CIs were asked for, then for the whole closure
    at once.

    Parameters
    ----------
    topo : TopologyArrays
        The arrays ``prop`` was computed over.
    prop : Propagation
        The propagation to explain.
    per_ci : int
        Paths kept per CI.
    """

    #: Per-CI lookups of explaining inputs before they are computed for the whole closure.
    PER_CI = 256

    def __init__(self, topo: TopologyArrays, prop: Propagation, per_ci: int) -> None:
        self.topo = topo
        self.prop = prop
        self.per_ci = per_ci
        self.links: dict[int, list[int]] | None = None
        self.looked_up = 0
        self.memo: dict[int, list[tuple[str, ...]]] = {
            int(s): [(topo.ids[int(s)],)] for s in prop.seeds.tolist()
        }

    def read_all(self) -> dict[int, list[int]]:
        """The explaining inputs of the whole closure, computed now if not yet (before reading
        many CIs' paths)."""
        if self.links is None:
            self.links = explaining_inputs(self.topo, self.prop)
        return self.links

    def _inputs(self, node: int) -> list[int]:
        if self.links is None:
            self.looked_up += 1
            if self.looked_up <= self.PER_CI:
                pos = self.prop.positions(np.array([node], dtype=np.int64))
                return explaining_inputs(self.topo, self.prop, pos).get(node, [])
        return self.read_all().get(node, [])

    def of(self, target: int) -> tuple[tuple[str, ...], ...]:
        """The explaining paths of CI index ``target`` (``ci_id`` sequences, seed first)."""
        memo = self.memo
        if target not in memo:
            pending: dict[int, list[int]] = {}
            stack = [target]
            while stack:
                node = stack[-1]
                if node in memo:
                    stack.pop()
                    continue
                preds = pending.get(node)
                if preds is None:
                    preds = pending[node] = self._inputs(node)
                todo = [p for p in preds if p not in memo]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                name = self.topo.ids[node]
                cands = [(*p, name) for pred in preds for p in memo[pred]]
                cands.sort(key=lambda p: (len(p), p))
                memo[node] = cands[: self.per_ci]
        return tuple(memo[target])
