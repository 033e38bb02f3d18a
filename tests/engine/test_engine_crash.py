"""Crash tests: a process running a workflow dies at a failpoint; a fresh engine resumes it.

The child is a real process killed by ``os._exit`` at the worst moments: after nodes ran and
before their results were committed, and after a commit and before the children it released
were dispatched. Side effects are counted in a file the test nodes append to, which survives
the dead process. On SQLite (a real file) and PostgreSQL (a real schema).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from enginekit import chain, make_owner, node_rows, registry, save_workflow
from pgkit import POSTGRES_URL, drop_postgres_schema, make_postgres_database
from sqlalchemy import select

from flowloom.engine import FAILPOINT_EXIT_CODE, Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.tables import WorkflowRun

HERE = Path(__file__).resolve().parent


class Place:
    def __init__(self, db: Database, url: str, schema: str) -> None:
        self.db = db
        self.url = url
        self.schema = schema


@pytest.fixture
async def place(db_kind: str, tmp_path: Path) -> AsyncIterator[Place]:
    if db_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.db'}"
        db = Database(url)
        await upgrade_database(db)
        yield Place(db, url, "-")
        await db.dispose()
        return

    schema = f"t_{secrets.token_hex(6)}"
    db = await make_postgres_database(schema)
    await upgrade_database(db)
    yield Place(db, POSTGRES_URL, schema)
    await db.dispose()
    await drop_postgres_schema(schema)


def run_child(place: Place, owner: str, workflow_id: str, count_file: Path, failpoint: str) -> int:
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
        env={**os.environ, "FLOWLOOM_FAILPOINTS": failpoint},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == FAILPOINT_EXIT_CODE, done.stderr
    return done.returncode


def counted(count_file: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in count_file.read_text().splitlines())


@pytest.mark.parametrize(
    ("failpoint", "runs_twice"),
    [
        # n1 and n2 committed; n3 ran but its result died with the process: it runs again.
        ("after_effect_before_commit@3", {"n3"}),
        # n2 was claimed and committed RUNNING, never dispatched: it runs once, as attempt 2.
        ("after_commit_before_release@2", set()),
    ],
)
async def test_a_run_killed_at_a_failpoint_resumes_without_rerunning_succeeded_nodes(
    place: Place, tmp_path: Path, failpoint: str, runs_twice: set[str]
) -> None:
    owner = await make_owner(place.db)
    workflow_id = await save_workflow(place.db, owner, chain(5))
    count_file = tmp_path / "count.txt"
    count_file.touch()

    run_child(place, owner, workflow_id, count_file, failpoint)

    async with place.db.read() as session:
        run = await session.scalar(
            select(WorkflowRun).where(WorkflowRun.workflow_id == workflow_id)
        )
        assert run is not None
        run_id = run.id
        assert run.status == RunStatus.RUNNING, "the child died mid-run"
    before = counted(count_file)
    assert sum(before.values()) < 5

    engine = Engine(place.db, registry())
    try:
        assert await engine.resume_unfinished() == [run_id]
        result = await engine.wait(run_id)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"n5": {"value": 5}}
    rows = await node_rows(place.db, run_id)
    assert {row.status for row in rows.values()} == {NodeStatus.SUCCEEDED}
    effects = counted(count_file)
    assert effects == Counter({f"n{i}": 2 if f"n{i}" in runs_twice else 1 for i in range(1, 6)})
    for node_id, row in rows.items():
        interrupted = [a for a in row.attempts if a["status"] == "INTERRUPTED"]
        if interrupted:
            assert row.attempt == 2, node_id
