"""The credential vault and the credentials repository, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.ids import new_id
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.credentials import CredentialRepo, rotate_credentials
from flowloom.storage.tables import Credential, User
from flowloom.storage.vault import Sealed, Vault, VaultError

OLD_KEY = b"o" * 32
NEW_KEY = b"n" * 32
SECRET = "sk-live-value-that-must-stay-hidden-42"


async def make_user(db: Database) -> str:
    user_id = new_id("usr")
    async with db.write() as s:
        s.add(User(id=user_id, email=f"{user_id}@example.com"))
    return user_id


def test_sealed_values_open_only_in_their_own_row_and_untouched() -> None:
    vault = Vault(OLD_KEY)
    sealed = vault.seal(b"secret", context="credential cred_1 of usr_1")
    assert vault.open(sealed, context="credential cred_1 of usr_1") == b"secret"
    assert b"secret" not in sealed.ciphertext

    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(VaultError, match="altered"):
        vault.open(
            Sealed(flipped, sealed.nonce, sealed.key_id), context="credential cred_1 of usr_1"
        )
    with pytest.raises(VaultError, match="altered or belongs to another row"):
        vault.open(sealed, context="credential cred_1 of usr_2")


def test_a_wrong_key_is_refused_and_old_keys_still_open() -> None:
    sealed = Vault(OLD_KEY).seal(b"secret", context="c")
    with pytest.raises(VaultError, match="not configured"):
        Vault(NEW_KEY).open(sealed, context="c")
    # Same key id, different key material: a forged key id must not help.
    forged = Sealed(sealed.ciphertext, sealed.nonce, Vault(NEW_KEY).key_id)
    with pytest.raises(VaultError, match="altered"):
        Vault(NEW_KEY).open(forged, context="c")
    rotated = Vault(NEW_KEY, old_keys=[OLD_KEY])
    assert rotated.open(sealed, context="c") == b"secret"
    resealed = rotated.reseal(sealed, context="c")
    assert resealed.key_id == rotated.key_id != sealed.key_id
    assert Vault(NEW_KEY).open(resealed, context="c") == b"secret"


def test_keys_come_from_settings_and_short_keys_are_refused(tmp_path: object) -> None:
    configured = Settings(credentials_key=SecretStr("c" * 40), secret_key=SecretStr("s" * 40))
    from_secret = Settings(secret_key=SecretStr("s" * 40))
    assert Vault.from_settings(configured).key_id == Vault(b"c" * 40).key_id
    assert Vault.from_settings(from_secret).key_id == Vault(b"s" * 40).key_id
    with pytest.raises(Exception, match="at least 32"):
        Vault(b"short")
    assert "n" * 8 not in repr(Vault(NEW_KEY))


async def test_credentials_are_stored_encrypted_and_listed_without_values(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = Vault(OLD_KEY)
    owner = await make_user(db)
    async with db.write() as s:
        info = await CredentialRepo(s, owner_id=owner, vault=vault).create(
            name="openai-prod", value=SECRET, provider="openai"
        )
    async with db.read() as s:
        row = await s.scalar(select(Credential).where(Credential.id == info.id))
        assert row is not None
        assert SECRET.encode() not in row.ciphertext
        page = await CredentialRepo(s, owner_id=owner, vault=vault).list()
    assert [c.name for c in page.items] == ["openai-prod"]
    assert not hasattr(page.items[0], "value")
    assert SECRET not in repr(page.items)

    async with db.write() as s:
        got, secret = await CredentialRepo(s, owner_id=owner, vault=vault).get_secret(
            name="openai-prod"
        )
    assert secret.get_secret_value() == SECRET
    assert SECRET not in repr(secret)
    assert SECRET not in str(secret)
    assert got.provider == "openai"
    async with db.read() as s:
        assert (
            await CredentialRepo(s, owner_id=owner, vault=vault).get(name="openai-prod")
        ).last_used_at
    assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_credentials_are_scoped_to_their_owner(db: Database) -> None:
    vault = Vault(OLD_KEY)
    alice, bob = await make_user(db), await make_user(db)
    async with db.write() as s:
        await CredentialRepo(s, owner_id=alice, vault=vault).create(name="key", value=SECRET)
    async with db.write() as s:
        bobs = CredentialRepo(s, owner_id=bob, vault=vault)
        assert (await bobs.list()).items == []
        with pytest.raises(NotFound):
            await bobs.get_secret(name="key")
        with pytest.raises(NotFound):
            await bobs.delete(name="key")
        await bobs.create(name="key", value="bobs own")  # names are per owner
    async with db.write() as s:
        alices = CredentialRepo(s, owner_id=alice, vault=vault)
        with pytest.raises(Conflict):
            await alices.create(name="key", value="again")
    async with db.write() as s:
        alices = CredentialRepo(s, owner_id=alice, vault=vault)
        assert (await alices.get_secret(name="key"))[1].get_secret_value() == SECRET
        await alices.delete(name="key")
    async with db.read() as s:
        assert (await CredentialRepo(s, owner_id=alice, vault=vault).list()).items == []
        assert len((await CredentialRepo(s, owner_id=bob, vault=vault).list()).items) == 1


async def test_a_ciphertext_moved_to_another_owners_row_is_refused(db: Database) -> None:
    vault = Vault(OLD_KEY)
    alice, bob = await make_user(db), await make_user(db)
    async with db.write() as s:
        a = await CredentialRepo(s, owner_id=alice, vault=vault).create(name="k", value=SECRET)
        b = await CredentialRepo(s, owner_id=bob, vault=vault).create(name="k", value="bob")
        row = await s.scalar(select(Credential).where(Credential.id == a.id))
        assert row is not None
        await s.execute(
            update(Credential)
            .where(Credential.id == b.id)
            .values(ciphertext=row.ciphertext, nonce=row.nonce)
        )
    async with db.write() as s:
        with pytest.raises(VaultError) as caught:
            await CredentialRepo(s, owner_id=bob, vault=vault).get_secret(name="k")
    assert SECRET not in str(caught.value)
    async with db.write() as s:  # a tampered row would (rightly) stop rotation in a later test
        await CredentialRepo(s, owner_id=bob, vault=vault).delete(name="k")


async def test_rotation_reseals_every_row_with_the_new_key(db: Database) -> None:
    old = Vault(OLD_KEY)
    owner = await make_user(db)
    async with db.write() as s:
        repo = CredentialRepo(s, owner_id=owner, vault=old)
        for n in range(3):
            await repo.create(name=f"rot-{n}", value=f"{SECRET}-{n}")
    new = Vault(NEW_KEY, old_keys=[OLD_KEY])
    async with db.write() as s:
        changed = await rotate_credentials(s, vault=new, batch=2)
    assert changed >= 3
    async with db.write() as s:
        assert await rotate_credentials(s, vault=new) == 0
        repo = CredentialRepo(s, owner_id=owner, vault=Vault(NEW_KEY))  # old key not needed
        for n in range(3):
            info, secret = await repo.get_secret(name=f"rot-{n}")
            assert info.key_id == new.key_id
            assert secret.get_secret_value() == f"{SECRET}-{n}"


async def test_bad_input_is_refused(db: Database) -> None:
    owner = await make_user(db)
    async with db.write() as s:
        repo = CredentialRepo(s, owner_id=owner, vault=Vault(OLD_KEY))
        with pytest.raises(InputError, match="kind"):
            await repo.create(name="x", value="v", kind="password")
        with pytest.raises(InputError, match="empty"):
            await repo.create(name="x", value="")
        with pytest.raises(InputError, match="name"):
            await repo.create(name=" ", value="v")
