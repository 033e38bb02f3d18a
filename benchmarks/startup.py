"""The start-up benchmark: a fresh ``flowloom serve`` to its first answer, and its idle memory.

    python -m benchmarks.startup [--repeat 5] [--idle-s 3]

Each round starts ``flowloom serve`` (SQLite) in a new, empty data dir, as ``make run`` does
the first time: migrations, the local account, the example workflows, then uvicorn. Reported per
round: the wall time from process start to the first answered ``/healthz`` and to the first
answer of a route of the API proper asked for right after it, the CPU time the
server process spent until then (user + system from ``/proc/PID/stat``, with that of the child
processes it has waited for: ``serve`` prepares the database in one; on a shared machine it
moves much less than the wall time does), and the resident memory (VmRSS) after ``--idle-s``
seconds of idling (the warm-up of node modules a second after start-up included). Then, as
many times, the CPU time of one process doing the same work up to a started app, without the
server: the warm-up (a second after start-up) never falls inside it, as it does in the server's
figure when a loaded machine delays the first answer past that second.

With PYTHONDONTWRITEBYTECODE set, an editable install compiles flowloom's own modules from source
at every start (a quarter of a second) unless ``make install`` compiled them first; the table
says whether it was set and whether flowloom's bytecode was there.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.report import Measurement, print_table
from benchmarks.server import cpu_s, start_server


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


_API_PROBE = "/api/v1/auth/providers"
"""A route of the API proper that answers without signing in: ``serve`` loads the API's
routes once it answers ``/healthz`` (``flowloom.api.later_routes``), and this answers only
once they are in."""


def _round(idle_s: float) -> tuple[float, float, float, float]:
    """Wall seconds to the first answer, CPU seconds until then, wall seconds to the first
    answer of the API proper (asked for right after), idle RSS (MiB)."""
    with tempfile.TemporaryDirectory(prefix="flowloom-bench-startup-") as folder:
        server = start_server(Path(folder) / "data", Path(folder) / "serve.log")
        try:
            used_s = cpu_s(server.process.pid, children=True)
            asked = time.perf_counter()
            httpx.get(f"{server.base}{_API_PROBE}", timeout=30).raise_for_status()
            api_s = server.startup_s + time.perf_counter() - asked
            time.sleep(idle_s)
            rss = _rss_mib(server.process.pid)
        finally:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=30)
        return server.startup_s, used_s, api_s, rss


_READY_CODE = """
import gc, time
gc.disable()  # as flowloom.cli.entry does, and it leaves out the same library parts
from flowloom.cli.entry import skip_unused_modules
skip_unused_modules()
import asyncio, os
import flowloom.cli.main, flowloom.cli.serve, uvicorn
from flowloom.cli.serve import prepared_app
from flowloom.native_heap import limit_arenas
from flowloom.settings import Settings
limit_arenas()
first, app = prepared_app(Settings())
def used():
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
async def start():
    async with app.router.lifespan_context(app):
        started = used()
        import httpx
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ready") as client:
            (await client.get(PROBE)).raise_for_status()
        print(started, used())
asyncio.run(start())
"""


def _ready_cpu_s() -> tuple[float, float]:
    """CPU seconds of one process (and the child it prepares the database in) that does what
    ``serve`` does before it answers (imports, the first start's database, the app's start-up),
    read as the app has started, and then once it has answered a route of the API proper
    (whose modules it loads after starting): unlike the server's figure it never includes the
    warm-up, which a slow first answer lets in."""
    with tempfile.TemporaryDirectory(prefix="flowloom-bench-ready-") as folder:
        env = {**os.environ, "FLOWLOOM_DATA_DIR": str(Path(folder) / "data")}
        env.pop("FLOWLOOM_DATABASE_URL", None)
        code = f"PROBE = {_API_PROBE!r}\n{_READY_CODE}"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        started, answered = done.stdout.split()[-2:]
        return float(started), float(answered)


def _bytecode_cached() -> bool:
    """Whether every module of flowloom has bytecode at least as new as its source."""
    import flowloom

    for source in Path(flowloom.__file__).parent.rglob("*.py"):
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--idle-s", type=float, default=3.0)
    args = parser.parse_args()
    rounds = [_round(args.idle_s) for _ in range(args.repeat)]
    ready = [_ready_cpu_s() for _ in range(args.repeat)]
    no_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    print_table(
        "Start-up of flowloom serve on a fresh SQLite data dir",
        [
            Measurement("start-up to first /healthz answer", [r[0] * 1000 for r in rounds]),
            Measurement("server CPU time until then", [r[1] * 1000 for r in rounds]),
            Measurement(f"start-up to first {_API_PROBE} answer", [r[2] * 1000 for r in rounds]),
            Measurement("CPU time to a started app, no warm-up", [r[0] * 1000 for r in ready]),
            Measurement(f"CPU time to its first {_API_PROBE} answer", [r[1] * 1000 for r in ready]),
            Measurement(
                f"resident memory after {args.idle_s:g} s idle",
                [r[3] for r in rounds],
                unit="MiB",
            ),
        ],
        context=[
            f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            f"PYTHONDONTWRITEBYTECODE: {'set' if no_bytecode else 'unset'}",
            f"flowloom's bytecode: {'cached' if _bytecode_cached() else 'missing or stale'}",
        ],
    )


if __name__ == "__main__":
    main()
