"""What the browser tests share: where Chromium and the built UI are, and the screenshots."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BUILT_INDEX = ROOT / "flowloom" / "webui" / "static" / "index.html"
VIEWPORT = {"width": 1280, "height": 800}

Shot = Callable[[str], None]
"""``shot("step")``: save a screenshot of the page as the test's next numbered step."""


def artifacts_dir() -> Path:
    """Where screenshots go: ``$FLOWLOOM_UI_ARTIFACTS`` or ``tests/ui/artifacts``."""
    configured = os.environ.get("FLOWLOOM_UI_ARTIFACTS")
    return Path(configured) if configured else ROOT / "tests" / "ui" / "artifacts"


def require_browser() -> None:
    """Skip without Chromium or without a built UI, unless under CI, where that is a failure."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if not BUILT_INDEX.exists():
        missing.append(f"the built web UI {BUILT_INDEX} (make install)")
    if not missing:
        return
    reason = "missing " + " and ".join(missing)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


class Shots:
    """Numbered screenshots of one test's steps, kept as artifacts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.png"):
            old.unlink()

    def path(self, step: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        return self.directory / f"{self.count:02d}-{slug}.png"
