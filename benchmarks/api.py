"""The API benchmark: scenarios S3 and S4 of BENCHMARKS.md against a real server process.

    python -m benchmarks.api [--db sqlite,postgresql] [--clients 1,10,50] [--seconds 10]
                             [--single 200] [--history 15]

For each database of ``--db``, a ``flowloom serve`` process (uvicorn, in-process engine; SQLite
in a temporary data dir, or a fresh PostgreSQL database on 127.0.0.1:5432, migrated first and
dropped afterwards) is started on a free port of 127.0.0.1. An account, an API key, a
three-node workflow (``trigger.manual`` -> ``text.template`` "set one field" ->
``text.template`` "respond") and a webhook on it that answers with the run's output
(``respond: "output"``) are made through the API.

S3 webhook: for each count in ``--clients``, that many keep-alive connections each POST
``/api/v1/hooks/{path}`` with the token and a JSON body, one request after another, for
``--seconds``; every run is persisted and answered finished (200, status COMPLETED, the output
checked). Each request sends a different input, so no node is served from the cache. Reported:
runs/s, p50 and p99 latency, and the webhook runs found in the database afterwards. Then
``--single`` requests on one connection. The load generator is a minimal HTTP/1.1 client on
asyncio streams in this process (a few tens of microseconds per request, where httpx spends
half a millisecond): it still shares the machine's cores with the server.

For comparison, the same shape through the runs API (``POST /api/v1/workflows/{id}/runs
?wait=true`` with the API key) at the middle client count.

S4: after S3 and a second's pause, ``GET /api/v1/runs?limit=10`` (the newest 10 runs), the page
after it (``&cursor=``), one workflow's newest 10 (``&workflow_id=``) and the newest 10 COMPLETED
(``&status=``): ``--history`` requests each on one keep-alive connection of the same minimal
client, with the server's CPU per request (the warm-up request included).

Server CPU per run is the ``flowloom serve`` process's; on PostgreSQL the CPU of the database's
own backends serving it is reported beside it, since both share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from benchmarks.distributed import cpu_s as pids_cpu_s
from benchmarks.distributed import postgres_pids
from benchmarks.report import Measurement, print_table
from benchmarks.server import cpu_s, start_server

WORKFLOW: dict[str, Any] = {
    "schema_version": 1,
    "nodes": [
        {
            "id": "in",
            "type": "trigger.manual",
            "data": {"config": {"fields": [{"name": "name", "type": "string"}]}},
        },
        {
            "id": "set",
            "type": "text.template",
            "data": {"config": {"template": "hello {{ name }}", "variables": ["name"]}},
        },
        {
            "id": "respond",
            "type": "text.template",
            "data": {"config": {"template": "{{ greeting }}!", "variables": ["greeting"]}},
        },
    ],
    "edges": [
        {
            "id": "e1",
            "source": "in",
            "sourceHandle": "name",
            "target": "set",
            "targetHandle": "name",
        },
        {
            "id": "e2",
            "source": "set",
            "sourceHandle": "text",
            "target": "respond",
            "targetHandle": "greeting",
        },
    ],
}


@dataclass(frozen=True)
class Target:
    """What the load is aimed at: the API key, the workflow, the webhook and its token."""

    key: str
    workflow_id: str
    hook_path: str
    hook_token: str


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def setup_target(base: str) -> Target:
    """An account, a key, the workflow and its webhook (answering with the run's output)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        email = f"bench-{time.time_ns()}@example.com"
        password = "benchmark password 1234"
        registered = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        registered.raise_for_status()
        token = (
            await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        key = await client.post(
            "/api/v1/api-keys",
            json={"name": "bench", "scopes": ["runs:execute", "workflows:read"]},
            headers=auth,
        )
        key.raise_for_status()
        workflow = await client.post(
            "/api/v1/workflows",
            params={"strict": "true"},
            json={"name": "bench", "definition": WORKFLOW},
            headers=auth,
        )
        workflow.raise_for_status()
        hook = await client.post(
            f"/api/v1/workflows/{workflow.json()['id']}/triggers",
            json={"kind": "webhook", "respond": "output"},
            headers=auth,
        )
        hook.raise_for_status()
        return Target(
            key=key.json()["key"],
            workflow_id=workflow.json()["id"],
            hook_path=hook.json()["url"],
            hook_token=hook.json()["token"],
        )


class _Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the answer: the least a
    client can do, so that the load generator leaves the shared cores to the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return await self._exchange(f"POST {path}", head, body, headers)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        return await self._exchange(f"GET {path}", "", b"", headers)

    async def _exchange(
        self, request_line: str, head: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(f"{request_line} HTTP/1.1\r\nHost: {self.host}\r\n{head}\r\n".encode() + body)
        status = int((await reader.readline()).split()[1])
        length, close = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        answer = await reader.readexactly(length)
        if close:
            await self.close()
        return status, answer

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _load(
    port: int,
    path: str,
    headers: dict[str, str],
    *,
    body_of: Callable[[int], dict[str, Any]],
    succeeded: Callable[[int, dict[str, Any], int], bool],
    clients: int,
    seconds: float | None,
    total: int | None,
) -> tuple[list[float], int, float]:
    """Latencies (ms) of successful requests, failures, and the elapsed wall time (s)."""
    counter = itertools.count()
    latencies: list[float] = []
    failures = 0
    began = time.perf_counter()
    stop_at = began + seconds if seconds is not None else None

    async def worker() -> None:
        nonlocal failures
        connection = _Connection("127.0.0.1", port)
        try:
            while True:
                if stop_at is not None and time.perf_counter() >= stop_at:
                    return
                number = next(counter)
                if total is not None and number >= total:
                    return
                payload = json.dumps(body_of(number)).encode()
                sent = time.perf_counter()
                status, answer = await connection.post(path, payload, headers)
                elapsed_ms = (time.perf_counter() - sent) * 1000
                if succeeded(status, json.loads(answer), number):
                    latencies.append(elapsed_ms)
                else:
                    failures += 1
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, failures, time.perf_counter() - began


def hook_load(
    port: int, target: Target, *, clients: int, seconds: float | None, total: int | None
) -> Awaitable[tuple[list[float], int, float]]:
    def answered(status: int, body: dict[str, Any], number: int) -> bool:
        return (
            status == 200
            and body.get("status") == "COMPLETED"
            and body["outputs"]["respond"]["text"] == f"hello n{number}!"
        )

    return _load(
        port,
        target.hook_path,
        {"X-Flowloom-Token": target.hook_token},
        body_of=lambda number: {"name": f"n{number}"},
        succeeded=answered,
        clients=clients,
        seconds=seconds,
        total=total,
    )


def _runs_load(
    port: int, target: Target, *, clients: int, seconds: float | None, total: int | None
) -> Awaitable[tuple[list[float], int, float]]:
    return _load(
        port,
        f"/api/v1/workflows/{target.workflow_id}/runs?wait=true",
        {"Authorization": f"Bearer {target.key}"},
        body_of=lambda number: {"inputs": {"name": f"r{number}"}},
        succeeded=lambda status, body, _: status == 200 and body.get("status") == "COMPLETED",
        clients=clients,
        seconds=seconds,
        total=total,
    )


async def _history_pages(port: int, target: Target) -> dict[str, str]:
    """The S4 listings by name: the newest 10, the page after them (its cursor read once), the
    workflow's newest 10 and the newest 10 COMPLETED runs."""
    await asyncio.sleep(1.0)  # let the last load's tail (checkpoints, events) settle
    newest = "/api/v1/runs?limit=10"
    connection = _Connection("127.0.0.1", port)
    try:
        status, body = await connection.get(newest, {"Authorization": f"Bearer {target.key}"})
    finally:
        await connection.close()
    assert status == 200, body
    cursor = json.loads(body)["next_cursor"]
    return {
        f"S4 newest 10 runs (GET {newest})": newest,
        "S4 the next page (&cursor=)": f"{newest}&cursor={cursor}",
        "S4 one workflow's newest 10 (&workflow_id=)": f"{newest}&workflow_id={target.workflow_id}",
        "S4 newest 10 COMPLETED (&status=)": f"{newest}&status=COMPLETED",
    }


async def _history(port: int, key: str, path: str, repeat: int) -> tuple[list[float], int, float]:
    """``repeat`` GETs of ``path`` on one keep-alive connection, after one of warm-up: their
    latencies (ms), no failures (a page of fewer than 10 runs fails the benchmark), wall time."""
    connection = _Connection("127.0.0.1", port)
    samples = []
    began = time.perf_counter()
    try:
        for _ in range(repeat + 1):
            sent = time.perf_counter()
            status, body = await connection.get(path, {"Authorization": f"Bearer {key}"})
            elapsed_ms = (time.perf_counter() - sent) * 1000
            assert status == 200, body
            assert len(json.loads(body)["items"]) == 10, body
            samples.append(elapsed_ms)
    finally:
        await connection.close()
    return samples[1:], 0, time.perf_counter() - began


_COUNT_RUNS = "SELECT trigger_kind, count(*) FROM workflow_runs GROUP BY 1"


async def _stored_runs(data_dir: Path, database_url: str | None) -> dict[str, int]:
    """Runs in the database by what started them."""
    if database_url is None:
        with sqlite3.connect(f"file:{data_dir / 'flowloom.db'}?mode=ro", uri=True) as conn:
            return {str(kind): int(count) for kind, count in conn.execute(_COUNT_RUNS)}
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        return {str(kind): int(count) for kind, count in await connection.fetch(_COUNT_RUNS)}
    finally:
        await connection.close()


@dataclass(frozen=True)
class Load:
    """What one load measured: latencies (ms) of the successful requests, failures, the wall
    time, and the CPU time the server process (and, on PostgreSQL, the database's backends
    serving it) spent meanwhile."""

    latencies: list[float]
    failures: int
    elapsed_s: float
    server_cpu_s: float
    database_cpu_s: float | None


class Meter:
    """CPU of the server process, and of the PostgreSQL backends serving ``database``."""

    def __init__(self, pid: int, database: str | None) -> None:
        self.pid, self.database = pid, database

    def read(self) -> tuple[float, float | None]:
        if self.database is None:
            return cpu_s(self.pid), None
        return cpu_s(self.pid), pids_cpu_s(postgres_pids(self.database))

    async def measured(self, load: Awaitable[tuple[list[float], int, float]]) -> Load:
        server, database = self.read()
        latencies, failures, elapsed_s = await load
        server_after, database_after = self.read()
        spent = None if database is None or database_after is None else database_after - database
        return Load(latencies, failures, elapsed_s, server_after - server, spent)


def _row(name: str, load: Load) -> Measurement:
    latencies = load.latencies
    rate = len(latencies) / load.elapsed_s
    runs = max(1, len(latencies))
    note = (
        f"{rate:.0f} runs/s, p50 {percentile(latencies, 0.5):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, {len(latencies)} runs, "
        f"{load.failures} failed, server CPU {load.server_cpu_s * 1000 / runs:.2f} ms/run"
    )
    if load.database_cpu_s is not None:
        note += f", PostgreSQL CPU {load.database_cpu_s * 1000 / runs:.2f} ms/run"
    return Measurement(name, latencies, note=note)


_DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@contextlib.contextmanager
def database_for(kind: str, data_dir: Path) -> Iterator[str | None]:
    """None for SQLite in ``data_dir``; the URL of a fresh, migrated PostgreSQL database."""
    if kind == "sqlite":
        yield None
    else:
        from servekit import postgres_database  # tests/, put on the path by .distributed

        with postgres_database(data_dir) as url:
            yield url


async def _measure(
    kind: str, folder: str, database_url: str | None, args: argparse.Namespace
) -> None:
    counts = [int(c) for c in args.clients.split(",")]
    middle = counts[len(counts) // 2]
    hooks: list[tuple[int, Load]] = []
    data_dir = Path(folder) / "data"
    server = start_server(data_dir, Path(folder) / "serve.log", database_url)
    process, startup_s, base, port = server.process, server.startup_s, server.base, server.port
    meter = Meter(process.pid, None if database_url is None else database_url.rsplit("/")[-1])
    try:
        target = await setup_target(base)
        # Warm-up: imports, prepared plans, the page cache.
        await hook_load(port, target, clients=2, seconds=None, total=100)
        await _runs_load(port, target, clients=2, seconds=None, total=20)
        for clients in counts:
            load = hook_load(port, target, clients=clients, seconds=args.seconds, total=None)
            hooks.append((clients, await meter.measured(load)))
        single = None
        if args.single > 0:
            single = await meter.measured(
                hook_load(port, target, clients=1, seconds=None, total=args.single)
            )
        runs_api = await meter.measured(
            _runs_load(port, target, clients=middle, seconds=args.seconds, total=None)
        )
        history = [
            (name, await meter.measured(_history(port, target.key, path, args.history)))
            for name, path in (await _history_pages(port, target)).items()
            if args.history > 0
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    stored = await _stored_runs(data_dir, database_url)
    rows = [
        _row(f"S3 webhook -> output, {clients} clients, {args.seconds:g} s", result)
        for clients, result in hooks
    ]
    if single is not None:
        rows.append(_row(f"S3 webhook -> output, 1 client, {args.single} requests", single))
    rows += [
        _row(f"runs?wait=true (API key), {middle} clients, {args.seconds:g} s", runs_api),
        *(
            Measurement(
                name,
                load.latencies,
                note=f"{sum(stored.values())} runs stored, server CPU "
                f"{load.server_cpu_s * 1000 / (len(load.latencies) + 1):.2f} ms/request",
            )
            for name, load in history
        ),
        Measurement("start-up to first /healthz answer", [startup_s * 1000], note="fresh data dir"),
    ]
    expected = sum(len(result.latencies) for _, result in hooks)
    expected += 0 if single is None else len(single.latencies)
    where = "SQLite in a temporary dir" if database_url is None else "a fresh PostgreSQL database"
    print_table(
        f"API: S3 (webhook-triggered runs) and S4 (history) on {_DATABASES[kind]}",
        rows,
        context=[
            f"server: flowloom serve (uvicorn, 1 process), {where}; "
            "load generator: asyncio HTTP/1.1 keep-alive connections in this process",
            f"runs stored: {stored} (webhook runs answered during the timed loads: {expected}, "
            "plus 100 of warm-up)",
            f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            *(
                f"S3 {clients} clients: {len(r.latencies) / r.elapsed_s:.1f} runs/s, "
                f"p50 {statistics.median(r.latencies):.1f} ms, "
                f"p99 {percentile(r.latencies, 0.99):.1f} ms"
                for clients, r in hooks
                if r.latencies
            ),
        ],
    )


def _run(args: argparse.Namespace) -> None:
    kinds = [kind.strip() for kind in args.db.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in _DATABASES]
    if unknown or not kinds:
        raise SystemExit(f"--db: unknown database {unknown}; choose from sqlite, postgresql")
    for kind in kinds:
        with (
            tempfile.TemporaryDirectory(prefix="flowloom-bench-api-") as folder,
            database_for(kind, Path(folder) / "data") as database_url,
        ):
            asyncio.run(_measure(kind, folder, database_url, args))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__)
    parser.add_argument(
        "--clients", default="1,10,50", help="comma-separated connection counts for S3"
    )
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--single", type=int, default=200)
    parser.add_argument("--history", type=int, default=15)
    _run(parser.parse_args())


if __name__ == "__main__":
    main()
