"""Distributed mode under chaos, and its books. Used by tests/worker/test_worker_chaos.py
(CI-sized) and benchmarks/chaos.py (a thousand runs and more).

What runs: ``flowloom serve`` with ``executor = "celery"`` (it writes runs and queues them) and
``workers`` ``flowloom worker`` processes (prefork, each with ``concurrency`` children), all on
one fresh PostgreSQL database, Redis for run events and claims, and Redis or RabbitMQ as the
Celery broker. The load and most of the books are servekill.py's: submitters send runs through
the runs API and the webhook, each with its own idempotency key, again until answered; every
node of the workflow POSTs to a listener in this process with its ``Idempotency-Key``.

The chaos (``Havoc``, a seeded RNG picks what and when): SIGKILL of a whole worker (its process
group: the Celery parent and every child; a new worker is started in its place), of one prefork
child (Celery forks a new one), or of the API server (started again on its port). Every kill is
written down with its time, so that ``recoveries`` can say how long after a worker died the
node it was running ran again elsewhere.

On top of servekill's audit (lost, stuck, duplicated runs; effects after a committed success;
effects under any key but ``<run id>:<node id>``, which the listener cannot place and so counts
as a violation), ``stale`` counts the deliveries that found their run driven elsewhere or
finished (late copies of a task, harmless by design) from the workers' logs.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from servekill import Server

__all__ = [
    "BROKERS",
    "Havoc",
    "Kill",
    "Workers",
    "describe",
    "distributed_env",
    "quiet_kills",
    "recoveries",
    "stale_deliveries",
]

REDIS_URL = os.environ.get("FLOWLOOM_TEST_REDIS_URL", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("FLOWLOOM_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = ("redis", "rabbitmq")
WORKER_COMMAND = [sys.executable, "-m", "flowloom.cli.main", "worker"]
KILL_KINDS = ("worker", "child", "api")


def distributed_env(broker: str, database_env: Mapping[str, str]) -> dict[str, str]:
    """Settings for the server and the workers of one chaos: ``database_env`` (servekill's,
    a fresh PostgreSQL database), a Redis database and a queue of their own, the broker."""
    if broker not in BROKERS:
        raise ValueError(f"unknown broker {broker!r}: {' or '.join(BROKERS)}")
    events_url = f"{REDIS_URL}/{secrets.randbelow(15) + 1}"
    return {
        **database_env,
        "FLOWLOOM_EXECUTOR": "celery",
        "FLOWLOOM_EVENTS_URL": events_url,
        "FLOWLOOM_BROKER_URL": RABBITMQ_URL if broker == "rabbitmq" else events_url,
        "FLOWLOOM_WORKER_QUEUE": f"fl_chaos_{secrets.token_hex(4)}",
    }


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (read from /proc)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


class Workers:
    """``count`` ``flowloom worker`` processes, each in a process group of its own."""

    def __init__(
        self,
        folder: Path,
        env: Mapping[str, str],
        *,
        count: int,
        concurrency: int,
        pool: str = "prefork",
    ) -> None:
        self.folder, self.env = folder, {**os.environ, **env}
        self.count, self.concurrency, self.pool = count, concurrency, pool
        self.processes: list[subprocess.Popen[bytes]] = []
        self._started = 0
        self.lock = threading.Lock()

    def _start_one(self) -> subprocess.Popen[bytes]:
        log = (self.folder / f"worker{self._started}.log").open("ab")
        self._started += 1
        process = subprocess.Popen(
            [*WORKER_COMMAND, f"--concurrency={self.concurrency}", f"--pool={self.pool}"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return process

    def start(self) -> Workers:
        with self.lock:
            self.processes = [self._start_one() for _ in range(self.count)]
        return self

    def wait_ready(self, timeout_s: float = 90) -> None:
        """Until every worker's Celery consumer says it is ready (AssertionError if not)."""
        deadline = time.monotonic() + timeout_s
        for number in range(self._started - self.count, self._started):
            log = self.folder / f"worker{number}.log"
            while " ready." not in log.read_text(errors="replace"):
                assert time.monotonic() < deadline, f"worker {number} never became ready"
                time.sleep(0.1)

    def kill_worker(self, rng: random.Random) -> None:
        """SIGKILL one worker's whole process group; start another in its place."""
        with self.lock:
            victim = rng.choice(self.processes)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            self.processes[self.processes.index(victim)] = self._start_one()

    def kill_child(self, rng: random.Random) -> bool:
        """SIGKILL one prefork child of a worker (Celery forks a new one); False if none of
        the workers has a child yet."""
        with self.lock:
            children = [child for p in self.processes for child in _children(p.pid)]
            if not children:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.kill(rng.choice(children), signal.SIGKILL)
            return True

    def stop(self) -> None:
        with self.lock:
            for process in self.processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            for process in self.processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.folder.glob("worker*.log"))
        )

    def __enter__(self) -> Workers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Kill:
    kind: str
    at: float
    """Unix time of the SIGKILL."""


