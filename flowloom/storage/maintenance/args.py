"""The ``--older-than 30d`` and ``--before DATE`` arguments, refusing anything ambiguous."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flowloom.exceptions import InputError

_DURATION = re.compile(r"(\d+)([a-z]+)")
_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_UNIT_HELP = "s (seconds), m (minutes), h (hours), d (days), w (weeks)"


def parse_duration(text: str) -> timedelta:
    """A positive whole number and one unit: ``45s``, ``90m``, ``12h``, ``30d``, ``2w``.

    Anything else (no number, a fraction, a sign, an unknown unit, zero) raises InputError
    naming the value and the allowed units.
    """
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if match is None or match.group(2) not in _UNITS:
        raise InputError(
            f"duration {text!r} is not a whole number followed by one unit of {_UNIT_HELP},"
            " e.g. 30d",
            field="duration",
        )
    amount = int(match.group(1))
    if amount == 0:
        raise InputError(f"duration {text!r} must be longer than zero", field="duration")
    try:
        return amount * _UNITS[match.group(2)]
    except OverflowError:
        raise InputError(f"duration {text!r} is too long", field="duration") from None


def parse_date(text: str) -> datetime:
    """An ISO date (``2025-01-31``, midnight UTC) or date-time (``2025-01-31T12:00``,
    ``...+02:00``, ``...Z``) as an aware UTC datetime; a date-time without an offset is UTC.

    Anything else raises InputError naming the value and the accepted forms.
    """
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"date {text!r} is not an ISO date (YYYY-MM-DD) or date-time"
            " (YYYY-MM-DDTHH:MM[:SS][+HH:MM or Z])",
            field="date",
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
