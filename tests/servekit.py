"""Real flowloom processes for the tests that need them: ``flowloom serve`` (end to end, the
browser, Schemathesis) on its own data dir and a free port of 127.0.0.1, ready when /healthz
answers; and one-off commands (``cli``) run as the user would run them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

SERVE_COMMAND = [sys.executable, "-m", "flowloom.cli.main", "serve"]
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(
    data_dir: Path, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start the server on SQLite in ``data_dir`` (its output to ``log``); yields the process
    and the base URL; on leaving, SIGTERM (then SIGKILL after 15 s) unless it already ended."""
    port = free_port()
    environment = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir), **(env or {})}
    if "FLOWLOOM_DATABASE_URL" not in (env or {}):
        environment.pop("FLOWLOOM_DATABASE_URL", None)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*SERVE_COMMAND, "--host", "127.0.0.1", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cli(
    data_dir: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``flowloom ARGS`` as its own process on SQLite in ``data_dir`` (``env`` added to the
    environment); its exit code and output, whatever they are."""
    environment = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir), **(env or {})}
    environment.pop("FLOWLOOM_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "flowloom.cli.main", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def first_password(output: str) -> str | None:
    """The one-time password a first start prints for the local owner, if it printed one."""
    for line in output.splitlines():
        if "with password: " in line:
            return line.rsplit("with password: ", 1)[1].strip()
    return None
