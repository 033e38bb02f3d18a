"""Turn the database's refusals into flowloom's errors, naming what was refused.

Two kinds, told apart here and nowhere else: the database is *unavailable* (unreachable,
dropped the connection, locked past the busy timeout: ``is_unavailable``, raised as
``DatabaseUnavailable``), which passes and is worth waiting for; and the database *refused*
the operation (a constraint, bad data), which trying again cannot fix
(``translate_integrity_error`` names the object for the constraints).
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import sqlite3
import sys
from typing import Any, Final

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SqlalchemyTimeout

from flowloom.exceptions import Conflict, InputError, NotFound, StorageError

__all__ = ["DatabaseUnavailable", "is_unavailable", "translate_integrity_error"]

_UNIQUE = re.compile(r"unique|duplicate key", re.IGNORECASE)
_FOREIGN = re.compile(r"foreign key", re.IGNORECASE)
_CHECK = re.compile(r"check constraint", re.IGNORECASE)
_NOT_NULL = re.compile(r"not[ -]null", re.IGNORECASE)


def translate_integrity_error(exc: Exception, *, what: str) -> Exception:
    """Conflict (duplicate), NotFound (missing referenced row) or InputError (bad value).

    ``what`` names the object being written, e.g. ``"workflow"``; ``exc`` is SQLAlchemy's, or
    the driver's own (``sqlite3``'s, asyncpg's) from a statement run on its connection. The
    database's own message names its constraints and columns (internals, and a hint at what
    else is stored): it is logged at debug level, never put in the error, which API answers
    show.
    """
    orig = exc.orig if isinstance(exc, IntegrityError) else exc
    detail = (str(orig) or str(exc)).splitlines()[0]
    logging.getLogger("flowloom.storage").debug("%s refused by the database: %s", what, detail)
    if _UNIQUE.search(detail):
        return Conflict(f"{what} already exists")
    if _FOREIGN.search(detail):
        return NotFound("referenced object", what)
    if _CHECK.search(detail) or _NOT_NULL.search(detail):
        return InputError(f"{what} has an invalid value")
    return Conflict(f"{what} was refused by the database")


class DatabaseUnavailable(StorageError):
    """The database could not be reached, dropped the connection, or stayed busy (locked)
    past the busy timeout: a transient condition. The API answers 503; the engine's drivers
    back off and try again (``flowloom.engine.backoff``). Anything else the database refuses
    (bad data, a broken constraint) is not this: trying again would fail the same way."""

    @classmethod
    def from_error(cls, exc: BaseException) -> DatabaseUnavailable:
        return cls(f"the database is unavailable: {_first_line(exc)}")


_PG_TRANSIENT_STATES: Final = frozenset(
    {
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, shutting down, in recovery)
        "53300",  # too_many_connections
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
    }
)
_PG_CLOSED_DOORS: Final = ("not currently accepting connections",)
"""What PostgreSQL says (SQLSTATE 55000, object not in prerequisite state, which also covers
mistakes) when a database is closed to new connections for a while: an outage, by its text."""
_SQLITE_TRANSIENT_CODES: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,  # "database is locked" past the busy timeout
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_CANTOPEN,  # the file (or its folder) cannot be opened now
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,  # the file was made read-only under us
        sqlite3.SQLITE_PROTOCOL,
    }
)
_CHAIN_LIMIT: Final = 8


def is_unavailable(exc: BaseException, *, network_errors: bool = True) -> bool:
    """Whether ``exc`` (or an error it wraps) says the database is unreachable or busy.

    The one place that knows the drivers' ways of saying so: SQLAlchemy's invalidated
    connections and pool timeouts, asyncpg's connection errors and server states (shutting
    down, starting up, too many connections, serialization failures), sqlite3's busy, locked
    and cannot-open codes, and socket errors. ``network_errors=False`` ignores a bare
    ``OSError`` at the top of the chain (for callers that cannot tell that it came from the
    database: a refused connection to anything else is not the database's outage); one wrapped
    in a database error still counts.
    """
    seen: set[int] = set()
    item: BaseException | None = exc
    depth = 0
    while item is not None and id(item) not in seen and depth < _CHAIN_LIMIT:
        seen.add(id(item))
        if _says_unavailable(item, network_errors=network_errors or depth > 0):
            return True
        orig = getattr(item, "orig", None) if isinstance(item, DBAPIError) else None
        item = orig if isinstance(orig, BaseException) else (item.__cause__ or item.__context__)
        depth += 1
    return False


def _says_unavailable(exc: BaseException, *, network_errors: bool) -> bool:
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    if isinstance(exc, SqlalchemyTimeout):
        return True  # no pooled connection came free in time: overloaded, not broken
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return "locked" in str(exc) or "unable to open" in str(exc)
        return code & 0xFF in _SQLITE_TRANSIENT_CODES
    asyncpg_errors = _asyncpg_errors()
    if (
        asyncpg_errors is not None
        and (verdict := _asyncpg_verdict(exc, asyncpg_errors)) is not None
    ):
        return verdict
    if isinstance(exc, OSError):
        return network_errors and (
            isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)
            or exc.errno in _NETWORK_ERRNOS
        )
    return False


def _asyncpg_errors() -> Any:
    """asyncpg's exception module if asyncpg is loaded, else None: a process that never
    connected to PostgreSQL (SQLite) has no asyncpg error to recognise, and need not load it."""
    return sys.modules.get("asyncpg.exceptions")


def _asyncpg_verdict(exc: BaseException, asyncpg_errors: Any) -> bool | None:
    """Whether asyncpg's ``exc`` says the database is unavailable; None if ``exc`` is not one
    of the asyncpg errors looked at here."""
    if isinstance(exc, asyncpg_errors.PostgresConnectionError):
        return True
    if isinstance(exc, asyncpg_errors.PostgresError):
        if getattr(exc, "sqlstate", None) in _PG_TRANSIENT_STATES:
            return True
        return isinstance(exc, asyncpg_errors.ObjectNotInPrerequisiteStateError) and any(
            text in str(exc) for text in _PG_CLOSED_DOORS
        )
    if type(exc) is asyncpg_errors.InterfaceError:
        # asyncpg says "connection is closed" (or "... was closed in the middle of operation")
        # with its base InterfaceError; its other interface errors are the caller's mistakes.
        return "closed" in str(exc)
    if isinstance(exc, asyncpg_errors.InternalClientError):
        # "cannot switch to state N; another operation is in progress" (or "protocol is in the
        # failed state"): a connection that an operation cut short by an outage left in the
        # middle of the protocol. Drop it and try again on another.
        return str(exc).startswith("cannot switch to state")
    return None


_NETWORK_ERRNOS: Final = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
