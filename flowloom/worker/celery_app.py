"""The Celery app, its one task, and ``run_worker`` (what ``flowloom worker`` starts).

Tasks are acknowledged late (after the run was driven) with a prefetch of 1, so a worker
never sits on runs it has not started; a task whose worker process died is handed out again
(``task_reject_on_worker_lost``), and the sweep covers a whole worker that was killed. There is
no result backend: the database holds every outcome.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowloom.nodes.registry import NodeRegistry
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.worker import DRIVE_TASK
from flowloom.worker.host import WorkerHost

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["make_celery", "run_worker", "task_sender"]

_log = logging.getLogger("flowloom.worker")


def make_celery(settings: Settings) -> Celery:
    """A Celery app for the settings' broker and queue (imports Celery: call it lazily)."""
    from celery import Celery

    app = Celery("flowloom", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.worker_queue,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # No remote control: flowloom never uses it, and on RabbitMQ each worker's control
        # queue is exclusive to its node name (two workers on one host would clash).
        worker_enable_remote_control=False,
        # Redis redelivers an unacknowledged task (its worker was killed) after this; the
        # sweep has resumed the run long before, so the late copy only finds it driven.
        broker_transport_options={"visibility_timeout": settings.worker_visibility_timeout_s},
    )
    return app


def task_sender(app: Celery, settings: Settings) -> Callable[[str], None]:
    """A blocking function that queues ``drive_run(run_id)`` on the settings' queue."""
    queue = settings.worker_queue

    def send(run_id: str) -> None:
        app.send_task(DRIVE_TASK, args=[run_id], queue=queue)

    return send


def run_worker(
    settings: Settings,
    *,
    concurrency: int = 1,
    pool: str = "prefork",
    registry: NodeRegistry | None = None,
    open_database: Callable[[Settings], Database] = Database.from_settings,
    extra_args: list[str] | None = None,
) -> None:
    """Run a Celery worker on the settings' queue until it is stopped.

    ``registry`` and ``open_database`` replace the default node types and database (tests use
    them for their own node types and schemas). Each process that executes tasks (the prefork
    children, or the one process of the solo pool) hosts one ``WorkerHost``, started in that
    process and never shared across a fork.
    """
    from celery.signals import worker_process_init, worker_process_shutdown

    app = make_celery(settings)
    send = task_sender(app, settings)
    hosts: list[WorkerHost] = []

    def start_host(**_: Any) -> None:
        host = WorkerHost(settings, send, registry, open_database)
        host.start()
        hosts.append(host)

    def stop_host(**_: Any) -> None:
        while hosts:
            hosts.pop().stop()

    @app.task(name=DRIVE_TASK)  # type: ignore[untyped-decorator]
    def drive_run(run_id: str) -> None:
        if not hosts:
            start_host()
        outcome = hosts[0].drive(run_id)
        _log.info("run %s: %s", run_id, outcome)

    if pool == "prefork":
        worker_process_init.connect(start_host, weak=False)
        worker_process_shutdown.connect(stop_host, weak=False)
    else:
        start_host()
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--queues={settings.worker_queue}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        # A node name of its own, so several `flowloom worker`s on one host stay apart.
        f"--hostname=flowloom-{os.getpid()}@%h",
        *(extra_args or []),
    ]
    try:
        app.worker_main(argv=argv)
    finally:
        stop_host()
