"""Disabling and enabling accounts over HTTP: a disabled user's sessions and API keys stop on
their very next request, an admin cannot disable themselves or the last admin, and the list,
search, role and credit routes the admin users page uses."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from apikit import PASSWORD, Account, sign_up
from sqlalchemy import update

from flowloom.exceptions import Conflict
from flowloom.storage.database import Database
from flowloom.storage.repos.billing import set_role
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.tables import User

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]
PROBLEM = "application/problem+json"


async def make_admin(db: Database, client: httpx.AsyncClient) -> Account:
    account = await sign_up(client, "admin")
    async with db.write() as session:
        await set_role(session, user_id=account.user_id, role="admin")
    return account


async def test_disabling_ends_sessions_and_keys_on_the_next_request(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as admin_client, new_client() as user_client:
        admin = await make_admin(db, admin_client)
        user = await sign_up(user_client, "worker")
        created = await user_client.post(
            "/api/v1/api-keys",
            json={"name": "ci", "scopes": ["workflows:read"]},
            headers=user.bearer,
        )
        key = {"Authorization": f"Bearer {created.json()['key']}"}
        assert (await user_client.get("/api/v1/workflows", headers=key)).status_code == 200
        assert (await user_client.get("/api/v1/auth/me")).status_code == 200  # the cookie

        disabled = await admin_client.post(
            f"/api/v1/admin/users/{user.user_id}/disable", headers=admin.bearer
        )
        assert disabled.status_code == 200, disabled.text
        body = disabled.json()
        assert body["is_active"] is False
        assert (body["sessions_ended"], body["api_keys_revoked"]) == (1, 1)

        # The very next request with each credential: 401 problem+json.
        for headers in (key, user.bearer, {}):
            answer = await user_client.get("/api/v1/auth/me", headers=headers)
            assert answer.status_code == 401, answer.text
            assert answer.headers["content-type"] == PROBLEM
        signed_in = await user_client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert signed_in.status_code == 401

        enabled = await admin_client.post(
            f"/api/v1/admin/users/{user.user_id}/enable", headers=admin.bearer
        )
        assert enabled.status_code == 200
        assert enabled.json()["is_active"] is True
        # Back in with a new sign-in; the old key stays revoked.
        again = await user_client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert again.status_code == 200, again.text
        assert (await user_client.get("/api/v1/workflows", headers=key)).status_code == 401


async def test_an_admin_cannot_disable_themselves_or_the_last_admin(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as first_client, new_client() as second_client:
        first = await make_admin(db, first_client)
        own = await first_client.post(
            f"/api/v1/admin/users/{first.user_id}/disable", headers=first.bearer
        )
        assert own.status_code == 409
        assert own.headers["content-type"] == PROBLEM
        assert "your own account" in own.json()["detail"]

        second = await make_admin(db, second_client)
        # Two admins disabling each other at the same moment: the one that goes second finds
        # its target is the last active admin (the repository locks the admins to see it).
        async with db.write() as session:
            await session.execute(
                update(User)
                .where(User.role == "admin", User.id != first.user_id)
                .values(is_active=False)
            )
        with pytest.raises(Conflict, match="last active admin"):
            async with db.write() as session:
                await UserRepo(session).disable(user_id=first.user_id, by=second.user_id)
        async with db.read() as session:
            assert (await UserRepo(session).get(user_id=first.user_id)).is_active
        # The page says the same over HTTP when the last admin's role would go.
        demoted = await first_client.patch(
            f"/api/v1/admin/users/{first.user_id}", json={"role": "user"}, headers=first.bearer
        )
        assert demoted.status_code == 409
        assert "last admin" in demoted.json()["detail"]
        async with db.write() as session:
            await session.execute(update(User).where(User.role == "admin").values(is_active=True))


async def test_a_disabled_admins_session_cannot_act(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as a_client, new_client() as b_client:
        a = await make_admin(db, a_client)
        b = await make_admin(db, b_client)
        done = await a_client.post(f"/api/v1/admin/users/{b.user_id}/disable", headers=a.bearer)
        assert done.status_code == 200
        denied = await b_client.post(f"/api/v1/admin/users/{a.user_id}/disable", headers=b.bearer)
        assert denied.status_code == 401


async def test_unknown_user_and_bad_input_are_4xx_naming_the_problem(
    db: Database, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(db, client)
    missing = await client.post("/api/v1/admin/users/usr_nope/disable", headers=admin.bearer)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    role = await client.patch(
        f"/api/v1/admin/users/{admin.user_id}", json={"role": "owner"}, headers=admin.bearer
    )
    assert role.status_code == 422
    assert "role" in role.text
    credits = await client.post(
        f"/api/v1/admin/users/{admin.user_id}/credits",
        json={"amount": "lots"},
        headers=admin.bearer,
    )
    assert credits.status_code == 422
    assert "amount" in credits.text


async def test_search_role_and_credits_as_the_page_uses_them(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as admin_client, new_client() as user_client:
        admin = await make_admin(db, admin_client)
        user = await sign_up(user_client, "findme")
        found = await admin_client.get(
            "/api/v1/admin/users", params={"email": user.email.upper()}, headers=admin.bearer
        )
        assert [u["id"] for u in found.json()["items"]] == [user.user_id]

        promoted = await admin_client.patch(
            f"/api/v1/admin/users/{user.user_id}", json={"role": "admin"}, headers=admin.bearer
        )
        assert promoted.json()["role"] == "admin"
        granted = await admin_client.post(
            f"/api/v1/admin/users/{user.user_id}/credits",
            json={"amount": 25, "reason": "welcome"},
            headers=admin.bearer,
        )
        assert granted.json() == {"user_id": user.user_id, "credits": 25}
        # The promoted user now reaches the admin pages with their own session.
        assert (await user_client.get("/api/v1/admin/users")).status_code == 200


async def test_disable_and_enable_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    for action in ("disable", "enable"):
        operation = paths[f"/api/v1/admin/users/{{user_id}}/{action}"]["post"]
        assert operation["responses"]["200"]
