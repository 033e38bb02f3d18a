"""The API benchmark: scenarios S3 and S4 of BENCHMARKS.md against a real server process.

    python -m benchmarks.api [--clients 10] [--seconds 10] [--single 200] [--history 15]

A ``flowloom serve`` process (uvicorn, in-process engine, SQLite in a temporary data dir) is
started on a free port of 127.0.0.1. An account, an API key and a tiny two-node workflow
(``trigger.manual`` -> ``text.template``: "set one field") are made through the API.

S3 (until webhook triggers exist, the same shape through the runs API): ``--clients``
connections each POST ``/api/v1/workflows/{id}/runs?wait=true`` with the API key, one after
another, for ``--seconds``; every run is persisted and answered finished. Each request sends a
different input, so no node is served from the cache. Reported: runs/s, p50 and p99 latency,
and the number of runs found in the database afterwards. Then ``--single`` requests on one
connection. The load generator (httpx) runs in this process and shares the machine's cores
with the server: on a 2-core machine it costs the server real throughput.

S4: after S3, ``GET /api/v1/runs?limit=10`` (the newest 10 runs), median of ``--history``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.report import Measurement, print_table

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
    ],
    "edges": [
        {
            "id": "e1",
            "source": "in",
            "sourceHandle": "name",
            "target": "set",
            "targetHandle": "name",
        }
    ],
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(data_dir: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir)}
    env.pop("FLOWLOOM_DATABASE_URL", None)
    began = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowloom.cli.main", "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process, time.perf_counter() - began
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.02)


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _setup(base: str) -> tuple[str, str]:
    """An account, a key and the workflow; the key and the workflow id."""
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
        return key.json()["key"], workflow.json()["id"]


async def _load(
    base: str, key: str, workflow_id: str, *, clients: int, seconds: float | None, total: int | None
) -> tuple[list[float], int, float]:
    """Latencies (ms) of successful runs, failures, and the elapsed wall time (s)."""
    counter = itertools.count()
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/workflows/{workflow_id}/runs?wait=true"
    began = time.perf_counter()
    stop_at = began + seconds if seconds is not None else None

    async with httpx.AsyncClient(
        base_url=base, limits=limits, headers=headers, timeout=60
    ) as client:

        async def worker() -> None:
            nonlocal failures
            while True:
                if stop_at is not None and time.perf_counter() >= stop_at:
                    return
                number = next(counter)
                if total is not None and number >= total:
                    return
                sent = time.perf_counter()
                response = await client.post(url, json={"inputs": {"name": f"n{number}"}})
                if response.status_code == 200 and response.json()["status"] == "COMPLETED":
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, failures, time.perf_counter() - began


async def _history(base: str, key: str, repeat: int) -> list[float]:
    samples = []
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        for _ in range(repeat + 1):  # the first is a warm-up
            sent = time.perf_counter()
            page = await client.get("/api/v1/runs", params={"limit": 10})
            elapsed_ms = (time.perf_counter() - sent) * 1000
            assert len(page.json()["items"]) == 10, page.text
            samples.append(elapsed_ms)
    return samples[1:]


def _stored_runs(data_dir: Path) -> int:
    with sqlite3.connect(f"file:{data_dir / 'flowloom.db'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM workflow_runs").fetchone()[0])


def _row(name: str, latencies: list[float], failures: int, elapsed_s: float) -> Measurement:
    rate = len(latencies) / elapsed_s
    note = (
        f"{rate:.0f} runs/s, p50 {_percentile(latencies, 0.5):.1f} ms, "
        f"p99 {_percentile(latencies, 0.99):.1f} ms, {len(latencies)} runs, {failures} failed"
    )
    return Measurement(name, latencies, note=note)


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="flowloom-bench-api-") as folder:
        data_dir = Path(folder) / "data"
        port = _free_port()
        process, startup_s = _start_server(data_dir, port, Path(folder) / "serve.log")
        base = f"http://127.0.0.1:{port}"
        try:
            key, workflow_id = await _setup(base)
            await _load(base, key, workflow_id, clients=2, seconds=None, total=50)  # warm-up
            many, many_failed, many_s = await _load(
                base, key, workflow_id, clients=args.clients, seconds=args.seconds, total=None
            )
            one, one_failed, one_s = await _load(
                base, key, workflow_id, clients=1, seconds=None, total=args.single
            )
            history = await _history(base, key, args.history)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        stored = _stored_runs(data_dir)
    rows = [
        _row(
            f"S3 runs?wait=true, {args.clients} clients, {args.seconds:g} s",
            many,
            many_failed,
            many_s,
        ),
        _row(f"S3 runs?wait=true, 1 client, {args.single} requests", one, one_failed, one_s),
        Measurement(
            "S4 newest 10 runs (GET /api/v1/runs?limit=10)",
            history,
            note=f"{stored} runs stored",
        ),
        Measurement("start-up to first /healthz answer", [startup_s * 1000], note="fresh data dir"),
    ]
    print_table(
        "API: S3 (runs through the API) and S4 (history) on SQLite",
        rows,
        context=[
            f"server: flowloom serve (uvicorn, 1 process), SQLite in a temporary dir; "
            f"load generator: httpx in this process; runs stored after the benchmark: {stored}",
            f"S3 {args.clients} clients: {len(many) / many_s:.1f} runs/s, "
            f"p50 {statistics.median(many):.1f} ms, p99 {_percentile(many, 0.99):.1f} ms",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--single", type=int, default=200)
    parser.add_argument("--history", type=int, default=15)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
