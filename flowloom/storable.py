"""Text that cannot be stored: found before it reaches the database, named by its field path.

Both databases refuse some strings that Python holds happily: a lone UTF-16 surrogate
(``"\\ud800"``, which JSON can carry as an escape) cannot be encoded as UTF-8 at all, and
PostgreSQL refuses NUL (``"\\x00"``) in text and JSONB. flowloom refuses both everywhere, on
both databases, so that what one instance accepts every instance can store: API and webhook
bodies answer 422 naming the field, CLI inputs exit 2, and a node whose output holds such text
fails with a readable error instead of leaving its run unwritable. A number that is not finite
(NaN, Infinity: Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e400``) is refused the same
way: it is not JSON, and PostgreSQL's JSONB refuses it.

The check is one C-speed pass (``json.dumps`` and a UTF-8 encode) for the common clean case;
only a value that fails it is walked in Python to name the offending field.
``find_unstorable_json`` does the same for a JSON text not yet parsed, and for the common case
does less: a byte scan that finds no escape or number that could decode to something
unstorable, and no parse at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Unstorable", "find_unstorable", "find_unstorable_json", "unstorable_reason"]

_NUL_ESCAPED: Final = "\\u0000"

_NOT_FINITE: Final = "is not a finite number (NaN or Infinity), which cannot be stored as JSON"

# What a JSON text must hold to decode to something unstorable: a \u escape (NUL, a lone
# surrogate); a surrogate written out as bytes (json.loads() decodes bytes with
# "surrogatepass", so ED A0..BF xx reaches the value); one of the non-JSON constants Python's
# json reads; or a number large enough to overflow a float (past 1.8e308: a 3-digit exponent,
# or 200 digits in a row, as fewer with a 2-digit exponent stay below). A raw NUL cannot: JSON
# refuses control characters in strings. A text holding none of these decodes to storable
# values and needs no parse. They are looked for with substring searches (C speed, no regular
# expression) in the text with every digit made a 9 and every E an e; false alarms ("\u00e9",
# a valid surrogate pair, "NaN" in a string) only cost a parse.
_NUMBER_SHAPES: Final = bytes.maketrans(b"0123456789E", b"9999999999e")
_LONG_DIGITS: Final = b"9" * 200


def _suspect(raw: bytes) -> bool:
    shape = raw.translate(_NUMBER_SHAPES)
    return (
        b"\\u" in shape
        or b"\xed" in shape
        or b"NaN" in shape
        or b"Infinity" in shape
        or b"e999" in shape
        or b"e+999" in shape
        or _LONG_DIGITS in shape
    )


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
    """The first string (value or mapping key) or non-finite number in ``value`` that cannot
    be stored, or None. Never recurses: any depth of nesting is walked safely."""
    if isinstance(value, str):
        reason = unstorable_reason(value)
        return None if reason is None else Unstorable(field, reason)
    if isinstance(value, float):
        return None if math.isfinite(value) else Unstorable(field, _NOT_FINITE)
    if isinstance(value, Mapping | list | tuple):
        if _clean_json(value):
            return None
        return _walk(value, field)
    return None


def find_unstorable_json(text: bytes | str) -> Unstorable | None:
    """The first unstorable value in the JSON document ``text``, or None: also None when
    ``text`` is not JSON at all (malformed, or nested past what ``json`` parses), which is for
    whoever parses it to refuse. ``text`` is UTF-8 bytes (UTF-16 and UTF-32, which ``json``
    also reads, are decoded first) or already a string."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else _utf8(text)
    if raw is None or not _suspect(raw):
        return None
    try:
        value = json.loads(raw if isinstance(text, bytes) else text)
    except (ValueError, RecursionError):
        return None
    return find_unstorable(value)


def _utf8(raw: bytes) -> bytes | None:
    # json.loads() takes UTF-16 and UTF-32 too, told apart by NULs in the first four bytes,
    # and decodes them as it does UTF-8, with "surrogatepass": scan those as UTF-8 so that an
    # escape or a surrogate in them is seen. None: not text json.loads() could read at all.
    if b"\x00" not in raw[:4]:
        return raw
    try:
        encoding = json.detect_encoding(raw)
        return raw.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return None


def _clean_json(value: Any) -> bool:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
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
        elif isinstance(item, float):
            if not math.isfinite(item):
                return Unstorable(path, _NOT_FINITE)
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
