"""What the first node of a kind would pay on the event loop, paid on a thread at start-up.

Heavy libraries that only some nodes need are imported lazily, so a server that never fetches
a URL never loads httpx. But a lazy import runs where the node runs, on the event loop, and the
loop-lag watchdog saw first imports hold it for 0.7-1.5 s after a restart under load. The
server and the worker start ``warm_up`` on a thread instead, a second after start-up: the
imports happen off the loop while the first requests are served (a node that needs a module
still being imported waits for it, as it would have anyway). Its imports go through
:mod:`flowloom.heavy_imports`, as the nodes' own lazy imports of the same modules do, so the
two threads never interleave one package's import.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from flowloom.heavy_imports import ensure_imported
from flowloom.native_heap import release_free_pages

__all__ = ["AFTER_START_S", "HEAVY_MODULES", "start_warm_up", "warm_up"]

HEAVY_MODULES = ("httpx", "jinja2.sandbox", "jmespath")
"""Imported by nodes on first use, on the event loop; each costs tens to hundreds of
milliseconds. Not ``re2`` (regex nodes, patterns checked): its import takes some 2 ms, and loaded
in every server it stayed resident, 1.5 MiB, whether a pattern was ever used or not. Not Pillow
(``PIL.Image``, 20-45 ms, 3.9 MiB resident): the image nodes and the blob upload use it only on
worker threads, so its first import never holds the loop."""

_log = logging.getLogger("flowloom.nodes")


def warm_up() -> None:
    """Import the heavy modules (blocking: call on a thread), then hand the pages start-up
    freed back to the system (``flowloom.native_heap``). Not the shared TLS context: the first
    client builds it on a thread of its own (``flowloom.integrations.tls``), and an idle server
    keeps some 1.7 MiB less resident without it."""
    for name in HEAVY_MODULES:
        try:
            ensure_imported(name)
        except ImportError:
            _log.debug("warm-up: %s is not installed", name)
    release_free_pages()


AFTER_START_S: Final = 1.0
"""How long after start-up the warm-up begins: imports on a thread still hold the GIL part of
the time, and done during start-up they delayed the first answer by about 0.2 s."""


def start_warm_up(delay_s: float = AFTER_START_S) -> asyncio.Task[None]:
    """``warm_up`` on the loop's default executor after ``delay_s``; cancel the task to drop
    it if it has not begun."""

    async def later() -> None:
        await asyncio.sleep(delay_s)
        await asyncio.get_running_loop().run_in_executor(None, warm_up)

    return asyncio.get_running_loop().create_task(later(), name="flowloom warm-up")
