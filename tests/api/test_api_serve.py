"""A real ``flowloom serve`` process on a free port: first start prints a one-time password,
the examples are loaded, runs go through HTTP, 25 runs page back, SIGTERM stops it cleanly,
and a second start neither prints a password nor loads the examples twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

SERVE_COMMAND = [sys.executable, "-m", "flowloom.cli.main", "serve"]
START_TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _server(data_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir)}
    env.pop("FLOWLOOM_DATABASE_URL", None)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*SERVE_COMMAND, "--host", "127.0.0.1", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
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
            process.kill()
            process.wait()


def _password(output: str) -> str | None:
    for line in output.splitlines():
        if "with password: " in line:
            return line.rsplit("with password: ", 1)[1].strip()
    return None


@pytest.mark.slow
def test_serve_end_to_end(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with _server(tmp_path / "data", log) as (process, base):
        password = _password(log.read_text())
        assert password is not None, log.read_text()
        assert len(password) >= 20
        with httpx.Client(base_url=base, timeout=30) as client:
            signed_in = client.post(
                "/api/v1/auth/login",
                json={"email": "owner@flowloom.localhost", "password": password},
            )
            assert signed_in.status_code == 200, signed_in.text
            csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
            workflows = client.get("/api/v1/workflows").json()["items"]
            assert {w["name"] for w in workflows} >= {"Hello template", "Sort numbers"}
            key = client.post(
                "/api/v1/api-keys",
                json={"name": "e2e", "scopes": ["runs:execute", "workflows:read"]},
                headers=csrf,
            ).json()["key"]

        hello = next(w for w in workflows if w["name"] == "Hello template")
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as program:
            run_ids = []
            for i in range(25):
                run = program.post(
                    f"/api/v1/workflows/{hello['id']}/runs?wait=true",
                    json={"inputs": {"name": f"run {i}"}},
                )
                assert run.status_code == 200, run.text
                assert run.json()["status"] == "COMPLETED"
                run_ids.append(run.json()["id"])
            assert run.json()["outputs"]["lines"]["text"].startswith("Hello, run 24!")

            seen: list[str] = []
            cursor = None
            while True:
                params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
                page = program.get("/api/v1/runs", params=params).json()
                seen += [r["id"] for r in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert seen == list(reversed(run_ids))

        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught: either exit is a
        # clean stop as far as a process supervisor is concerned.
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in log.read_text()

    second_log = tmp_path / "serve-again.log"
    with _server(tmp_path / "data", second_log) as (process, base):
        output = second_log.read_text()
        assert _password(output) is None
        assert "example workflow" not in output
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in second_log.read_text()
