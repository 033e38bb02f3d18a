"""What the crash tests share: a database a child process can open too (``Place``; the
``place`` fixture in conftest.py makes a fresh one), and running ``crash_child.py`` with a
failpoint armed until it dies there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from enginekit import registry

from flowloom.engine import FAILPOINT_EXIT_CODE, Engine, RunResult
from flowloom.storage.database import Database

HERE = Path(__file__).resolve().parent


class Place:
    def __init__(self, db: Database, url: str, schema: str) -> None:
        self.db = db
        self.url = url
        self.schema = schema


def run_child(
    place: Place,
    owner: str,
    workflow_id: str,
    count_file: Path,
    failpoint: str,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the workflow in a child process that must die at ``failpoint``; ``env`` adds to
    its environment (``FLOWLOOM_TEST_BATCH_WINDOW_S``: its engine's batch window)."""
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "crash_child.py"),
            place.url,
            place.schema,
            owner,
            workflow_id,
            str(count_file),
        ],
        env={**os.environ, **(env or {}), "FLOWLOOM_FAILPOINTS": failpoint},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == FAILPOINT_EXIT_CODE, done.stderr
    return done.returncode


def counted(count_file: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in count_file.read_text().splitlines())


async def resume_to_end(db: Database, run_id: str) -> RunResult:
    """What a fresh engine makes of the crashed run: it must be the one run to resume."""
    engine = Engine(db, registry())
    try:
        assert await engine.resume_unfinished() == [run_id]
        return await engine.wait(run_id)
    finally:
        await engine.close()
