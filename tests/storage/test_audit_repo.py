"""The audit log: entries per user, newest first, never holding a secret."""

from __future__ import annotations

import secrets

import pytest

from flowloom.exceptions import InputError, NotFound
from flowloom.storage.database import Database
from flowloom.storage.repos import AuditRepo, UserRepo, scrub_details
from flowloom.storage.tables import AuditEntry


async def new_user(db: Database) -> str:
    async with db.write() as s:
        user = await UserRepo(s).create(email=f"audit-{secrets.token_hex(4)}@example.com")
    return user.id


async def test_entry_is_stored_with_who_what_and_where(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        entry = await AuditRepo(s).record(
            user_id=owner,
            action="workflow.delete",
            object_type="workflow",
            object_id="wf_01jd4y9q6xf3k8r2m5t7v9w0ab",
            ip="203.0.113.7",
            user_agent="flowloom-cli/0.1",
            details={"name": "Resize photos"},
        )

    async with db.read() as s:
        stored = await s.get(AuditEntry, entry.id)
    assert stored is not None
    assert (stored.user_id, stored.action, stored.object_type) == (
        owner,
        "workflow.delete",
        "workflow",
    )
    assert (stored.ip, stored.user_agent) == ("203.0.113.7", "flowloom-cli/0.1")
    assert stored.details == {"name": "Resize photos"}


async def test_secrets_are_dropped_from_details_at_any_depth(db: Database) -> None:
    owner = await new_user(db)
    details = {
        "email": "a@example.com",
        "password": "hunter2",
        "new_Password_hash": "$argon2id$...",
        "clientSecret": "s3cr3t",
        "headers": {"Authorization": "Bearer flk_x_y", "Accept": "application/json"},
        "keys": [{"api_key": "flk_a_b", "name": "ci"}, {"access_token": "t", "scope": "admin"}],
        "refresh_token": "r",
        "cookie": "session=abc",
        "count": 3,
    }
    async with db.write() as s:
        entry = await AuditRepo(s).record(user_id=owner, action="user.update", details=details)

    async with db.read() as s:
        stored = await s.get(AuditEntry, entry.id)
    assert stored is not None
    assert stored.details == {
        "email": "a@example.com",
        "headers": {"Accept": "application/json"},
        "count": 3,
    }
    assert "hunter2" not in str(stored.details)
    assert details["password"] == "hunter2"  # the caller's dict is left as it was


def test_scrub_keeps_lists_of_plain_values() -> None:
    assert scrub_details({"tags": ["a", "b"], "nested": [[{"token": 1, "ok": 2}]]}) == {
        "tags": ["a", "b"],
        "nested": [[{"ok": 2}]],
    }


async def test_list_for_user_is_newest_first_paged_and_only_theirs(db: Database) -> None:
    alice, bob = await new_user(db), await new_user(db)
    async with db.write() as s:
        repo = AuditRepo(s)
        made = [(await repo.record(user_id=alice, action=f"a.{i}")).id for i in range(5)]
        await repo.record(user_id=bob, action="b.0")
        await repo.record(user_id=None, action="system.prune")

    async with db.read() as s:
        repo = AuditRepo(s)
        first = await repo.list_for_user(owner_id=alice, limit=3)
        second = await repo.list_for_user(owner_id=alice, cursor=first.next_cursor, limit=3)
        bobs = await repo.list_for_user(owner_id=bob)
        with pytest.raises(InputError):
            await repo.list_for_user(owner_id=alice, cursor="aud_nope")
    assert [e.id for e in first.items + second.items] == made[::-1]
    assert second.next_cursor is None
    assert [e.action for e in bobs.items] == ["b.0"]


async def test_bad_action_or_unknown_user_is_refused(db: Database) -> None:
    with pytest.raises(InputError, match="action"):
        async with db.write() as s:
            await AuditRepo(s).record(user_id=None, action="")
    with pytest.raises(NotFound):
        async with db.write() as s:
            await AuditRepo(s).record(user_id="usr_01jd4y9q6xf3k8r2m5t7v9w0ab", action="x")
