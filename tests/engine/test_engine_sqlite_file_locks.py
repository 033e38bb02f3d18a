"""A run the engine finished on SQLite is finished in the file, for every other process too,
after another process took the write lock and closed its connection mid-run (see
tests/storage/test_sqlite_file_locks.py for why that could lose it)."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

from enginekit import CALLS, definition, edge, make_owner, node, registry, save_workflow
from outagekit import sqlite_in_another_process

from flowloom.engine import Engine
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.migrate import upgrade_database


async def test_a_run_finished_after_another_process_held_the_lock_is_finished_in_the_file(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    path = settings.sqlite_path
    assert path is not None
    db = Database.from_settings(settings)
    await upgrade_database(db)
    # As ``flowloom serve`` starts: the database is open (migrated) when the engine is made.
    engine = Engine.from_settings(db, settings, registry())
    try:
        tag = secrets.token_hex(3)
        a, s, b = f"a_{tag}", f"s_{tag}", f"b_{tag}"
        graph = definition(
            [node(a, "test.add"), node(s, "test.sleep", {"seconds": 0.3}), node(b, "test.add")],
            [edge(a, s), edge(s, b)],
        )
        owner = await make_owner(db)
        workflow_id = await save_workflow(db, owner, graph)
        run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)
        deadline = time.monotonic() + 10
        while CALLS[s] == 0:
            assert time.monotonic() < deadline, "the sleeping node never started"
            await asyncio.sleep(0.01)
        # While a node runs, another process takes the write lock and gives it back.
        await asyncio.to_thread(sqlite_in_another_process, path, ["BEGIN EXCLUSIVE", "ROLLBACK"])

        result = await asyncio.wait_for(engine.wait(run_id), 10)
        assert result.status is RunStatus.COMPLETED, result.error

        runs, nodes = await asyncio.to_thread(
            sqlite_in_another_process,
            path,
            [
                f"SELECT status FROM workflow_runs WHERE id = '{run_id}'",
                f"SELECT node_id, status FROM node_executions WHERE run_id = '{run_id}'",
            ],
        )
        assert runs == [["COMPLETED"]], "the engine's COMPLETED never reached the file"
        assert dict(map(tuple, nodes)) == {a: "SUCCEEDED", s: "SUCCEEDED", b: "SUCCEEDED"}
    finally:
        await engine.close()
        await db.dispose()
