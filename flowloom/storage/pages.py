"""Keyset pagination over time-ordered ids: a page of items and the cursor for the next one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from flowloom.exceptions import InputError
from flowloom.ids import parse_id

__all__ = ["MAX_PAGE_SIZE", "Page", "check_cursor", "check_limit", "page_of"]

MAX_PAGE_SIZE = 100
"""The most rows one page may ask for."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """``items`` newest first; pass ``next_cursor`` back to get the next (older) page."""

    items: list[T]
    next_cursor: str | None


def check_limit(limit: int) -> int:
    """The page size if it is within 1..MAX_PAGE_SIZE, else InputError naming ``limit``."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    return limit


def check_cursor(cursor: str | None, *, prefix: str) -> str | None:
    """The cursor if it is a well-formed id of the expected kind, else InputError."""
    if cursor is None or cursor == "":
        return None
    try:
        parse_id(cursor, prefix=prefix)
    except ValueError as exc:
        raise InputError(f"bad cursor: {exc}", field="cursor") from None
    return cursor


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=_HasId)


def page_of(rows: Sequence[R], *, limit: int) -> Page[R]:
    """Cut ``limit + 1`` rows fetched newest first into a page; the extra row says "more"."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return Page(items=items, next_cursor=None)
    return Page(items=items, next_cursor=items[-1].id)
