"""Run one workflow to the end in this process; crash tests arm a failpoint so it dies midway.

    python crash_child.py DATABASE_URL SCHEMA OWNER_ID WORKFLOW_ID COUNT_FILE

SCHEMA is the PostgreSQL schema to use, or "-" for none. Exits 0 if the run completed.
``FLOWLOOM_TEST_BATCH_WINDOW_S``, when set, is the engine's batch window (``batching.py``).
"""

from __future__ import annotations

import asyncio
import os
import sys

from enginekit import registry

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus


async def main(url: str, schema: str, owner_id: str, workflow_id: str, count_file: str) -> int:
    connect_args = {} if schema == "-" else {"server_settings": {"search_path": schema}}
    db = Database(url, connect_args=connect_args)
    window = os.environ.get("FLOWLOOM_TEST_BATCH_WINDOW_S")
    options = {} if window is None else {"batch_window_s": float(window)}
    engine = Engine(db, registry(), **options)
    try:
        result = await engine.run_to_end(
            owner_id=owner_id,
            workflow_id=workflow_id,
            inputs={"count_file": count_file},
            use_cache=False,
        )
    finally:
        await engine.close()
        await db.dispose()
    return 0 if result.status is RunStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:6])))
