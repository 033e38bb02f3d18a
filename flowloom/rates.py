"""Request rates as people write them (``"20/s"``, ``"600/m"``), parsed once and validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["Rate", "parse_rate"]

_UNITS_S: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_COUNT: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``period_s``; up to ``count`` of them may come at once (burst)."""

    count: int
    period_s: float

    @property
    def interval_s(self) -> float:
        """The steady spacing between requests once the burst is used up."""
        return self.period_s / self.count

    def __str__(self) -> str:
        unit = next(u for u, s in _UNITS_S.items() if s == self.period_s)
        return f"{self.count}/{unit}"


def parse_rate(text: str) -> Rate:
    """The rate ``text`` describes: ``<count>/<s|m|h>``. ValueError naming what is wrong."""
    count_text, sep, unit = text.strip().partition("/")
    if not sep or unit not in _UNITS_S:
        raise ValueError(f"rate {text!r} must read <count>/<s|m|h>, for example 20/s")
    try:
        count = int(count_text)
    except ValueError:
        raise ValueError(f"rate {text!r}: {count_text!r} is not a whole number") from None
    if not 1 <= count <= _MAX_COUNT:
        raise ValueError(f"rate {text!r}: the count must be 1-{_MAX_COUNT}")
    return Rate(count=count, period_s=_UNITS_S[unit])
