"""Which database errors mean "unavailable, try again" (``is_unavailable``), and the backoff.

The outage tests (tests/engine/test_engine_outage.py, tests/api/test_api_outage.py) take real
databases away; these pin the classification of each driver's ways of saying it, including
the ones those cannot easily provoke, and that refusals of bad data are never taken for one.
"""

from __future__ import annotations

import sqlite3

import asyncpg.exceptions as asyncpg_errors
import pytest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from flowloom.engine.backoff import Backoff
from flowloom.storage.errors import DatabaseUnavailable, is_unavailable


def _sqlite_error(kind: type[sqlite3.Error], code: int, text: str) -> sqlite3.Error:
    error = kind(text)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


_LOCKED = _sqlite_error(sqlite3.OperationalError, sqlite3.SQLITE_BUSY, "database is locked")


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> OperationalError:
    return OperationalError("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(_LOCKED),
        _sqlite_error(sqlite3.OperationalError, sqlite3.SQLITE_CANTOPEN, "unable to open"),
        _sqlite_error(sqlite3.OperationalError, sqlite3.SQLITE_IOERR | (3 << 8), "disk I/O"),
        _wrapped(Exception("connection was closed in the middle of operation"), invalidated=True),
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg_errors.ConnectionDoesNotExistError("connection was closed"),
        asyncpg_errors.CannotConnectNowError("the database system is starting up"),
        asyncpg_errors.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg_errors.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg_errors.InterfaceError("connection is closed"),
        # A connection an outage left mid-protocol (seen in the crash suite's outage).
        asyncpg_errors.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
        asyncpg_errors.ObjectNotInPrerequisiteStateError(
            'database "flowloom" is not currently accepting connections'
        ),
        DatabaseUnavailable("already said"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_connection_losses_and_locks_are_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


def test_a_connection_error_under_another_error_counts() -> None:
    outer = RuntimeError("while committing")
    outer.__cause__ = ConnectionResetError(104, "Connection reset by peer")

    assert is_unavailable(outer)
    # A caller that cannot tell where a bare OSError came from still sees it wrapped.
    assert is_unavailable(outer, network_errors=False)


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
        DataError("INSERT", {}, Exception("string or blob too big")),
        _sqlite_error(sqlite3.OperationalError, sqlite3.SQLITE_ERROR, "no such table: runs"),
        _sqlite_error(sqlite3.DataError, sqlite3.SQLITE_TOOBIG, "string or blob too big"),
        sqlite3.InterfaceError("Error binding parameter 1: type 'dict' is not supported"),
        asyncpg_errors.UntranslatableCharacterError("unsupported Unicode escape sequence"),
        asyncpg_errors.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg_errors.ObjectNotInPrerequisiteStateError("cursor is not a SELECT query"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        FileNotFoundError(2, "No such file"),
        ValueError("anything else"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_refusals_and_other_errors_are_not(error: BaseException) -> None:
    assert not is_unavailable(error)


def test_a_bare_oserror_counts_only_for_callers_that_know_it_came_from_the_database() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed")
    assert is_unavailable(refused)
    assert not is_unavailable(refused, network_errors=False)


def test_backoff_doubles_to_its_cap_with_jitter_and_starts_over_after_reset() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, step in zip(delays, steps, strict=True):
        assert step / 2 <= delay <= step
    assert len({round(delay, 6) for delay in delays[4:]}) > 1, "jittered, not in step"
    backoff.reset()
    assert backoff.next_delay() <= 0.1
