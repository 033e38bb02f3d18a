"""API keys: shown once, stored as a digest, owner-scoped, refused once revoked or expired."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from flowloom.exceptions import InputError, NotFound
from flowloom.storage.database import Database
from flowloom.storage.repos import ApiKeyRepo, UserRepo, authenticate_api_key
from flowloom.storage.repos.api_keys import KeyMatch
from flowloom.storage.tables import ApiKey, User


async def new_user(db: Database) -> str:
    async with db.write() as s:
        user = await UserRepo(s).create(email=f"keys-{secrets.token_hex(4)}@example.com")
    return user.id


async def authenticate(
    db: Database, plaintext: str, now: datetime | None = None
) -> KeyMatch | None:
    return await authenticate_api_key(db, plaintext=plaintext, now=now)


async def test_key_is_shown_once_and_only_its_digest_is_stored(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        key, plaintext = await ApiKeyRepo(s, owner_id=owner).create(
            name=" ci ", scopes=["workflows:read", "runs:execute", "workflows:read"]
        )

    marker, prefix, secret = plaintext.split("_", 2)
    assert (marker, prefix) == ("flk", key.prefix)
    assert len(prefix) == 8
    assert len(secret) >= 43
    assert key.name == "ci"
    assert key.scopes == ["workflows:read", "runs:execute"]
    async with db.read() as s:
        stored = await s.scalar(select(ApiKey).where(ApiKey.id == key.id))
    assert stored is not None
    assert stored.secret_sha256 == hashlib.sha256(plaintext.encode()).hexdigest()
    assert secret not in repr([getattr(stored, c.key) for c in ApiKey.__table__.columns])

    found = await authenticate(db, plaintext)
    assert found is not None
    assert (found.id, found.user_id) == (key.id, owner)


@pytest.mark.parametrize(("scopes", "named"), [(["workflows:read", "root"], "root"), ([], "")])
async def test_unknown_or_missing_scopes_are_refused(
    db: Database, scopes: list[str], named: str
) -> None:
    owner = await new_user(db)
    with pytest.raises(InputError, match=named or "at least one") as caught:
        async with db.write() as s:
            await ApiKeyRepo(s, owner_id=owner).create(name="k", scopes=scopes)
    assert caught.value.field == "scopes"


async def test_expiry_in_the_past_or_without_time_zone_is_refused(db: Database) -> None:
    owner = await new_user(db)
    for bad in (datetime.now(UTC) - timedelta(seconds=1), datetime(2099, 1, 1)):
        with pytest.raises(InputError, match="expires_at"):
            async with db.write() as s:
                await ApiKeyRepo(s, owner_id=owner).create(
                    name="k", scopes=["admin"], expires_at=bad
                )


async def test_wrong_secret_and_malformed_strings_do_not_authenticate(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        _, plaintext = await ApiKeyRepo(s, owner_id=owner).create(name="k", scopes=["admin"])

    marker, prefix, secret = plaintext.split("_", 2)
    wrong_secret = f"{marker}_{prefix}_{secrets.token_urlsafe(32)}"
    for attempt in [wrong_secret, plaintext[:-1], f"xyz_{prefix}_{secret}", prefix, "", "flk__"]:
        assert await authenticate(db, attempt) is None, attempt
    assert await authenticate(db, plaintext) is not None


async def test_revoked_key_no_longer_authenticates(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        key, plaintext = await ApiKeyRepo(s, owner_id=owner).create(name="k", scopes=["admin"])
    async with db.write() as s:
        revoked = await ApiKeyRepo(s, owner_id=owner).revoke(key_id=key.id)
    assert not revoked.active
    assert revoked.revoked_at is not None

    assert await authenticate(db, plaintext) is None
    async with db.write() as s:
        again = await ApiKeyRepo(s, owner_id=owner).revoke(key_id=key.id)
    assert again.revoked_at == revoked.revoked_at


async def test_expired_key_no_longer_authenticates(db: Database) -> None:
    owner = await new_user(db)
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    async with db.write() as s:
        _, plaintext = await ApiKeyRepo(s, owner_id=owner).create(
            name="k", scopes=["admin"], expires_at=expires_at
        )

    assert await authenticate(db, plaintext, now=expires_at - timedelta(seconds=1)) is not None
    assert await authenticate(db, plaintext, now=expires_at) is None
    assert await authenticate(db, plaintext, now=expires_at + timedelta(days=1)) is None


async def test_disabled_owner_keys_do_not_authenticate(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        _, plaintext = await ApiKeyRepo(s, owner_id=owner).create(name="k", scopes=["admin"])
        user = await s.get(User, owner)
        assert user is not None
        user.is_active = False

    assert await authenticate(db, plaintext) is None


async def test_last_used_at_is_written_at_most_once_a_minute(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        key, plaintext = await ApiKeyRepo(s, owner_id=owner).create(name="k", scopes=["admin"])
    assert key.last_used_at is None
    start = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)

    async def last_used() -> datetime | None:
        async with db.read() as s:
            return (await ApiKeyRepo(s, owner_id=owner).get(key_id=key.id)).last_used_at

    await authenticate(db, plaintext, now=start)
    assert await last_used() == start
    await authenticate(db, plaintext, now=start + timedelta(seconds=59))
    assert await last_used() == start
    await authenticate(db, plaintext, now=start + timedelta(seconds=61))
    assert await last_used() == start + timedelta(seconds=61)


async def test_another_users_keys_are_invisible_and_untouchable(db: Database) -> None:
    alice, bob = await new_user(db), await new_user(db)
    async with db.write() as s:
        bobs_key, bobs_plaintext = await ApiKeyRepo(s, owner_id=bob).create(
            name="bob's", scopes=["admin"]
        )
        await ApiKeyRepo(s, owner_id=alice).create(name="alice's", scopes=["admin"])

    async with db.write() as s:
        alices = ApiKeyRepo(s, owner_id=alice)
        with pytest.raises(NotFound):
            await alices.get(key_id=bobs_key.id)
        with pytest.raises(NotFound):
            await alices.revoke(key_id=bobs_key.id)
        listed = await alices.list()
    assert [k.name for k in listed.items] == ["alice's"]

    async with db.read() as s:
        untouched = await ApiKeyRepo(s, owner_id=bob).get(key_id=bobs_key.id)
    assert untouched.active
    assert untouched.revoked_at is None
    assert await authenticate(db, bobs_plaintext) is not None


async def test_keys_list_newest_first_in_pages(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        repo = ApiKeyRepo(s, owner_id=owner)
        made = [(await repo.create(name=f"k{i}", scopes=["admin"]))[0].id for i in range(5)]

    async with db.read() as s:
        repo = ApiKeyRepo(s, owner_id=owner)
        first = await repo.list(limit=3)
        assert first.next_cursor is not None
        second = await repo.list(cursor=first.next_cursor, limit=3)
        with pytest.raises(InputError):
            await repo.list(cursor="wf_01jd4y9q6xf3k8r2m5t7v9w0ab")
    assert [k.id for k in first.items + second.items] == made[::-1]
    assert second.next_cursor is None


async def test_key_for_a_missing_owner_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        async with db.write() as s:
            await ApiKeyRepo(s, owner_id="usr_01jd4y9q6xf3k8r2m5t7v9w0ab").create(
                name="k", scopes=["admin"]
            )
