"""The local account's first password, hashed and stored once the server runs: ``FirstPassword``.

``flowloom serve``'s first start gives the local account a random password and prints it
(``flowloom.cli.serve``). Its argon2id hash is some 0.19 s of CPU: made before serving, on a
two-core machine it ran beside the schema, the examples and the server's imports, and held
the first answer back by about that much. So the server makes it on a thread once it has
started and its routes are in (``flowloom.api.later_routes``: a sign-in waits for them
anyway), not beside its first answers, and stores it only while the account still has no
password (a password set meanwhile by other means is kept).

A sign-in that arrives before the hash is stored waits for it (:meth:`FirstPassword.stored`):
the printed password works from the moment anybody can type it. If storing it fails, the
error is logged (never the password) and the account keeps no password: nobody can sign in
as it, and the next start makes a new one. A server stopped meanwhile finishes storing it
first (:meth:`FirstPassword.finish`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from flowloom.passwords import hash_password
from flowloom.storage.database import Database
from flowloom.storage.repos.users import UserRepo

__all__ = ["FirstPassword"]

_log = logging.getLogger(__name__)


class FirstPassword:
    """``password`` for the account ``user_id``, to be stored once the app has started."""

    def __init__(self, *, user_id: str, password: str) -> None:
        self.user_id = user_id
        self._password: str | None = password
        self._task: asyncio.Task[bool] | None = None

    def start(self, db: Database) -> None:
        """Hash the password on a thread and store it in ``db`` (once; in the app's lifespan)."""
        if self._task is None:
            self._task = asyncio.create_task(self._store(db), name="flowloom-first-password")

    async def stored(self) -> None:
        """Wait until the hash is stored or storing it has failed (at once if not begun: it
        begins before the routes that sign in are served). A cancelled waiter leaves it going."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._task)

    async def finish(self) -> None:
        """Wait for the hash to be stored (a stopping server does not drop it)."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    async def _store(self, db: Database) -> bool:
        password, self._password = self._password, None
        if password is None:
            return False
        try:
            hashed = await asyncio.to_thread(hash_password, password)
            async with db.write() as session:
                stored = await UserRepo(session).set_first_password_hash(
                    user_id=self.user_id, password_hash=hashed
                )
        except Exception as exc:
            # Its type only: a database error's text carries the statement's parameters.
            _log.error(
                "the local account's first password could not be stored (%s); the next start "
                "makes a new one",
                type(exc).__name__,
            )
            raise
        if not stored:
            _log.warning("the local account has a password already: the printed one was not set")
        return stored
