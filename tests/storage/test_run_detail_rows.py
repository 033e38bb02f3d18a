"""read_run_detail on SQLite and PostgreSQL: the run, its nodes in checkpoint order and the
usage of its calls by node, as rows on a plain connection; another user's run is NotFound."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import update
from test_runs_repo import create_run, make_owner

from flowloom.api.schemas.runs import NodeExecutionPublic, RunDetail, RunPublic, run_detail
from flowloom.exceptions import NotFound
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.repos.run_detail import (
    NODE_COLUMNS,
    RUN_COLUMNS,
    RunDetailRows,
    read_run_detail,
)
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.usage import UsageRepo, UsageTotals
from flowloom.storage.tables import NodeExecution, WorkflowRun


async def read(db: Database, owner_id: str, run_id: str) -> RunDetailRows:
    return await read_run_detail(db, owner_id=owner_id, run_id=run_id)


async def add_nodes(db: Database, owner_id: str, run_id: str) -> dict[str, str]:
    async with db.write() as s:
        repo = RunRepo(s, owner_id=owner_id)
        await repo.add_node_executions(
            run_id=run_id, nodes=[("load", "text.value", 0), ("ask", "llm.chat", 1)]
        )
        _, nodes = await repo.get_with_nodes(run_id=run_id)
    return {node.node_id: node.id for node in nodes}


async def test_a_run_its_nodes_and_its_usage_by_node(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    other, _ = await make_owner(db, workflows=0)
    run_id = await create_run(db, user, wf, inputs={"n": 1})
    rows = await add_nodes(db, user, run_id)
    call = {"provider": "openai", "model": "gpt-detail", "cost": Decimal(1), "run_id": run_id}
    async with db.write() as s:
        usage = UsageRepo(s, owner_id=user)
        await usage.record(tokens_in=3, tokens_out=2, node_execution_id=rows["ask"], **call)
        await usage.record(tokens_in=4, tokens_out=1, node_execution_id=rows["ask"], **call)
        await usage.record(tokens_in=1, tokens_out=0, **call)  # the run's, tied to no node
        await UsageRepo(s, owner_id=other).record(tokens_in=9, tokens_out=9, **call)

    found = await read(db, user, run_id)

    assert (found.run["id"], found.run["status"], found.run["inputs"]) == (
        run_id,
        RunStatus.PENDING,
        {"n": 1},
    )
    assert [(n["node_id"], n["node_type"], n["status"]) for n in found.nodes] == [
        ("load", "text.value", NodeStatus.READY),
        ("ask", "llm.chat", NodeStatus.PENDING),
    ]
    assert found.usage == {
        rows["ask"]: UsageTotals(2, 7, 3, 10, Decimal(2)),
        None: UsageTotals(1, 1, 0, 1, Decimal(1)),
    }


async def test_a_run_without_calls_has_no_usage(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    run_id = await create_run(db, user, wf)
    await add_nodes(db, user, run_id)

    found = await read(db, user, run_id)

    assert [n["node_id"] for n in found.nodes] == ["load", "ask"]
    assert found.usage == {}


async def test_another_users_run_is_not_found(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    other, _ = await make_owner(db, workflows=0)
    run_id = await create_run(db, user, wf)
    with pytest.raises(NotFound):
        await read(db, other, run_id)
    with pytest.raises(NotFound):
        await read(db, user, "run_missing")


async def test_the_rows_hold_what_the_detail_shows_and_nothing_else(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    run_id = await create_run(db, user, wf, inputs={"n": 1})
    await add_nodes(db, user, run_id)

    found = await read(db, user, run_id)

    # The owner, the trigger's data, the leases and the keys are not read.
    assert tuple(found.run) == (*RUN_COLUMNS, "made_calls")
    assert [tuple(node) for node in found.nodes] == [NODE_COLUMNS, NODE_COLUMNS]


def test_the_columns_cover_every_field_of_the_detail() -> None:
    # A field added to the detail without its column would fail validation on every read.
    shown_run = set(RunDetail.model_fields) - {"nodes", "usage", "used_pinned"}
    assert shown_run <= set(RUN_COLUMNS)
    assert "use_pinned" in RUN_COLUMNS
    shown_node = {
        "node_type" if name == "type" else name for name in NodeExecutionPublic.model_fields
    } - {"usage"}
    assert shown_node <= set(NODE_COLUMNS)


async def test_the_detail_from_the_rows_is_the_detail_of_the_orm_objects(db: Database) -> None:
    # What the API answered when it validated the ORM objects, field for field: types too
    # (aware times, enums, JSON), on either database.
    user, (wf,) = await make_owner(db)
    run_id = await create_run(db, user, wf, inputs={"n": 1, "deep": {"a": [1, 2.5, None]}})
    await add_nodes(db, user, run_id)
    done = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    async with db.write() as s:
        await s.execute(
            update(NodeExecution)
            .where(NodeExecution.run_id == run_id, NodeExecution.node_id == "load")
            .values(
                status=NodeStatus.SUCCEEDED,
                inputs={"x": "é"},
                outputs={"text": "go", "n": 2},
                attempts=[{"attempt": 1, "status": "SUCCEEDED"}],
                started_at=done,
                finished_at=done,
                duration_ms=7,
            )
        )
        await s.execute(
            update(NodeExecution)
            .where(NodeExecution.run_id == run_id, NodeExecution.node_id == "ask")
            .values(status=NodeStatus.FAILED, error={"message": "no", "code": "x"})
        )
        await s.execute(
            update(WorkflowRun)
            .where(WorkflowRun.id == run_id)
            .values(status=RunStatus.FAILED, started_at=done, error={"message": "no"})
        )
    async with db.read() as s:
        run, nodes = await RunRepo(s, owner_id=user).get_with_nodes(run_id=run_id)
        before = RunPublic.model_validate(run).model_dump()
        before["used_pinned"] = run.use_pinned
        expected = RunDetail(
            **before, nodes=[NodeExecutionPublic.model_validate(node) for node in nodes]
        )

    found = await read(db, user, run_id)
    detail = run_detail(found.run, found.nodes, found.usage)

    assert detail == expected
    assert detail.model_dump_json() == expected.model_dump_json()
