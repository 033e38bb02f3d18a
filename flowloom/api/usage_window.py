"""The range of UTC days a usage query sums (``from`` and ``to``), checked and made into times.

Shared by the account's usage routes and the administrators' instance-wide ones.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from flowloom.exceptions import InputError
from flowloom.storage.tables.base import utcnow

__all__ = ["MAX_RANGE_DAYS", "usage_window"]

MAX_RANGE_DAYS: Final = 366
"""The longest range one request may sum, in days (both ends included)."""


def usage_window(first: date | None, last: date | None) -> tuple[date, date, datetime, datetime]:
    """The days asked for (default: this month so far) and the half-open times they cover.

    InputError naming the field when ``from`` is after ``to``, the range is longer than
    ``MAX_RANGE_DAYS``, or ``to`` is the last day a date can name (its end cannot be named).
    """
    today = utcnow().date()
    last = last or today
    if last >= date.max:
        raise InputError(f"to must be before {date.max.isoformat()}", field="to")
    first = first or last.replace(day=1)
    if first > last:
        raise InputError("from must be on or before to", field="from")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InputError(f"the range may cover at most {MAX_RANGE_DAYS} days", field="to")
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    return first, last, start, end
