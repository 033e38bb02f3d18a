"""Plan limits, enforced before the work starts: :class:`PlanQuota`.

The engine asks :meth:`PlanQuota.before_run` inside the transaction that would create a run,
before it writes anything, so every run start passes here: the API, webhooks, schedules,
sub-runs and the command line. It also hands its provider resolver to
:meth:`PlanQuota.guard_providers`, so every provider call asks :meth:`PlanQuota.check_call`
before the request is sent. A refusal is :class:`~flowloom.exceptions.QuotaExceeded` (HTTP 402
naming the limit, what was used and what is allowed); nothing of the refused work is written or
sent. A call to a model the admin disabled in the AI model table is refused the same way, with
PermissionDenied.

The rules, per calendar month in UTC:

- No plan (no subscription and no ``default_package``): no limits.
- Tokens: once the tokens recorded this month reach ``max_tokens_per_month``, runs and provider
  calls are refused until the month ends. The check reads what is recorded, so calls already in
  flight when the limit is reached finish and count: a month can end over its allowance by at
  most the calls that were running at that moment.
- Runs: every run counts, sub-runs included. Once the month's runs reach
  ``max_runs_per_month``, a run starts only by spending one credit (``users.credits``); the run
  then carries ``credit_spent: true`` in its trigger data. Credits buy runs, not tokens.
- Exactness under concurrency: with a run limit, run starts of one user are serialised on the
  user's row (SQLite serialises writers anyway), so the count cannot be overtaken; the credit
  goes with one conditional ``UPDATE ... WHERE credits > 0`` in the same transaction as the
  run, so a credit buys exactly one run, and a run that fails to be written gives it back.
- A repeated request with an idempotency key used before returns the earlier run; it is neither
  counted again nor charged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from flowloom.billing.guard import QuotaGuardedResolver
from flowloom.billing.plans import (
    DefaultPackageName,
    Plan,
    PlanRead,
    month_window,
    plan_in_force,
    plan_in_force_outside,
    plan_of,
    plan_read,
)
from flowloom.exceptions import PermissionDenied, QuotaExceeded
from flowloom.providers.base import ProviderResolver
from flowloom.storage.database import Database
from flowloom.storage.repos.billing import (
    runs_started_on,
    spend_credit_on,
    tokens_used,
    tokens_used_on,
)
from flowloom.storage.tables import AiModel, User, WorkflowRun
from flowloom.storage.tables.base import utcnow

__all__ = ["CREDIT_SPENT", "PlanQuota", "UnlockedPlanRead"]

CREDIT_SPENT = "credit_spent"
"""The trigger-data key that marks a run paid for with a credit."""


class PlanQuota:
    """The plan limits of every user, for one database. ``clock`` says what time it is (tests
    move it across a month boundary)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock
        self._default_package = DefaultPackageName()

    def before_run(
        self,
        conn: Connection,
        *,
        owner_id: str,
        idempotency_key: str | None = None,
        **future_kwargs: Any,
    ) -> dict[str, Any] | None:
        """Allow the run, or raise QuotaExceeded; called on the run's own write transaction
        (its connection: a run's start is Core statements, no ORM session).

        Returns what to add to the run's trigger data (``{"credit_spent": True}`` when a credit
        paid for it), or None.
        """
        now = self._clock()
        plan = self._run_limit(conn, owner_id, idempotency_key, now)
        if plan is None or plan.max_runs_per_month is None:
            return None
        start, end = month_window(now)
        # FOR NO KEY UPDATE on PostgreSQL: run starts of this user queue here until the one
        # ahead commits, so each counts the runs before it. Inserts that merely reference the
        # user (usage rows) are not blocked. SQLite has one writer at a time already.
        conn.execute(select(User.id).where(User.id == owner_id).with_for_update(key_share=True))
        used = runs_started_on(conn, user_id=owner_id, start=start, end=end)
        if used < plan.max_runs_per_month:
            return None
        if spend_credit_on(conn, user_id=owner_id) is None:
            raise _refusal(plan, "max_runs_per_month", used, end)
        return {CREDIT_SPENT: True}

    async def allows_unlocked(self, *, owner_id: str, **future_kwargs: Any) -> bool:
        """The checks of ``before_run`` (for a run with no idempotency key) that need no lock,
        outside any transaction: QuotaExceeded when they refuse the run. True when nothing
        more is to be checked (no plan, or one that does not limit runs: nothing to count,
        nothing to charge); False when the plan limits runs, whose count is exact only under
        ``before_run``'s lock, in the run's own transaction.

        Without a plan that limits anything (most users), that is the plan's read alone, on
        PostgreSQL on asyncpg itself (``plan_in_force_outside``); otherwise the checks read
        again what they need through SQLAlchemy."""
        now = self._clock()
        plan = await plan_in_force_outside(
            self._db, user_id=owner_id, now=now, default_package=self._default_package
        )
        return await self.allows_with_plan(plan, owner_id, now)

    def unlocked_read(self, *, owner_id: str, **future_kwargs: Any) -> UnlockedPlanRead:
        """``allows_unlocked`` as a read that the run start's own look-up carries on
        PostgreSQL (one round trip for both), then what it found (``UnlockedPlanRead``)."""
        now = self._clock()
        read = plan_read(self._db, user_id=owner_id, now=now, default_package=self._default_package)
        return UnlockedPlanRead(self, owner_id, now, read)

    async def allows_with_plan(self, plan: Plan | None, owner_id: str, now: datetime) -> bool:
        """``allows_unlocked`` once the plan in force is known (``UnlockedPlanRead`` too)."""
        if plan is None or not plan.limited:
            return True
        limited = await self._db.run_read(lambda conn: self._run_limit(conn, owner_id, None, now))
        return limited is None or limited.max_runs_per_month is None

    def _run_limit(
        self, conn: Connection, owner_id: str, idempotency_key: str | None, now: datetime
    ) -> Plan | None:
        """The checks before the month's runs are counted (QuotaExceeded for tokens); the plan
        in force when it limits anything, None when it does not or the run is a replay."""
        plan = plan_in_force(conn, user_id=owner_id, now=now, default_package=self._default_package)
        if plan is None or not plan.limited:
            return None
        if idempotency_key is not None and _is_replay(conn, owner_id, idempotency_key):
            return None
        start, end = month_window(now)
        if plan.max_tokens_per_month is not None:
            used = tokens_used_on(conn, user_id=owner_id, start=start, end=end)
            if used >= plan.max_tokens_per_month:
                raise _refusal(plan, "max_tokens_per_month", used, end)
        return plan

    async def check_call(self, *, owner_id: str, provider: str, model: str) -> None:
        """Raise PermissionDenied if the admin disabled the model, QuotaExceeded if the owner's
        plan has no tokens left this month."""
        now = self._clock()
        async with self._db.read() as session:
            enabled = await session.scalar(
                select(AiModel.enabled).where(AiModel.provider == provider, AiModel.model == model)
            )
            if enabled is False:
                raise PermissionDenied(
                    f"the model {provider}/{model} is disabled on this instance; "
                    "ask an administrator, or choose another model"
                )
            plan = await plan_of(session, user_id=owner_id, now=now)
            if plan is None or plan.max_tokens_per_month is None:
                return
            start, end = month_window(now)
            used = await tokens_used(session, user_id=owner_id, start=start, end=end)
        if used >= plan.max_tokens_per_month:
            raise _refusal(plan, "max_tokens_per_month", used, end)

    def guard_providers(self, providers: ProviderResolver) -> ProviderResolver:
        """``providers`` with :meth:`check_call` asked before every call made for an owner."""
        return QuotaGuardedResolver(providers, self.check_call)


