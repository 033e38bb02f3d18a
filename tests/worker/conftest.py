"""The worker tests reuse the engine tests' node types and helpers (tests/engine/enginekit.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
