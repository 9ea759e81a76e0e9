"""Time-window arithmetic for changes, maintenance windows and blackout windows.

Intervals are half-open ``[start, end)`` in UTC. A recurring :class:`~cmdb_graph.model.Window`
repeats its ``[start, end)`` span at every occurrence of its RFC 5545 ``RRULE`` (parsed with
python-dateutil's :func:`dateutil.rrule.rrulestr`, ``DTSTART`` = the window's ``start``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dateutil.rrule import rrule, rruleset, rrulestr

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model import Window

__all__ = ["intervals_overlap", "window_contains", "window_overlaps"]


def intervals_overlap(a_start: datetime, a_end: datetime, b_start: datetime,
                      b_end: datetime) -> bool:
    """Whether ``[a_start, a_end)`` and ``[b_start, b_end)`` share an instant."""
    return a_start < b_end and b_start < a_end


def _rule(window: Window) -> rrule | rruleset:
    text = (window.recurrence or "").strip()
    try:
        return rrulestr(text, dtstart=window.start)
    except (ValueError, TypeError) as exc:
        raise InvalidRecordError(
            f"recurrence {text!r} is not a valid RFC 5545 RRULE: {exc}",
            record=window.window_id,
            field="recurrence",
        ) from exc


def _occurrences(window: Window, after: datetime, before: datetime, *, inc: bool) -> bool:
    """Whether the window has an occurrence start between ``after`` and ``before``."""
    rule = _rule(window)
    try:
        return bool(rule.between(after, before, inc=inc, count=1))
    except (ValueError, TypeError) as exc:
        raise InvalidRecordError(
            f"recurrence {window.recurrence!r} cannot be evaluated: {exc}",
            record=window.window_id,
            field="recurrence",
        ) from exc


def window_overlaps(window: Window, start: datetime, end: datetime) -> bool:
    """Whether any occurrence of ``window`` overlaps ``[start, end)``.

    Raises
    ------
    InvalidRecordError
        The window's recurrence does not parse (names the window and the field).
    """
    span: timedelta = window.end - window.start
    if not window.recurrence:
        return intervals_overlap(window.start, window.end, start, end)
    # an occurrence starting at o overlaps when start - span < o < end
    return _occurrences(window, start - span, end, inc=False)


def window_contains(window: Window, start: datetime, end: datetime) -> bool:
    """Whether one occurrence of ``window`` covers all of ``[start, end)``.

    Raises
    ------
    InvalidRecordError
        The window's recurrence does not parse.
    """
    span: timedelta = window.end - window.start
    if not window.recurrence:
        return window.start <= start and end <= window.end
    if end - start > span:
        return False
    # an occurrence starting at o covers it when end - span <= o <= start
    return _occurrences(window, end - span, start, inc=True)
