"""Making a file system change survive a crash."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_directory"]


def fsync_directory(folder: Path) -> None:
    """Flush ``folder``'s entries, so a file just created or renamed in it stays after a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
