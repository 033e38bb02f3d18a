"""Real flowloom processes for the tests that need them: ``flowloom serve`` (end to end, the
browser, Schemathesis, the kill -9 suite) on its own data dir and a port of 127.0.0.1, ready
when /healthz answers; one-off commands (``cli``) run as the user would run them; and a fresh
PostgreSQL database (``postgres_database``) for a server to use instead of SQLite."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from pgkit import POSTGRES_URL

SERVE_COMMAND = [sys.executable, "-m", "flowloom.cli.main", "serve"]
START_TIMEOUT_S = 60
PROVIDER_KEYS = ("FLOWLOOM_OPENAI_API_KEY", "FLOWLOOM_GEMINI_API_KEY", "FLOWLOOM_ANTHROPIC_API_KEY")
"""The instance-wide LLM keys: ``unset`` them to start a server with no provider configured."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(
    data_dir: Path, env: Mapping[str, str] | None, unset: Collection[str]
) -> dict[str, str]:
    """This process's environment, with the data dir and ``env`` set and ``unset`` removed; the
    database URL only if ``env`` names one (SQLite in ``data_dir`` otherwise)."""
    environment = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir), **(env or {})}
    if "FLOWLOOM_DATABASE_URL" not in (env or {}):
        environment.pop("FLOWLOOM_DATABASE_URL", None)
    for name in unset:
        environment.pop(name, None)
    return environment


def start(
    data_dir: Path,
    log: Path,
    port: int,
    env: Mapping[str, str] | None = None,
    *,
    unset: Collection[str] = (),
    command: Sequence[str] = SERVE_COMMAND,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``flowloom serve`` (or ``command``) on ``port`` of 127.0.0.1 (its output
    appended to ``log``); returns at once: ``wait_ready`` waits for it."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_environment(data_dir, env, unset),
            cwd=cwd,
        )


def wait_ready(
    process: subprocess.Popen[bytes], base: str, log: Path, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Return once ``base``/healthz answers 200; AssertionError (with the log) if the process
    ends or ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s, unless it already ended."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serve(
    data_dir: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    *,
    unset: Collection[str] = (),
    command: Sequence[str] = SERVE_COMMAND,
    cwd: Path | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start the server in ``data_dir`` (SQLite unless ``env`` names FLOWLOOM_DATABASE_URL;
    its output to ``log``; the variables in ``unset`` removed from its environment; another
    installation's ``command`` if given, run in ``cwd``); yields the process and the base
    URL; on leaving, ``stop``."""
    port = free_port()
    log.write_bytes(b"")
    process = start(data_dir, log, port, env, unset=unset, command=command, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base, log)
        yield process, base
    finally:
        stop(process)


def cli(
    data_dir: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``flowloom ARGS`` as its own process in ``data_dir`` (``env`` added to the environment;
    SQLite unless it names FLOWLOOM_DATABASE_URL); its exit code and output, whatever they are."""
    return subprocess.run(
        [sys.executable, "-m", "flowloom.cli.main", *args],
        env=_environment(data_dir, env, ()),
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


def postgres_admin(sql: str) -> None:
    """Run one statement on the test PostgreSQL's maintenance database (autocommit)."""
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=10)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@contextmanager
def postgres_database(data_dir: Path) -> Iterator[str]:
    """A fresh PostgreSQL database, migrated with ``flowloom db upgrade``; yields its URL (for
    FLOWLOOM_DATABASE_URL); dropped on leaving, whoever is still connected."""
    name = f"fl_{secrets.token_hex(6)}"
    postgres_admin(f'CREATE DATABASE "{name}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgraded = cli(data_dir, "db", "upgrade", env={"FLOWLOOM_DATABASE_URL": url})
        assert upgraded.returncode == 0, upgraded.stderr + upgraded.stdout
        yield url
    finally:
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


EGRESS_GUARD = Path(__file__).resolve().parent / "egress_guard"


def egress_guard_env(log: Path) -> dict[str, str]:
    """Environment for a process that must not reach past 127.0.0.1 (tests/egress_guard): what
    it tried is appended to ``log``, whose first line says the guard was loaded."""
    path = os.pathsep.join(p for p in (str(EGRESS_GUARD), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "FLOWLOOM_TEST_EGRESS_LOG": str(log)}


def provider_env(base_url: str, openai_base_url: str, key: str) -> dict[str, str]:
    """Every LLM provider pointed at one local server (tests/providers/fake_servers.py) with
    ``key``: no model call leaves the machine."""
    return {
        "FLOWLOOM_OPENAI_BASE_URL": openai_base_url,
        "FLOWLOOM_GEMINI_BASE_URL": base_url,
        "FLOWLOOM_ANTHROPIC_BASE_URL": base_url,
        **dict.fromkeys(PROVIDER_KEYS, key),
    }


def sign_in(base: str, log: Path) -> dict[str, str]:
    """The Authorization header of the local owner, signed in with the password its first
    start printed to ``log``."""
    password = first_password(log.read_text(errors="replace"))
    assert password is not None, log.read_text(errors="replace")
    signed_in = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"email": "owner@flowloom.localhost", "password": password},
        timeout=30,
    )
    assert signed_in.status_code == 200, signed_in.text
    return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
