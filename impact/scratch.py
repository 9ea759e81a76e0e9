"""Per-thread working arrays of the passes, and the array helpers they share.

The passes over a :class:`~impact.csr.TopologyArrays` (:mod:`impact.passes`,
:mod:`impact.explain`) are level-synchronous breadth-first searches whose frontier is a numpy
array: each level gathers the CSR slices of the whole frontier at once (:func:`gather`). Their
length-n working arrays live per thread (:class:`Scratch`) and only the entries a query
touched are reset, so a small closure costs nothing per CI of the estate.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from cmdb_graph.errors import CINotFoundError

__all__ = ["EMPTY", "BoolArray", "IntArray", "Scratch", "dedupe", "gather"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: An empty index array.
EMPTY: IntArray = np.zeros(0, dtype=np.int64)


def gather(indptr: IntArray, frontier: IntArray) -> IntArray:
    """Positions in the CSR ``indices`` array of every edge leaving ``frontier``."""
    starts = indptr[frontier]
    counts = indptr[frontier + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return EMPTY
    ends = np.cumsum(counts)
    offs: IntArray = np.repeat(starts - (ends - counts), counts)
    offs += np.arange(total, dtype=np.int64)
    return offs


def dedupe(values: IntArray, scratch: IntArray) -> IntArray:
    """``values`` without repeats, first occurrence kept, in O(len) (``scratch`` has size n)."""
    if values.size < 2:
        return values
    pos = np.arange(values.size, dtype=np.int64)
    scratch[values[::-1]] = pos[::-1]
    out: IntArray = values[scratch[values] == pos]
    return out



class Scratch(threading.local):
    """Per-thread working arrays of length n, kept between queries and reset after each one
    (only the entries a query touched), so a query costs nothing per CI outside its closure.

    Attributes
    ----------
    depth : ndarray of int32
        Hops from the seeds (-1: not reached); ``touched`` lists the entries set.
    status, count, rounds : ndarray
        Status code, required inputs down, and fixed-point round of each CI during a
        propagation.
    mask : ndarray of bool
        A length-n mask for deduplication and membership tests (all False between uses).
    pos : ndarray of int64
        Scratch positions (no reset needed: only entries written by the current use are read).
    touched : ndarray of int64 or None
        The entries of ``depth`` set by the running pass.
    gave_up : bool
        Whether the last closure stopped at its ``give_up`` size.
    """

    def __init__(self) -> None:
        self.generation = -1
        self.depth = np.zeros(0, dtype=np.int32)
        self.status = np.zeros(0, dtype=np.int8)
        self.count = np.zeros(0, dtype=np.int32)
        self.rounds = np.zeros(0, dtype=np.int32)
        self.mask = np.zeros(0, dtype=np.bool_)
        self.pos = np.zeros(0, dtype=np.int64)
        self.touched: IntArray | None = None
        self.gave_up = False

    def ready(self, n: int, generation: int) -> Scratch:
        """These arrays, reallocated when the topology was rebuilt or resized."""
        if self.generation != generation or self.depth.size != n:
            self.depth = np.full(n, -1, dtype=np.int32)
            self.status = np.zeros(n, dtype=np.int8)
            self.count = np.zeros(n, dtype=np.int32)
            self.rounds = np.full(n, -1, dtype=np.int32)
            self.mask = np.zeros(n, dtype=np.bool_)
            self.pos = np.empty(n, dtype=np.int64)
            self.generation = generation
        return self

    def unique(self, values: IntArray) -> IntArray:
        """``values`` without repeats: a length-n mask for large inputs (sorted output, O(n)),
        first-occurrence scatter for small ones (O(len))."""
        if values.size > (self.mask.size >> 5):
            mask = self.mask
            mask[values] = True
            out: IntArray = np.flatnonzero(mask)
            mask[out] = False
            return out
        return dedupe(values, self.pos)

    def check(self, seeds: IntArray) -> IntArray:
        """``seeds`` as int64 without repeats.

        Raises
        ------
        CINotFoundError
            A seed index is outside the topology.
        """
        seeds = np.asarray(seeds, dtype=np.int64)
        if seeds.size and (int(seeds.min()) < 0 or int(seeds.max()) >= self.depth.size):
            raise CINotFoundError("seed index outside the topology")
        return dedupe(seeds, self.pos)

    def reset_depth(self) -> None:
        """Clear the ``depth`` entries the last pass set."""
        if self.touched is not None:
            self.depth[self.touched] = -1
            self.touched = None
