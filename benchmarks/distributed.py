"""Distributed mode's throughput and CPU per run against in-process ``serve``, and a model of
ten workers on machines of their own with PostgreSQL as the shared bottleneck.

    python -m benchmarks.distributed [--runs 400] [--clients 16] [--workers 2]
                                     [--concurrency 2] [--pool prefork|threads|solo]
                                     [--width 10] [--profile DIR] [--idle SECONDS]
                                     [--rounds 1]

The workload: a trivial fan-out of ``width + 1`` nodes (``text.value`` -> width x
``text.template``), sent through the runs API with ``wait=true`` by ``clients`` threads. Each
phase runs on a fresh PostgreSQL database: ``serve`` driving runs itself (in-process), then
``serve`` with the celery executor and ``workers`` ``flowloom worker`` processes. CPU is read
from /proc (user + system time of each process tree, and of every PostgreSQL backend) around
the measured window, so the figures are CPU-ms per run and per node, whatever the wall clock.

``--profile DIR`` samples the API process and every worker process with py-spy (``--rate``
samples a second, 100 by default) during the measured window (collapsed stacks, one file per
process, ``py-spy`` must be installed) and prints the hottest frames of each, so the next
change follows the profile.

``--idle SECONDS`` also reads each part's CPU over that long a window after the load, with no
run in flight: what its loops, polls and heartbeats cost per second, runs or none.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harness lives with the tests it serves

import servekill  # noqa: E402
import workerchaos  # noqa: E402

from benchmarks import scaleout  # noqa: E402
from benchmarks.report import Measurement, count, print_table  # noqa: E402

_TICK_S = 1 / 100  # os.sysconf("SC_CLK_TCK") is 100 on Linux


def fan_out(width: int) -> dict[str, Any]:
    nodes = [
        {
            "id": "root",
            "type": "text.value",
            "position": {"x": 0, "y": 0},
            "data": {"config": {"text": "go"}},
        }
    ]
    edges = []
    for number in range(width):
        nodes.append(
            {
                "id": f"n{number}",
                "type": "text.template",
                "position": {"x": 300, "y": 80 * number},
                "data": {
                    "config": {"template": f"{number}: {{{{ text }}}}", "variables": ["text"]}
                },
            }
        )
        edges.append(
            {
                "id": f"e{number}",
                "source": "root",
                "sourceHandle": "text",
                "target": f"n{number}",
                "targetHandle": "text",
            }
        )
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _tree(pid: int) -> list[int]:
    found = [pid]
    for child in workerchaos._children(pid):
        found.extend(_tree(child))
    return found


def cpu_s(pids: Iterable[int]) -> float:
    """User + system CPU seconds of ``pids`` (their own, not their dead children's)."""
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total * _TICK_S


def postgres_pids(database: str) -> list[int]:
    """The PostgreSQL backends serving ``database`` (other databases' load is not ours)."""
    found = []
    for pid in _all_named("postgres"):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        # "postgres: 15/main: USER DATABASE HOST(PORT) STATE"
        words = title.replace("\0", " ").split()
        if len(words) >= 4 and words[3] == database:
            found.append(pid)
    return found


_PG_FLUSH_S = 11.0
"""PostgreSQL 15 backends report their statistics at most every second while busy and within
10 s once idle: wait that long before reading ``pg_stat_database``."""


def commits(url: str) -> int:
    """Transactions committed in the database of ``url`` so far (``pg_stat_database``)."""
    import asyncio

    import asyncpg

    name = url.rsplit("/", 1)[1]
    server = url.split("://", 1)[1].rsplit("/", 1)[0]

    async def read() -> int:
        connection = await asyncpg.connect(f"postgresql://{server}/postgres", timeout=10)
        try:
            value = await connection.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name
            )
        finally:
            await connection.close()
        return int(value or 0)

    return asyncio.run(read())


