"""Accounts: creation and lookup, external identities, settings, deletion, on both databases."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.passwords import hash_password, verify_password
from flowloom.storage.database import Database
from flowloom.storage.repos import ApiKeyRepo, AuditRepo, UserRepo, WorkflowRepo
from flowloom.storage.tables import (
    ApiKey,
    AuditEntry,
    User,
    UserIdentity,
    UserSettings,
    Workflow,
    WorkflowVersion,
)


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


async def test_create_stores_lower_case_email_and_finds_it_in_any_case(db: Database) -> None:
    email = unique_email("mixed")
    async with db.write() as s:
        user = await UserRepo(s).create(
            email=f"  {email.upper()} ", username=f"u{secrets.token_hex(4)}"
        )

    assert user.email == email.lower()
    assert user.id.startswith("usr_")
    assert user.role == "user"
    async with db.read() as s:
        found = await UserRepo(s).get_by_email(email=email.upper())
        assert found.id == user.id
        assert (await UserRepo(s).get(user_id=user.id)).email == email.lower()


async def test_duplicate_email_in_another_case_is_a_conflict_and_nothing_is_written(
    db: Database,
) -> None:
    email = unique_email("dup")
    async with db.write() as s:
        await UserRepo(s).create(email=email)

    with pytest.raises(Conflict, match="already exists"):
        async with db.write() as s:
            await UserRepo(s).create(email=email.upper())

    async with db.read() as s:
        count = await s.scalar(select(func.count()).select_from(User).where(User.email == email))
    assert count == 1


@pytest.mark.parametrize(
    "bad", ["", "no-at-sign.example.com", "two@@example.com", "a b@example.com", "x@localhost"]
)
async def test_malformed_email_is_refused_naming_the_field(db: Database, bad: str) -> None:
    with pytest.raises(InputError) as caught:
        async with db.write() as s:
            await UserRepo(s).create(email=bad)
    assert caught.value.field == "email"


async def test_unknown_role_is_refused(db: Database) -> None:
    with pytest.raises(InputError, match="role"):
        async with db.write() as s:
            await UserRepo(s).create(email=unique_email(), role="superuser")


async def test_missing_user_is_not_found(db: Database) -> None:
    async with db.read() as s:
        with pytest.raises(NotFound):
            await UserRepo(s).get(user_id="usr_01jd4y9q6xf3k8r2m5t7v9w0ab")
        with pytest.raises(NotFound):
            await UserRepo(s).get_by_email(email=unique_email("nobody"))


async def test_password_hash_and_login_time_are_stored(db: Database) -> None:
    async with db.write() as s:
        user = await UserRepo(s).create(email=unique_email(), password_hash=hash_password("old"))
    login_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with db.write() as s:
        await UserRepo(s).set_password_hash(user_id=user.id, password_hash=hash_password("new"))
        await UserRepo(s).touch_login(user_id=user.id, now=login_at)

    async with db.read() as s:
        stored = await UserRepo(s).get(user_id=user.id)
    assert stored.password_hash is not None
    assert verify_password(stored.password_hash, "new")
    assert not verify_password(stored.password_hash, "old")
    assert stored.last_login_at == login_at


async def test_identity_lookup_finds_the_internal_user(db: Database) -> None:
    subject = f"user_{secrets.token_hex(6)}"
    async with db.write() as s:
        user = await UserRepo(s).create(email=unique_email())
        await UserRepo(s).link_identity(user_id=user.id, provider="clerk", subject=subject)

    async with db.read() as s:
        found = await UserRepo(s).find_by_identity(provider="clerk", subject=subject)
        assert found is not None
        assert found.id == user.id
        assert await UserRepo(s).find_by_identity(provider="github", subject=subject) is None
        assert await UserRepo(s).find_by_identity(provider="clerk", subject="user_other") is None


async def test_linking_is_idempotent_but_an_identity_cannot_move_to_another_user(
    db: Database,
) -> None:
    subject = f"user_{secrets.token_hex(6)}"
    async with db.write() as s:
        owner = await UserRepo(s).create(email=unique_email("owner"))
        other = await UserRepo(s).create(email=unique_email("other"))
        first = await UserRepo(s).link_identity(user_id=owner.id, provider="clerk", subject=subject)
        again = await UserRepo(s).link_identity(user_id=owner.id, provider="clerk", subject=subject)
    assert again.id == first.id

    with pytest.raises(Conflict, match="another account"):
        async with db.write() as s:
            await UserRepo(s).link_identity(user_id=other.id, provider="clerk", subject=subject)
    with pytest.raises(NotFound):
        async with db.write() as s:
            await UserRepo(s).link_identity(
                user_id="usr_01jd4y9q6xf3k8r2m5t7v9w0ab", provider="clerk", subject="user_x"
            )

    async with db.read() as s:
        found = await UserRepo(s).find_by_identity(provider="clerk", subject=subject)
    assert found is not None
    assert found.id == owner.id


async def test_find_or_create_makes_the_user_once_and_then_finds_it(db: Database) -> None:
    subject = f"user_{secrets.token_hex(6)}"
    email = unique_email("clerk")
    async with db.write() as s:
        created = await UserRepo(s).find_or_create_by_identity(
            provider="clerk", subject=subject, email=email.upper()
        )
    async with db.write() as s:
        again = await UserRepo(s).find_or_create_by_identity(
            provider="clerk", subject=subject, email=unique_email("changed")
        )

    assert again.id == created.id
    assert again.email == email


async def test_two_racing_first_sign_ins_end_with_one_user(db: Database) -> None:
    subject = f"user_{secrets.token_hex(6)}"
    email = unique_email("race")

    async def sign_in(hold_s: float) -> str:
        async with db.write() as s:
            user = await UserRepo(s).find_or_create_by_identity(
                provider="clerk", subject=subject, email=email
            )
            # Keep the transaction open so the other sign-in runs into the uncommitted row
            # (PostgreSQL) or queues behind this writer (SQLite).
            await asyncio.sleep(hold_s)
            return user.id

    # On PostgreSQL the later sign-ins miss, insert, wait on the first one's uncommitted row,
    # lose on the unique constraint and re-read; on SQLite they queue and find it.
    ids = await asyncio.gather(sign_in(0.3), sign_in(0.0), sign_in(0.0))

    assert len(set(ids)) == 1
    async with db.read() as s:
        users = await s.scalar(select(func.count()).select_from(User).where(User.email == email))
        links = await s.scalar(
            select(func.count()).select_from(UserIdentity).where(UserIdentity.subject == subject)
        )
    assert (users, links) == (1, 1)


async def test_find_or_create_refuses_to_take_over_an_existing_email(db: Database) -> None:
    email = unique_email("taken")
    async with db.write() as s:
        await UserRepo(s).create(email=email)

    with pytest.raises(Conflict, match="already exists"):
        async with db.write() as s:
            await UserRepo(s).find_or_create_by_identity(
                provider="clerk", subject=f"user_{secrets.token_hex(6)}", email=email
            )


async def test_settings_merge_deeply_and_none_removes_a_key(db: Database) -> None:
    async with db.write() as s:
        user = await UserRepo(s).create(email=unique_email())
        assert await UserRepo(s).get_settings(user_id=user.id) == {}
        await UserRepo(s).update_settings(
            user_id=user.id, changes={"theme": "dark", "editor": {"grid": True, "snap": 8}}
        )
    async with db.write() as s:
        merged = await UserRepo(s).update_settings(
            user_id=user.id, changes={"editor": {"snap": 16}, "theme": None, "lang": "en"}
        )

    expected = {"editor": {"grid": True, "snap": 16}, "lang": "en"}
    assert merged == expected
    async with db.read() as s:
        assert await UserRepo(s).get_settings(user_id=user.id) == expected
    with pytest.raises(NotFound):
        async with db.write() as s:
            await UserRepo(s).update_settings(
                user_id="usr_01jd4y9q6xf3k8r2m5t7v9w0ab", changes={"a": 1}
            )


async def test_concurrent_settings_updates_keep_both_changes(db: Database) -> None:
    async with db.write() as s:
        user = await UserRepo(s).create(email=unique_email())

    async def change(key: str) -> None:
        async with db.write() as s:
            await UserRepo(s).update_settings(user_id=user.id, changes={key: True})

    await asyncio.gather(*(change(f"k{i}") for i in range(5)))

    async with db.read() as s:
        assert await UserRepo(s).get_settings(user_id=user.id) == {f"k{i}": True for i in range(5)}


async def test_delete_cascades_to_owned_rows_and_keeps_the_audit_trail(db: Database) -> None:
    async with db.write() as s:
        user = await UserRepo(s).create(email=unique_email("gone"))
        await UserRepo(s).link_identity(user_id=user.id, provider="clerk", subject=user.id)
        await UserRepo(s).update_settings(user_id=user.id, changes={"a": 1})
        workflow = await WorkflowRepo(s, owner_id=user.id).create(name="w", definition={})
        key, _ = await ApiKeyRepo(s, owner_id=user.id).create(name="k", scopes=["admin"])
        entry = await AuditRepo(s).record(user_id=user.id, action="user.delete")

    async with db.write() as s:
        await UserRepo(s).delete(user_id=user.id)
    with pytest.raises(NotFound):
        async with db.write() as s:
            await UserRepo(s).delete(user_id=user.id)

    async with db.read() as s:
        assert await s.get(User, user.id) is None
        for table, column in [
            (UserIdentity, UserIdentity.user_id),
            (UserSettings, UserSettings.user_id),
            (Workflow, Workflow.user_id),
            (ApiKey, ApiKey.user_id),
        ]:
            left = await s.scalar(select(func.count()).select_from(table).where(column == user.id))
            assert left == 0, table.__tablename__
        versions = await s.scalar(
            select(func.count())
            .select_from(WorkflowVersion)
            .where(WorkflowVersion.workflow_id == workflow.id)
        )
        assert versions == 0
        assert await s.get(ApiKey, key.id) is None
        kept = await s.get(AuditEntry, entry.id)
        assert kept is not None
        assert kept.user_id is None
