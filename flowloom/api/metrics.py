"""Prometheus metrics: runs by status, node durations, queue depth.

Counters and the duration histogram are fed from the engine's event bus (this process's
runs); the gauges of unfinished runs and of the node queue are read from the database when
scraped, so they are right for the whole instance, workers included. Each app has its own
``CollectorRegistry``, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from flowloom.engine import RUN_FINISHED_EVENTS, EventBus
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.repos.runs import active_runs_by_status
from flowloom.storage.tables import NodeExecution

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NODE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_QUEUED = (NodeStatus.READY, NodeStatus.RUNNING)


class _Snapshot(Collector):
    """Gauges read from the database at scrape time (filled in by ``Metrics.render``)."""

    def __init__(self) -> None:
        self.active: dict[RunStatus, int] = {}
        self.queue: dict[str, int] = {}

    def collect(self) -> Iterable[Metric]:
        active = GaugeMetricFamily(
            "flowloom_runs_active", "Unfinished runs by status (whole instance)", labels=["status"]
        )
        for status, count in self.active.items():
            active.add_metric([status.value], count)
        yield active
        queue = GaugeMetricFamily(
            "flowloom_node_queue_depth",
            "Node executions ready to run or running (whole instance)",
            labels=["status"],
        )
        for name, queued in self.queue.items():
            queue.add_metric([name], queued)
        yield queue


class Metrics:
    """The app's metrics; ``start`` follows the bus, ``render`` answers a scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs_started = Counter(
            "flowloom_runs_started", "Runs started in this process", registry=self.registry
        )
        self.runs_finished = Counter(
            "flowloom_runs_finished",
            "Runs finished in this process, by final status",
            ["status"],
            registry=self.registry,
        )
        self.node_duration = Histogram(
            "flowloom_node_duration_seconds",
            "Duration of node attempts in this process, by node outcome",
            ["outcome"],
            buckets=_NODE_BUCKETS_S,
            registry=self.registry,
        )
        self._snapshot = _Snapshot()
        self.registry.register(self._snapshot)
        self._task: asyncio.Task[None] | None = None

    def start(self, bus: EventBus) -> None:
        self._task = asyncio.create_task(self._follow(bus), name="flowloom metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self, bus: EventBus) -> None:
        with bus.subscribe() as events:
            async for event in events:
                if event.type == "run.started":
                    self.runs_started.inc()
                elif event.type in RUN_FINISHED_EVENTS:
                    status = event.type.removeprefix("run.").upper()
                    self.runs_finished.labels(status=status).inc()
                elif event.type in ("node.succeeded", "node.failed"):
                    duration_ms = event.data.get("duration_ms")
                    if isinstance(duration_ms, int | float):
                        outcome = event.type.removeprefix("node.")
                        self.node_duration.labels(outcome=outcome).observe(duration_ms / 1000)

    async def render(self, db: Database) -> bytes:
        async with db.read() as session:
            self._snapshot.active = await active_runs_by_status(session)
            # Instance-wide and cheap: the (status, lease_expires_at) index answers it.
            rows = await session.execute(
                select(NodeExecution.status, func.count())
                .where(NodeExecution.status.in_(_QUEUED))
                .group_by(NodeExecution.status)
            )
            queue = dict.fromkeys((s.value for s in _QUEUED), 0)
            for status, count in rows:
                queue[str(status)] = int(count)
            self._snapshot.queue = queue
        return generate_latest(self.registry)
