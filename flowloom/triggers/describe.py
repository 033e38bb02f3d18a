"""A cron expression in words: ``0 9 * * 1-5`` -> "At 09:00, Monday through Friday".

Covers the five standard fields with ``*``, numbers, names (``MON``, ``JAN``), ranges, lists and
steps, and the ``@daily``-style nicknames. A field it cannot put into words (croniter's ``L``
and ``#`` extensions) is quoted as it is, so the answer is always a sentence, never an error:
the expression itself is checked by ``Schedule``, not here.
"""

from __future__ import annotations

from typing import Final

__all__ = ["describe_cron"]

_NICKNAMES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAYS: Final = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ORDINALS: Final = {"1": "first", "2": "second", "3": "third", "4": "fourth", "5": "fifth"}
_DAY_NUMBERS: Final = {name[:3].lower(): i for i, name in enumerate(_DAYS)}
_MONTH_NUMBERS: Final = {name[:3].lower(): i + 1 for i, name in enumerate(_MONTHS)}


def describe_cron(cron: str) -> str:
    """A sentence saying when ``cron`` fires (the time zone is the caller's to add)."""
    text = " ".join(cron.split())
    text = _NICKNAMES.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) != 5:
        return f"Cron {cron!r}"
    minute, hour, dom, month, dow = fields
    parts = [_time(minute, hour)]
    days = _days(dom, dow)
    if days:
        parts.append(days)
    months = _months(month)
    if months:
        parts.append(months)
    if not days and not months and parts[0].startswith("At ") and ":" in parts[0]:
        parts.append("every day")
    return ", ".join(parts)


def _number(value: str, names: dict[str, int] | None = None) -> int | None:
    if value.isdigit():
        return int(value)
    if names is not None:
        return names.get(value.lower())
    return None


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _field(value: str, unit: str, show: dict[int, str] | None = None) -> str | None:
    """ "every 15 minutes", "minutes 5 through 10", ... or None for a form not covered."""
    names = None
    if show is not None:
        names = _DAY_NUMBERS if unit == "day" else _MONTH_NUMBERS

    def label(raw: str) -> str | None:
        number = _number(raw, names)
        if number is None:
            return None
        if show is not None:
            return show.get(number % 7 if unit == "day" else number)
        return str(number)

    items: list[str] = []
    for piece in value.split(","):
        base, _, step = piece.partition("/")
        if step and not step.isdigit():
            return None
        if base == "*":
            items.append(f"every {step} {unit}s" if step else f"every {unit}")
            continue
        start, dash, end = base.partition("-")
        first, last = label(start), label(end) if dash else None
        if first is None or (dash and last is None):
            return None
        if dash and step:
            items.append(f"every {step} {unit}s from {first} through {last}")
        elif dash:
            items.append(f"{first} through {last}")
        elif step:
            items.append(f"every {step} {unit}s from {first}")
        else:
            items.append(first)
    return _join(items)


def _clock(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def _time(minute: str, hour: str) -> str:
    minutes = [_number(m) for m in minute.split(",")]
    hours = [_number(h) for h in hour.split(",")]
    exact_minutes = [m for m in minutes if m is not None]
    exact_hours = [h for h in hours if h is not None]
    exact = len(exact_minutes) == len(minutes) and len(exact_hours) == len(hours)
    if exact and len(minutes) * len(hours) <= 6:
        times = [_clock(h, m) for h in exact_hours for m in exact_minutes]
        return "At " + _join(times)
    if minute == "*" and hour == "*":
        return "Every minute"
    minute_words = _field(minute, "minute")
    if hour == "*":
        if len(exact_minutes) == 1 and len(minutes) == 1:
            only = exact_minutes[0]
            return "Every hour, on the hour" if only == 0 else f"At minute {only} of every hour"
        if minute_words is not None:
            return minute_words[0].upper() + minute_words[1:]
        return f"At minutes {minute!r}"
    hour_words = _field(hour, "hour", None)
    if len(exact_minutes) == 1 and len(minutes) == 1 and hour_words is not None:
        only = exact_minutes[0]
        past = "on the hour" if only == 0 else f"at minute {only}"
        if hour_words.startswith("every"):
            return f"{hour_words[0].upper() + hour_words[1:]}, {past}"
        return f"{past[0].upper() + past[1:]}, during hours {hour_words}"
    if minute_words is not None and hour_words is not None:
        return f"{minute_words[0].upper() + minute_words[1:]}, during hours {hour_words}"
    return f"At minute {minute!r} of hour {hour!r}"


def _days(dom: str, dow: str) -> str | None:
    day_names = dict(enumerate(_DAYS))
    weekdays = None if dow == "*" else _field(dow, "day", day_names)
    if weekdays is not None:
        weekdays = f"on {weekdays}"
    nth_day, hash_, nth = dow.partition("#")
    day = _number(nth_day, _DAY_NUMBERS)
    if hash_ and nth in _ORDINALS and day is not None and day < 8:
        weekdays = f"on the {_ORDINALS[nth]} {_DAYS[day % 7]} of the month"
    if dom.upper() == "L":
        dom, last_day = "*", "on the last day of the month"
    else:
        last_day = None
    month_days = None if dom == "*" else _field(dom, "day")
    if dow != "*" and weekdays is None:
        weekdays = f"day-of-week {dow!r}"
    of_month = None if month_days is None else f"on day {month_days} of the month"
    if month_days is not None and month_days.startswith("every"):
        of_month = f"{month_days} of the month"
    if dom != "*" and month_days is None:
        of_month = f"day-of-month {dom!r}"
    of_month = of_month or last_day
    if weekdays is not None and of_month is not None:
        # Standard cron: with both fields restricted, a day matching either one fires.
        return f"{of_month} or {weekdays}"
    return of_month or weekdays


def _months(month: str) -> str | None:
    if month == "*":
        return None
    words = _field(month, "month", dict(enumerate(_MONTHS, start=1)))
    if words is None:
        return f"month {month!r}"
    return words if words.startswith("every") else f"in {words}"
