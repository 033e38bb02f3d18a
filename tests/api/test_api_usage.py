"""The usage API: the caller's calls summed by day, model, provider or API key over a range of
UTC days, with exact costs; and this month against the plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from apikit import sign_up
from sqlalchemy import text

from flowloom.storage.database import Database
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.api_keys import ApiKeyRepo
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo
from flowloom.storage.repos.usage import UsageRepo

DAY_ONE = datetime(2030, 5, 1, 10, 0, tzinfo=UTC)
DAY_TWO = datetime(2030, 5, 2, 23, 59, 59, tzinfo=UTC)


async def record_calls(db: Database, user_id: str) -> str:
    """Four calls over two days, two models, two providers, one of them through a key."""
    async with db.write() as session:
        models = AiModelRepo(session)
        await models.upsert(
            provider="openai",
            model="gpt-usage",
            input_price_per_mtok="0.15",
            output_price_per_mtok="0.60",
        )
        await models.upsert(
            provider="anthropic",
            model="claude-usage",
            input_price_per_mtok="3",
            output_price_per_mtok="15",
        )
        key, _ = await ApiKeyRepo(session, owner_id=user_id).create(name="ci", scopes=["admin"])
        usage = UsageRepo(session, owner_id=user_id)
        await usage.record(
            provider="openai", model="gpt-usage", tokens_in=1234, tokens_out=567, at=DAY_ONE
        )
        await usage.record(
            provider="openai",
            model="gpt-usage",
            tokens_in=1,
            tokens_out=1,
            at=DAY_TWO,
            api_key_id=key.id,
        )
        await usage.record(
            provider="anthropic", model="claude-usage", tokens_in=1000, tokens_out=100, at=DAY_TWO
        )
        # Outside the range asked for below.
        await usage.record(
            provider="openai",
            model="gpt-usage",
            tokens_in=9999,
            tokens_out=9999,
            at=DAY_ONE - timedelta(days=1),
        )
        return key.id


async def read(client: httpx.AsyncClient, headers: dict[str, str], group_by: str) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/usage",
        params={"from": "2030-05-01", "to": "2030-05-02", "group_by": group_by},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_usage_grouped_four_ways_with_exact_costs(
    db: Database, client: httpx.AsyncClient
) -> None:
    user = await sign_up(client, "usage")
    key_id = await record_calls(db, user.user_id)
    # 1234 * 0.15 + 567 * 0.60 = 525.3 per million; 1 * 0.15 + 1 * 0.60 = 0.75 per million;
    # 1000 * 3 + 100 * 15 = 4500 per million.
    gpt_day_one = Decimal("0.0005253")
    gpt_day_two = Decimal("0.00000075")
    claude = Decimal("0.0045")

    by_day = await read(client, user.bearer, "day")
    assert [(g["day"], g["calls"], Decimal(g["cost"])) for g in by_day["groups"]] == [
        ("2030-05-01", 1, gpt_day_one),
        ("2030-05-02", 2, gpt_day_two + claude),
    ]
    assert by_day["totals"]["tokens_total"] == 1234 + 567 + 2 + 1100
    assert Decimal(by_day["totals"]["cost"]) == gpt_day_one + gpt_day_two + claude
    # A decimal string, to the nano-unit.
    assert by_day["totals"]["cost"] == "0.005026050"
    assert (by_day["from"], by_day["to"]) == ("2030-05-01", "2030-05-02")

    by_model = await read(client, user.bearer, "model")
    assert [(g["provider"], g["model"], g["tokens_in"]) for g in by_model["groups"]] == [
        ("anthropic", "claude-usage", 1000),
        ("openai", "gpt-usage", 1235),
    ]
    by_provider = await read(client, user.bearer, "provider")
    assert {g["provider"]: Decimal(g["cost"]) for g in by_provider["groups"]} == {
        "anthropic": claude,
        "openai": gpt_day_one + gpt_day_two,
    }
    by_key = await read(client, user.bearer, "api_key")
    assert {g["api_key_id"]: g["calls"] for g in by_key["groups"]} == {None: 2, key_id: 1}


async def test_nobody_sees_another_users_usage(db: Database, client: httpx.AsyncClient) -> None:
    owner = await sign_up(client, "owner")
    await record_calls(db, owner.user_id)
    other = await sign_up(client, "other")
    body = await read(client, other.bearer, "day")
    assert body["groups"] == []
    assert body["totals"]["calls"] == 0


async def test_ranges_are_checked_naming_the_field(client: httpx.AsyncClient) -> None:
    user = await sign_up(client, "ranges")
    for params, field in [
        ({"from": "2030-05-02", "to": "2030-05-01"}, "from"),
        ({"from": "2029-01-01", "to": "2030-05-01"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"group_by": "colour"}, "group_by"),
    ]:
        response = await client.get("/api/v1/usage", params=params, headers=user.bearer)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == field
    default = await client.get("/api/v1/usage", headers=user.bearer)
    today = datetime.now(UTC).date()
    assert default.json()["from"] == today.replace(day=1).isoformat()
    assert default.json()["to"] == today.isoformat()


async def test_the_summary_holds_the_month_against_the_plan(
    db: Database, client: httpx.AsyncClient
) -> None:
    user = await sign_up(client, "summary")
    async with db.write() as session:
        package = await PackageRepo(session).create(
            name="summary-plan", max_runs_per_month=10, max_tokens_per_month=1000, public=True
        )
        await SubscriptionRepo(session).subscribe(user_id=user.user_id, package_id=package.id)
        await UsageRepo(session, owner_id=user.user_id).record(
            provider="openai", model="unpriced", tokens_in=300, tokens_out=100
        )
    summary = (await client.get("/api/v1/usage/summary", headers=user.bearer)).json()
    assert summary["package"]["name"] == "summary-plan"
    assert summary["tokens"] == {"used": 400, "allowed": 1000, "remaining": 600}
    assert summary["runs"] == {"used": 0, "allowed": 10, "remaining": 10}
    assert Decimal(summary["cost"]) == 0
    start = date.fromisoformat(summary["month_start"][:10])
    assert start.day == 1
    plan = (await client.get("/api/v1/billing/plan", headers=user.bearer)).json()
    assert (plan["package"]["name"], plan["source"], plan["credits"]) == (
        "summary-plan",
        "subscription",
        0,
    )
    offered = (await client.get("/api/v1/billing/packages", headers=user.bearer)).json()
    assert "summary-plan" in [p["name"] for p in offered["items"]]


async def test_the_usage_sums_walk_the_user_and_time_index(db: Database) -> None:
    if not db.is_sqlite:
        return  # the plan text below is SQLite's; PostgreSQL picks by statistics
    async with db.read() as session:
        rows = await session.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT provider, count(*), sum(tokens_total), sum(cost) "
                "FROM usage WHERE user_id = 'u' AND created_at >= '2030-05-01' "
                "AND created_at < '2030-05-03' GROUP BY provider"
            )
        )
        plan = " ".join(str(row[-1]) for row in rows)
    assert "ix_usage_user_id_created_at" in plan, plan
