"""Text that cannot be stored: found before it reaches the database, named by its field path.

Both databases refuse some strings that Python holds happily: a lone UTF-16 surrogate
(``"\\ud800"``, which JSON can carry as an escape) cannot be encoded as UTF-8 at all, and
PostgreSQL refuses NUL (``"\\x00"``) in text and JSONB. flowloom refuses both everywhere, on
both databases, so that what one instance accepts every instance can store: API and webhook
bodies answer 422 naming the field, CLI inputs exit 2, and a node whose output holds such text
fails with a readable error instead of leaving its run unwritable.

The check is one C-speed pass (``json.dumps`` and a UTF-8 encode) for the common clean case;
only a value that fails it is walked in Python to name the offending field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Unstorable", "find_unstorable", "unstorable_reason"]

_NUL_ESCAPED: Final = "\\u0000"


@dataclass(frozen=True, slots=True)
class Unstorable:
    """Where the first unstorable text is (``name.0.first``; ``""`` for the value itself)."""

    field: str
    reason: str

    def message(self, prefix: str = "") -> str:
        where = ".".join(part for part in (prefix, self.field) if part) or "the value"
        return f"{where}: {self.reason}"


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "holds a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"holds a lone surrogate (\\u{code:04x}), which is not valid Unicode text"
    return None


def find_unstorable(value: Any, field: str = "") -> Unstorable | None:
    """The first string (value or mapping key) in ``value`` that cannot be stored, or None."""
    if isinstance(value, str):
        reason = unstorable_reason(value)
        return None if reason is None else Unstorable(field, reason)
    if isinstance(value, Mapping | list | tuple):
        if _clean_json(value):
            return None
        return _walk(value, field)
    return None


def _clean_json(value: Any) -> bool:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return False
    if _NUL_ESCAPED in text:
        # Could be a literal backslash followed by "u0000"; the walk tells.
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _walk(value: Any, field: str) -> Unstorable | None:
    # Iterative, so that a deeply nested value cannot exhaust the stack here.
    stack: list[tuple[Any, str]] = [(value, field)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            reason = unstorable_reason(item)
            if reason is not None:
                return Unstorable(path, reason)
        elif isinstance(item, Mapping):
            children: list[tuple[Any, str]] = []
            for key, child in item.items():
                name = str(key)
                key_reason = unstorable_reason(name) if isinstance(key, str) else None
                if key_reason is not None:
                    return Unstorable(_join(path, repr(name)[1:-1]), f"its name {key_reason}")
                children.append((child, _join(path, name)))
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(
                (child, _join(path, str(index))) for index, child in reversed(list(enumerate(item)))
            )
    return None


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part
