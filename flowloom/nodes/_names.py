"""Checks shared by configs that declare named things (trigger fields, switch cases)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

__all__ = ["refuse_repeated"]


def refuse_repeated(names: Iterable[str], *, what: str) -> None:
    """ValueError naming every name given more than once (pydantic turns it into a problem)."""
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"{what} names must differ: {', '.join(repeated)} repeated")
