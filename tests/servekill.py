"""Kill -9 of a real ``flowloom serve`` under load, and the books that say whether anything was
lost, stuck, duplicated or done twice. Used by tests/test_serve_killed.py (CI-sized) and by
benchmarks/soak.py (minutes of it, with a database outage).

The pieces, each a real thing:

- ``Listener``: an HTTP server in this process that every node of the load's workflow POSTs to.
  It records each request's ``Idempotency-Key`` (``<run id>:<node id>``) and when it came: the
  side effects, which survive the server's death.
- ``Server``: ``flowloom serve`` on a fixed port (so clients keep one address), on SQLite or on
  a fresh PostgreSQL database (``database_env``); ``kill`` sends SIGKILL, ``start`` starts it
  again on the same data.
- ``Ledger``: each submission has its own key, sent as the run's idempotency key; a submission
  that got no answer (the server died under it, or answered 503) is sent again with the same
  key until it is answered, and every run id answered for each key is kept.
- ``Chaos``: the submitter threads and a killer thread (seeded RNG), which a soak can pause.
- ``books`` reads every run back once all are final (``settle``) and ``audit`` checks: every
  run final (COMPLETED, FAILED or CANCELLED); every run answered exists (else ``lost``); one
  run per key (else ``duplicated``); no run made for a submission answered with an error
  (``orphans``); and no node effect after that node's success was committed (a node may
  repeat only when its success was not committed: no more requests than attempts, none later
  than the committed ``finished_at``, none for a run or node the server does not know).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from servekit import (
    first_password,
    free_port,
    postgres_admin,
    postgres_database,
    start,
    stop,
    wait_ready,
)

__all__ = [
    "FINAL",
    "KINDS",
    "MISSING",
    "Audit",
    "Chaos",
    "Keys",
    "Ledger",
    "Listener",
    "Server",
    "Target",
    "audit",
    "books",
    "database_env",
    "effects_workflow",
    "killer",
    "outage",
    "settle",
    "setup",
    "stored_runs",
    "submitter",
    "until",
]

FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
MISSING = "MISSING"
"""The status ``settle`` gives a run whose id a submission was answered with, but which the
server does not know."""
EFFECT_NODES = ("n1", "n2", "n3")
RESTART_TIMEOUT_S = 60


class Listener(ThreadingHTTPServer):
    """Counts side effects: one ``(run id, node id, unix time)`` per POST it receives."""

    daemon_threads = True
    request_queue_size = 1024
    """socketserver's default backlog is 5: a burst of resumed runs after a restart overflowed
    it, and the kernel reset some of their connections (a node failing for the listener's
    sake)."""

    def __init__(self, delay_s: float = 0.005) -> None:
        super().__init__(("127.0.0.1", 0), _Effect)
        self.delay_s = delay_s
        """How long each answer takes: nodes stay in flight long enough to be killed there."""
        self.hits: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/effect"

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Effect(BaseHTTPRequestHandler):
    server: Listener

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        run_id, _, node_id = (self.headers.get("Idempotency-Key") or "").rpartition(":")
        with self.server.lock:
            self.server.hits.append((run_id, node_id, time.time()))
        time.sleep(self.server.delay_s)
        with contextlib.suppress(OSError):  # the server was killed while it waited
            self.send_response(204)
            self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def effects_workflow(url: str) -> dict[str, Any]:
    """n1 -> (n2, n3): three ``http.request`` POSTs to ``url``, two of them concurrent."""

    def node(node_id: str, x: int, y: int) -> dict[str, Any]:
        config = {"method": "POST", "url": url, "body": {"from": node_id}}
        return {
            "id": node_id,
            "type": "http.request",
            "position": {"x": x, "y": y},
            "data": {"config": config},
        }

    edges = [
        {"id": f"e{child}", "source": "n1", "sourceHandle": "body", "target": child}
        | {"targetHandle": "body"}
        for child in ("n2", "n3")
    ]
    return {
        "schema_version": 1,
        "nodes": [node("n1", 0, 0), node("n2", 200, -100), node("n3", 200, 100)],
        "edges": edges,
    }


@contextlib.contextmanager
def database_env(kind: str, data_dir: Path) -> Iterator[dict[str, str]]:
    """The server's database settings: SQLite in ``data_dir``, or a fresh PostgreSQL database
    (dropped on leaving). HTTP nodes may reach 127.0.0.1 (the listener)."""
    env = {"FLOWLOOM_ALLOW_PRIVATE_HTTP": "true"}
    if kind == "sqlite":
        yield env
    elif kind == "postgresql":
        with postgres_database(data_dir) as url:
            yield {**env, "FLOWLOOM_DATABASE_URL": url}
    else:
        raise ValueError(f"unknown database {kind!r}: sqlite or postgresql")


@contextlib.contextmanager
def outage(kind: str, data_dir: Path, database_url: str | None) -> Iterator[None]:
    """The database unavailable while inside. SQLite: another connection holds
    ``BEGIN EXCLUSIVE`` (no other writer gets in). PostgreSQL: ``ALLOW_CONNECTIONS false`` and
    every connection to it terminated."""
    if kind == "sqlite":
        holder = sqlite3.connect(data_dir / "flowloom.db", timeout=30, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    assert database_url is not None
    name = database_url.rsplit("/", 1)[1]
    postgres_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        postgres_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        yield
    finally:
        postgres_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


class Server:
    """``flowloom serve`` that can be killed and started again, always on the same port."""

    def __init__(self, data_dir: Path, log: Path, env: dict[str, str]) -> None:
        self.data_dir, self.log, self.env = data_dir, log, env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.start_s: list[float] = []
        """How long each start took, to the first /healthz answer."""

    def start(self) -> None:
        """Start it and return once /healthz answers (AssertionError with the log if not)."""
        began = time.monotonic()
        self.process = start(self.data_dir, self.log, self.port, self.env)
        wait_ready(self.process, self.base, self.log, RESTART_TIMEOUT_S)
        self.start_s.append(time.monotonic() - began)

    def kill(self) -> None:
        assert self.process is not None
        assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Target:
    """What the load is aimed at: an API key, the workflow, its webhook and the token."""

    key: str
    workflow_id: str
    hook_path: str
    hook_token: str


def setup(server: Server, definition: dict[str, Any]) -> Target:
    """Sign in as the local owner; make an API key, the workflow and a webhook on it."""
    password = first_password(server.log.read_text(errors="replace"))
    assert password is not None, server.log.read_text(errors="replace")
    with httpx.Client(base_url=server.base, timeout=30) as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": "owner@flowloom.localhost", "password": password}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        scopes = ["runs:execute", "workflows:read"]
        key = client.post("/api/v1/api-keys", json={"name": "load", "scopes": scopes})
        assert key.status_code == 201, key.text
        workflow = client.post(
            "/api/v1/workflows",
            params={"strict": "true"},
            json={"name": "effects", "definition": definition},
        )
        assert workflow.status_code == 201, workflow.text
        hook = client.post(
            f"/api/v1/workflows/{workflow.json()['id']}/triggers", json={"kind": "webhook"}
        )
        assert hook.status_code == 201, hook.text
    hooked = hook.json()
    return Target(key.json()["key"], workflow.json()["id"], hooked["url"], hooked["token"])


KINDS = ("api", "api-wait", "webhook")
"""How a submission is sent: the runs API (202 at once, or ``wait=true``), or the webhook."""


@dataclass
class Ledger:
    """Every submission key and the run ids answered for it; thread-safe."""

    answered: dict[str, set[str]] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    kind_of: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    """Submissions sent again because the first try got no answer or a 503."""
    refused: list[str] = field(default_factory=list)
    """Answers that are neither a run nor 'try again' (4xx, other 5xx): each one a bug."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, key: str, run_id: str) -> None:
        with self.lock:
            self.answered.setdefault(key, set()).add(run_id)

    def run_ids(self) -> set[str]:
        with self.lock:
            return set().union(*self.answered.values()) if self.answered else set()


