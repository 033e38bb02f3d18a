"""A ``flowloom serve`` process for the benchmarks that measure through HTTP (api, ui)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Server", "cpu_s", "start_server"]

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Server:
    process: subprocess.Popen[bytes]
    base: str
    """``http://127.0.0.1:PORT``"""
    port: int
    startup_s: float
    """From process start to the first answered ``/healthz``."""


def cpu_s(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds process ``pid`` has used so far (``/proc/PID/stat``): on a
    machine shared with other work it moves much less than wall time does. With ``children``,
    that of the child processes it has waited for too (``flowloom serve`` prepares its
    database in one)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    counted = fields[11:15] if children else fields[11:13]
    return sum(int(ticks) for ticks in counted) / _TICKS_PER_S


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    data_dir: Path, log: Path, database_url: str | None = None, *, tree: Path | None = None
) -> Server:
    """Start the server with its data in ``data_dir`` on a free port, on SQLite there or on the
    (migrated) PostgreSQL database at ``database_url``; exit if it does not come up within a
    minute. The caller stops it (``process.terminate()``). ``tree``: the flowloom checkout to
    run (its folder first on ``PYTHONPATH``, and the working directory), for comparing two
    versions side by side (``benchmarks.paired``); by default whichever this Python imports."""
    port = _free_port()
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir)}
    env.pop("FLOWLOOM_DATABASE_URL", None)
    if database_url is not None:
        env["FLOWLOOM_DATABASE_URL"] = database_url
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    began = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowloom.cli", "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tree,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return Server(process, base, port, time.perf_counter() - began)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.02)
