"""The ``flowloom`` command's entry point (also ``python -m flowloom.cli``).

Loading the CLI and what a command needs makes some 190,000 objects that live as long as the
process, and the garbage collector's passes over them while they are being made were a quarter
of the CPU time of a server's start. So the collector is off while the modules load: the CLI's
callback turns it back on before every command but ``serve``, whose app turns it on once it
has started (``create_app(freeze_gc=True)``, which freezes what the start made).
Importing ``flowloom.cli.main`` any other way (tests) leaves the collector alone.
"""

from __future__ import annotations

import gc

__all__ = ["main"]


def main() -> None:
    gc.disable()
    from flowloom.cli.main import app

    app()
