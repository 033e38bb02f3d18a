"""Dotted paths into JSON values (``user.address.city``, ``items.0.name``)."""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["MISSING", "check_path", "lookup"]

MISSING: Final = object()
"""Returned by :func:`lookup` when the path leads nowhere (``None`` is a real value)."""

_PART = re.compile(r"[^.\s]+")


def check_path(path: str) -> str:
    """``path`` if it is a well-formed dotted path, else ValueError saying why."""
    parts = path.split(".")
    if not path or not all(_PART.fullmatch(part) for part in parts):
        raise ValueError(f"{path!r} is not a dotted path such as 'user.age' or 'items.0'")
    return path


def lookup(value: Any, path: str | None) -> Any:
    """The value at ``path`` inside ``value`` (all of it when ``path`` is None), or MISSING.

    A part indexes an object by key, or a list by position when the part is a number.
    """
    if path is None:
        return value
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(value) <= index < len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value
