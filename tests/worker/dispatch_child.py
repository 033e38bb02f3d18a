"""The API side of distributed mode in a fresh process (Celery not imported yet): start the
engine as ``flowloom serve`` does, then start N runs at once, the way the first requests after
a start arrive. Prints one line: the number of runs started and whether Celery was imported
meanwhile, then exits 0; any error exits 1.

Usage: python dispatch_child.py SCHEMA OWNER_ID WORKFLOW_ID N  (settings from FLOWLOOM_*)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "engine")]

from pgkit import POSTGRES_URL  # noqa: E402
from workerkit import worker_registry  # noqa: E402

from flowloom.settings import Settings  # noqa: E402
from flowloom.storage.database import Database  # noqa: E402
from flowloom.worker.remote import RemoteEngine  # noqa: E402


async def main(schema: str, owner_id: str, workflow_id: str, count: int) -> int:
    assert "celery" not in sys.modules, "the point is a process that has not imported Celery"
    db = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    engine = RemoteEngine.from_settings(db, Settings(), worker_registry())
    try:
        await engine.resume_unfinished()
        started = await asyncio.gather(
            *(
                engine.start_run(owner_id=owner_id, workflow_id=workflow_id, use_cache=False)
                for _ in range(count)
            )
        )
        print(len(set(started)), "celery" in sys.modules)
    finally:
        await engine.close()
        await db.dispose()
    return 0


if __name__ == "__main__":
    schema, owner_id, workflow_id, count = sys.argv[1:5]
    sys.exit(asyncio.run(main(schema, owner_id, workflow_id, int(count))))