@dataclass
class Havoc:
    """A killer thread over the workers and the API server: every ``between_s`` (random, from
    ``rng``), a kill of a kind drawn with ``weights`` (worker, child, api), or taken in turn
    from ``plan`` when one is given, until ``max_kills`` or ``finish``. ``paused`` holds the
    kills (e.g. during a database outage)."""

    workers: Workers
    server: Server
    rng: random.Random
    between_s: tuple[float, float]
    weights: tuple[float, float, float] = (0.45, 0.35, 0.2)
    max_kills: int | None = None
    plan: tuple[str, ...] = ()
    kills: list[Kill] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    paused: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    busy: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="havoc")

    def start(self) -> Havoc:
        self._thread.start()
        return self

    def count(self) -> Counter[str]:
        return Counter(kill.kind for kill in self.kills)

    def pause(self) -> None:
        """No kills until ``resume``; returns once a kill in progress (a restart) is over."""
        self.paused.set()
        with self.busy:
            pass

    def resume(self) -> None:
        self.paused.clear()

    def finish(self) -> None:
        self.stopped.set()
        self._thread.join(120)
        if self.errors:
            raise AssertionError("a kill went wrong") from self.errors[0]

    def _run(self) -> None:
        try:
            while not self.stopped.wait(self.rng.uniform(*self.between_s)):
                if self.max_kills is not None and len(self.kills) >= self.max_kills:
                    return
                with self.busy:
                    if self.paused.is_set():
                        continue
                    if self.plan:
                        self._kill(self.plan[len(self.kills) % len(self.plan)])
                    else:
                        self._kill(self.rng.choices(KILL_KINDS, self.weights)[0])
        except BaseException as exc:
            self.errors.append(exc)

    def _kill(self, kind: str) -> None:
        at = time.time()
        if kind == "worker":
            self.workers.kill_worker(self.rng)
        elif kind == "child":
            if not self.workers.kill_child(self.rng):
                return
        else:
            self.server.kill()
            self.server.start()
        self.kills.append(Kill(kind, at))


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def recoveries(details: Mapping[str, Mapping[str, Any]], kills: list[Kill]) -> list[float]:
    """For every node attempt that a worker's death interrupted: seconds from that kill (the
    latest worker or child kill while the attempt ran) to the start of the next attempt."""
    deaths = sorted(k.at for k in kills if k.kind in ("worker", "child"))
    found: list[float] = []
    for run in details.values():
        for node in run.get("nodes", ()):
            attempts = node.get("attempts") or []
            for before, after in itertools.pairwise(attempts):
                if before.get("status") != "INTERRUPTED" or not after.get("started_at"):
                    continue
                began, resumed = _unix(before["started_at"]), _unix(after["started_at"])
                killed = [at for at in deaths if began - 0.5 <= at <= resumed]
                if killed:
                    found.append(resumed - killed[-1])
    return found


_STALE = re.compile(r"run \S+: (driven by another worker|driven here already|nothing to do)")


def stale_deliveries(logs: str) -> Counter[str]:
    """Deliveries that found nothing to do, by what they found: late or repeated copies of a
    task (a killed worker's unacknowledged one, a re-queue by the sweep)."""
    return Counter(match.group(1) for match in _STALE.finditer(logs))


def describe(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    return f"n={len(values)} median {statistics.median(ordered):.2f} s, max {ordered[-1]:.2f} s"


@contextlib.contextmanager
def quiet_kills(havoc: Havoc) -> Iterator[None]:
    """Kills paused inside (a database outage, say), resumed on leaving."""
    havoc.pause()
    try:
        yield
    finally:
        havoc.resume()