@dataclass
class Phase:
    name: str
    runs: int
    nodes: int
    wall_s: float
    cpu_ms: dict[str, float]
    failures: int
    commits: int
    """Transactions PostgreSQL committed in the measured window (autocommit reads included)."""
    idle_ms_per_s: dict[str, float]
    """CPU each part spent per second of an idle window after the load (``--idle``)."""
    redis_calls: dict[str, int] = dataclasses.field(default_factory=dict)
    """Commands the Redis server answered in the measured window, by name (whoever sent them:
    other load on that server counts too; the commands of Lua scripts count too): ``lpush`` is
    a task put on the broker, ``publish`` a message of run events."""

    def per_run(self, part: str) -> float:
        return self.cpu_ms[part] / self.runs


def load(server: servekill.Server, target: servekill.Target, runs: int, clients: int) -> int:
    """Send ``runs`` runs with wait=true from ``clients`` threads; how many failed."""
    left = [runs]
    failures = [0]
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=server.base, timeout=120) as http:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                answer = http.post(
                    f"/api/v1/workflows/{target.workflow_id}/runs",
                    params={"wait": "true"},
                    json={"inputs": {}},
                    headers={"Authorization": f"Bearer {target.key}"},
                )
                if answer.status_code >= 300 or answer.json().get("status") != "COMPLETED":
                    with lock:
                        failures[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures[0]


def measure(
    name: str,
    server: servekill.Server,
    target: servekill.Target,
    parts: dict[str, Callable[[], list[int]]],
    args: argparse.Namespace,
    database_url: str,
    redis_url: str | None = None,
) -> Phase:
    load(server, target, max(20, args.runs // 10), args.clients)  # warm up
    time.sleep(_PG_FLUSH_S)
    committed = commits(database_url)
    called = redis_calls(redis_url) if redis_url is not None else {}
    before = {part: cpu_s(pids()) for part, pids in parts.items()}
    samplers = _start_profiles(args.profile, name, parts, args.rate) if args.profile else []
    began = time.monotonic()
    failures = load(server, target, args.runs, args.clients)
    wall_s = time.monotonic() - began
    after = {part: cpu_s(pids()) for part, pids in parts.items()}
    _stop_profiles(samplers)
    cpu_ms = {part: (after[part] - before[part]) * 1000 for part in parts}
    if redis_url is not None:
        called = {k: v - called.get(k, 0) for k, v in redis_calls(redis_url).items()}
    time.sleep(_PG_FLUSH_S)
    committed = commits(database_url) - committed
    nodes = args.runs * (args.width + 1)
    idle = idle_cpu(parts, args.idle) if args.idle > 0 else {}
    return Phase(name, args.runs, nodes, wall_s, cpu_ms, failures, committed, idle, called)


def idle_cpu(parts: dict[str, Callable[[], list[int]]], seconds: float) -> dict[str, float]:
    """CPU ms per second each part spends with no run to drive (its loops, polls, beats)."""
    before = {part: cpu_s(pids()) for part, pids in parts.items()}
    began = time.monotonic()
    time.sleep(seconds)
    wall_s = time.monotonic() - began
    after = {part: cpu_s(pids()) for part, pids in parts.items()}
    return {part: (after[part] - before[part]) * 1000 / wall_s for part in parts}


_PROFILED = ("api", "workers")


def _start_profiles(
    folder: Path, phase: str, parts: dict[str, Callable[[], list[int]]], rate: int
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """py-spy on every process of the API and the workers: collapsed stacks of the thread
    holding the GIL (what Python spends CPU on)."""
    folder.mkdir(parents=True, exist_ok=True)
    samplers = []
    tag = "".join(c if c.isalnum() else "-" for c in phase)
    for part in _PROFILED:
        for pid in parts[part]() if part in parts else []:
            out = folder / f"{tag}.{part}.{pid}.txt"
            command = [_py_spy(), "record", "--gil", "--nonblocking", "--format", "raw"]
            command += ["--rate", str(rate)]
            command += ["-o", str(out)]
            command += ["-p", str(pid)]
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            samplers.append((process, out))
    time.sleep(1.0)  # py-spy attaches
    return samplers


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


def _stop_profiles(samplers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for process, _ in samplers:
        process.send_signal(signal.SIGINT)
    by_part: dict[str, list[Path]] = {}
    for process, out in samplers:
        process.wait(timeout=30)
        if out.exists():
            by_part.setdefault(out.name.split(".")[1], []).append(out)
    for part, files in by_part.items():
        print(f"{part}: {', '.join(str(f) for f in files)}")
        inclusive, own = hottest(files)
        print("  with what they call:")
        for frame, share in inclusive:
            print(f"    {share:5.1%}  {frame}")
        print("  in themselves:")
        for frame, share in own:
            print(f"    {share:5.1%}  {frame}")


def hottest(
    collapsed: list[Path], top: int = 60
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The frames of py-spy collapsed-stack files in which most samples were, with what they
    call (each frame counted once per sample) and in themselves, as shares of all samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    lines = [line for path in collapsed for line in path.read_text().splitlines()]
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        samples = int(count_text)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return [], []
    return (
        [(frame, n / total) for frame, n in inclusive.most_common(top)],
        [(frame, n / total) for frame, n in own.most_common(top // 2)],
    )


def in_process(args: argparse.Namespace, folder: Path) -> Phase:
    data = folder / "local"
    data.mkdir()
    with (
        servekill.database_env("postgresql", data) as database,
        servekill.Server(data, folder / "local.log", database) as server,
    ):
        target = servekill.setup(server, fan_out(args.width))
        assert server.process is not None
        api_pid = server.process.pid
        url = database["FLOWLOOM_DATABASE_URL"]
        name = url.rsplit("/", 1)[1]
        parts = {"api": lambda: _tree(api_pid), "postgres": lambda: postgres_pids(name)}
        return measure("in-process serve", server, target, parts, args, url)


def distributed(args: argparse.Namespace, folder: Path) -> Phase:
    data = folder / "remote"
    data.mkdir()
    with servekill.database_env("postgresql", data) as database:
        env = {**workerchaos.distributed_env("redis", database), "FLOWLOOM_DATA_DIR": str(data)}
        with (
            servekill.Server(data, folder / "remote.log", env) as server,
            # A second API process that serves no request: what it spends is what every API
            # process behind a balancer pays for the others' runs (the event feed, its loops).
            servekill.Server(data, folder / "bystander.log", env) as bystander,
            workerchaos.Workers(
                folder, env, count=args.workers, concurrency=args.concurrency, pool=args.pool
            ) as workers,
        ):
            workers.wait_ready()
            target = servekill.setup(server, fan_out(args.width))
            assert server.process is not None
            assert bystander.process is not None
            api_pid, bystander_pid = server.process.pid, bystander.process.pid
            url = database["FLOWLOOM_DATABASE_URL"]
            name = url.rsplit("/", 1)[1]
            parts = {
                "api": lambda: _tree(api_pid),
                "api bystander": lambda: _tree(bystander_pid),
                "workers": lambda: [pid for p in workers.processes for pid in _tree(p.pid)],
                "postgres": lambda: postgres_pids(name),
                "redis": lambda: _all_named("redis-server"),
            }
            return measure(
                f"distributed ({args.workers} x {args.concurrency} {args.pool})",
                server,
                target,
                parts,
                args,
                url,
                redis_url=env["FLOWLOOM_BROKER_URL"],
            )


def redis_calls(url: str) -> dict[str, int]:
    """How many commands of each name the Redis server of ``url`` answered so far."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {
        name.removeprefix("cmdstat_"): int(found.get("calls", 0))
        for name, found in stats.items()
        if name.startswith("cmdstat_")
    }


def _all_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def costs(phase: Phase) -> scaleout.Costs:
    """The CPU costs per run a distributed phase measured, as the model takes them."""
    return scaleout.Costs(
        api_ms=phase.per_run("api"),
        bystander_ms=phase.per_run("api bystander"),
        worker_ms=phase.per_run("workers"),
        pg_ms=phase.per_run("postgres"),
        redis_ms=phase.per_run("redis"),
        nodes=phase.nodes // phase.runs,
        commits=phase.commits / phase.runs,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pool", choices=("prefork", "threads", "solo"), default="prefork")
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument(
        "--idle", type=float, default=0.0, help="seconds of idle CPU to measure after the load"
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy output folder")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="phases in turns this many times (each row then gives median, min and max)",
    )
    args = parser.parse_args()
    rounds: list[list[Phase]] = []
    with tempfile.TemporaryDirectory(prefix="flowloom-distributed-") as tmp:
        for number in range(args.rounds):
            folder = Path(tmp) / f"round{number}"
            folder.mkdir()
            phases = [] if args.skip_local else [in_process(args, folder)]
            phases.append(distributed(args, folder))
            rounds.append(phases)
    rows: list[Measurement] = []
    ratios: list[float] = []
    for phases in rounds:
        for phase in phases:
            rows.extend(phase_rows(phase))
        if len(phases) == 2:
            local, remote = phases
            ratio = (remote.per_run("api") + remote.per_run("workers")) / local.per_run("api")
            ratios.append(ratio)
            rows.append(count("distributed / in-process flowloom CPU per run", ratio))
    context = [
        f"{args.runs} runs of {args.width + 1} nodes, {args.clients} clients, wait=true, "
        f"{args.rounds} round(s) of the phases in turns; CPU from /proc: process trees, the "
        "PostgreSQL backends of the phase's database, Redis"
    ]
    if ratios:
        found = ", ".join(f"{ratio:.2f}x" for ratio in ratios)
        context.append(f"distributed / in-process flowloom CPU per run, by round: {found}")
    context.extend(scaleout.report(costs(rounds[-1][-1]), machines=10, pg_cores=8))
    print_table("distributed mode: throughput and CPU", merged(rows), context=context)


def phase_rows(phase: Phase) -> list[Measurement]:
    """The rows of one phase (and its Redis commands by name, printed)."""
    rows = [
        count(f"{phase.name}: nodes/s", phase.nodes / phase.wall_s),
        count(f"{phase.name}: runs/s", phase.runs / phase.wall_s),
    ]
    for part in phase.cpu_ms:
        rows.append(count(f"{phase.name}: CPU ms/run, {part}", phase.per_run(part)))
    own = sum(v for k, v in phase.cpu_ms.items() if k in ("api", "workers")) / phase.runs
    rows.append(count(f"{phase.name}: CPU ms/run, flowloom", own))
    rows.append(count(f"{phase.name}: CPU ms/node, flowloom", own * phase.runs / phase.nodes))
    rows.append(count(f"{phase.name}: PostgreSQL transactions/run", phase.commits / phase.runs))
    calls = phase.redis_calls
    # Runs reach the workers as pushes onto the inbox (``rpush``), or as tasks on a broker
    # list (``lpush``); either counts what a worker takes apart.
    if pushes := calls.get("rpush", 0) + calls.get("lpush", 0):
        rows.append(count(f"{phase.name}: pushes of runs/run", pushes / phase.runs))
    if "publish" in calls:
        rows.append(count(f"{phase.name}: event messages/run", calls["publish"] / phase.runs))
    if calls:
        rows.append(count(f"{phase.name}: Redis commands/run", sum(calls.values()) / phase.runs))
        busiest = sorted(calls.items(), key=lambda item: -item[1])[:8]
        print(
            f"{phase.name}: Redis commands/run by name: "
            + ", ".join(f"{name} {n / phase.runs:.2f}" for name, n in busiest if n)
        )
    rows.append(count(f"{phase.name}: failed runs", phase.failures))
    for part, ms_per_s in phase.idle_ms_per_s.items():
        rows.append(count(f"{phase.name}: idle CPU ms/s, {part}", ms_per_s))
    return rows


def merged(rows: list[Measurement]) -> list[Measurement]:
    """One row per name, with the samples of every round, in the order first seen."""
    samples: dict[str, list[float]] = {}
    for row in rows:
        samples.setdefault(row.name, []).extend(row.samples)
    return [Measurement(name, found, unit="count") for name, found in samples.items()]


if __name__ == "__main__":
    main()
