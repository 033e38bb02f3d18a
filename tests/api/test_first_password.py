"""The local account's first password, hashed and stored by the server once it has started
(``flowloom.api.first_password``): a sign-in that comes before waits for it; a password set
meanwhile is kept; a failure leaves the account without one and sign-in answering 401; a server
stopped meanwhile stores it first."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from apikit import PASSWORD, client_for, make_settings, unique_email
from fastapi import FastAPI

from flowloom.api import create_app, first_password
from flowloom.api.first_password import FirstPassword
from flowloom.passwords import hash_password, verify_password
from flowloom.storage.database import Database
from flowloom.storage.repos.users import UserRepo

PRINTED = "printed-once-Xk3vQ9zL0pW2"


async def _account(db: Database, *, password_hash: str | None = None) -> tuple[str, str]:
    email = unique_email("owner")
    async with db.write() as session:
        user = await UserRepo(session).create(email=email, password_hash=password_hash)
    return user.id, email


async def _stored_hash(db: Database, user_id: str) -> str | None:
    async with db.read() as session:
        return (await UserRepo(session).get(user_id=user_id)).password_hash


async def _stored_is(db: Database, user_id: str, password: str) -> bool:
    """Whether the account's stored hash is ``password``'s."""
    stored = await _stored_hash(db, user_id)
    return stored is not None and verify_password(stored, password)


@asynccontextmanager
async def _serving(
    db: Database, data_dir: Path, user_id: str, password: str = PRINTED
) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(data_dir), db=db)
    app.state.flowloom.first_password = FirstPassword(user_id=user_id, password=password)
    async with app.router.lifespan_context(app):
        yield app


def _held_hashing(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hashing waits for the returned event to be set."""
    release = threading.Event()

    def slow_hash(password: str) -> str:
        assert release.wait(30)
        return hash_password(password)

    monkeypatch.setattr(first_password, "hash_password", slow_hash)
    return release


async def _sign_in(app: FastAPI, email: str, password: str) -> httpx.Response:
    async with client_for(app) as client:
        return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_a_sign_in_before_the_password_is_stored_waits_for_it_and_gets_in(
    db: Database, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, email = await _account(db)
    release = _held_hashing(monkeypatch)

    async with _serving(db, data_dir, user_id) as app:
        signing_in = asyncio.create_task(_sign_in(app, email, PRINTED))
        await asyncio.sleep(0.3)
        waited = not signing_in.done()
        release.set()
        response = await asyncio.wait_for(signing_in, 30)

    assert waited
    assert response.status_code == 200, response.text
    assert await _stored_is(db, user_id, PRINTED)


async def test_a_password_set_meanwhile_is_kept_and_the_printed_one_refused(
    db: Database, data_dir: Path
) -> None:
    user_id, email = await _account(db, password_hash=hash_password(PASSWORD))

    async with _serving(db, data_dir, user_id) as app:
        printed = await _sign_in(app, email, PRINTED)
        own = await _sign_in(app, email, PASSWORD)

    assert printed.status_code == 401
    assert own.status_code == 200, own.text
    assert await _stored_is(db, user_id, PASSWORD)


async def test_a_password_that_cannot_be_stored_leaves_none_and_is_never_logged(
    db: Database,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user_id, email = await _account(db)

    def failing(password: str) -> str:
        raise MemoryError(password)  # a hostile library error that quotes the password

    monkeypatch.setattr(first_password, "hash_password", failing)

    with caplog.at_level(logging.ERROR, logger=first_password.__name__):
        async with _serving(db, data_dir, user_id) as app:
            response = await asyncio.wait_for(_sign_in(app, email, PRINTED), 30)

    assert response.status_code == 401
    assert await _stored_hash(db, user_id) is None
    assert "could not be stored" in caplog.text
    assert PRINTED not in caplog.text


async def test_a_server_stopped_before_the_password_is_stored_stores_it_first(
    db: Database, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, _ = await _account(db)
    release = _held_hashing(monkeypatch)
    threading.Timer(0.3, release.set).start()

    async with _serving(db, data_dir, user_id):
        pass

    assert await _stored_is(db, user_id, PRINTED)


async def test_with_the_routes_loaded_later_a_sign_in_at_once_waits_for_both(
    db: Database, data_dir: Path
) -> None:
    user_id, email = await _account(db)
    app = create_app(make_settings(data_dir), db=db, routes_after_start=True)
    app.state.flowloom.first_password = FirstPassword(user_id=user_id, password=PRINTED)

    async with app.router.lifespan_context(app):
        response = await asyncio.wait_for(_sign_in(app, email, PRINTED), 60)

    assert response.status_code == 200, response.text
