"""How many heaps the C library's allocator (glibc's malloc) may keep in a server process.

Python's own allocator takes the small objects; everything larger (big dicts and code, SQLite's
pages, OpenSSL's certificates) comes from malloc. glibc gives a thread that allocates while
another holds the main heap a heap of its own (an "arena", up to eight per core), and memory
freed in one stays there for later allocations. A server's threads (the SQLite lanes, the
executor's workers, the warm-up) left such heaps behind, part-used, for good.

:func:`limit_arenas` caps them at ``SERVER_ARENAS`` (``flowloom serve`` calls it before it
starts any thread): the main thread keeps the main heap and the others share one, behind a lock
that Python's own (the GIL) already mostly serialises. Elsewhere than glibc it does nothing,
and ``MALLOC_ARENA_MAX`` in the environment, which glibc reads itself, takes precedence.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["SERVER_ARENAS", "limit_arenas"]

SERVER_ARENAS: Final = 2
"""Heaps malloc may keep in a server process (glibc's default: eight per core)."""

_M_ARENA_MAX: Final = -8
"""mallopt's parameter number for the arena cap (``<malloc.h>``)."""


def _is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False


def limit_arenas(count: int = SERVER_ARENAS) -> bool:
    """Cap malloc's arenas at ``count`` unless ``MALLOC_ARENA_MAX`` sets them; call before the
    process starts threads. True if the cap was set."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    if "MALLOC_ARENA_MAX" in os.environ or not _is_glibc():
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, count))
