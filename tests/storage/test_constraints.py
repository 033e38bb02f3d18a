"""The database itself refuses bad rows, deletes cascade as designed, and values round-trip.

Rows are written through the ORM tables directly, with no repository in between, so every
refusal here comes from a constraint in the schema the migrations built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, StatementError

from flowloom.ids import PREFIXES, new_id
from flowloom.storage.database import Database
from flowloom.storage.tables import (
    ApiKey,
    AuditEntry,
    NodeExecution,
    Package,
    Usage,
    User,
    UserSubscription,
    Workflow,
    WorkflowMemory,
    WorkflowRun,
    WorkflowVersion,
)
from flowloom.storage.tables.base import Base

DEFINITION: dict[str, Any] = {"schema_version": 1, "nodes": [], "edges": []}


def _id(table: str) -> str:
    return new_id(PREFIXES[table])


def _user(email: str | None = None, **fields: Any) -> User:
    uid = _id("users")
    return User(id=uid, email=email or f"{uid}@example.com", **fields)


def _run(owner: Owner, **fields: Any) -> WorkflowRun:
    values: dict[str, Any] = {
        "workflow_id": owner.workflow_id,
        "workflow_version": 1,
        "user_id": owner.user_id,
    }
    return WorkflowRun(id=_id("workflow_runs"), **(values | fields))


def _node(run_id: str, **fields: Any) -> NodeExecution:
    values: dict[str, Any] = {"node_id": "crop", "node_type": "image.crop"}
    values |= fields
    nex_id = _id("node_executions")
    return NodeExecution(id=nex_id, run_id=run_id, idempotency_key=f"{nex_id}:1", **values)


def _usage(user_id: str, **fields: Any) -> Usage:
    values: dict[str, Any] = {"provider": "openai", "model": "m", "tokens_in": 3, "tokens_out": 4}
    values |= fields
    values.setdefault("tokens_total", values["tokens_in"] + values["tokens_out"])
    return Usage(id=_id("usage"), user_id=user_id, **values)


@dataclass
class Owner:
    """A user with one workflow at version 1 and one run of it, committed."""

    user_id: str
    workflow_id: str
    run_id: str


async def _owner(db: Database) -> Owner:
    user = _user()
    workflow = Workflow(
        id=_id("workflows"), user_id=user.id, name="crop photos", definition=DEFINITION
    )
    version = WorkflowVersion(
        id=_id("workflow_versions"), workflow_id=workflow.id, version=1, definition=DEFINITION
    )
    owner = Owner(user.id, workflow.id, "")
    run = _run(owner)
    owner.run_id = run.id
    await _insert(db, user, workflow, version, run)
    return owner


async def _insert(db: Database, *rows: Base) -> None:
    """Write ``rows`` in one transaction, one statement at a time in the given order."""
    async with db.write() as session:
        for row in rows:
            session.add(row)
            await session.flush()


async def _refused(db: Database, *rows: Base) -> IntegrityError:
    with pytest.raises(IntegrityError) as caught:
        await _insert(db, *rows)
    return caught.value


async def _count(db: Database, model: type[Base], *where: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_second_user_with_the_same_email_is_refused(db: Database) -> None:
    await _insert(db, _user("ada@example.com"))
    await _refused(db, _user("ada@example.com"))
    assert await _count(db, User, User.email == "ada@example.com") == 1


async def test_a_run_of_a_missing_workflow_is_refused(db: Database) -> None:
    owner = await _owner(db)
    await _refused(db, _run(owner, workflow_id=_id("workflows")))


async def test_unknown_run_and_node_statuses_are_refused(db: Database) -> None:
    owner = await _owner(db)
    await _refused(db, _run(owner, status="DONE"))
    await _refused(db, _node(owner.run_id, status="OK"))
    await _insert(db, _run(owner, status="COMPLETED"), _node(owner.run_id, status="CACHED"))


async def test_a_second_version_with_the_same_number_is_refused(db: Database) -> None:
    owner = await _owner(db)
    again = WorkflowVersion(
        id=_id("workflow_versions"), workflow_id=owner.workflow_id, version=1, definition={}
    )
    await _refused(db, again)
    await _insert(
        db,
        WorkflowVersion(
            id=_id("workflow_versions"), workflow_id=owner.workflow_id, version=2, definition={}
        ),
    )


async def test_node_execution_attempt_zero_is_refused(db: Database) -> None:
    owner = await _owner(db)
    await _refused(db, _node(owner.run_id, attempt=0))
    await _insert(db, _node(owner.run_id, attempt=1))


async def test_negative_credits_are_refused(db: Database) -> None:
    await _refused(db, _user(credits=-1))
    await _insert(db, _user(credits=0))


async def test_usage_whose_total_is_not_in_plus_out_is_refused(db: Database) -> None:
    owner = await _owner(db)
    await _refused(db, _usage(owner.user_id, tokens_in=3, tokens_out=4, tokens_total=8))
    await _insert(db, _usage(owner.user_id, tokens_in=3, tokens_out=4, tokens_total=7))


async def test_run_scope_and_target_node_must_match(db: Database) -> None:
    owner = await _owner(db)
    await _refused(db, _run(owner, scope="FULL", target_node_id="crop"))
    await _refused(db, _run(owner, scope="NODE", target_node_id=None))
    await _insert(db, _run(owner, scope="NODE", target_node_id="crop"))


async def test_deleting_a_user_cascades_as_designed(db: Database) -> None:
    owner = await _owner(db)
    bystander = await _owner(db)
    key = ApiKey(
        id=_id("api_keys"),
        user_id=owner.user_id,
        name="ci",
        prefix=f"fl_{owner.user_id[-8:]}",
        secret_sha256=owner.user_id.rjust(64, "0")[-64:],
    )
    node = _node(owner.run_id)
    package = Package(id=_id("packages"), name=f"pro {owner.user_id}", price=Decimal("9.99"))
    memory = WorkflowMemory(
        id=_id("workflow_memory"),
        workflow_id=owner.workflow_id,
        user_id=owner.user_id,
        key="last",
        value={"n": 1},
        value_type="object",
    )
    audit_id = _id("audit_log")
    await _insert(
        db,
        key,
        node,
        _usage(owner.user_id, api_key_id=key.id, run_id=owner.run_id, node_execution_id=node.id),
        memory,
        AuditEntry(id=audit_id, user_id=owner.user_id, action="workflow.create"),
        package,
        UserSubscription(
            id=_id("user_subscriptions"), user_id=owner.user_id, package_id=package.id
        ),
        UserSubscription(
            id=_id("user_subscriptions"), user_id=bystander.user_id, package_id=package.id
        ),
    )

    async with db.write() as session:
        await session.execute(delete(User).where(User.id == owner.user_id))

    gone = {
        Workflow: Workflow.user_id == owner.user_id,
        WorkflowVersion: WorkflowVersion.workflow_id == owner.workflow_id,
        WorkflowRun: WorkflowRun.user_id == owner.user_id,
        NodeExecution: NodeExecution.run_id == owner.run_id,
        ApiKey: ApiKey.user_id == owner.user_id,
        Usage: Usage.user_id == owner.user_id,
        WorkflowMemory: WorkflowMemory.user_id == owner.user_id,
        UserSubscription: UserSubscription.user_id == owner.user_id,
    }
    assert {model.__name__: await _count(db, model, where) for model, where in gone.items()} == {
        model.__name__: 0 for model in gone
    }
    async with db.read() as session:
        audit = await session.get(AuditEntry, audit_id)
    assert audit is not None
    assert audit.user_id is None
    # Somebody else's rows are untouched.
    assert await _count(db, WorkflowRun, WorkflowRun.user_id == bystander.user_id) == 1
    assert await _count(db, Workflow, Workflow.user_id == bystander.user_id) == 1

    # The bystander still subscribes to the package, so the package cannot go.
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await session.execute(delete(Package).where(Package.id == package.id))
    assert await _count(db, Package, Package.id == package.id) == 1


async def test_money_is_stored_and_summed_exactly(db: Database) -> None:
    owner = await _owner(db)
    tiny = Decimal("0.000001050")
    # 0.1 has no exact binary form: ten of them summed as floats miss 1.0 by a little.
    costs = [tiny, *[Decimal("0.1")] * 10, Decimal("12345.678901234")]
    rows = [_usage(owner.user_id, cost=cost) for cost in costs]
    await _insert(db, *rows)

    async with db.read() as session:
        stored = await session.scalar(select(Usage.cost).where(Usage.id == rows[0].id))
        total = await session.scalar(
            select(func.sum(Usage.cost)).where(Usage.user_id == owner.user_id)
        )
    assert stored == tiny
    assert str(stored) == "0.000001050"
    assert total == Decimal("12346.678902284")


async def test_negative_cost_is_refused(db: Database) -> None:
    owner = await _owner(db)
    await _refused(db, _usage(owner.user_id, cost=Decimal("-0.000000001")))


async def test_times_come_back_as_aware_utc(db: Database) -> None:
    plus5 = timezone(timedelta(hours=5))
    # 10:00 at +05:00 is 05:00 UTC: earlier than 06:00 UTC although its wall clock reads later.
    early = _user(last_login_at=datetime(2025, 3, 1, 10, 0, tzinfo=plus5))
    late = _user(last_login_at=datetime(2025, 3, 1, 6, 0, tzinfo=UTC))
    await _insert(db, late, early)

    async with db.read() as session:
        rows = (
            await session.execute(
                select(User.id, User.last_login_at, User.created_at)
                .where(User.id.in_([early.id, late.id]))
                .order_by(User.last_login_at)
            )
        ).all()
    assert [row.id for row in rows] == [early.id, late.id]
    assert rows[0].last_login_at == datetime(2025, 3, 1, 5, 0, tzinfo=UTC)
    for row in rows:
        assert row.last_login_at.tzinfo is UTC
        assert row.created_at.tzinfo is UTC
        assert abs(datetime.now(UTC) - row.created_at) < timedelta(minutes=5)


async def test_naive_times_are_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        await _insert(db, _user(last_login_at=datetime(2025, 3, 1, 6, 0)))
