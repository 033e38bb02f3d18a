"""``flowloom serve``'s first start: the local account's password can be begun (and its hash made
on a thread) before the server's modules load; ``prepare`` then stores that hash and shows that
password, and a password begun for a database that needs none is dropped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from flowloom.cli.serve import NewPassword, _new_database, prepare
from flowloom.passwords import verify_password
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.tables import User


@pytest.fixture(autouse=True)
def _sqlite_in_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWLOOM_DATABASE_URL", raising=False)


async def _stored_hash(settings: Settings) -> str | None:
    db = Database.from_settings(settings)
    try:
        async with db.read() as session:
            return await session.scalar(select(User.password_hash))
    finally:
        await db.dispose()


def test_a_password_begun_ahead_is_the_one_stored_and_shown(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert _new_database(settings)
    begun = NewPassword.begin()

    first = asyncio.run(prepare(settings, password=begun))

    assert first.password == begun.text
    stored = asyncio.run(_stored_hash(settings))
    assert stored is not None
    assert verify_password(stored, begun.text)
    assert not _new_database(settings)


def test_a_password_begun_for_an_account_that_has_one_is_dropped(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    shown = asyncio.run(prepare(settings)).password
    assert shown is not None
    stored = asyncio.run(_stored_hash(settings))

    again = asyncio.run(prepare(settings, password=NewPassword.begin()))

    assert again.password is None
    assert asyncio.run(_stored_hash(settings)) == stored


def test_only_a_sqlite_file_not_made_yet_counts_as_a_new_database(tmp_path: Path) -> None:
    assert _new_database(Settings(data_dir=tmp_path / "none"))
    empty = tmp_path / "empty.db"
    empty.touch()
    assert _new_database(Settings(database_url=f"sqlite:///{empty}"))
    empty.write_bytes(b"SQLite format 3\x00")
    assert not _new_database(Settings(database_url=f"sqlite:///{empty}"))
    assert not _new_database(Settings(database_url="postgresql://flowloom@localhost/flowloom"))
