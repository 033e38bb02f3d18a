"""Failed sign-ins slow down the one who fails, not the account's owner; registering a taken
email says neither that the account exists in so many words nor anything of the database's.

Each client comes from its own address (the ASGI transport's ``client``), so these tests show
the throttle per (account, address): an attacker's failures lock the attacker out, while the
owner signs in from their usual address at once. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from apikit import PASSWORD, make_settings, sign_up, unique_email
from fastapi import FastAPI

from flowloom.api.security import LoginLimiter
from flowloom.api.state import AppState
from flowloom.exceptions import LimitExceeded
from flowloom.settings import Settings

Clients = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]

INTERNALS = ("constraint", "unique", "duplicate", "uq_", "ix_", "users.", "integrity", "sqlite")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Small limits: every failed sign-in costs a password hash check.
    return make_settings(
        tmp_path_factory.mktemp("data"),
        login_max_failures_per_account=3,
        login_max_failures_per_address=8,
    )


@pytest.fixture
def from_address(app: FastAPI) -> Clients:
    """Clients whose requests come from the given address."""

    @asynccontextmanager
    async def make(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://flowloom.test") as c:
            yield c

    return make


def limiter(app: FastAPI) -> LoginLimiter:
    state = app.state.flowloom
    assert isinstance(state, AppState)
    return state.limiter


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_an_attacker_cannot_lock_the_owner_out(from_address: Clients, app: FastAPI) -> None:
    async with from_address("10.1.0.1") as owner, from_address("10.9.9.9") as attacker:
        alice = await sign_up(owner, "alice")

        tries = [await login(attacker, alice.email, "guess") for _ in range(8)]
        statuses = [r.status_code for r in tries]
        # The first failures cost nothing; then the attacker must wait, growing each time.
        free = limiter(app).max_per_account
        assert statuses[:free] == [401] * free
        assert set(statuses[free:]) == {429}
        assert int(tries[-1].headers["retry-after"]) >= 1
        # Even the right password waits, from the attacker's address...
        assert (await login(attacker, alice.email, PASSWORD)).status_code == 429

        # ...but the owner, from her own address, signs in at once.
        mine = await login(owner, alice.email, PASSWORD)
        assert mine.status_code == 200, mine.text


async def test_the_owners_own_typos_are_forgiven_by_a_success(
    from_address: Clients, app: FastAPI
) -> None:
    async with from_address("10.1.0.2") as owner:
        alice = await sign_up(owner, "alice")
        free = limiter(app).max_per_account
        for _ in range(free - 1):
            assert (await login(owner, alice.email, "typo")).status_code == 401
        assert (await login(owner, alice.email, PASSWORD)).status_code == 200
        # The streak ended with the success: a full allowance again.
        for _ in range(free):
            assert (await login(owner, alice.email, "typo")).status_code == 401


async def test_one_address_spraying_many_accounts_is_stopped(
    from_address: Clients, app: FastAPI
) -> None:
    per_address = limiter(app).max_per_address
    async with from_address("10.7.7.7") as sprayer, from_address("10.1.0.3") as owner:
        alice = await sign_up(owner, "alice")
        for _ in range(per_address):
            refused = await login(sprayer, unique_email(), "guess")
            assert refused.status_code == 401

        blocked = await login(sprayer, alice.email, PASSWORD)

        assert blocked.status_code == 429
        assert blocked.json()["limit"] == "login_failures"
        assert (await login(owner, alice.email, PASSWORD)).status_code == 200


async def test_many_addresses_are_slowed_but_not_the_owners_usual_one(
    from_address: Clients, app: FastAPI
) -> None:
    account_limit = limiter(app).max_per_account_untrusted
    async with from_address("10.1.0.4") as owner:
        alice = await sign_up(owner, "alice")  # signs in: this address is now her usual one
    for index in range(account_limit):
        async with from_address(f"10.66.{index // 200}.{index % 200}") as bot:
            assert (await login(bot, alice.email, "guess")).status_code == 401

    async with from_address("10.99.0.1") as fresh:
        slowed = await login(fresh, alice.email, PASSWORD)
    async with from_address("10.1.0.4") as owner:
        usual = await login(owner, alice.email, PASSWORD)

    assert slowed.status_code == 429
    assert usual.status_code == 200, usual.text


async def test_registering_a_taken_email_says_nothing_more(
    from_address: Clients, app: FastAPI
) -> None:
    async with from_address("10.2.0.1") as client:
        email = unique_email()
        first = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "username": f"u{email[5:13]}"},
        )
        assert first.status_code == 201, first.text
        taken_email = await client.post(
            "/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD}
        )
        taken_name = await client.post(
            "/api/v1/auth/register",
            json={
                "email": unique_email(),
                "password": PASSWORD,
                "username": first.json()["username"],
            },
        )

    for response in (taken_email, taken_name):
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        text = response.text.lower()
        assert not [word for word in INTERNALS if word in text], response.text
        assert email.lower() not in text
    assert taken_email.json()["detail"] == taken_name.json()["detail"]


async def test_probing_emails_by_registering_is_throttled_per_address(
    from_address: Clients, app: FastAPI
) -> None:
    per_address = limiter(app).max_per_address
    async with from_address("10.2.0.2") as owner, from_address("10.2.0.3") as prober:
        taken = (await sign_up(owner, "alice")).email
        answers = [
            (
                await prober.post(
                    "/api/v1/auth/register", json={"email": taken, "password": PASSWORD}
                )
            ).status_code
            for _ in range(per_address + 1)
        ]

    assert answers[:per_address] == [409] * per_address
    assert answers[-1] == 429


async def test_no_conflict_anywhere_shows_the_database_words(
    from_address: Clients,
) -> None:
    async with from_address("10.3.0.1") as client:
        account = await sign_up(client, "keeper")
        body = {"name": "dup", "value": "s3cret-value", "kind": "secret"}
        first = await client.post("/api/v1/credentials", json=body, headers=account.bearer)
        again = await client.post("/api/v1/credentials", json=body, headers=account.bearer)

    assert first.status_code == 201, first.text
    assert again.status_code == 409
    text = again.text.lower()
    assert not [word for word in INTERNALS if word in text], again.text
    assert "s3cret-value" not in text


def test_delays_double_after_the_free_failures_up_to_a_cap() -> None:
    now = [1000.0]
    throttle = LoginLimiter(
        max_per_account=3, max_per_address=1000, window_s=900, max_delay_s=8, clock=lambda: now[0]
    )

    def wait_needed() -> float:
        try:
            throttle.check(account="a@x.test", address="10.0.0.1")
        except LimitExceeded as refused:
            return refused.retry_after_s or 0.0
        return 0.0

    waits = []
    for _ in range(8):
        waits.append(wait_needed())
        now[0] += waits[-1]
        throttle.failed(account="a@x.test", address="10.0.0.1")
    waits.append(wait_needed())

    assert waits == [0, 0, 0, 1, 2, 4, 8, 8, 8]
    # Another address is not slowed by any of it; a quiet window forgets the streak.
    throttle.check(account="a@x.test", address="10.0.0.2")
    now[0] += 900
    throttle.check(account="a@x.test", address="10.0.0.1")
