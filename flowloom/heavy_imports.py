"""Heavy modules imported when first needed, from any thread, one import at a time.

flowloom imports provider SDKs, httpx, Pillow and the like lazily (start-up stays fast), and
the server warms some of them on a thread a second after start-up. Python's per-module import
locks do not make two threads importing *related* modules safe: while one thread runs a
package's ``__init__`` and another imports one of its submodules by its dotted name, the second
thread executes the submodule against the half-built package, and whichever thread loses the
import machinery's deadlock check gets a partially initialized module (``ImportError: cannot
import name ... from partially initialized module``). For a first streamed answer that was a
failed node while the warm-up thread was still importing httpx.

Every lazy import of a heavy module goes through :func:`ensure_imported` (or
:func:`imported`, its off-the-loop form): one process-wide lock, taken only while a module is
not yet whole, so no two threads ever interleave those imports; once a module is loaded the
check is a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading

__all__ = ["ensure_imported", "imported", "is_imported"]

_lock = threading.RLock()


def is_imported(name: str) -> bool:
    """Whether module ``name`` is loaded whole (not missing, not still being executed)."""
    module = sys.modules.get(name)
    if module is None:
        return False
    return not getattr(getattr(module, "__spec__", None), "_initializing", False)


def ensure_imported(*names: str) -> None:
    """Import each module of ``names`` that is not loaded yet, under the process-wide lock;
    blocks while another thread imports through it. ImportError as ``import`` raises it."""
    for name in names:
        if is_imported(name):
            continue
        with _lock:
            importlib.import_module(name)


async def imported(*names: str) -> None:
    """:func:`ensure_imported` off the event loop: a first import (hundreds of milliseconds
    for an SDK) runs on a thread while the loop serves others; nothing happens when every
    module is already loaded."""
    if all(is_imported(name) for name in names):
        return
    await asyncio.to_thread(ensure_imported, *names)
