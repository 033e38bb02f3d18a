"""Prometheus metrics: runs by status, run durations per workflow, node durations per node type,
queue depth, event-loop lag.

Counters and the duration histograms are fed from the engine's event bus (this process's
runs; in distributed mode, from the digests of every run's events that the API's ``FeedBus``
reads, so that no event of a run nobody follows here is decoded for them); the gauges of
unfinished runs and of the node queue are read from the database when scraped, so they are
right for the whole instance, workers included. The loop-lag histogram is fed by the watchdog
(``flowloom.engine.looplag``) that ``start`` runs beside.

Mean, p95 and failure rate per workflow and per node type come from the histograms (``_sum`` /
``_count``, ``histogram_quantile(0.95, ...)``, the ``status`` / ``outcome`` labels); the API's
``GET /admin/health/durations`` answers the same from the database for the whole instance.
Each app has its own ``CollectorRegistry``, so several apps in one process (tests) do not
collide.
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
from flowloom.engine.looplag import watch_loop_lag
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.repos.runs import active_runs_by_status
from flowloom.storage.tables import NodeExecution
from flowloom.worker.relay import FeedBus

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_RUN_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_NODE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_LAG_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
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
        self.run_duration = Histogram(
            "flowloom_run_duration_seconds",
            "Duration of runs finished in this process, by workflow and final status",
            ["workflow_id", "status"],
            buckets=_RUN_BUCKETS_S,
            registry=self.registry,
        )
        self.node_duration = Histogram(
            "flowloom_node_duration_seconds",
            "Duration of node attempts in this process, by node type and outcome",
            ["node_type", "outcome"],
            buckets=_NODE_BUCKETS_S,
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "flowloom_event_loop_lag_seconds",
            "How late the event loop woke the lag watchdog (time it could not serve)",
            buckets=_LAG_BUCKETS_S,
            registry=self.registry,
        )
        self._snapshot = _Snapshot()
        self.registry.register(self._snapshot)
        self._tasks: list[asyncio.Task[None]] = []
        self._digests: FeedBus | None = None
        # A labelled series is looked up once, then kept: ``labels()`` checks and locks at
        # every call, several times per run on the hottest path. Series are never removed.
        self._finished: dict[str, Counter] = {}
        self._runs: dict[tuple[str, str], Histogram] = {}
        self._nodes: dict[tuple[str, str], Histogram] = {}

    def start(self, bus: EventBus) -> None:
        """Follow ``bus`` (its digests when it has them) and watch the event loop's lag,
        until ``stop``."""
        self._tasks = [
            asyncio.create_task(
                watch_loop_lag(on_lag=self.loop_lag.observe), name="flowloom loop lag"
            )
        ]
        if isinstance(bus, FeedBus):
            self._digests = bus
            bus.read_digests(self)
        else:
            self._digests = None
            self._tasks.append(asyncio.create_task(self._follow(bus), name="flowloom metrics"))

    async def stop(self) -> None:
        if self._digests is not None:
            self._digests.stop_reading(self)
            self._digests = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _follow(self, bus: EventBus) -> None:
        with bus.subscribe() as events:
            async for event in events:
                kind = event.type
                if kind == "run.started":
                    self.run_started()
                elif kind in RUN_FINISHED_EVENTS:
                    data = event.data
                    self.run_finished(kind, data.get("workflow_id"), data.get("duration_ms"))
                elif kind in ("node.succeeded", "node.failed"):
                    data = event.data
                    node_type = str(data.get("node_type") or "unknown")
                    self.node_ended(node_type, kind, data.get("duration_ms"))

    def run_started(self) -> None:
        self.runs_started.inc()

    def run_finished(self, kind: str, workflow_id: object, duration_ms: object) -> None:
        """A run ended with ``kind`` (``run.completed``, ...): counted, and its duration
        observed when the event carried it."""
        status = kind.removeprefix("run.").upper()
        counter = self._finished.get(status)
        if counter is None:
            counter = self._finished[status] = self.runs_finished.labels(status=status)
        counter.inc()
        if isinstance(duration_ms, int | float) and isinstance(workflow_id, str):
            key = (workflow_id, status)
            histogram = self._runs.get(key)
            if histogram is None:
                histogram = self._runs[key] = self.run_duration.labels(
                    workflow_id=workflow_id, status=status
                )
            histogram.observe(duration_ms / 1000)

    def node_ended(self, node_type: str, kind: str, duration_ms: object) -> None:
        """A node attempt ended with ``kind`` (``node.succeeded`` or ``node.failed``)."""
        if not isinstance(duration_ms, int | float):
            return
        key = (node_type, kind)
        histogram = self._nodes.get(key)
        if histogram is None:
            histogram = self._nodes[key] = self.node_duration.labels(
                node_type=node_type, outcome=kind.removeprefix("node.")
            )
        histogram.observe(duration_ms / 1000)

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