class Keys:
    """Submission keys ``<prefix>-0``, ``<prefix>-1``, ... for several threads, until
    ``close``."""

    def __init__(self, prefix: str) -> None:
        self._numbers = itertools.count()
        self._prefix = prefix
        self._lock = threading.Lock()
        self.closed = False

    def next(self) -> str | None:
        with self._lock:
            if self.closed:
                return None
            return f"{self._prefix}-{next(self._numbers)}"

    def close(self) -> None:
        """No more keys: submitters finish the one they hold and end."""
        with self._lock:
            self.closed = True


def submit_once(client: httpx.Client, target: Target, key: str, kind: str) -> httpx.Response:
    """Send submission ``key`` once, as ``kind``."""
    if kind == "webhook":
        return client.post(
            target.hook_path,
            json={"submission": key},
            headers={"X-Flowloom-Token": target.hook_token, "Idempotency-Key": key},
        )
    return client.post(
        f"/api/v1/workflows/{target.workflow_id}/runs",
        params={"wait": "true"} if kind == "api-wait" else {},
        json={"inputs": {}, "idempotency_key": key},
        headers={"Authorization": f"Bearer {target.key}"},
    )


RETRYABLE = frozenset({502, 503, 504})


def submitter(
    base: str,
    target: Target,
    ledger: Ledger,
    keys: Keys,
    kinds: Callable[[], str],
    abort: threading.Event,
    give_up_s: float = 90.0,
) -> None:
    """Submit keys one after another until they run out; each key again and again (the same
    key) until the server answers it with a run, for at most ``give_up_s`` (then it is
    written down as refused). ``abort`` ends it at once."""
    with httpx.Client(base_url=base, timeout=60) as client:
        while not abort.is_set() and (key := keys.next()) is not None:
            kind = kinds()
            with ledger.lock:
                ledger.kinds[kind] += 1
                ledger.kind_of[key] = kind
            give_up = time.monotonic() + give_up_s
            for attempt in itertools.count():
                if abort.is_set() or time.monotonic() > give_up:
                    with ledger.lock:
                        ledger.refused.append(f"{kind} {key}: no answer in {give_up_s:g} s")
                    break
                if attempt:
                    with ledger.lock:
                        ledger.retries += 1
                    time.sleep(0.05)  # the server is restarting: try again shortly
                try:
                    answer = submit_once(client, target, key, kind)
                except httpx.TransportError:
                    continue
                if answer.status_code in RETRYABLE:
                    continue
                if answer.status_code >= 300:
                    with ledger.lock:
                        ledger.refused.append(f"{kind} {key}: {answer.status_code} {answer.text}")
                    break
                body = answer.json()
                ledger.record(key, body.get("run_id") or body["id"])
                break


