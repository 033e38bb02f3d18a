"""The Celery app, its tasks, and ``run_worker`` (what ``flowloom worker`` starts).

Tasks are acknowledged late (after the run was driven) with a prefetch of 1, so a worker
never sits on runs it has not started; a task whose worker process died is handed out again
(``task_reject_on_worker_lost``), and the sweep covers a whole worker that was killed. There is
no result backend: the database holds every outcome. When the broker is the claims' Redis, runs
do not come as tasks at all (each process's engine takes them from the runs' inbox:
``inbox.py``); the tasks then carry routed node jobs, and any run a peer still sends as a task.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowloom.exceptions import ConfigurationError
from flowloom.nodes.registry import NodeRegistry
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.worker import DRIVE_MANY_TASK, DRIVE_TASK, NODE_TASK, RUNS_QUEUE
from flowloom.worker.host import WorkerHost, log_outcome
from flowloom.worker.node_queues import NodeRoutes, queue_name

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "BROKER_REDIS_TRANSPORT",
    "make_celery",
    "node_sender",
    "run_worker",
    "task_sender",
    "worker_queues",
]

_log = logging.getLogger("flowloom.worker")
BROKER_REDIS_TRANSPORT = "flowloom.worker.broker_redis:Transport"


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
    if settings.broker_url.partition("://")[0] in ("redis", "rediss"):
        # kombu's Redis transport with its bookkeeping client built once (``broker_redis``;
        # Celery imports it when it connects).
        app.conf.broker_transport = BROKER_REDIS_TRANSPORT
    return app


def task_sender(app: Celery, settings: Settings) -> Callable[[list[str]], None]:
    """A blocking function that queues ``drive_runs(run_ids)`` on the settings' queue."""
    queue = settings.worker_queue

    def send(run_ids: list[str]) -> None:
        app.send_task(DRIVE_MANY_TASK, args=[run_ids], queue=queue)

    return send


def node_sender(app: Celery) -> Callable[[str, dict[str, Any]], None]:
    """A blocking function that queues ``run_node(job)`` on a routed node queue."""

    def send(queue: str, job: dict[str, Any]) -> None:
        app.send_task(NODE_TASK, args=[job], queue=queue)

    return send


def worker_queues(settings: Settings, names: list[str] | None = None) -> list[str]:
    """The Celery queues a worker consumes: ``names`` (``runs`` for the runs' queue, or a
    route's queue name), or by default the runs' queue and every routed one.
    ConfigurationError naming a name no route has."""
    routes = NodeRoutes(settings.worker_node_queues, namespace=settings.worker_queue)
    routed = routes.queues()
    if not names:
        return [settings.worker_queue, *routed]
    found: list[str] = []
    for name in names:
        if name == RUNS_QUEUE:
            found.append(settings.worker_queue)
        elif queue_name(settings.worker_queue, name) in routed:
            found.append(queue_name(settings.worker_queue, name))
        else:
            known = ", ".join([RUNS_QUEUE, *(q.rsplit(".", 1)[-1] for q in routed)])
            raise ConfigurationError(f"no queue named {name!r}: the queues are {known}")
    return list(dict.fromkeys(found))


def run_worker(
    settings: Settings,
    *,
    concurrency: int = 1,
    pool: str = "prefork",
    registry: NodeRegistry | None = None,
    open_database: Callable[[Settings], Database] = Database.from_settings,
    extra_args: list[str] | None = None,
    queues: list[str] | None = None,
) -> None:
    """Run a Celery worker on the settings' queues until it is stopped.

    ``queues`` names what it consumes (see ``worker_queues``): by default the runs and every
    routed node queue. A worker that consumes a route's queue runs those nodes itself when it
    drives their run; one that does not sends them to the queue and waits (so a worker never
    waits for a queue only it could serve).

    ``registry`` and ``open_database`` replace the default node types and database (tests use
    them for their own node types and schemas). Each process that executes tasks (the prefork
    children, or the one process of the solo pool) hosts one ``WorkerHost``, started in that
    process and never shared across a fork.
    """
    from celery.signals import celeryd_after_setup, worker_process_init, worker_process_shutdown

    consumed = worker_queues(settings, queues)
    app = make_celery(settings)
    send = task_sender(app, settings)
    send_node = node_sender(app)
    hosts: list[WorkerHost] = []

    def start_host(**_: Any) -> None:
        host = WorkerHost(
            settings, send, registry, open_database, send_node=send_node, consumed=consumed
        )
        host.start()
        hosts.append(host)

    def stop_host(**_: Any) -> None:
        while hosts:
            hosts.pop().stop()

    @app.task(name=DRIVE_MANY_TASK)  # type: ignore[untyped-decorator]
    def drive_runs(run_ids: list[str]) -> None:
        if not hosts:
            start_host()
        for run_id, outcome in zip(run_ids, hosts[0].drive_many(run_ids), strict=True):
            log_outcome(run_id, outcome)

    @app.task(name=DRIVE_TASK)  # type: ignore[untyped-decorator]
    def drive_run(run_id: str) -> None:
        drive_runs([run_id])

    @app.task(name=NODE_TASK)  # type: ignore[untyped-decorator]
    def run_node(job: dict[str, Any]) -> None:
        if not hosts:
            start_host()
        outcome = hosts[0].run_node(job)
        _log.info("run %s, node %s: %s", job.get("run_id"), job.get("node_id"), outcome)

    # Celery's two INFO lines per task ("received", "succeeded in") cost more than the work of
    # a short run; flowloom logs one line per task of its own (what happened to the run).
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if pool == "prefork":
        worker_process_init.connect(start_host, weak=False)
        worker_process_shutdown.connect(stop_host, weak=False)
    else:
        # Once Celery has set up logging (before it consumes): a host taking runs from the
        # inbox drives them at once, and what it logs must not be lost.
        celeryd_after_setup.connect(start_host, weak=False)
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--queues={','.join(consumed)}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        # No worker-heartbeat events (a broadcast every 2 s from each worker to a monitor that
        # flowloom does not run): whether a worker lives is its run claims' business.
        "--without-heartbeat",
        # A node name of its own, so several `flowloom worker`s on one host stay apart.
        f"--hostname=flowloom-{os.getpid()}@%h",
        *(extra_args or []),
    ]
    try:
        app.worker_main(argv=argv)
    finally:
        stop_host()
