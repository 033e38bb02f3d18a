"""``flowloom serve`` killed with SIGKILL while clients submit runs, on SQLite and on
PostgreSQL. Each run POSTs three side effects to a listener in this process; every submission
has its own idempotency key and is sent again until answered. At the end every run is final,
each submission made exactly one run (and every run answered exists), and no node's effect
came after its success was committed. See servekill.py for the books.

- 240 submissions or more (runs API, runs API with ``wait=true``, webhook) through 6 kills
  at random moments (seeded RNG; the load's own timing still varies).
- A database outage of 3 s under webhook load, then one kill a second after the database is
  back: every run the server answered for, before, during or after the outage, must exist.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pgkit import require_postgres
from servekill import (
    Audit,
    Chaos,
    Keys,
    Ledger,
    Listener,
    Server,
    books,
    database_env,
    effects_workflow,
    outage,
    setup,
    until,
)

pytestmark = pytest.mark.slow

SEED = 20261204
SUBMISSIONS = 240
CLIENTS = 6
UP_BETWEEN_KILLS_S = (0.3, 1.5)
KILLS = 6


@dataclass
class Scene:
    server: Server
    ledger: Ledger
    chaos: Chaos
    env: dict[str, str]


@contextmanager
def under_load(
    database: str, folder: Path, *, rng: random.Random, **chaos: Any
) -> Iterator[tuple[Scene, list[Audit]]]:
    """A server on ``database`` under load from ``CLIENTS`` clients (``chaos`` as for Chaos);
    on leaving the block, the load ends and the books are read into the list yielded."""
    if database == "postgresql":
        require_postgres()
    audited: list[Audit] = []
    with (
        Listener() as listener,
        database_env(database, folder / "data") as env,
        Server(folder / "data", folder / "serve.log", env) as server,
    ):
        target = setup(server, effects_workflow(listener.url))
        ledger = Ledger()
        load = Chaos(server, target, ledger, Keys("sub"), clients=CLIENTS, rng=rng, **chaos)
        try:
            yield Scene(server, ledger, load.start(), env), audited
        finally:
            load.finish()
        audited.append(books(server, target, ledger, listener))


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_runs_survive_kill_9_of_the_server_under_load(database: str, tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}-{database}")
    with under_load(database, tmp_path, rng=rng, between_s=UP_BETWEEN_KILLS_S, max_kills=KILLS) as (
        scene,
        audited,
    ):
        until(
            lambda: (
                scene.chaos.abort.is_set()
                or (scene.server.kills >= KILLS and len(scene.ledger.answered) >= SUBMISSIONS)
            ),
            240,
            f"{KILLS} kills and {SUBMISSIONS} answered submissions",
        )
    (audit,) = audited
    assert scene.server.kills == KILLS
    assert audit.ok, audit.problems()
    assert audit.submitted == audit.runs >= SUBMISSIONS, audit.summary()
    assert audit.statuses == {"COMPLETED": audit.submitted}, audit.problems()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_what_was_answered_during_a_database_outage_survives_a_kill_after_it(
    database: str, tmp_path: Path
) -> None:
    # No random kills (one every hour): the one kill is below.
    with under_load(
        database, tmp_path, rng=random.Random(SEED), between_s=(3600, 3600), kinds=("webhook",)
    ) as (scene, audited):
        ledger, server = scene.ledger, scene.server
        until(lambda: len(ledger.answered) >= 20, 60, "20 runs before the outage")
        with outage(database, tmp_path / "data", scene.env.get("FLOWLOOM_DATABASE_URL")):
            time.sleep(3)  # the outage: its length is the point
        time.sleep(1)  # back a second, then
        server.kill()
        server.start()
        answered = len(ledger.answered)
        until(lambda: len(ledger.answered) >= answered + 20, 60, "20 runs after the restart")
    (audit,) = audited
    assert audit.ok, audit.problems()
    assert audit.statuses == {"COMPLETED": audit.submitted}, audit.problems()