def killer(
    server: Server,
    rng: random.Random,
    stop: threading.Event,
    between_s: tuple[float, float],
    paused: threading.Event | None = None,
    busy: threading.Lock | None = None,
    max_kills: int | None = None,
) -> None:
    """Until ``stop`` (or ``max_kills`` kills): wait a random time in ``between_s`` after the
    server came up, SIGKILL it, start it again (holding ``busy`` meanwhile). Not while
    ``paused`` is set."""
    while not stop.wait(rng.uniform(*between_s)):
        if max_kills is not None and server.kills >= max_kills:
            return
        with busy or contextlib.nullcontext():
            if paused is not None and paused.is_set():
                continue
            server.kill()
            server.start()


class Chaos:
    """``clients`` submitter threads and one killer thread over one server. ``finish`` closes
    the keys, stops the killing (the server is left running), and waits for the submitters to
    have their last keys answered. A server that does not come back aborts everything; the
    error is raised by ``finish``."""

    def __init__(
        self,
        server: Server,
        target: Target,
        ledger: Ledger,
        keys: Keys,
        *,
        clients: int,
        rng: random.Random,
        between_s: tuple[float, float],
        kinds: Sequence[str] = KINDS,
        max_kills: int | None = None,
    ) -> None:
        self.server, self.keys = server, keys
        self.max_kills = max_kills
        self._paused, self._busy = threading.Event(), threading.Lock()
        self.abort, self._stop_killing = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        choose = random.Random(rng.random())
        self._clients = [
            threading.Thread(
                target=submitter,
                args=(server.base, target, ledger, keys, lambda: choose.choice(kinds), self.abort),
                daemon=True,
            )
            for _ in range(clients)
        ]
        self._killer = threading.Thread(target=self._kill, args=(rng, between_s), daemon=True)

    def _kill(self, rng: random.Random, between_s: tuple[float, float]) -> None:
        try:
            killer(
                self.server,
                rng,
                self._stop_killing,
                between_s,
                self._paused,
                self._busy,
                self.max_kills,
            )
        except BaseException as exc:
            self.errors.append(exc)
            self.abort.set()

    def start(self) -> Chaos:
        self._killer.start()
        for client in self._clients:
            client.start()
        return self

    def pause(self) -> None:
        """No more kills until ``resume``; returns once the server is up (a restart in
        progress has finished)."""
        self._paused.set()
        with self._busy:
            pass

    def resume(self) -> None:
        self._paused.clear()

    def clients_done(self, timeout_s: float) -> bool:
        """Whether every submitter ended (its keys ran out) within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for client in self._clients:
            client.join(max(0.0, deadline - time.monotonic()))
        return not any(client.is_alive() for client in self._clients)

    def finish(self, timeout_s: float = 120.0) -> None:
        self.keys.close()
        self._stop_killing.set()
        self._killer.join(RESTART_TIMEOUT_S + 5)
        if not self.clients_done(timeout_s):
            self.abort.set()
            self.clients_done(10)
        if self.errors:
            raise AssertionError("the server did not come back") from self.errors[0]


def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Return once ``condition()`` holds; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_s:g} s for {what}"
        time.sleep(0.05)


def settle(
    base: str, target: Target, run_ids: set[str], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Every run's detail once all are final, or as they are after ``timeout_s``."""
    details: dict[str, dict[str, Any]] = {}
    pending = set(run_ids)
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {target.key}"}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        while True:
            for run_id in sorted(pending):
                try:
                    answer = client.get(f"/api/v1/runs/{run_id}")
                except httpx.TransportError:
                    break  # the server is not up: read the rest on the next round
                if answer.status_code in RETRYABLE:
                    break
                if answer.status_code == 404:
                    # Answered to a client, yet not stored: lost (the audit says so).
                    details[run_id] = {"id": run_id, "status": MISSING, "nodes": []}
                    pending.discard(run_id)
                    continue
                assert answer.status_code == 200, answer.text
                details[run_id] = answer.json()
                if details[run_id]["status"] in FINAL:
                    pending.discard(run_id)
            if not pending or time.monotonic() > deadline:
                return details
            time.sleep(0.2)  # runs still going: read them again


