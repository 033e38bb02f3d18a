"""The wire is typed: statuses, scopes and kinds are enums in the OpenAPI document, and the run
event stream is documented as a union discriminated by event type that the real stream keeps to."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from apikit import approval_definition, create_workflow, sign_up

from flowloom.api.events_schema import RUN_EVENT_MODELS, RunStreamMessage, event_type
from flowloom.engine.events import EventBus, progress_publisher
from flowloom.storage.enums import NodeStatus, RunScope, RunStatus, TriggerKind
from flowloom.storage.repos.credentials import CredentialKind
from flowloom.webui.openapi import openapi_document

ENGINE = Path(__file__).resolve().parents[2] / "flowloom" / "engine"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(openapi_document())
    return loaded


def _enum(document: dict[str, Any], schema: str, field: str) -> list[str]:
    schemas = document["components"]["schemas"]
    prop = schemas[schema]["properties"][field]
    if "items" in prop:
        prop = prop["items"]
    name = prop["$ref"].rsplit("/", 1)[-1]
    values: list[str] = schemas[name]["enum"]
    return values


@pytest.mark.parametrize(
    ("schema", "field", "values"),
    [
        ("RunPublic", "status", list(RunStatus)),
        ("RunPublic", "scope", list(RunScope)),
        ("RunPublic", "trigger_kind", list(TriggerKind)),
        ("RunDetail", "status", list(RunStatus)),
        ("NodeExecutionPublic", "status", list(NodeStatus)),
        ("UserPublic", "role", ["user", "admin"]),
        ("ApiKeyPublic", "scopes", ["workflows:read", "workflows:write", "runs:execute", "admin"]),
        ("IntegrationPublic", "kind", ["mcp_stdio", "mcp_http", "oauth2", "http"]),
        ("MessagePublic", "role", ["system", "user", "assistant", "tool"]),
        ("CredentialPublic", "kind", list(CredentialKind)),
        ("SubscriptionView", "status", ["active", "cancelled", "expired"]),
    ],
)
def test_closed_sets_are_enums_in_the_document(
    document: dict[str, Any], schema: str, field: str, values: list[str]
) -> None:
    assert _enum(document, schema, field) == [str(v) for v in values]


def test_the_event_stream_is_a_union_discriminated_by_event_type(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/api/v1/runs/{run_id}/events"]["get"]
    content = operation["responses"]["200"]["content"]
    assert content["text/event-stream"]["schema"]["$ref"].endswith("/RunStreamMessage")
    schema = document["components"]["schemas"]["RunStreamMessage"]
    mapping = schema["discriminator"]["mapping"]
    schemas = document["components"]["schemas"]

    assert schema["discriminator"]["propertyName"] == "event"
    assert len(schema["oneOf"]) == len(mapping)
    assert mapping.pop("snapshot").endswith("/SnapshotMessage")
    assert schemas["SnapshotMessage"]["properties"]["data"]["$ref"].endswith("/RunDetail")
    for kind, ref in mapping.items():
        data = schemas[ref.rsplit("/", 1)[-1]]["properties"]["data"]["$ref"].rsplit("/", 1)[-1]
        assert schemas[data]["properties"]["type"]["const"] == kind
    assert "application/json" not in content


def _published_types() -> set[str]:
    """Every event type the engine publishes: string literals it emits, and ``run.<status>`` /
    ``node.<status>`` built from a status."""
    found: set[str] = set()
    for path in ENGINE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            name = node.func.id if isinstance(node.func, ast.Name) else name
            first = node.args[0]
            if (
                name in {"emit", "Event"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.add(first.value)
    # finish() emits node.<status> for the statuses a node ends in; the run's end and waits
    # are run.<status>.
    ends = {NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.CACHED, NodeStatus.SKIPPED}
    found |= {f"node.{status.lower()}" for status in ends | {NodeStatus.CANCELLED}}
    found |= {f"run.{status.lower()}" for status in RunStatus if status is not RunStatus.PENDING}
    found -= {"run.running"}  # a run that goes back to RUNNING publishes run.resumed
    return found | {"node.delta", "node.step"}


def test_every_published_event_type_is_documented() -> None:
    documented = {event_type(model) for model in RUN_EVENT_MODELS}
    assert _published_types() - {"events.dropped"} <= documented


def _parse_sse(text: str) -> list[dict[str, Any]]:
    messages = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            data = json.loads(fields["data"])
            messages.append({"id": int(fields["id"]), "event": fields["event"], "data": data})
    return messages


async def test_a_real_stream_keeps_to_the_documented_union(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, approval_definition())
    waiting = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    run_id = waiting.json()["id"]

    async def follow() -> str:
        body = ""
        url = f"/api/v1/runs/{run_id}/events"
        async with client.stream("GET", url, headers=account.bearer) as stream:
            async for chunk in stream.aiter_text():
                body += chunk
        return body

    following = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    answered = await client.post(
        f"/api/v1/runs/{run_id}/nodes/ask/answer", json={"approved": True}, headers=account.bearer
    )
    assert answered.status_code == 200, answered.text
    messages = _parse_sse(await asyncio.wait_for(following, 10))

    parsed = [RunStreamMessage.model_validate(message).root for message in messages]
    kinds = [message.event for message in parsed]
    assert kinds[0] == "snapshot"
    assert kinds[-1] == "run.completed"
    assert {"run.resumed", "node.started", "node.succeeded"} <= set(kinds)
    for message in parsed[1:]:
        assert message.data.type == message.event
        assert message.data.run_id == run_id


async def test_progress_events_keep_to_the_documented_union() -> None:
    bus = EventBus()
    with bus.subscribe("run_1") as events:
        progress = progress_publisher(bus, "run_1", "llm", attempt=2)
        progress("delta", {"text": "Hel", "offset": 0})
        progress("step", {"step": 1, "tool": "search", "is_error": False})
        read = [await anext(events), await anext(events)]

    parsed = [
        RunStreamMessage.model_validate({"id": 1, "event": e.type, "data": e.to_json()}).root
        for e in read
    ]

    assert [(m.event, m.data.data.attempt) for m in parsed] == [
        ("node.delta", 2),
        ("node.step", 2),
    ]
