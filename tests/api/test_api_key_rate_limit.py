"""Rate limits per API key: ``FLOWLOOM_API_KEY_RATE_LIMIT`` for every key, an admin's override
for one; over it, 429 problem+json with ``Retry-After``. Counted atomically where all servers
see it: bursts of concurrent requests, in one app and across two ``flowloom serve`` processes
sharing a database, never let more through than the rate allows."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from apikit import Account, client_for, make_settings, sign_up
from pgkit import require_postgres
from servekit import postgres_database, serve, sign_in

from flowloom.api import create_app
from flowloom.api.rate_limits import DatabaseMeter, RedisMeter
from flowloom.rates import Rate, parse_rate
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.api_keys import ApiKeyRepo
from flowloom.storage.repos.billing import set_role
from flowloom.storage.repos.users import UserRepo

PROBLEM = "application/problem+json"
PER_MINUTE = 5


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Per minute, so no request is refilled while a test runs: the counts are exact.
    return make_settings(tmp_path_factory.mktemp("data"), api_key_rate_limit=f"{PER_MINUTE}/m")


async def new_key(client: httpx.AsyncClient, account: Account) -> tuple[str, dict[str, str]]:
    created = await client.post(
        "/api/v1/api-keys",
        json={"name": "bot", "scopes": ["workflows:read"]},
        headers=account.bearer,
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], {"Authorization": f"Bearer {created.json()['key']}"}


async def burst(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> list[httpx.Response]:
    return list(
        await asyncio.gather(*(client.get("/api/v1/workflows", headers=headers) for _ in range(n)))
    )


async def test_concurrent_requests_past_the_rate_get_429_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client, "busy")
    _, key = await new_key(client, account)
    answers = await burst(client, key, 4 * PER_MINUTE)
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * PER_MINUTE + [429] * 3 * PER_MINUTE
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["content-type"] == PROBLEM
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["limit"] == "api_key_rate"
    assert f"{PER_MINUTE}/m" in refused.json()["detail"]
    # Each key has its own count, and the browser session is not an API key: not limited.
    _, other = await new_key(client, account)
    assert (await client.get("/api/v1/workflows", headers=other)).status_code == 200
    for _ in range(PER_MINUTE + 2):
        assert (await client.get("/api/v1/workflows", headers=account.bearer)).status_code == 200


async def test_an_admin_gives_one_key_its_own_limit(
    db: Database, client: httpx.AsyncClient
) -> None:
    admin = await sign_up(client, "admin")
    async with db.write() as session:
        await set_role(session, user_id=admin.user_id, role="admin")
    user = await sign_up(client, "special")
    key_id, key = await new_key(client, user)

    bad = await client.put(
        f"/api/v1/admin/api-keys/{key_id}/rate-limit",
        json={"rate_limit": "lots"},
        headers=admin.bearer,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "rate_limit"
    missing = await client.put(
        "/api/v1/admin/api-keys/key_nope/rate-limit",
        json={"rate_limit": "1/s"},
        headers=admin.bearer,
    )
    assert missing.status_code == 404
    not_admin = await client.put(
        f"/api/v1/admin/api-keys/{key_id}/rate-limit",
        json={"rate_limit": "1000/s"},
        headers=user.bearer,
    )
    assert not_admin.status_code == 403

    raised = await client.put(
        f"/api/v1/admin/api-keys/{key_id}/rate-limit",
        json={"rate_limit": "100/m"},
        headers=admin.bearer,
    )
    assert raised.json()["rate_limit"] == "100/m"
    answers = await burst(client, key, 3 * PER_MINUTE)
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]

    lowered = await client.put(
        f"/api/v1/admin/api-keys/{key_id}/rate-limit",
        json={"rate_limit": "2/h"},
        headers=admin.bearer,
    )
    assert lowered.status_code == 200
    # The count goes on from where it was: one more passes, then the key must wait.
    codes = [(await client.get("/api/v1/workflows", headers=key)).status_code for _ in range(3)]
    assert codes == [200, 429, 429]


async def test_the_database_meter_allows_a_burst_then_refills_with_time(db: Database) -> None:
    now = [1_000_000.0]
    meter = DatabaseMeter(db, clock=lambda: now[0])
    rate = Rate(count=3, period_s=3.0)
    account_key = await _a_key_id(db)
    waits = [await meter.take(key_id=account_key, rate=rate) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(1.0)
    now[0] += 1.0  # one interval later, one more request passes
    assert await meter.take(key_id=account_key, rate=rate) == 0.0
    assert await meter.take(key_id=account_key, rate=rate) > 0


async def _a_key_id(db: Database) -> str:
    async with db.write() as session:
        user = await UserRepo(session).create(email=f"meter-{secrets.token_hex(4)}@example.com")
        key, _ = await ApiKeyRepo(session, owner_id=user.id).create(
            name="meter", scopes=["workflows:read"]
        )
        return key.id


def test_rates_are_parsed_and_bad_ones_refused_at_start(tmp_path: Path) -> None:
    assert parse_rate("20/s") == Rate(count=20, period_s=1.0)
    assert str(parse_rate(" 600/m ")) == "600/m"
    for bad in ("20", "20/d", "x/s", "0/s"):
        with pytest.raises(ValueError, match="rate"):
            parse_rate(bad)
    with pytest.raises(ValueError, match="rate"):
        make_settings(tmp_path, api_key_rate_limit="fast")


async def test_the_redis_meter_counts_concurrent_requests_once() -> None:
    meter = RedisMeter("redis://127.0.0.1:6379/15")
    try:
        rate = Rate(count=7, period_s=60.0)
        key_id = f"key_{secrets.token_hex(6)}"
        try:
            waits = await asyncio.gather(*(meter.take(key_id=key_id, rate=rate) for _ in range(30)))
        except OSError as exc:
            _no_redis(exc)
        assert sum(1 for w in waits if w == 0) == 7
        assert all(0 < w <= 60 for w in waits if w)
    finally:
        await meter.aclose()


async def test_an_app_counting_in_redis_refuses_past_the_rate(db: Database, tmp_path: Path) -> None:
    redis_settings = make_settings(
        tmp_path,
        api_key_rate_limit="3/m",
        api_key_rate_limit_redis_url="redis://127.0.0.1:6379/15",
    )
    application = create_app(redis_settings, db=db)
    async with application.router.lifespan_context(application), client_for(application) as client:
        account = await sign_up(client, "redis")
        _, key = await new_key(client, account)
        try:
            answers = await burst(client, key, 9)
        except OSError as exc:
            _no_redis(exc)
        assert sorted(a.status_code for a in answers) == [200] * 3 + [429] * 6
        assert all("retry-after" in a.headers for a in answers if a.status_code == 429)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_server_processes_share_one_count(kind: str, tmp_path: Path) -> None:
    """Two ``flowloom serve`` processes on one database: 40 concurrent requests with one key,
    half to each, let exactly the rate's 10 through."""
    if kind == "postgresql":
        require_postgres()
    with _database_env(kind, tmp_path) as env:
        env = {**env, "FLOWLOOM_API_KEY_RATE_LIMIT": "10/m"}
        with serve(tmp_path, tmp_path / "a.log", env) as (_, first):
            owner = sign_in(first, tmp_path / "a.log")
            created = httpx.post(
                f"{first}/api/v1/api-keys",
                json={"name": "shared", "scopes": ["workflows:read"]},
                headers=owner,
                timeout=30,
            )
            assert created.status_code == 201, created.text
            key = {"Authorization": f"Bearer {created.json()['key']}"}
            with serve(tmp_path, tmp_path / "b.log", env) as (_, second):

                def get(base: str) -> int:
                    return httpx.get(
                        f"{base}/api/v1/workflows", headers=key, timeout=30
                    ).status_code

                with ThreadPoolExecutor(max_workers=16) as pool:
                    codes = list(pool.map(get, [first, second] * 20))
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 30, codes


@contextmanager
def _database_env(kind: str, data_dir: Path) -> Iterator[dict[str, str]]:
    """The environment that points a server at the database of ``kind`` (SQLite: its data dir)."""
    if kind == "sqlite":
        yield {}
        return
    with postgres_database(data_dir) as url:
        yield {"FLOWLOOM_DATABASE_URL": url}


def _no_redis(exc: OSError) -> None:
    """Skip without Redis, except under CI, where a missing service is a failure."""
    message = f"no Redis at 127.0.0.1:6379: {exc}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so this is an error)")
    pytest.skip(message)
