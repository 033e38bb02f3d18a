"""What the engine will not try to store, caught before the commit (``flowloom.storable``).

A node's outputs are checked on the hot path of every node, so the check rides on the JSON
encoding ``_execute`` does anyway (``outputs_problem``): one substring search and one UTF-8
encode of text already built; only a value that fails them is walked to name the field. Error
messages are made storable rather than refused (``storable_text``): an error must always be
writable, or a failed node could not be recorded as failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from flowloom.exceptions import InputError
from flowloom.storable import find_unstorable

__all__ = ["UNSTORABLE_OUTPUT", "check_storable", "outputs_problem", "storable_text"]

UNSTORABLE_OUTPUT: Final = "UnstorableOutput"
"""The ``type`` of a node error for outputs that hold text no database can store."""

_NUL_ESCAPED: Final = "\\u0000"


def outputs_problem(outputs: Mapping[str, Any], encoded: str) -> str | None:
    """Why ``outputs`` cannot be stored, naming the field, or None when they can.

    ``encoded`` is ``json.dumps(outputs, ensure_ascii=False)``: NUL shows in it as an escape,
    a lone surrogate as itself (which UTF-8 cannot encode).
    """
    if _NUL_ESCAPED not in encoded:
        try:
            encoded.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return None
    found = find_unstorable(outputs, "outputs")
    return None if found is None else f"{found.message()}; it cannot be stored"


def check_storable(value: Any, field: str) -> None:
    """InputError naming the field when ``value`` holds text that cannot be stored."""
    found = find_unstorable(value, field)
    if found is not None:
        raise InputError(found.message(), field=found.field or field)


def storable_text(text: str) -> str:
    """``text`` with what cannot be stored spelled as escapes (``\\x00``, ``\\ud800``)."""
    if "\x00" not in text:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return text
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")
