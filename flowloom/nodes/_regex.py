"""User regular expressions, matched in linear time (RE2).

Python's ``re`` backtracks: ``^(a+)+$`` against thirty ``a`` and a ``!`` takes seconds, and a
pattern a user types runs on the server. RE2 guarantees time linear in the text and memory
bounded by ``MAX_PATTERN_MEMORY``, at the price of the features that need backtracking
(backreferences such as ``\\1``, lookaround such as ``(?=...)``); those are refused when the
pattern is checked, so a workflow never reaches a run with a pattern that cannot be matched.

RE2 releases the GIL while it matches, so a long text is matched in the compute pool and the
event loop keeps serving; short texts (the common case) are matched in place.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

from flowloom.nodes._compute import run_off_loop

if TYPE_CHECKING:
    import re2

__all__ = ["MAX_PATTERN_MEMORY", "OFF_LOOP_TEXT_CHARS", "PatternError", "compile_pattern", "search"]

MAX_PATTERN_MEMORY: Final = 8 * 1024 * 1024
"""Bytes RE2 may use for one compiled pattern; a larger one fails to compile (and is refused)."""

OFF_LOOP_TEXT_CHARS: Final = 64 * 1024
"""Texts longer than this are matched in the compute pool rather than on the event loop."""


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message says why in the user's terms."""


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re2._Regexp:
    """The compiled ``pattern``, or PatternError saying what RE2 refused."""
    import re2

    options = re2.Options()
    options.max_mem = MAX_PATTERN_MEMORY
    # RE2 writes each refused pattern to stderr on its own; the error is reported to the user.
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise PatternError(_explain(exc)) from None


def _explain(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else str(exc)
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    reason = str(reason)
    if reason.startswith("invalid perl operator: (?") or (
        reason.startswith("invalid escape sequence: \\") and reason[-1:].isdigit()
    ):
        return (
            f"{reason} (lookaround and backreferences are not supported: matching is linear-time)"
        )
    if "pattern too large" in reason:
        return f"{reason} (the compiled pattern may use at most {MAX_PATTERN_MEMORY} bytes)"
    return reason


async def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` (checked already) matches anywhere in ``text``."""
    compiled = compile_pattern(pattern)
    if len(text) <= OFF_LOOP_TEXT_CHARS:
        return compiled.search(text) is not None
    return await run_off_loop(lambda: compiled.search(text) is not None)