def stored_runs(base: str, target: Target) -> list[str]:
    """Every run of the workflow the server has, newest first, through the API."""
    found: list[str] = []
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {target.key}"}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = client.get(f"/api/v1/workflows/{target.workflow_id}/runs", params=params)
            assert page.status_code == 200, page.text
            found += [run["id"] for run in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return found


@dataclass
class Audit:
    submitted: int
    runs: int
    statuses: Counter[str]
    stuck: list[str]
    """Runs not final: id and status."""
    lost: list[str]
    """Runs whose id was answered to a submission but which the server does not have."""
    duplicated: list[str]
    """Keys answered with more than one run."""
    orphans: list[str]
    """Runs stored that no answer named: made for a submission answered with an error."""
    effects: int
    repeats: int
    """Node effects beyond the first, each allowed only if that node's success had not been
    committed."""
    violations: list[str]
    """Effects that must not have happened: after a committed success, more than attempts,
    or for a run or node nobody knows."""
    refused: list[str]
    failed: list[str] = field(default_factory=list)
    """Runs that did not complete: id, status, and the error of each node that failed."""
    details: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    """Every run read back, by id (the API's run detail)."""

    @property
    def ok(self) -> bool:
        return not (
            self.stuck
            or self.lost
            or self.duplicated
            or self.orphans
            or self.violations
            or self.refused
        )

    def summary(self) -> str:
        return (
            f"submitted {self.submitted}, runs {self.runs} {dict(self.statuses)}, "
            f"stuck {len(self.stuck)}, lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}, orphans {len(self.orphans)}, "
            f"effects {self.effects}"
            f" (repeats {self.repeats}), violations {len(self.violations)}, "
            f"refused {len(self.refused)}"
        )

    def problems(self, limit: int = 20) -> str:
        lines = [self.summary()]
        for title, items in (
            ("stuck", self.stuck),
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("orphans", self.orphans),
            ("violations", self.violations),
            ("refused", self.refused),
            ("not completed", self.failed),
        ):
            lines += [f"{title}: {item}" for item in items[:limit]]
        return "\n".join(lines)


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def audit(
    ledger: Ledger,
    details: dict[str, dict[str, Any]],
    stored: list[str],
    listener: Listener,
) -> Audit:
    """The books: see the module docstring for what each check means. ``details`` should
    hold every run in ``stored`` too (``settle`` them all), so orphans' effects are checked."""
    run_ids = ledger.run_ids()
    duplicated = [
        f"key {key}: runs {sorted(ids)}" for key, ids in ledger.answered.items() if len(ids) > 1
    ]
    orphans = [
        f"{run_id} {details.get(run_id, {}).get('status')}"
        for run_id in sorted(set(stored) - run_ids)
    ]
    stuck = [
        f"{run_id} {d['status']}"
        for run_id, d in details.items()
        if d["status"] not in FINAL | {MISSING}
    ]
    key_of = {run_id: key for key, ids in ledger.answered.items() for run_id in ids}
    lost = [
        f"{run_id}: answered to {key_of[run_id]} ({ledger.kind_of.get(key_of[run_id])})"
        for run_id, d in details.items()
        if d["status"] == MISSING
    ]
    hits: dict[tuple[str, str], list[float]] = {}
    with listener.lock:
        for run_id, node_id, at in listener.hits:
            hits.setdefault((run_id, node_id), []).append(at)
    violations: list[str] = []
    for (run_id, node_id), times in sorted(hits.items()):
        run = details.get(run_id)
        node = next((n for n in (run or {}).get("nodes", ()) if n["node_id"] == node_id), None)
        if node is None:
            violations.append(f"{run_id}:{node_id}: {len(times)} effect(s) of an unknown node")
            continue
        if len(times) > max(int(node["attempt"]), len(node["attempts"])):
            violations.append(
                f"{run_id}:{node_id}: {len(times)} effects, {node['attempt']} attempt(s)"
            )
        if node["status"] == "SUCCEEDED" and node["finished_at"]:
            late = [at for at in times if at > _unix(node["finished_at"])]
            if late:
                violations.append(
                    f"{run_id}:{node_id}: {len(late)} effect(s) after its success was committed"
                    f" at {node['finished_at']}"
                )
    for run_id, run in details.items():
        if run["status"] != "COMPLETED":
            continue
        for node in run["nodes"]:
            if node["status"] == "SUCCEEDED" and not hits.get((run_id, node["node_id"])):
                violations.append(f"{run_id}:{node['node_id']}: SUCCEEDED without its effect")
    failed = [
        f"{run_id} {d['status']}: {d.get('error')!r}; "
        + "; ".join(
            f"{n['node_id']} {n['status']} {n.get('error')!r}"
            for n in d.get("nodes", ())
            if n["status"] not in ("SUCCEEDED", "SKIPPED")
        )
        for run_id, d in details.items()
        if d["status"] not in ("COMPLETED", MISSING)
    ]
    return Audit(
        details=dict(details),
        failed=failed,
        submitted=len(ledger.answered),
        runs=len(run_ids),
        statuses=Counter(d["status"] for d in details.values()),
        stuck=stuck,
        lost=lost,
        duplicated=duplicated,
        orphans=orphans,
        effects=sum(len(t) for t in hits.values()),
        repeats=sum(len(t) - 1 for t in hits.values()),
        violations=violations,
        refused=list(ledger.refused),
    )


def books(server: Server, target: Target, ledger: Ledger, listener: Listener) -> Audit:
    """Wait (up to 60 s) for every run the server has or answered to be final, then audit."""
    stored = stored_runs(server.base, target)
    details = settle(server.base, target, ledger.run_ids() | set(stored), timeout_s=60)
    return audit(ledger, details, stored, listener)
