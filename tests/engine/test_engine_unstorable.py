"""Text no database can store never wedges a run, on SQLite and on PostgreSQL.

A lone surrogate (``"\\ud800"``) cannot be encoded as UTF-8, and PostgreSQL refuses NUL. A node
whose outputs (or wait payload) hold such text fails with an error naming the field, before
any commit; an error message holding it is stored escaped; run inputs and answers holding it
are refused naming the field. And when a commit is refused anyway (the database will not take
what it was given), the run fails in a fresh transaction with a readable error: it is never
left RUNNING and the driver does not crash.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from enginekit import CALLS, definition, edge, make_owner, node, node_rows, registry, save_workflow
from sqlalchemy import func, select

import flowloom.engine.execution as execution_module
from flowloom.engine import Engine
from flowloom.exceptions import InputError
from flowloom.graph.ports import Port, PortType
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext, WaitForInput
from flowloom.storage.database import Database, sqlite_connection
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import WorkflowRun

LONE_SURROGATE = "\ud800"
NUL = "\x00"


class EmitConfig(NodeConfig):
    how: str = "output"
    """output (``text`` as given), nested (inside a list of objects), wait (in a wait's
    payload), raise (in the error message), big (``text`` repeated 20,000 times)."""
    text: str = ""


class Emit(Node[EmitConfig]):
    """Puts ``text`` (taken from the JSON-escaped config, so it can hold anything) where
    ``how`` says."""

    type_name = "test.emit"
    category = Category.ACTION
    deterministic = False
    Config = EmitConfig

    def outputs(self, config: EmitConfig) -> list[Port]:
        return [Port("text", PortType.ANY)]

    async def run(self, ctx: RunContext, config: EmitConfig, inputs: dict[str, Any]) -> NodeResult:
        CALLS[ctx.node_id] += 1
        text = json.loads(config.text)
        if config.how == "nested":
            return NodeResult({"text": {"items": [{"name": "ok"}, {"name": text}]}})
        if config.how == "wait":
            raise WaitForInput("look at this", payload={"value": text})
        if config.how == "raise":
            raise ctx.fail(f"bad {text} here")
        if config.how == "big":
            return NodeResult({"text": text * 20_000})
        return NodeResult({"text": text})


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[Engine]:
    found = registry()
    found.register(Emit)
    engine = Engine(db, found)
    yield engine
    await engine.close()


def _emit_graph(tag: str, how: str, text: str) -> dict[str, Any]:
    # The config holds the text JSON-escaped: the definition itself stays storable.
    return definition(
        [
            node(f"emit_{tag}", "test.emit", {"how": how, "text": json.dumps(text)}),
            node(f"after_{tag}", "test.sleep", {"seconds": 0}),
        ],
        [edge(f"emit_{tag}", f"after_{tag}", source_handle="text")],
    )


async def _run(engine: Engine, db: Database, graph: dict[str, Any]) -> Any:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    return await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)


async def _assert_failed_cleanly(db: Database, result: Any, tag: str) -> dict[str, Any]:
    assert result.status is RunStatus.FAILED, result
    rows = await node_rows(db, result.run_id)
    statuses = {node_id: row.status for node_id, row in rows.items()}
    assert statuses == {f"emit_{tag}": NodeStatus.FAILED, f"after_{tag}": NodeStatus.CANCELLED}
    assert CALLS[f"after_{tag}"] == 0
    # What was stored reads back as valid text.
    json.dumps(result.error, ensure_ascii=False).encode("utf-8")
    error: dict[str, Any] = rows[f"emit_{tag}"].error
    json.dumps(error, ensure_ascii=False).encode("utf-8")
    return error


@pytest.mark.parametrize(
    ("how", "text", "field", "says"),
    [
        ("output", LONE_SURROGATE, "outputs.text", "lone surrogate (\\ud800)"),
        ("output", f"a{NUL}b", "outputs.text", "NUL"),
        ("nested", LONE_SURROGATE, "outputs.text.items.1.name", "lone surrogate"),
        ("nested", NUL, "outputs.text.items.1.name", "NUL"),
        ("wait", NUL, "wait.payload.value", "NUL"),
    ],
)
async def test_a_node_whose_outputs_cannot_be_stored_fails_naming_the_field(
    engine: Engine, db: Database, how: str, text: str, field: str, says: str
) -> None:
    tag = secrets.token_hex(3)
    result = await _run(engine, db, _emit_graph(tag, how, text))

    error = await _assert_failed_cleanly(db, result, tag)
    assert error["type"] == "UnstorableOutput"
    assert error["message"].startswith(f"{field}: "), error
    assert says in error["message"]
    assert field in result.error["message"]
    assert CALLS[f"emit_{tag}"] == 1, "not retried: the same outputs would come again"


@pytest.mark.parametrize(
    ("text", "stored"), [(LONE_SURROGATE, "bad \\ud800 here"), (NUL, "bad \\x00 here")]
)
async def test_an_error_message_holding_unstorable_text_is_stored_escaped(
    engine: Engine, db: Database, text: str, stored: str
) -> None:
    tag = secrets.token_hex(3)
    result = await _run(engine, db, _emit_graph(tag, "raise", text))

    error = await _assert_failed_cleanly(db, result, tag)
    assert error["message"] == stored


@pytest.mark.parametrize("text", [LONE_SURROGATE, NUL])
async def test_run_inputs_that_cannot_be_stored_are_refused_naming_the_field(
    engine: Engine, db: Database, text: str
) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, _emit_graph("x", "output", "fine"))

    with pytest.raises(InputError) as refused:
        await engine.start_run(
            owner_id=owner, workflow_id=workflow_id, inputs={"person": {"name": text}}
        )

    assert refused.value.field == "inputs.person.name"
    assert "inputs.person.name" in str(refused.value)
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(WorkflowRun).where(WorkflowRun.user_id == owner)
        )
    assert count == 0, "nothing was written"


@asynccontextmanager
async def _database_refuses_big_values(db: Database) -> AsyncIterator[None]:
    """Make the tick's commit fail for good, as a database that will not take a value does.

    SQLite: its length limit on the connection that commits ticks, lowered below the node's
    output ("string or blob too big"). PostgreSQL: the output holds NUL, which it refuses
    ("unsupported Unicode escape sequence"), and the engine's own check is switched off.
    """
    if db.is_sqlite:
        raw = await db.run_write(sqlite_connection, inline=True)
        before = raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 50_000)
        try:
            yield
        finally:
            raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, before)
        return
    original = execution_module.outputs_problem
    execution_module.outputs_problem = lambda outputs, encoded: None  # type: ignore[assignment]
    try:
        yield
    finally:
        execution_module.outputs_problem = original


async def test_a_commit_the_database_refuses_fails_the_run_in_a_fresh_transaction(
    engine: Engine, db: Database
) -> None:
    tag = secrets.token_hex(3)
    graph = _emit_graph(tag, "big", "word " if db.is_sqlite else f"a{NUL}b")
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)

    async with _database_refuses_big_values(db):
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)

    # The driver ended normally (run_to_end returned): the run is FAILED, readable, not RUNNING.
    assert result.status is RunStatus.FAILED, result
    assert result.error["message"].startswith("the run's state could not be stored: "), result
    assert result.error["type"] == "StorageError"
    rows = await node_rows(db, result.run_id)
    assert rows[f"emit_{tag}"].status == NodeStatus.FAILED
    assert rows[f"emit_{tag}"].error == result.error
    assert rows[f"after_{tag}"].status == NodeStatus.CANCELLED
    assert all(row.lease_owner is None for row in rows.values())
    assert CALLS[f"emit_{tag}"] == 1

    # And the engine goes on: the next run of the same engine completes.
    after = await _run(engine, db, _emit_graph(secrets.token_hex(3), "output", "fine"))
    assert after.status is RunStatus.COMPLETED, after


@pytest.mark.parametrize("text", [LONE_SURROGATE, NUL])
async def test_an_answer_that_cannot_be_stored_is_refused_and_the_wait_goes_on(
    engine: Engine, db: Database, text: str
) -> None:
    tag = secrets.token_hex(3)
    waiting = await _run(engine, db, _emit_graph(tag, "wait", "fine"))
    assert waiting.status is RunStatus.WAITING

    with pytest.raises(InputError) as refused:
        await engine.answer(waiting.run_id, f"emit_{tag}", {"comment": [text]})

    assert refused.value.field == "answer.comment.0"
    rows = await node_rows(db, waiting.run_id)
    assert rows[f"emit_{tag}"].status == NodeStatus.WAITING
