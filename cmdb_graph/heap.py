"""The cyclic garbage collector around the estate-sized structures a process builds once.

A large estate is millions of small objects (rows, graph dicts, index entries) that live as long
as the process and hold no garbage. Python's cyclic collector walks every tracked object again
and again while they are made (a third or more of a load) and, once they are made, in every
full collection after (seconds at 1M CIs, paid by whichever request triggers it). So:

* :func:`paused` stops the collector while such a structure is built;
* :func:`settle` then moves everything alive into the collector's permanent generation
  (``gc.freeze``) when the structure is large, so later collections walk only what is new;
* :func:`release` is called after a large structure was dropped (an engine rebuild, a store
  reload): frozen objects in reference cycles are never collected, so it unfreezes, collects
  once and freezes again.

Small estates (tests, demos) are left to the collector as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["FREEZE_FROM", "paused", "release", "settle"]

#: CIs from which a built estate is frozen (below it the collector's walks cost little).
FREEZE_FROM = 50_000


@contextmanager
def paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (restored as it was, even on error)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def settle(cis: int) -> bool:
    """Freeze every object alive now when ``cis`` (the size of what was just built) is at
    least :data:`FREEZE_FROM`; whether it did."""
    if cis < FREEZE_FROM:
        return False
    gc.freeze()
    return True


def release() -> None:
    """After a frozen structure was dropped: unfreeze, collect its cycles, freeze again.

    A full collection over the whole heap (seconds at 1M CIs): call it only after a large
    structure was replaced, never per request. Nothing is done when nothing is frozen.
    """
    if not gc.get_freeze_count():
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()
