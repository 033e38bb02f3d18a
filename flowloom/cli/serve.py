"""``flowloom serve [--host 127.0.0.1] [--port 8000]``: the API and the engine in one process.

Before serving: the embedded SQLite database is migrated (a PostgreSQL one must already be at
the newest revision), and the local account (``owner@flowloom.localhost``, an admin) gets a
random password the first time, printed once to the console and stored only as an argon2id
hash; never a default password. The example workflows are loaded into it (those it has not got
yet). On a new SQLite database that password is made, and its hash begun on a thread of its
own (argon2: some 0.2 s of CPU that holds no GIL), before the server's modules load, so the two
go on side by side. Then uvicorn serves the app; SIGTERM or Ctrl-C shuts down cleanly: requests
in flight finish, the engine closes (running nodes are cancelled and left resumable: the next
start runs them again), the database is disposed of.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TextIO

from flowloom.settings import Settings

__all__ = ["FirstStart", "NewPassword", "prepare", "serve"]

_GRACEFUL_SHUTDOWN_S = 10


@dataclass(frozen=True, slots=True)
class FirstStart:
    """What ``prepare`` did: the local account, its new password (None if it had one), and how
    many example workflows were loaded."""

    email: str
    password: str | None
    examples_added: int


@dataclass(frozen=True, slots=True)
class NewPassword:
    """A random password for the local account, and its argon2id hash being made on a thread."""

    text: str
    hashed: Future[str]

    @classmethod
    def begin(cls) -> NewPassword:
        from flowloom.passwords import hash_on_thread

        text = secrets.token_urlsafe(18)
        return cls(text, hash_on_thread(text))


def _new_database(settings: Settings) -> bool:
    """Whether the database is a SQLite file not made yet (or left empty): its new local
    account will need a password."""
    path = settings.sqlite_path
    return path is not None and (not path.exists() or path.stat().st_size == 0)


async def prepare(settings: Settings, *, password: NewPassword | None = None) -> FirstStart:
    """Migrate (SQLite, copied aside first) or check (PostgreSQL) the database
    (``prepare_database``); set up the local account: the first time, with ``password`` (one
    begun ahead, see ``serve``) or a new one. A password begun but not needed is dropped."""
    from flowloom.example_workflows import install_examples
    from flowloom.local_account import local_owner
    from flowloom.storage.database import Database
    from flowloom.storage.repos.users import UserRepo
    from flowloom.storage.startup import prepare_database

    db = Database.from_settings(settings)
    try:
        await db.ping()
        await prepare_database(db, settings)
        async with db.write() as session:
            owner = await local_owner(session)
            shown = None
            if owner.password_hash is None:
                new = password or NewPassword.begin()
                hashed: str = await asyncio.wrap_future(new.hashed)
                await UserRepo(session).set_password_hash(user_id=owner.id, password_hash=hashed)
                shown = new.text
            added = await install_examples(session, owner_id=owner.id)
            return FirstStart(email=owner.email, password=shown, examples_added=len(added))
    finally:
        await db.dispose()


def announce(first: FirstStart, *, url: str, out: TextIO) -> None:
    """Tell the person at the console where to go and, the first time, how to sign in."""
    print(f"flowloom is starting at {url}", file=out)
    if first.password is not None:
        print(f"first start: sign in as {first.email} with password: {first.password}", file=out)
        print("  (shown this once; only its argon2id hash is stored)", file=out)
    if first.examples_added:
        print(f"loaded {first.examples_added} example workflow(s) into {first.email}", file=out)
    out.flush()


def serve(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, out: TextIO | None = None
) -> None:
    """Prepare the database, then serve until SIGTERM or Ctrl-C (see the module docstring).

    Raises ConfigurationError (or StorageError) before serving if the database cannot be used.
    """
    ahead = NewPassword.begin() if _new_database(settings) else None
    import uvicorn

    from flowloom.api import create_app

    stream = out or sys.stdout
    first = asyncio.run(prepare(settings, password=ahead))
    shown_host = f"[{host}]" if ":" in host else host
    announce(first, url=f"http://{shown_host}:{port}/", out=stream)
    config = uvicorn.Config(
        create_app(settings, freeze_gc=True),
        host=host,
        port=port,
        lifespan="on",
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    uvicorn.Server(config).run()
