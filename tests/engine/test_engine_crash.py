"""Crash tests: a process running a workflow dies at a failpoint; a fresh engine resumes it.

The child is a real process killed by ``os._exit`` at the worst moments: after nodes ran and
before their results were committed, and after a commit and before the children it released
were dispatched. Side effects are counted in a file the test nodes append to, which survives
the dead process. On SQLite (a real file) and PostgreSQL (a real schema).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from crashkit import Place, counted, resume_to_end, run_child
from enginekit import chain, make_owner, node_rows, save_workflow
from sqlalchemy import select

from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import WorkflowRun


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

    result = await resume_to_end(place.db, run_id)

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
