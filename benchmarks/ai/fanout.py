"""Fan-out: how fast a run streams text with ten SSE clients following it, against none.

    python -m benchmarks.ai.fanout [--clients 10] [--runs 5] [--pieces 4000]
                                   [--delays-ms 0,0.5,2] [--lead-s 3]

A real ``flowloom serve`` (SQLite, its own process) runs a workflow whose ``ai.llm`` node
streams ``--pieces`` pieces from the local fake provider (a thread of this process, with
``delay`` ms before each piece: 0 is as fast as the server can take them). A third process
holds the clients: for each run it opens ``--clients`` streams of ``GET /runs/{id}/events``
and reads them to the end. A ``flow.delay`` (``--lead-s``, 3 s) before the node lets the
clients connect and read their snapshots first.

For each delay the runs alternate between no client and ``--clients`` clients; the node's
own duration (from the run's record) gives the pieces per second. The cost of the clients is
the slowdown of the median. The clients' side reports what they read: messages, network reads
(events close together come in one write) and whether the text came whole (one client per run
puts it together). Everything shares one machine: the clients' own CPU counts against the run.

First, in process and without a network, the feed's own cost: microseconds per ``node.delta``
published (the loop turning between pieces, as between a stream's reads) with no reader and
with ``--clients`` readers taking what they get every 20 ms, as the route does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from providers.fake_servers import API_KEY, FakeServer, running_server

from benchmarks.server import Server, start_server

__all__ = ["follow"]

PIECE_CHARS = 4


def _workflow(delay_s: float) -> dict[str, Any]:
    ask = {"provider": "openai", "model": "bench", "user_message": "Talk.", "variables": ["go"]}
    return {
        "schema_version": 1,
        "nodes": [
            {"id": "wait", "type": "flow.delay", "data": {"config": {"seconds": delay_s}}},
            {"id": "ask", "type": "ai.llm", "data": {"config": ask}},
        ],
        "edges": [
            {
                "id": "e1",
                "source": "wait",
                "sourceHandle": "value",
                "target": "ask",
                "targetHandle": "go",
            }
        ],
    }


def _account(base: str) -> dict[str, str]:
    email, password = f"bench-{os.getpid()}@example.com", "bench-password-1234"
    httpx.post(f"{base}/api/v1/auth/register", json={"email": email, "password": password})
    signed_in = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password})
    signed_in.raise_for_status()
    return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}


# ---- the clients' process


async def _read_one(
    client: httpx.AsyncClient, url: str, connected: asyncio.Event, *, check: bool
) -> dict[str, int]:
    """Read one stream to its end: messages and network reads, and (``check``) the length of
    the node's text put together from the deltas (-1 when not checked). Only one client of a
    run checks: parsing every delta in ten clients would cost more CPU than the server spends
    on them, on the same machine."""
    messages = reads = 0
    text = ""
    try:
        async with client.stream("GET", url) as stream:
            stream.raise_for_status()
            async for chunk in stream.aiter_bytes():
                connected.set()
                reads += 1
                messages += chunk.count(b"\nevent: ")
                if not check:
                    continue
                for block in chunk.decode().split("\n\n"):
                    if "event: node.delta" in block:
                        data = json.loads(block.split("data: ", 1)[1])["data"]
                        if data["offset"] <= len(text) < data["offset"] + len(data["text"]):
                            text = text[: data["offset"]] + data["text"]
    finally:
        connected.set()  # a stream that failed must not keep the others waiting
    return {"messages": messages, "reads": reads, "chars": len(text) if check else -1}


async def follow(base: str, token: str, clients: int) -> None:
    """Read run ids from stdin; follow each with ``clients`` streams; print one JSON line per
    run (``connected`` once every stream has its snapshot, then the totals)."""
    headers = {"Authorization": f"Bearer {token}"}
    # A connection of its own for each stream: one taken from the pool may be closed by the
    # server's keep-alive timeout just as it is reused.
    no_pool = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=None, limits=no_pool
    ) as client:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line.strip():
                return
            url = f"/api/v1/runs/{line.strip()}/events"
            ready = [asyncio.Event() for _ in range(clients)]
            readers = [
                asyncio.create_task(_read_one(client, url, e, check=i == 0))
                for i, e in enumerate(ready)
            ]
            await asyncio.gather(*(e.wait() for e in ready))
            print(json.dumps({"connected": True}), flush=True)
            totals = await asyncio.gather(*readers)
            print(json.dumps({"clients": totals}), flush=True)


# ---- the feed alone, in process


async def _feed_cost_us(readers: int, events: int) -> float:
    """Microseconds per delta published to a bus with ``readers`` feed readers."""
    from flowloom.api.run_feed import WRITE_EVERY_S, RunFeeds
    from flowloom.engine.events import EventBus, progress_publisher

    bus = EventBus()
    bus.subscribe(None)  # the metrics' subscription, there in a real server
    feeds = RunFeeds(bus)
    following = [feeds.reader("run") for _ in range(readers)]

    async def write(reader: Any) -> None:
        while True:
            await reader.wait()
            reader.take()
            await asyncio.sleep(WRITE_EVERY_S)

    writers = [asyncio.create_task(write(reader)) for reader in following]
    progress = progress_publisher(bus, "run", "ask", 1)
    started = time.perf_counter()
    for i in range(events):
        progress("delta", {"text": "word", "offset": 4 * i})
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    for task in writers:
        task.cancel()
    for reader in following:
        reader.close()
    return elapsed / events * 1e6


def feed_cost(clients: int, events: int = 20_000, rounds: int = 5) -> None:
    async def measure() -> tuple[float, float]:
        alone, followed = [], []
        for _ in range(rounds):
            alone.append(await _feed_cost_us(0, events))
            followed.append(await _feed_cost_us(clients, events))
        return statistics.median(alone), statistics.median(followed)

    alone_us, followed_us = asyncio.run(measure())
    print(f"in process, per delta published (median of {rounds} x {events:,}):")
    print(
        f"  no reader {alone_us:.2f} us, {clients} readers {followed_us:.2f} us"
        f" ({followed_us - alone_us:+.2f} us; {1e6 / followed_us:,.0f} deltas/s at most)"
    )
    print()


# ---- the benchmark


def _line(clients: subprocess.Popen[str]) -> Any:
    assert clients.stdout is not None
    line = clients.stdout.readline()
    if not line:
        raise SystemExit("the clients' process ended (its error is above)")
    return json.loads(line)


def _run_once(
    server: Server, headers: dict[str, str], workflow_id: str, clients: subprocess.Popen[str] | None
) -> tuple[float, list[dict[str, int]]]:
    started = httpx.post(
        f"{server.base}/api/v1/workflows/{workflow_id}/runs", json={}, headers=headers
    )
    started.raise_for_status()
    run_id = started.json()["id"]
    seen: list[dict[str, int]] = []
    if clients is not None:
        assert clients.stdin is not None
        assert clients.stdout is not None
        clients.stdin.write(run_id + "\n")
        clients.stdin.flush()
        assert _line(clients) == {"connected": True}
    deadline = time.monotonic() + 300
    while True:
        run = httpx.get(f"{server.base}/api/v1/runs/{run_id}", headers=headers).json()
        if run["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} did not finish")
        time.sleep(0.05)
    if run["status"] != "COMPLETED":
        raise SystemExit(f"run {run_id} ended {run['status']}: {run.get('error')}")
    if clients is not None:
        assert clients.stdout is not None
        seen = _line(clients)["clients"]
    [ask] = [n for n in run["nodes"] if n["node_id"] == "ask"]
    return ask["duration_ms"] / 1000, seen


def bench(
    fake: FakeServer,
    clients: int,
    runs: int,
    pieces: int,
    delays_ms: list[float],
    lead_s: float,
) -> None:
    fake.reply_text = "".join(f"w{i:06d}"[:PIECE_CHARS] for i in range(pieces))
    fake.stream_piece_chars = PIECE_CHARS
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["FLOWLOOM_OPENAI_API_KEY"] = API_KEY
        os.environ["FLOWLOOM_OPENAI_BASE_URL"] = fake.openai_base_url
        server = start_server(Path(data_dir), Path(data_dir) / "server.log")
        try:
            headers = _account(server.base)
            created = httpx.post(
                f"{server.base}/api/v1/workflows",
                json={"name": "fanout", "definition": _workflow(lead_s)},
                headers=headers,
            )
            created.raise_for_status()
            workflow_id = created.json()["id"]
            followers = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.ai.fanout",
                    "--follow",
                    server.base,
                    headers["Authorization"].removeprefix("Bearer "),
                    "--clients",
                    str(clients),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).resolve().parents[2],
            )
            try:
                _report(
                    server, headers, workflow_id, followers, clients, runs, pieces, delays_ms, fake
                )
            finally:
                assert followers.stdin is not None
                followers.stdin.close()
                followers.wait(timeout=30)
        finally:
            server.process.terminate()
            server.process.wait(timeout=30)


def _report(
    server: Server,
    headers: dict[str, str],
    workflow_id: str,
    followers: subprocess.Popen[str],
    clients: int,
    runs: int,
    pieces: int,
    delays_ms: list[float],
    fake: FakeServer,
) -> None:
    print(f"{pieces} pieces of {PIECE_CHARS} characters per run; median of {runs} runs each")
    print(
        f"{'delay':>7}{'pieces/s, 0':>14}{f'pieces/s, {clients}':>15}{'cost':>8}"
        f"{'msgs/client':>13}{'reads/client':>14}{'text whole':>12}"
    )
    for delay_ms in delays_ms:
        fake.stream_delay_s = delay_ms / 1000
        _run_once(server, headers, workflow_id, None)  # warm-up
        alone: list[float] = []
        followed: list[float] = []
        seen: list[dict[str, int]] = []
        for _ in range(runs):
            alone.append(_run_once(server, headers, workflow_id, None)[0])
            duration_s, totals = _run_once(server, headers, workflow_id, followers)
            followed.append(duration_s)
            seen += totals
        rate_alone = pieces / statistics.median(alone)
        rate_followed = pieces / statistics.median(followed)
        cost = (statistics.median(followed) / statistics.median(alone) - 1) * 100
        checked = [s for s in seen if s["chars"] >= 0]
        whole = sum(1 for s in checked if s["chars"] == pieces * PIECE_CHARS)
        print(
            f"{delay_ms:>5g}ms{rate_alone:>14,.0f}{rate_followed:>15,.0f}{cost:>+7.1f}%"
            f"{statistics.median(s['messages'] for s in seen):>13,.0f}"
            f"{statistics.median(s['reads'] for s in seen):>14,.0f}"
            f"{whole:>7}/{len(checked)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pieces", type=int, default=4000)
    parser.add_argument("--delays-ms", default="0,0.5,2")
    parser.add_argument("--lead-s", type=float, default=3.0, help="the flow.delay first")
    parser.add_argument("--follow", nargs=2, metavar=("BASE", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        asyncio.run(follow(args.follow[0], args.follow[1], args.clients))
        return
    delays = [float(d) for d in args.delays_ms.split(",")]
    feed_cost(args.clients)
    with running_server() as fake:
        bench(fake, args.clients, args.runs, args.pieces, delays, args.lead_s)


if __name__ == "__main__":
    main()
