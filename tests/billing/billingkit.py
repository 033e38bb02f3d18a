"""What the billing tests share: an owner, a workflow, a package and a subscription."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select

from flowloom.storage.database import Database
from flowloom.storage.enums import UserRole
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import NodeExecution, WorkflowRun


def text_graph() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "nodes": [{"id": "hello", "type": "text.value", "data": {"config": {"text": "hi"}}}],
        "edges": [],
    }


def llm_node(node_id: str, model: str = "gpt-test") -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "ai.llm",
        "data": {"config": {"provider": "openai", "model": model, "user_message": "Say hi."}},
    }


def two_llm_calls_graph() -> dict[str, Any]:
    """first -> second: the second call starts only after the first is recorded."""
    return {
        "schema_version": 1,
        "nodes": [
            llm_node("first"),
            {
                "id": "second",
                "type": "ai.llm",
                "data": {
                    "config": {
                        "provider": "openai",
                        "model": "gpt-test",
                        "user_message": "Go on from: {{ before }}",
                        "variables": ["before"],
                    }
                },
            },
        ],
        "edges": [
            {
                "id": "e1",
                "source": "first",
                "sourceHandle": "text",
                "target": "second",
                "targetHandle": "before",
            }
        ],
    }


async def make_user(db: Database, *, credits: int = 0, admin: bool = False) -> str:
    async with db.write() as session:
        user = await UserRepo(session).create(
            email=f"billing-{secrets.token_hex(4)}@example.com",
            role=UserRole.ADMIN if admin else UserRole.USER,
        )
        user.credits = credits
        return user.id


async def save_workflow(db: Database, owner_id: str, graph: dict[str, Any] | None = None) -> str:
    async with db.write() as session:
        workflow = await WorkflowRepo(session, owner_id=owner_id).create(
            name=f"flow-{secrets.token_hex(3)}", definition=graph or text_graph()
        )
        return workflow.id


async def make_package(db: Database, **limits: Any) -> str:
    async with db.write() as session:
        package = await PackageRepo(session).create(name=f"plan-{secrets.token_hex(4)}", **limits)
        return package.id


async def subscribe(db: Database, user_id: str, package_id: str) -> None:
    async with db.write() as session:
        await SubscriptionRepo(session).subscribe(user_id=user_id, package_id=package_id)


async def count_runs(db: Database, user_id: str) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(select(func.count()).where(WorkflowRun.user_id == user_id)) or 0
        )


async def count_node_executions(db: Database, user_id: str) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(NodeExecution)
                .join(WorkflowRun, WorkflowRun.id == NodeExecution.run_id)
                .where(WorkflowRun.user_id == user_id)
            )
            or 0
        )
