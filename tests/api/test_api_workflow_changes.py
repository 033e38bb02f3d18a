"""Each change of a workflow is saved with its validation log in ONE write transaction, on SQLite
and PostgreSQL: a new version is never left without the log that says whether it is valid, and
what a change answers is read in the transaction that wrote it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from apikit import count_transactions, sign_up

from flowloom.exceptions import Problem
from flowloom.nodes.registry import default_registry
from flowloom.services.actor import Actor
from flowloom.services.workflows import WorkflowService
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.workflows import WorkflowRepo


def definition(text: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "nodes": [{"id": "say", "type": "text.value", "data": {"config": {"text": text}}}],
        "edges": [],
    }


BROKEN = {
    "schema_version": 1,
    "nodes": [{"id": "say", "type": "no.such.type", "data": {"config": {}}}],
    "edges": [],
}

Change = Callable[[WorkflowService, str, str], Awaitable[object]]
"""A change of the workflow (its id) by its owner (their id)."""


async def _create(service: WorkflowService, _: str, owner_id: str) -> object:
    return await service.create(name="Counted", definition=definition("new"))


async def _new_version(service: WorkflowService, workflow_id: str, owner_id: str) -> object:
    return await service.update(workflow_id=workflow_id, definition=BROKEN, note="broken")


async def _rename(service: WorkflowService, workflow_id: str, owner_id: str) -> object:
    return await service.update(workflow_id=workflow_id, name="Renamed")


async def _revalidate(service: WorkflowService, workflow_id: str, owner_id: str) -> object:
    return await service.revalidate(workflow_id=workflow_id)


async def _restore(service: WorkflowService, workflow_id: str, owner_id: str) -> object:
    return await service.restore(workflow_id=workflow_id, version=1)


async def _delete(service: WorkflowService, workflow_id: str, owner_id: str) -> object:
    await service.delete(workflow_id=workflow_id, actor=Actor(owner_id))
    return None


@pytest.mark.parametrize(
    "change",
    [_create, _new_version, _rename, _revalidate, _restore, _delete],
    ids=["create", "new version", "rename", "validate again", "restore", "delete"],
)
async def test_each_change_is_one_write_transaction_and_no_other(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    change: Change,
) -> None:
    account = await sign_up(client, "counter")
    service = WorkflowService(
        db,
        owner_id=account.user_id,
        registry=default_registry(plugins=False),
        max_nodes=settings.max_nodes_per_workflow,
    )
    workflow, _ = await service.create(name="Counted", definition=definition("first"))
    await service.update(workflow_id=workflow.id, definition=definition("second"))
    opened = count_transactions(db, monkeypatch)

    await change(service, workflow.id, account.user_id)

    assert opened == ["write"]


async def test_a_new_version_is_answered_and_logged_with_its_problems(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    account = await sign_up(client, "logger")
    service = WorkflowService(
        db,
        owner_id=account.user_id,
        registry=default_registry(plugins=False),
        max_nodes=settings.max_nodes_per_workflow,
    )
    workflow, _ = await service.create(name="Logged", definition=definition("fine"))

    changed, problems = await service.update(workflow_id=workflow.id, definition=BROKEN)
    renamed, kept = await service.update(workflow_id=workflow.id, name="Still broken")

    assert changed.version == renamed.version == 2
    assert problems
    assert all(isinstance(p, Problem) for p in problems)
    assert kept == problems, "a change without a new version answers the logged problems"
    async with db.read() as session:
        logs = await WorkflowRepo(session, owner_id=account.user_id).list_validation_logs(
            workflow_id=workflow.id, version=2
        )
    assert [log.valid for log in logs.items] == [False]
    assert [row["node_id"] for row in logs.items[0].problems] == [p.node_id for p in problems]
