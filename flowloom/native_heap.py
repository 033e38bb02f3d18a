"""Two settings of the C library's allocator (glibc's malloc) that keep a server's memory low.

Python's own allocator takes the small objects; everything larger (big dicts and code, SQLite's
pages, OpenSSL's certificates) comes from malloc. glibc gives a thread that allocates while
another holds the main heap a heap of its own (an "arena", up to eight per core), and memory
freed in one stays there for later allocations. A server's threads (the SQLite lanes, the
executor's workers, the warm-up) left such heaps behind, part-used, for good.

:func:`limit_arenas` caps them at ``SERVER_ARENAS`` (``flowloom serve`` calls it before it
starts any thread): the main thread keeps the main heap and the others share one, behind a lock
that Python's own (the GIL) already mostly serialises. ``MALLOC_ARENA_MAX`` in the
environment, which glibc reads itself, takes precedence. :func:`release_free_pages` hands the
free pages inside the heaps back to the system (the warm-up calls it when done, after start-up
and its imports have freed what they built). Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import ctypes

__all__ = ["SERVER_ARENAS", "limit_arenas", "release_free_pages"]

SERVER_ARENAS: Final = 2
"""Heaps malloc may keep in a server process (glibc's default: eight per core)."""

_M_ARENA_MAX: Final = -8
"""mallopt's parameter number for the arena cap (``<malloc.h>``)."""


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc, else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError):
        return None
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_arenas(count: int = SERVER_ARENAS) -> bool:
    """Cap malloc's arenas at ``count`` unless ``MALLOC_ARENA_MAX`` sets them; call before the
    process starts threads. True if the cap was set."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, count))


def release_free_pages() -> bool:
    """Hand the free pages inside malloc's heaps back to the system (``malloc_trim(0)``).
    True if glibc did."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) in (0, 1)