class UnlockedPlanRead:
    """``PlanQuota.allows_unlocked`` in two steps, for a run start on PostgreSQL: its plan read
    inside the start's look-up statement (``pg_sql``, ``args``), then ``allows`` on the
    values that read, answering as ``allows_unlocked`` would (QuotaExceeded, True or False)."""

    __slots__ = ("_now", "_owner_id", "_quota", "_read")

    def __init__(self, quota: PlanQuota, owner_id: str, now: datetime, read: PlanRead) -> None:
        self._quota, self._owner_id, self._now, self._read = quota, owner_id, now, read

    @property
    def args(self) -> tuple[Any, ...]:
        return self._read.args

    def pg_sql(self, first: int) -> str:
        """A SELECT of exactly one row, its parameters numbered from ``$first``; its first
        column: whether the plan in force limits nothing."""
        return self._read.sql(first)

    async def allows(self, values: Sequence[Any]) -> bool:
        plan = await self._read.plan(values)
        return await self._quota.allows_with_plan(plan, self._owner_id, self._now)


def _is_replay(conn: Connection, owner_id: str, idempotency_key: str) -> bool:
    found = conn.execute(
        select(WorkflowRun.id).where(
            WorkflowRun.user_id == owner_id, WorkflowRun.idempotency_key == idempotency_key
        )
    ).first()
    return found is not None


def _refusal(plan: Plan, limit: str, used: int, resets_at: datetime) -> QuotaExceeded:
    allowed = getattr(plan, limit)
    assert isinstance(allowed, int)
    return QuotaExceeded(
        limit=limit, used=used, allowed=allowed, package=plan.name, resets_at=resets_at
    )
