"""Plan limits in a real engine: a run over the monthly limit is refused before anything is
written, a credit buys exactly one run even when many starts race for it, and a provider call
over the token limit is refused before it is sent (the fake OpenAI server counts what arrives).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from billingkit import (
    count_node_executions,
    count_runs,
    make_package,
    make_user,
    save_workflow,
    subscribe,
    two_llm_calls_graph,
)
from newrun import new_run
from providers.fake_servers import API_KEY, FakeServer, running_server
from sqlalchemy import select

from flowloom.billing import CREDIT_SPENT, PlanQuota, QuotaGuardedResolver
from flowloom.billing.plans import (
    DefaultPackageName,
    Plan,
    plan_in_force,
    plan_in_force_outside,
    plan_of,
)
from flowloom.engine import Engine
from flowloom.engine.plans import PlanCache
from flowloom.engine.ports import NewRun
from flowloom.engine.sql import SqlRunStore
from flowloom.exceptions import InputError, NotFound, QuotaExceeded
from flowloom.nodes.registry import default_registry
from flowloom.providers import ProviderConfig, RetryPolicy, SettingsProviderResolver
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus, TriggerKind
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo
from flowloom.storage.repos.runs import PG_LOOKUPS_WIDTH, pg_run_lookups_sql
from flowloom.storage.repos.system_settings import SystemSettingsRepo
from flowloom.storage.repos.usage import UsageRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import SystemSetting, User, WorkflowRun


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


@pytest.fixture
async def engine(db: Database, server: FakeServer) -> AsyncIterator[Engine]:
    providers = SettingsProviderResolver(
        {"openai": ProviderConfig(API_KEY, server.openai_base_url)},
        retry=RetryPolicy(attempts=1),
    )
    running = Engine(db, providers=providers, quota=PlanQuota(db))
    yield running
    await running.close()


async def credits_of(db: Database, user_id: str) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(User.credits).where(User.id == user_id)) or 0)


async def test_without_a_plan_there_is_no_limit(db: Database, engine: Engine) -> None:
    owner = await make_user(db)
    workflow = await save_workflow(db, owner)
    for _ in range(5):
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow)
        assert result.status is RunStatus.COMPLETED
    assert await count_runs(db, owner) == 5


async def test_a_run_over_the_monthly_limit_is_refused_and_nothing_is_written(
    db: Database, engine: Engine
) -> None:
    owner = await make_user(db)
    workflow = await save_workflow(db, owner)
    await subscribe(db, owner, await make_package(db, max_runs_per_month=2))
    for _ in range(2):
        await engine.run_to_end(owner_id=owner, workflow_id=workflow)
    executions = await count_node_executions(db, owner)

    with pytest.raises(QuotaExceeded) as refused:
        await engine.start_run(owner_id=owner, workflow_id=workflow)

    assert (refused.value.limit, refused.value.used, refused.value.allowed) == (
        "max_runs_per_month",
        2,
        2,
    )
    assert await count_runs(db, owner) == 2
    assert await count_node_executions(db, owner) == executions


async def test_the_count_starts_again_with_the_next_calendar_month(db: Database) -> None:
    clock = Clock(datetime(2031, 1, 31, 23, 59, 59, tzinfo=UTC))
    engine = Engine(db, quota=PlanQuota(db, clock=clock))
    try:
        owner = await make_user(db)
        workflow = await save_workflow(db, owner)
        await subscribe(db, owner, await make_package(db, max_runs_per_month=1))
        # The runs are really made now; the clock puts "this month" around them.
        clock.now = datetime.now(UTC)
        await engine.run_to_end(owner_id=owner, workflow_id=workflow)
        with pytest.raises(QuotaExceeded) as refused:
            await engine.start_run(owner_id=owner, workflow_id=workflow)
        month_start = clock.now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        assert refused.value.resets_at > clock.now > month_start
        clock.now = refused.value.resets_at
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow)
        assert result.status is RunStatus.COMPLETED
    finally:
        await engine.close()


async def test_the_default_package_holds_users_without_a_subscription(
    db: Database, engine: Engine
) -> None:
    strict = await make_package(db, max_runs_per_month=0)
    generous = await make_package(db, max_runs_per_month=100)
    async with db.write() as session:
        from flowloom.storage.repos.billing import PackageRepo

        name = (await PackageRepo(session).get(package_id=strict)).name
        await SystemSettingsRepo(session).update(changes={"default_package": name})
    try:
        plain = await make_user(db)
        subscribed = await make_user(db)
        await subscribe(db, subscribed, generous)
        with pytest.raises(QuotaExceeded):
            await engine.start_run(owner_id=plain, workflow_id=await save_workflow(db, plain))
        result = await engine.run_to_end(
            owner_id=subscribed, workflow_id=await save_workflow(db, subscribed)
        )
        assert result.status is RunStatus.COMPLETED
    finally:
        async with db.write() as session:
            await SystemSettingsRepo(session).update(changes={"default_package": None})


async def test_the_default_package_name_is_kept_briefly_and_dropped_when_changed_here(
    db: Database,
) -> None:
    moment = [0.0]
    kept = DefaultPackageName(ttl_s=2.0, clock=lambda: moment[0])
    package_id = await make_package(db)
    async with db.read() as session:
        from flowloom.storage.repos.billing import PackageRepo

        name = (await PackageRepo(session).get(package_id=package_id)).name
    assert await db.run_read(kept.get) is None
    # Changed by another process (its own write, unseen here): seen once ttl_s has passed.
    async with db.write() as session:
        session.add(SystemSetting(key="default_package", value=name))
    assert await db.run_read(kept.get) is None
    moment[0] = 2.5
    assert await db.run_read(kept.get) == name
    # Changed by this process: seen at once.
    async with db.write() as session:
        await SystemSettingsRepo(session).update(changes={"default_package": None})
    assert await db.run_read(kept.get) is None


async def test_a_credit_buys_one_run_past_the_limit(db: Database, engine: Engine) -> None:
    owner = await make_user(db, credits=1)
    workflow = await save_workflow(db, owner)
    await subscribe(db, owner, await make_package(db, max_runs_per_month=1))
    first = await engine.run_to_end(owner_id=owner, workflow_id=workflow)
    assert await credits_of(db, owner) == 1  # within the plan: no credit spent

    paid = await engine.run_to_end(owner_id=owner, workflow_id=workflow)
    assert paid.status is RunStatus.COMPLETED
    assert await credits_of(db, owner) == 0
    async with db.read() as session:
        data = {
            run.id: run.trigger_data
            for run in await session.scalars(
                select(WorkflowRun).where(WorkflowRun.user_id == owner)
            )
        }
    assert (data[paid.run_id] or {}).get(CREDIT_SPENT) is True
    assert CREDIT_SPENT not in (data[first.run_id] or {})

    with pytest.raises(QuotaExceeded):
        await engine.start_run(owner_id=owner, workflow_id=workflow)
    assert await count_runs(db, owner) == 2


async def test_a_start_that_makes_its_plan_first_spends_one_credit(
    db: Database, engine: Engine
) -> None:
    owner = await make_user(db, credits=2)
    workflow = await save_workflow(db, owner)
    await subscribe(db, owner, await make_package(db, max_runs_per_month=1))
    first = await engine.run_to_end(owner_id=owner, workflow_id=workflow)
    assert first.status is RunStatus.COMPLETED
    # Another engine has no plan made: the start's first transaction asks the plan limits
    # (spending the credit), rolls back for the plan to be made, and goes again.
    fresh = Engine(db, quota=PlanQuota(db))
    try:
        paid = await fresh.run_to_end(owner_id=owner, workflow_id=workflow)
    finally:
        await fresh.close()
    assert paid.status is RunStatus.COMPLETED
    assert await credits_of(db, owner) == 1
    assert await count_runs(db, owner) == 2
    async with db.read() as session:
        data = await session.scalar(
            select(WorkflowRun.trigger_data).where(WorkflowRun.id == paid.run_id)
        )
    assert (data or {}).get(CREDIT_SPENT) is True


async def test_racing_starts_spend_each_credit_exactly_once(db: Database, engine: Engine) -> None:
    owner = await make_user(db, credits=3)
    workflow = await save_workflow(db, owner)
    await subscribe(db, owner, await make_package(db, max_runs_per_month=2))

    outcomes = await asyncio.gather(
        *(engine.start_run(owner_id=owner, workflow_id=workflow) for _ in range(10)),
        return_exceptions=True,
    )

    started = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert (len(started), len(refused)) == (5, 5), outcomes
    assert await credits_of(db, owner) == 0
    assert await count_runs(db, owner) == 5
    for run_id in started:
        await engine.wait(run_id)


async def test_an_idempotent_replay_at_the_limit_returns_the_same_run_free(
    db: Database, engine: Engine
) -> None:
    owner = await make_user(db, credits=1)
    workflow = await save_workflow(db, owner)
    await subscribe(db, owner, await make_package(db, max_runs_per_month=1))
    first = await engine.start_run(owner_id=owner, workflow_id=workflow, idempotency_key="k1")
    again = await engine.start_run(owner_id=owner, workflow_id=workflow, idempotency_key="k1")
    assert again == first
    assert await credits_of(db, owner) == 1
    await engine.wait(first)


async def test_used_up_tokens_refuse_a_run_before_it_starts(db: Database, engine: Engine) -> None:
    owner = await make_user(db)
    workflow = await save_workflow(db, owner)
    await subscribe(db, owner, await make_package(db, max_tokens_per_month=100))
    async with db.write() as session:
        await UsageRepo(session, owner_id=owner).record(
            provider="openai", model="gpt-test", tokens_in=60, tokens_out=40
        )
    with pytest.raises(QuotaExceeded) as refused:
        await engine.start_run(owner_id=owner, workflow_id=workflow)
    assert (refused.value.limit, refused.value.used, refused.value.allowed) == (
        "max_tokens_per_month",
        100,
        100,
    )
    assert await count_runs(db, owner) == 0


async def test_a_call_over_the_token_limit_is_never_sent(
    db: Database, engine: Engine, server: FakeServer
) -> None:
    server.reset()
    owner = await make_user(db)
    workflow = await save_workflow(db, owner, two_llm_calls_graph())
    # The first call (12 + 5 tokens) passes with 0 used and uses the allowance up.
    await subscribe(db, owner, await make_package(db, max_tokens_per_month=10))

    result = await engine.run_to_end(owner_id=owner, workflow_id=workflow)

    assert result.status is RunStatus.FAILED
    assert len(server.requests) == 1
    assert result.error is not None
    assert "max_tokens_per_month" in str(result.error) or "tokens per month" in str(result.error)


async def test_a_disabled_model_is_refused_before_the_call(
    db: Database, engine: Engine, server: FakeServer
) -> None:
    server.reset()
    owner = await make_user(db)
    graph = two_llm_calls_graph()
    for node in graph["nodes"]:
        node["data"]["config"]["model"] = "gpt-disabled"
    workflow = await save_workflow(db, owner, graph)
    async with db.write() as session:
        await AiModelRepo(session).upsert(
            provider="openai",
            model="gpt-disabled",
            input_price_per_mtok="1",
            output_price_per_mtok="2",
            enabled=False,
        )
    result = await engine.run_to_end(owner_id=owner, workflow_id=workflow)
    assert result.status is RunStatus.FAILED
    assert "disabled" in str(result.error)
    assert server.requests == []


async def test_the_production_engine_enforces_plans(db: Database, tmp_path: object) -> None:
    settings = Settings(data_dir=str(tmp_path), secret_key="k" * 43)
    engine = Engine.from_settings(db, settings)
    try:
        assert isinstance(engine.quota, PlanQuota)
        assert isinstance(engine.providers, QuotaGuardedResolver)
    finally:
        await engine.close()


async def test_a_sub_run_counts_and_is_refused_like_any_run(db: Database, engine: Engine) -> None:
    owner = await make_user(db)
    child = await save_workflow(db, owner)
    parent = await save_workflow(
        db,
        owner,
        {
            "schema_version": 1,
            "nodes": [
                {"id": "call", "type": "workflow.call", "data": {"config": {"workflow_id": child}}}
            ],
            "edges": [],
        },
    )
    # Room for the parent only: its child is the second run of the month.
    await subscribe(db, owner, await make_package(db, max_runs_per_month=1))

    result = await engine.run_to_end(owner_id=owner, workflow_id=parent)

    assert result.status is RunStatus.FAILED
    assert "runs per month" in str(result.error)
    assert await count_runs(db, owner) == 1


async def test_only_a_run_limit_needs_the_runs_transaction(db: Database) -> None:
    """``allows_unlocked`` (asked outside any transaction): a plan that limits runs needs the
    count under the lock of ``before_run``; no plan, or one limiting tokens only, does not;
    used-up tokens refuse the run there already."""
    quota = PlanQuota(db)

    async def unlocked(owner: str) -> bool:
        return await quota.allows_unlocked(owner_id=owner)

    free, tokens, runs, spent = await _four_plans(db)
    assert [await unlocked(owner) for owner in (free, tokens, runs)] == [True, True, False]
    with pytest.raises(QuotaExceeded) as refused:
        await unlocked(spent)
    assert refused.value.limit == "max_tokens_per_month"


async def test_the_plan_asked_at_a_run_start_is_the_one_the_api_reports(db: Database) -> None:
    """``plan_in_force`` on the start's own connection (on SQLite, sqlite3 itself) and
    ``plan_in_force_outside`` find what ``plan_of`` finds through a session: a subscription
    with its end, none before it starts or after it ends, and the default package for whoever
    has none."""
    owner = await make_user(db)
    package = await make_package(db, max_runs_per_month=3, max_tokens_per_month=10_000)
    started = datetime(2031, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    ends = datetime(2031, 3, 20, 8, 30, 0, 125_000, tzinfo=UTC)
    async with db.write() as session:
        await SubscriptionRepo(session).subscribe(
            user_id=owner, package_id=package, now=started, end_date=ends
        )
        default_name = (await PackageRepo(session).get(package_id=package)).name

    async def both(at: datetime) -> tuple[Plan | None, Plan | None]:
        in_force = await db.run_read(lambda conn: plan_in_force(conn, user_id=owner, now=at))
        # Outside any transaction (on PostgreSQL, on asyncpg), with the default package's name
        # read once and then kept.
        names = DefaultPackageName()
        for _ in range(2):
            outside = await plan_in_force_outside(db, user_id=owner, now=at, default_package=names)
            assert outside == in_force
        async with db.read() as session:
            reported = await plan_of(session, user_id=owner, now=at)
        return in_force, reported

    during, reported = await both(datetime(2031, 3, 10, tzinfo=UTC))
    assert during == reported
    assert during is not None
    assert (during.package_id, during.source, during.max_runs_per_month) == (
        package,
        "subscription",
        3,
    )
    assert during.max_tokens_per_month == 10_000
    assert during.ends_at == ends
    assert during.ends_at.tzinfo is not None
    assert await both(datetime(2031, 3, 1, 12, 0, 0, 249_999, tzinfo=UTC)) == (None, None)
    assert await both(ends) == (None, None)
    async with db.write() as session:
        await SystemSettingsRepo(session).update(changes={"default_package": default_name})
    try:
        after, reported = await both(datetime(2031, 4, 1, tzinfo=UTC))
        assert after == reported
        assert after is not None
        assert (after.package_id, after.source, after.ends_at) == (package, "default", None)
    finally:
        async with db.write() as session:
            await SystemSettingsRepo(session).update(changes={"default_package": None})


async def _carried(db: Database, quota: PlanQuota, owner: str) -> bool:
    """``unlocked_read`` carried by the run start's look-up statement, as the run store asks
    it (PostgreSQL), then its answer."""
    read = quota.unlocked_read(owner_id=owner)
    async with db.asyncpg_connection() as pg:
        row = await pg.fetchrow(
            pg_run_lookups_sql(read.pg_sql(PG_LOOKUPS_WIDTH + 1)),
            "wf_none",
            owner,
            None,
            None,
            *read.args,
        )
    assert row[0] is None  # the look-ups before it are read as ever
    return await read.allows(row[PG_LOOKUPS_WIDTH:])


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)  # the read is PostgreSQL's
async def test_the_plan_read_carried_by_the_run_start_answers_as_allows_unlocked(
    db: Database,
) -> None:
    """``unlocked_read`` (the plan read inside the start's look-up, PostgreSQL) answers what
    ``allows_unlocked`` answers: no plan, tokens only, a run limit (the locked transaction),
    used-up tokens (refused), and the default package whether its name is kept or not, active
    or not."""
    quota = PlanQuota(db)
    free, tokens, runs, spent = await _four_plans(db)
    for owner, allowed in ((free, True), (tokens, True), (runs, False)):
        assert await _carried(db, quota, owner) is allowed
        assert await quota.allows_unlocked(owner_id=owner) is allowed
    for ask in (_carried(db, quota, spent), quota.allows_unlocked(owner_id=spent)):
        with pytest.raises(QuotaExceeded) as refused:
            await ask
        assert refused.value.limit == "max_tokens_per_month"

    limiting = await make_package(db, max_runs_per_month=1)
    async with db.write() as session:
        name = (await PackageRepo(session).get(package_id=limiting)).name
        await SystemSettingsRepo(session).update(changes={"default_package": name})
    try:
        # A fresh quota keeps no name: the read finds it itself; then the name is kept.
        fresh = PlanQuota(db)
        assert await _carried(db, fresh, free) is False
        assert await _carried(db, fresh, free) is False
        # A subscription still comes first.
        assert await _carried(db, fresh, tokens) is True
        async with db.write() as session:
            await PackageRepo(session).update(package_id=limiting, changes={"active": False})
        assert await _carried(db, PlanQuota(db), free) is True
    finally:
        async with db.write() as session:
            await SystemSettingsRepo(session).update(changes={"default_package": None})


async def test_a_start_refused_by_the_plan_or_the_lookups_writes_nothing(
    db: Database, engine: Engine
) -> None:
    """The run start's checks (one statement on PostgreSQL), in their order: used-up tokens
    refuse even a start naming another user's workflow (the plan is asked first, as in the
    write transaction); without a plan, another user's workflow, a deleted one and an
    unknown one are not found; a run limit still goes through the locked count."""
    owner, other, spent = [await make_user(db) for _ in range(3)]
    mine, theirs = await save_workflow(db, owner), await save_workflow(db, other)
    await subscribe(db, spent, await make_package(db, max_tokens_per_month=10))
    async with db.write() as session:
        await UsageRepo(session, owner_id=spent).record(
            provider="openai", model="gpt-test", tokens_in=6, tokens_out=4
        )
    with pytest.raises(QuotaExceeded):
        await engine.start_run(owner_id=spent, workflow_id=theirs)
    for workflow in (theirs, "wf_unknown"):
        with pytest.raises(NotFound):
            await engine.start_run(owner_id=owner, workflow_id=workflow)
    async with db.write() as session:
        await WorkflowRepo(session, owner_id=owner).soft_delete(workflow_id=mine)
    with pytest.raises(NotFound):
        await engine.start_run(owner_id=owner, workflow_id=mine)
    assert [await count_runs(db, user) for user in (owner, other, spent)] == [0, 0, 0]

    # Plans that come after the workflow's version was seen (a start then tries its write in
    # the look-up's statement, PostgreSQL): used-up tokens refuse, a run limit counts.
    limited = await make_user(db)
    workflow = await save_workflow(db, limited)
    assert (await engine.run_to_end(owner_id=limited, workflow_id=workflow)).status is (
        RunStatus.COMPLETED
    )
    package = await make_package(db, max_runs_per_month=1, max_tokens_per_month=10)
    await subscribe(db, limited, package)
    async with db.write() as session:
        await UsageRepo(session, owner_id=limited).record(
            provider="openai", model="gpt-test", tokens_in=6, tokens_out=4
        )
    with pytest.raises(QuotaExceeded) as refused:
        await engine.start_run(owner_id=limited, workflow_id=workflow)
    assert refused.value.limit == "max_tokens_per_month"
    async with db.write() as session:
        await PackageRepo(session).update(
            package_id=package, changes={"max_tokens_per_month": None}
        )
    with pytest.raises(QuotaExceeded) as refused:
        await engine.start_run(owner_id=limited, workflow_id=workflow)
    assert refused.value.limit == "max_runs_per_month"
    assert await count_runs(db, limited) == 1


async def test_the_plan_refuses_before_the_settings_once_a_version_was_seen(
    db: Database,
) -> None:
    """A start whose settings the checks refuse (a timeout that is not positive), or whose
    inputs cannot be stored, is refused by used-up tokens first, as ever, also after the
    workflow's version was seen (when a start on PostgreSQL is tried in one statement); with
    tokens left, the settings refuse."""
    store, plans = SqlRunStore(db, quota=PlanQuota(db)), PlanCache(default_registry())
    spent, fine = await make_user(db), await make_user(db)
    for user in (spent, fine):
        workflow = await save_workflow(db, user)
        await store.create_run(_new_run(user, workflow), plans)  # the version seen
        if user == spent:
            await subscribe(db, spent, await make_package(db, max_tokens_per_month=10))
            async with db.write() as session:
                await UsageRepo(session, owner_id=spent).record(
                    provider="openai", model="gpt-test", tokens_in=6, tokens_out=4
                )
            for refused in ({"timeout_s": 0.0}, {"inputs": {"not JSON": {1, 2}}}):
                with pytest.raises(QuotaExceeded):
                    await store.create_run(_new_run(user, workflow, **refused), plans)
        else:
            with pytest.raises(InputError):
                await store.create_run(_new_run(user, workflow, timeout_s=-1.0), plans)
        assert await count_runs(db, user) == 1


def _new_run(owner: str, workflow_id: str, **fields: Any) -> NewRun:
    return new_run(owner, workflow_id, **{"trigger_kind": TriggerKind.WEBHOOK, **fields})


async def _four_plans(db: Database) -> tuple[str, str, str, str]:
    """Four users: one with no plan, one with tokens left, one whose plan limits runs, one
    whose tokens are used up."""
    free, tokens, runs, spent = [await make_user(db) for _ in range(4)]
    await subscribe(db, tokens, await make_package(db, max_tokens_per_month=100))
    await subscribe(db, runs, await make_package(db, max_runs_per_month=5))
    await subscribe(db, spent, await make_package(db, max_tokens_per_month=10))
    async with db.write() as session:
        await UsageRepo(session, owner_id=spent).record(
            provider="openai", model="gpt-test", tokens_in=6, tokens_out=4
        )
    return free, tokens, runs, spent
