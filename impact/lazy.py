"""Immutable sequences of result models whose items are built when first read.

An impact result over a large closure keeps its answer as arrays; :class:`LazyItems` gives it
the face of a tuple of result models and builds each item only when it is read (reading many
builds them all in one pass). :mod:`impact.results` derives the impacted CIs and redundancy
impacts of a change impact from it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar, overload

from pydantic import BaseModel, GetCoreSchemaHandler, TypeAdapter
from pydantic_core import core_schema

__all__ = ["ItemSource", "LazyItems"]


T = TypeVar("T", bound=BaseModel)
T_co = TypeVar("T_co", bound=BaseModel, covariant=True)


class ItemSource(Protocol[T_co]):
    """What a :class:`LazyItems` reads its items from (implemented by the impact engine).

    ``ci_ids`` is cheap (no item is built); ``item`` builds one item, ``items`` every item at
    once (faster per item than ``item`` when many are read).
    """

    def __len__(self) -> int: ...

    def ci_ids(self) -> tuple[str, ...]: ...

    def item(self, k: int) -> T_co: ...

    def items(self) -> tuple[T_co, ...]: ...


class _Materialised(Generic[T]):
    """An item source over items already built."""

    def __init__(self, items: tuple[T, ...]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def ci_ids(self) -> tuple[str, ...]:
        return tuple(str(getattr(c, "ci_id")) for c in self._items)  # noqa: B009

    def statuses(self) -> dict[str, Any]:
        return {str(getattr(c, "ci_id")): getattr(c, "status") for c in self._items}  # noqa: B009

    def item(self, k: int) -> T:
        return self._items[k]

    def items(self) -> tuple[T, ...]:
        return self._items


#: Beyond this many items built one by one, a :class:`LazyItems` builds them all at once.
_BULK_AFTER = 64


class LazyItems(Sequence[T]):
    """An immutable sequence of result models whose items are built when first read.

    It behaves as the tuple of its items: ``len``, indexing (negative too), slicing (gives a
    tuple), iteration, ``in``, and equality with another sequence of the same class or with
    a tuple or list of the same items; it serialises (pydantic) as that tuple. An impact
    result over a large closure keeps its answer as arrays and builds an item only when it
    is read; reading many items builds them all in one pass. :meth:`ci_ids` answers without
    building items. Safe to read from several threads.

    Parameters
    ----------
    items : iterable of the item model, optional
        The items, already built.
    source : ItemSource, optional
        Where to build them from, instead (keyword only).
    """

    __slots__ = ("_built", "_count", "_done", "_lock", "_source")

    #: The item model (set by each subclass).
    item_type: ClassVar[type[BaseModel]]

    def __init__(self, items: Iterable[T] = (), *, source: ItemSource[T] | None = None) -> None:
        if source is None:
            done = tuple(items)
            source = _Materialised(done)
            self._done: tuple[T, ...] | None = done
        else:
            self._done = None
        self._source: ItemSource[T] = source
        self._built: dict[int, T] = {}
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._source)

    def ci_ids(self) -> tuple[str, ...]:
        """The ``ci_id`` of every item, in order (builds no item)."""
        return self._source.ci_ids()

    def _all(self) -> tuple[T, ...]:
        done = self._done
        if done is None:
            with self._lock:
                if self._done is None:
                    self._done = self._source.items()
                done = self._done
        return done

    def _one(self, k: int) -> T:
        done = self._done
        if done is not None:
            return done[k]
        with self._lock:
            item = self._built.get(k)
            if item is None:
                item = self._source.item(k)
                self._built[k] = item
                self._count += 1
            return item

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        n = len(self)
        if isinstance(index, slice):
            ks = range(*index.indices(n))
            if self._done is not None or len(ks) + self._count > _BULK_AFTER:
                return self._all()[index]
            return tuple(self._one(k) for k in ks)
        k = index.__index__()
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        if self._done is None and self._count >= _BULK_AFTER:
            return self._all()[k]
        return self._one(k)

    def __iter__(self) -> Iterator[T]:
        return iter(self._all())

    def __reversed__(self) -> Iterator[T]:
        return reversed(self._all())

    def __contains__(self, value: object) -> bool:
        return value in self._all()

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if isinstance(other, LazyItems):
            if type(other) is not type(self) or len(self) != len(other):
                return False
            if self.ci_ids() != other.ci_ids():
                return False
            return self._all() == other._all()
        if isinstance(other, tuple | list):
            return len(self) == len(other) and self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self)} items>)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._all(),))

    # -- pydantic -------------------------------------------------------------------------
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        items = handler.generate_schema(tuple[cls.item_type, ...])  # type: ignore[name-defined]
        adapter: TypeAdapter[tuple[Any, ...]] = TypeAdapter(
            tuple[cls.item_type, ...]  # type: ignore[name-defined]
        )

        def coerce(value: Any) -> LazyItems[Any]:
            if isinstance(value, cls):
                return value
            built: tuple[Any, ...] = adapter.validate_python(value)
            return cls(built)

        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_after_validator_function(coerce, items),
            python_schema=core_schema.no_info_plain_validator_function(coerce),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v._all(), return_schema=items
            ),
        )
