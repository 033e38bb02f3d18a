"""What the worker tests share: Redis and PostgreSQL (skip, or fail under CI), a node type
that says which process ran it, and real ``celery worker`` processes started per test."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "engine"))

from enginekit import registry as engine_registry  # noqa: E402

from flowloom.graph.ports import Port, PortType  # noqa: E402
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext  # noqa: E402
from flowloom.nodes.registry import NodeRegistry  # noqa: E402

REDIS_URL = os.environ.get("FLOWLOOM_TEST_REDIS_URL", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("FLOWLOOM_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = ("redis", "rabbitmq")


def require_redis() -> None:
    """Skip (or, under CI, fail) when Redis cannot be reached."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        message = f"Redis unreachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is an error)")
        pytest.skip(message)


def require_rabbitmq() -> None:
    """Skip (or, under CI, fail) when RabbitMQ cannot be reached."""
    from kombu import Connection

    try:
        with Connection(RABBITMQ_URL, connect_timeout=2) as connection:
            connection.connect()
    except Exception as exc:
        message = f"RabbitMQ unreachable at {RABBITMQ_URL}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is an error)")
        pytest.skip(message)


class WhoamiConfig(NodeConfig):
    seconds: float = 0.05


class Whoami(Node[WhoamiConfig]):
    """Sleeps a little, then outputs the process id that ran it (never cached)."""

    type_name = "test.whoami"
    category = Category.ACTION
    deterministic = False
    Config = WhoamiConfig

    def inputs(self, config: WhoamiConfig) -> list[Port]:
        return [Port("value", PortType.ANY, required=False, default=None)]

    def outputs(self, config: WhoamiConfig) -> list[Port]:
        return [Port("pid", PortType.INTEGER)]

    async def run(
        self, ctx: RunContext, config: WhoamiConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        await asyncio.sleep(config.seconds)
        return NodeResult({"pid": os.getpid()})


class HogConfig(NodeConfig):
    seconds: float = 1.0


class Hog(Node[HogConfig]):
    """Holds its worker's event loop (a synchronous sleep, as CPU work on the loop would)."""

    type_name = "test.hog"
    category = Category.ACTION
    deterministic = False
    Config = HogConfig

    def inputs(self, config: HogConfig) -> list[Port]:
        return [Port("value", PortType.ANY, required=False, default=None)]

    def outputs(self, config: HogConfig) -> list[Port]:
        return [Port("pid", PortType.INTEGER)]

    async def run(self, ctx: RunContext, config: HogConfig, inputs: dict[str, Any]) -> NodeResult:
        time.sleep(config.seconds)  # noqa: ASYNC251 - on purpose: the loop is held
        return NodeResult({"pid": os.getpid()})


def schema_database(schema: str) -> Callable[[Any], Any]:
    """A WorkerHost's ``open_database`` for a test: the test's PostgreSQL schema."""

    def open_database(settings: Any) -> Any:
        from pgkit import POSTGRES_URL

        from flowloom.storage.database import Database

        return Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})

    return open_database


def worker_registry() -> NodeRegistry:
    found = engine_registry()
    found.register(Whoami)
    found.register(Hog)
    return found


class Cluster:
    """One test's Redis namespace (its own DB number and queue) and its worker processes;
    the broker is that Redis, or RabbitMQ (``broker="rabbitmq"``, a queue of the test's own)."""

    def __init__(
        self,
        schema: str,
        tmp: Path,
        broker: str = "redis",
        node_queues: dict[str, str] | None = None,
    ) -> None:
        self.schema = schema
        self.node_queues = node_queues
        self.queue = f"fl_test_{secrets.token_hex(5)}"
        self.events_url = f"{REDIS_URL}/{secrets.randbelow(15) + 1}"
        self.broker = broker
        self.broker_url = RABBITMQ_URL if broker == "rabbitmq" else self.events_url
        self.tmp = tmp
        self.secret_key = secrets.token_urlsafe(32)
        self.workers: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FLOWLOOM_BROKER_URL": self.broker_url,
            "FLOWLOOM_EVENTS_URL": self.events_url,
            "FLOWLOOM_WORKER_QUEUE": self.queue,
            "FLOWLOOM_DATA_DIR": str(self.tmp),
            "FLOWLOOM_SECRET_KEY": self.secret_key,
            "FLOWLOOM_EXECUTOR": "celery",
            **(
                {"FLOWLOOM_WORKER_NODE_QUEUES": json.dumps(self.node_queues)}
                if self.node_queues is not None
                else {}
            ),
        }

    def settings(self) -> Any:
        from flowloom.settings import Settings

        return Settings(
            executor="celery",
            broker_url=self.broker_url,
            events_url=self.events_url,
            worker_queue=self.queue,
            data_dir=self.tmp,
            secret_key=self.secret_key,
            **({"worker_node_queues": self.node_queues} if self.node_queues is not None else {}),
        )

    def start_worker(
        self, *, concurrency: int = 1, pool: str = "solo", queues: str = ""
    ) -> subprocess.Popen[bytes]:
        """A worker process; ``queues``: what it consumes, comma-separated (default all)."""
        log = (self.tmp / f"worker{len(self.workers)}.log").open("wb")
        args = [self.schema, str(concurrency), pool, *([queues] if queues else [])]
        process = subprocess.Popen(
            [sys.executable, str(HERE / "worker_child.py"), *args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and every process of its group (prefork children too)."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.workers:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        import redis

        client = redis.Redis.from_url(self.events_url)
        keys = list(client.scan_iter(f"*{self.queue}*"))
        if keys:
            client.delete(*keys)
        client.close()
        if self.broker == "rabbitmq":
            from kombu import Connection

            with Connection(self.broker_url) as connection:
                for name in {self.queue, *(f"{self.queue}.{q}" for q in self.routed_names())}:
                    connection.default_channel.queue_delete(name)

    def routed_names(self) -> set[str]:
        routes = self.node_queues if self.node_queues is not None else {"image.*": "heavy"}
        return {name for name in routes.values() if name}

    def wait_ready(self, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
        """Until the worker's Celery consumer says it is ready for tasks."""
        log = self.tmp / f"worker{self.workers.index(process)}.log"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if " ready." in log.read_text(errors="replace"):
                return
            if process.poll() is not None:
                raise AssertionError(f"the worker exited:\n{self.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"the worker never became ready:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker*.log"))
        )


def settled_reads(api: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The runs the API engine reads back to see whether they settled (``store.settled``)
    from now on, with its safety-net read every ``_POLL_S`` put out of reach: on a loaded
    machine a worker's first run may take longer than that."""
    from flowloom.worker import remote

    reads: list[str] = []
    store: Any = api.store
    read = store.settled

    async def counted(run_id: str, *, finished_only: bool) -> Any:
        reads.append(run_id)
        return await read(run_id, finished_only=finished_only)

    monkeypatch.setattr(store, "settled", counted)
    monkeypatch.setattr(remote, "_POLL_S", 300.0)
    return reads
