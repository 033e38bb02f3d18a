"""Schedule arithmetic: checking a cron expression and an IANA time zone, and walking fire times.

A schedule is five cron fields (minute, hour, day of month, month, day of week) or one of the
``@hourly``-style nicknames, read in a time zone, so ``0 9 * * 1-5`` in ``Europe/Paris`` fires
at nine in Paris on weekdays, summer and winter. When a clock skips a fire time (the spring
change), the schedule fires at the first instant after the gap; croniter decides the details.
Every time going in must be timezone-aware; every time coming out is aware UTC. croniter is
imported when a schedule is first checked or walked: a server starts without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flowloom.exceptions import InputError

__all__ = ["MAX_COUNTED_MISSES", "Missed", "Schedule", "check_timezone"]

MAX_COUNTED_MISSES = 10_000
"""Missed fire times are counted up to this many (an every-minute schedule down for a year
would otherwise cost seconds of counting); beyond it the count is a lower bound."""

_CRON_MAX_LENGTH = 120
_TIMEZONE_MAX_LENGTH = 64


def check_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``, ``UTC``); else InputError (``timezone``)."""
    if not name or len(name) > _TIMEZONE_MAX_LENGTH:
        raise InputError(
            f"timezone must be an IANA name of 1-{_TIMEZONE_MAX_LENGTH} characters",
            field="timezone",
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'",
            field="timezone",
        ) from None


@dataclass(frozen=True, slots=True)
class Missed:
    """Fire times that passed unseen: how many, the first and last of them, and whether the
    count stopped at ``MAX_COUNTED_MISSES``."""

    count: int
    first: datetime
    last: datetime
    capped: bool


class Schedule:
    """A checked cron expression in a time zone; ``Schedule(cron, timezone)`` or InputError.

    InputError names ``cron`` for an expression that is malformed, has other than five fields,
    or can never fire (``0 0 30 2 *``), and ``timezone`` for an unknown zone.
    """

    __slots__ = ("_zone", "cron", "timezone")

    def __init__(self, cron: str, timezone: str = "UTC") -> None:
        self._zone = check_timezone(timezone)
        self.timezone = timezone
        self.cron = _check_cron(cron)
        from croniter import CroniterError  # type: ignore[import-untyped]

        try:
            self.next_after(datetime.now(UTC))
        except CroniterError:
            raise InputError(f"cron {cron!r} never fires", field="cron") from None

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``, in UTC."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        fire: datetime = _croniter()(self.cron, moment.astimezone(self._zone)).get_next(datetime)
        return fire.astimezone(UTC)

    def missed_between(self, first: datetime, now: datetime) -> Missed:
        """``first`` (a fire time that passed) and every later fire time up to ``now``."""
        walker = _croniter()(self.cron, first.astimezone(self._zone))
        count, last, capped = 1, first.astimezone(UTC), False
        while True:
            fire: datetime = walker.get_next(datetime)
            if fire > now:
                break
            if count >= MAX_COUNTED_MISSES:
                capped = True
                break
            count, last = count + 1, fire.astimezone(UTC)
        return Missed(count=count, first=first.astimezone(UTC), last=last, capped=capped)

    def __repr__(self) -> str:
        return f"Schedule({self.cron!r}, {self.timezone!r})"


def _croniter() -> Any:
    """croniter's class (imported on first use; a module lookup afterwards)."""
    from croniter import croniter

    return croniter


def _check_cron(cron: str) -> str:
    text = " ".join(cron.split())
    if not text or len(text) > _CRON_MAX_LENGTH:
        raise InputError(f"cron must be 1-{_CRON_MAX_LENGTH} characters", field="cron")
    fields = text.split(" ")
    if not text.startswith("@") and len(fields) != 5:
        raise InputError(
            f"cron {cron!r} has {len(fields)} fields; it needs five: "
            "minute hour day-of-month month day-of-week (e.g. '*/15 9-17 * * 1-5')",
            field="cron",
        )
    if not _croniter().is_valid(text):
        raise InputError(
            f"cron {cron!r} is not a valid expression: five fields (minute hour "
            "day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly",
            field="cron",
        )
    return text
