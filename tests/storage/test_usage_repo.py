"""UsageRepo and AiModelRepo on SQLite and PostgreSQL: exact costs, sums by model, day and key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.enums import UsageType
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.usage import (
    UNKNOWN_MODEL_NOTE,
    UsageByApiKey,
    UsageByDay,
    UsageByModel,
    UsageRepo,
    UsageTotals,
    cost_of,
    instance_usage_by_model,
)
from flowloom.storage.tables import ApiKey, User, Workflow, WorkflowRun

DAY = datetime(2026, 3, 10, tzinfo=UTC)


async def make_user(db: Database) -> str:
    user_id = new_id("usr")
    async with db.write() as s:
        s.add(User(id=user_id, email=f"{user_id}@example.com"))
    return user_id


async def price(db: Database, provider: str, model: str, inp: str, out: str) -> None:
    async with db.write() as s:
        await AiModelRepo(s).upsert(
            provider=provider, model=model, input_price_per_mtok=inp, output_price_per_mtok=out
        )


async def record(db: Database, user_id: str, **kw: object) -> None:
    async with db.write() as s:
        await UsageRepo(s, owner_id=user_id).record(**kw)  # type: ignore[arg-type]


async def test_cost_is_computed_exactly_from_prices_per_million(db: Database) -> None:
    model = f"mini-{new_id('x')[-6:]}"
    await price(db, "openai", model, "0.15", "0.60")
    user = await make_user(db)

    async with db.write() as s:
        row = await UsageRepo(s, owner_id=user).record(
            provider="openai", model=model, tokens_in=1234, tokens_out=567
        )
    assert row.cost == Decimal("0.0005253")
    assert row.tokens_total == 1801
    assert row.meta is None

    # A million such calls sum to exactly a million times the cost, with no float drift.
    assert cost_of(
        tokens_in=1234 * 10**6,
        tokens_out=567 * 10**6,
        input_price_per_mtok=Decimal("0.15"),
        output_price_per_mtok=Decimal("0.60"),
    ) == Decimal("525.3")


async def test_stored_cost_reads_back_exactly(db: Database) -> None:
    model = f"exact-{new_id('x')[-6:]}"
    await price(db, "openai", model, "0.15", "0.60")
    user = await make_user(db)
    for _ in range(3):
        await record(
            db, user, provider="openai", model=model, tokens_in=1234, tokens_out=567, at=DAY
        )

    async with db.read() as s:
        rows = await UsageRepo(s, owner_id=user).by_model(start=DAY, end=DAY + timedelta(1))
    assert rows == [UsageByModel("openai", model, 3, 3702, 1701, 5403, Decimal("0.0015759"))]


async def test_unknown_model_costs_nothing_and_says_so(db: Database) -> None:
    user = await make_user(db)
    async with db.write() as s:
        row = await UsageRepo(s, owner_id=user).record(
            provider="acme", model="mystery", tokens_in=10, tokens_out=5, metadata={"node": "n1"}
        )
    assert row.cost == Decimal(0)
    assert row.meta is not None
    assert row.meta["node"] == "n1"
    assert "acme/mystery" in row.meta[UNKNOWN_MODEL_NOTE]


async def test_a_given_cost_is_kept(db: Database) -> None:
    user = await make_user(db)
    async with db.write() as s:
        row = await UsageRepo(s, owner_id=user).record(
            provider="replicate",
            model="flux",
            type=UsageType.IMAGE,
            tokens_in=0,
            tokens_out=0,
            cost=Decimal("0.003"),
        )
    assert (row.cost, row.type) == (Decimal("0.003"), UsageType.IMAGE)


@pytest.mark.parametrize(
    "bad",
    [
        {"tokens_in": -1},
        {"tokens_out": -5},
        {"tokens_in": 1.5},
        {"tokens_in": True},
        {"type": "telepathy"},
        {"cost": Decimal("-0.01")},
        {"cost": 0.1},
        {"at": datetime(2026, 1, 1)},
    ],
)
async def test_bad_input_is_refused(db: Database, bad: dict[str, object]) -> None:
    user = await make_user(db)
    call: dict[str, object] = {"provider": "openai", "model": "m", "tokens_in": 1, "tokens_out": 1}
    with pytest.raises(InputError):
        await record(db, user, **{**call, **bad})
    async with db.read() as s:
        assert await UsageRepo(s, owner_id=user).by_model(start=DAY, end=DAY + timedelta(1)) == []


async def test_grouped_by_model_over_a_half_open_range(db: Database) -> None:
    await price(db, "openai", "gpt-a", "1", "2")
    await price(db, "anthropic", "claude-b", "3", "15")
    user = await make_user(db)
    other = await make_user(db)
    start, end = DAY, DAY + timedelta(days=2)
    for at, provider, model, tokens_in, tokens_out in [
        (start - timedelta(microseconds=1), "openai", "gpt-a", 1000, 0),  # just before: out
        (start, "openai", "gpt-a", 1_000_000, 500_000),  # on the start edge: in
        (start + timedelta(hours=5), "openai", "gpt-a", 2_000_000, 0),
        (start + timedelta(hours=30), "anthropic", "claude-b", 100_000, 10_000),
        (end - timedelta(microseconds=1), "anthropic", "claude-b", 200_000, 20_000),  # in
        (end, "openai", "gpt-a", 7, 7),  # on the end edge: out
    ]:
        await record(
            db,
            user,
            provider=provider,
            model=model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            at=at,
        )
    await record(db, other, provider="openai", model="gpt-a", tokens_in=5, tokens_out=5, at=start)

    async with db.read() as s:
        rows = await UsageRepo(s, owner_id=user).by_model(start=start, end=end)
        everyone = await instance_usage_by_model(s, start=start, end=end)

    assert rows == [
        UsageByModel("anthropic", "claude-b", 2, 300_000, 30_000, 330_000, Decimal("1.35")),
        UsageByModel("openai", "gpt-a", 2, 3_000_000, 500_000, 3_500_000, Decimal("4")),
    ]
    # Only this test uses these models, so the instance-wide sum is this user's plus the other's.
    gpt = next(r for r in everyone if (r.provider, r.model) == ("openai", "gpt-a"))
    assert gpt == UsageByModel(
        "openai", "gpt-a", 3, 3_000_005, 500_005, 3_500_010, Decimal("4.000015")
    )


async def test_grouped_by_utc_day(db: Database) -> None:
    await price(db, "openai", "gpt-day", "1", "1")
    user = await make_user(db)
    for at in [
        DAY - timedelta(seconds=1),  # the day before the range: out
        DAY,
        DAY + timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999),
        DAY + timedelta(days=1, hours=1),
        DAY + timedelta(days=3) - timedelta(microseconds=1),
        DAY + timedelta(days=3),  # the end: out
    ]:
        await record(
            db, user, provider="openai", model="gpt-day", tokens_in=500_000, tokens_out=0, at=at
        )

    async with db.read() as s:
        if not db.is_sqlite:
            # Days are UTC days whatever zone the connection speaks.
            await s.execute(text("SET LOCAL TIME ZONE 'Pacific/Auckland'"))
        days = await UsageRepo(s, owner_id=user).by_day(start=DAY, end=DAY + timedelta(days=3))

    half = Decimal("0.5")
    assert days == [
        UsageByDay(date(2026, 3, 10), 2, 1_000_000, 0, 1_000_000, 2 * half),
        UsageByDay(date(2026, 3, 11), 1, 500_000, 0, 500_000, half),
        UsageByDay(date(2026, 3, 12), 1, 500_000, 0, 500_000, half),
    ]


async def test_grouped_by_api_key_and_totals_for_a_run(db: Database) -> None:
    await price(db, "openai", "gpt-key", "2", "4")
    user = await make_user(db)
    other = await make_user(db)
    key_id, wf_id, run_id = new_id("key"), new_id("wf"), new_id("run")
    async with db.write() as s:
        s.add(ApiKey(id=key_id, user_id=user, name="ci", prefix=key_id, secret_sha256=key_id))
        s.add(Workflow(id=wf_id, user_id=user, name="w", definition={}))
        await s.flush()
        s.add(WorkflowRun(id=run_id, workflow_id=wf_id, workflow_version=1, user_id=user))
    call = {"provider": "openai", "model": "gpt-key", "at": DAY}
    await record(db, user, tokens_in=1_000_000, tokens_out=0, api_key_id=key_id, **call)
    await record(db, user, tokens_in=0, tokens_out=1_000_000, run_id=run_id, **call)
    await record(db, user, tokens_in=500_000, tokens_out=500_000, run_id=run_id, **call)
    await record(db, other, tokens_in=9, tokens_out=9, run_id=run_id, **call)

    async with db.read() as s:
        repo = UsageRepo(s, owner_id=user)
        by_key = await repo.by_api_key(start=DAY, end=DAY + timedelta(1))
        totals = await repo.totals_for_run(run_id=run_id)
        nothing = await repo.totals_for_run(run_id=new_id("run"))

    assert sorted(by_key, key=lambda r: r.api_key_id or "") == [
        UsageByApiKey(None, 2, 500_000, 1_500_000, 2_000_000, Decimal(7)),
        UsageByApiKey(key_id, 1, 1_000_000, 0, 1_000_000, Decimal(2)),
    ]
    assert totals == UsageTotals(2, 500_000, 1_500_000, 2_000_000, Decimal(7))
    assert nothing == UsageTotals(0, 0, 0, 0, Decimal(0))


async def test_a_range_must_be_aware_and_ordered(db: Database) -> None:
    user = await make_user(db)
    async with db.read() as s:
        repo = UsageRepo(s, owner_id=user)
        with pytest.raises(InputError):
            await repo.by_model(start=DAY, end=DAY)
        with pytest.raises(InputError):
            await repo.by_day(start=datetime(2026, 1, 1), end=datetime(2026, 2, 1))


async def test_ai_model_prices_upsert_get_and_list(db: Database) -> None:
    model = f"up-{new_id('x')[-6:]}"
    async with db.write() as s:
        repo = AiModelRepo(s)
        first = await repo.upsert(
            provider="gemini", model=model, input_price_per_mtok="0.10", output_price_per_mtok=1
        )
        second = await repo.upsert(
            provider="gemini",
            model=model,
            input_price_per_mtok=Decimal("0.075"),
            output_price_per_mtok="0.30",
            context_window=1_000_000,
            enabled=False,
        )
    assert second.id == first.id
    async with db.read() as s:
        repo = AiModelRepo(s)
        got = await repo.get(provider="gemini", model=model)
        listed = [m.model for m in await repo.list() if m.provider == "gemini"]
        enabled = [m.model for m in await repo.list(enabled_only=True)]
        with pytest.raises(NotFound):
            await repo.get(provider="gemini", model="absent")
    assert (got.input_price_per_mtok, got.output_price_per_mtok) == (
        Decimal("0.075"),
        Decimal("0.3"),
    )
    assert got.context_window == 1_000_000
    assert model in listed
    assert model not in enabled
    async with db.write() as s:
        with pytest.raises(InputError):
            await AiModelRepo(s).upsert(
                provider="gemini",
                model=model,
                input_price_per_mtok=0.1,  # type: ignore[arg-type]
                output_price_per_mtok=1,
            )
        with pytest.raises(InputError):
            await AiModelRepo(s).upsert(
                provider="gemini", model=model, input_price_per_mtok="-1", output_price_per_mtok=1
            )
