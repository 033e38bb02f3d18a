"""The ``flowloom`` command's entry point (also ``python -m flowloom.cli``).

Loading the CLI and what a command needs makes some 190,000 objects that live as long as the
process, and the garbage collector's passes over them while they are being made were a quarter
of the CPU time of a server's start. So the collector is off while the modules load: the CLI's
callback turns it back on before every command but ``serve``, whose app turns it on once it
has started (``create_app(freeze_gc=True)``, which freezes what the start made).
Importing ``flowloom.cli.main`` any other way (tests) leaves the collector alone.

The command's process also never loads the library parts in ``UNUSED_MODULES``
(:func:`skip_unused_modules`); ``import flowloom`` in a program of its own changes nothing there.
"""

from __future__ import annotations

import gc
import sys
from typing import Final

__all__ = ["UNUSED_MODULES", "main", "skip_unused_modules"]

UNUSED_MODULES: Final = ("httpx._main", "pydantic.v1", "watchfiles")
"""Modules a library imports when it can, that no flowloom command uses. ``httpx._main`` is
httpx's own command line: ``httpx/__init__`` imports it, and with it rich and pygments (some
70 modules, 4.5 MiB that stayed resident in every server, 35 ms of its warm-up); without it
httpx defines a stub ``main`` that only says what to install. ``watchfiles`` is what uvicorn's
``--reload`` watches files with (``import uvicorn`` loads it, 0.9 MiB and a few milliseconds):
``flowloom serve`` never reloads, and without it uvicorn picks its polling reloader.
``pydantic.v1`` is pydantic's copy of its first major version: FastAPI imports it only to check
that no route uses a model of it, and takes its absence as "none does" (flowloom's models are
all pydantic 2; 17 ms and 1.7 MiB of a server's start)."""


def skip_unused_modules() -> None:
    """Mark each of ``UNUSED_MODULES`` not loaded yet as missing (``sys.modules[name] = None``):
    ``import`` then raises ImportError for it, which the importing library handles."""
    for name in UNUSED_MODULES:
        if name not in sys.modules:
            # None is how the import system spells "missing"; typeshed allows modules only.
            sys.modules[name] = None  # type: ignore[assignment]


def main() -> None:
    gc.disable()
    skip_unused_modules()
    from flowloom.cli.main import app

    app()
