"""A `flowloom worker` for the tests: the same ``run_worker`` as the CLI, with the engine tests'
node types plus ``test.whoami``, on the test's PostgreSQL schema. Settings come from FLOWLOOM_*.

Usage: python worker_child.py SCHEMA CONCURRENCY POOL [QUEUE,QUEUE...]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "engine")]

from pgkit import POSTGRES_URL  # noqa: E402
from workerkit import worker_registry  # noqa: E402

from flowloom.settings import Settings  # noqa: E402
from flowloom.storage.database import Database  # noqa: E402
from flowloom.worker.celery_app import run_worker  # noqa: E402


def main() -> None:
    schema, concurrency, pool = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    queues = sys.argv[4].split(",") if len(sys.argv) > 4 else None

    def open_database(settings: Settings) -> Database:
        return Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})

    run_worker(
        Settings(),
        concurrency=concurrency,
        pool=pool,
        registry=worker_registry(),
        open_database=open_database,
        queues=queues,
    )


if __name__ == "__main__":
    main()
