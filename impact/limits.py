"""Server-side caps on traversal depth, result size and path enumeration."""

from __future__ import annotations

from dataclasses import dataclass

from cmdb_graph.errors import TraversalLimitError

__all__ = ["DEFAULT_LIMITS", "ImpactLimits"]


@dataclass(frozen=True, slots=True)
class ImpactLimits:
    """Caps that every impact and exploration function honours.

    Attributes
    ----------
    max_depth : int
        Largest traversal depth (hops) a request may ask for, and the depth reported when a
        request asks for none.
    max_results : int
        Largest number of CIs (or findings) a single result may hold.
    max_paths : int
        Largest number of paths a request may ask for (paths between two CIs, explaining paths
        per impacted CI).
    max_path_length : int
        Largest number of hops of an enumerated path.
    """

    max_depth: int = 12
    max_results: int = 100_000
    max_paths: int = 100
    max_path_length: int = 12

    def check_depth(self, depth: int | None) -> int:
        """The depth to use for a request: ``depth`` itself, or ``max_depth`` when ``None``.

        Raises
        ------
        TraversalLimitError
            ``depth`` is negative or above ``max_depth``.
        """
        if depth is None:
            return self.max_depth
        if depth < 0:
            raise TraversalLimitError(f"depth must be >= 0, got {depth}")
        if depth > self.max_depth:
            raise TraversalLimitError(
                f"depth {depth} exceeds the server maximum of {self.max_depth}"
            )
        return depth

    def check_results(self, count: int, what: str = "CIs") -> None:
        """Raise when a result would hold more than ``max_results`` items.

        Raises
        ------
        TraversalLimitError
            ``count`` exceeds ``max_results``.
        """
        if count > self.max_results:
            raise TraversalLimitError(
                f"result holds {count} {what}, above the server maximum of {self.max_results}; "
                "narrow the request (depth, relationship types, services only)"
            )

    def check_paths(self, count: int) -> int:
        """The number of paths to enumerate.

        Raises
        ------
        TraversalLimitError
            ``count`` is below 1 or above ``max_paths``.
        """
        if count < 1:
            raise TraversalLimitError(f"path count must be >= 1, got {count}")
        if count > self.max_paths:
            raise TraversalLimitError(
                f"{count} paths asked for, above the server maximum of {self.max_paths}"
            )
        return count

    def check_path_length(self, length: int | None) -> int:
        """The largest path length to use (``max_path_length`` when ``None``).

        Raises
        ------
        TraversalLimitError
            ``length`` is below 1 or above ``max_path_length``.
        """
        if length is None:
            return self.max_path_length
        if length < 1 or length > self.max_path_length:
            raise TraversalLimitError(
                f"path length {length} outside 1..{self.max_path_length}"
            )
        return length


#: The caps used when a caller passes none.
DEFAULT_LIMITS = ImpactLimits()
