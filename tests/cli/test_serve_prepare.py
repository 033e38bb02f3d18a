"""``flowloom serve``'s first start (``prepare``): the local owner's one-time password is
hashed while the examples are saved, in one transaction; a restart makes neither again."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowloom import example_workflows
from flowloom.cli.serve import prepare
from flowloom.local_account import LOCAL_OWNER_EMAIL
from flowloom.passwords import verify_password
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.users import UserRepo


async def _stored_hash(settings: Settings) -> str | None:
    db = Database.from_settings(settings)
    try:
        async with db.read() as session:
            owner = await UserRepo(session).get_by_email(email=LOCAL_OWNER_EMAIL)
            return owner.password_hash
    finally:
        await db.dispose()


async def test_the_first_start_stores_the_printed_passwords_hash_and_a_restart_keeps_it(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    first = await prepare(settings)
    again = await prepare(settings)

    assert first.password is not None
    assert first.examples_added == len(example_workflows.read_examples())
    stored = await _stored_hash(settings)
    assert stored is not None
    assert verify_password(stored, first.password)
    assert (again.password, again.examples_added) == (None, 0)
    assert await _stored_hash(settings) == stored


async def test_a_failed_example_load_stores_nothing_and_the_next_start_begins_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    async def broken(*args: object, **kwargs: object) -> list[object]:
        raise OSError("examples unreadable")

    with monkeypatch.context() as patched:
        patched.setattr(example_workflows, "install_examples", broken)
        with pytest.raises(OSError, match="examples unreadable"):
            await prepare(settings)
    first = await prepare(settings)

    assert first.password is not None
    assert first.examples_added > 0
    stored = await _stored_hash(settings)
    assert stored is not None
    assert verify_password(stored, first.password)
