"""Settings edited by their type, never typed as JSON: a condition's operand and a request body
as typed values (text, number, yes/no, list, object), a tool's arguments as an object of
typed values, an agent's tools as one form per tool of its kind, model fields picked from the
model table (another name still possible), and workflows picked by name. Each is saved,
read back through the API, and screenshotted."""

from __future__ import annotations

import re
from typing import Any

import pytest
from uiflows import call, create_workflow, open_editor, select_node, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow


def at(*parts: str) -> str:
    """A nested value's label: ``Body > days > item 1`` (the UI's separator is U+203A)."""
    return " \u203a ".join(parts)


def _node(node_id: str, node_type: str, y: int, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": node_type,
        "position": {"x": 0, "y": y},
        "data": {"label": node_id, "config": config},
    }


def _saved(page: Any, workflow_id: str) -> dict[str, dict[str, Any]]:
    page.get_by_role("button", name="Save", exact=True).click()
    # "Saved as version N." or "Saved version N as a draft" (not the toolbar's "unsaved").
    page.get_by_role("status").filter(has_text=re.compile(r"^Saved (as )?version")).wait_for()
    nodes = call(page, "GET", f"/api/v1/workflows/{workflow_id}")["definition"]["nodes"]
    return {n["id"]: n["data"]["config"] for n in nodes}


def test_any_values_are_edited_by_their_type(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(
        page,
        "Typed values",
        {
            "schema_version": 1,
            "nodes": [
                _node("check", "flow.condition", 0, {"operator": "eq"}),
                _node(
                    "post", "http.request", 240, {"url": "http://127.0.0.1:9/", "method": "POST"}
                ),
            ],
            "edges": [],
        },
    )
    open_editor(page, made["id"])
    select_node(page, "check")
    # No JSON box: a type to pick and the editor of that type.
    assert page.locator(".config-panel textarea").count() == 0
    page.get_by_label("Operand: type").select_option(label="Number")
    page.get_by_label("Operand", exact=True).fill("abc")
    page.get_by_role("alert").filter(has_text="not a number").wait_for()
    page.get_by_label("Operand", exact=True).fill("42.5")
    shot("operand as a number")

    select_node(page, "post")
    page.get_by_label("Body: type", exact=True).select_option(label="Object")
    page.get_by_role("button", name="+ Add entry").click()
    page.get_by_label("Body: name 1", exact=True).fill("city")
    page.get_by_label(at("Body", "city"), exact=True).fill("Oslo")
    page.get_by_role("button", name="+ Add entry").click()
    page.get_by_label("Body: name 2", exact=True).fill("days")
    page.get_by_label(at("Body", "days") + ": type", exact=True).select_option(label="List")
    page.get_by_role("button", name="+ Add item").click()
    page.get_by_label(at("Body", "days", "item 1"), exact=True).fill("mon")
    page.get_by_role("button", name="+ Add item").click()
    page.get_by_label(at("Body", "days", "item 2"), exact=True).fill("tue")
    page.get_by_role("button", name="+ Add entry").click()
    page.get_by_label("Body: name 3", exact=True).fill("urgent")
    page.get_by_label(at("Body", "urgent") + ": type", exact=True).select_option(label="Yes / no")
    page.get_by_label(at("Body", "urgent"), exact=True).select_option(label="yes")
    shot("body as an object of typed values")

    saved = _saved(page, made["id"])
    assert saved["check"]["operand"] == 42.5
    assert saved["post"]["body"] == {"city": "Oslo", "days": ["mon", "tue"], "urgent": True}

    # Reopened, the same value shows in the same editors; the JSON view is one click away.
    page.reload()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    select_node(page, "post")
    assert page.get_by_label(at("Body", "city"), exact=True).input_value() == "Oslo"
    assert page.get_by_label(at("Body", "days", "item 2"), exact=True).input_value() == "tue"
    page.get_by_role("button", name="Edit Body as JSON").click()
    assert '"urgent": true' in page.get_by_label("Body as JSON", exact=True).input_value()
    page.get_by_label("Body as JSON", exact=True).fill('{"broken": ')
    page.get_by_label("Label").click()
    page.get_by_role("alert").filter(has_text="Body is not valid JSON").wait_for()
    shot("body as JSON with a mistake")


def test_agent_tools_models_and_workflows_are_picked_in_forms(page: Any, shot: Shot) -> None:
    sign_up(page)
    empty = {"schema_version": 1, "nodes": [], "edges": []}
    helper = create_workflow(page, "Weather helper", empty)
    made = create_workflow(
        page,
        "Agent",
        {
            "schema_version": 1,
            "nodes": [
                _node("agent", "ai.agent", 0, {"model": "gpt-4o-mini", "user_message": "hi"}),
                _node("call", "workflow.call", 300, {"workflow_name": "x"}),
            ],
            "edges": [],
        },
    )
    models = call(page, "GET", "/api/v1/models")["items"]
    chat = sorted(m["model"] for m in models if m["provider"] == "openai" and m["kind"] == "chat")
    assert "gpt-4o-mini" in chat
    open_editor(page, made["id"])
    select_node(page, "agent")

    # The model: a pick list of the provider's chat models, with their prices.
    model = page.get_by_label("Model", exact=True)
    offered = model.locator("option").all_inner_texts()
    assert any("gpt-4o-mini" in o for o in offered)
    assert not any("embedding" in o for o in offered)
    assert "per M tokens" in page.locator('[data-field="model"] .help').inner_text()
    # Another name may still be written.
    model.select_option(label="Another model (write its name)…")
    page.get_by_label("Model: name at the provider").fill("my-finetune-1")
    assert "Not in this instance's model table" in page.locator('[data-field="model"]').inner_text()

    # Tools: one form per tool, of the kind chosen when it is added.
    page.get_by_label("Kind of the new tool").select_option(label="HTTP")
    page.get_by_role("button", name="+ Add tool").click()
    tool = page.get_by_role("group", name="Tool 1")
    tool.get_by_label("Name *", exact=True).fill("weather")
    tool.get_by_label("URL *", exact=True).fill("https://api.example.com/w?city={{ city }}")
    tool.get_by_role("button", name="+ Set parameters").click()
    tool.get_by_role("button", name="+ Add entry").click()
    tool.get_by_label("Parameters: name 1", exact=True).fill("type")
    tool.get_by_label(at("Parameters", "type"), exact=True).fill("object")
    page.get_by_label("Kind of the new tool").select_option(label="Workflow")
    page.get_by_role("button", name="+ Add tool").click()
    second = page.get_by_role("group", name="Tool 2")
    second.get_by_label("Name *", exact=True).fill("helper")
    second.get_by_label("Workflow *", exact=True).select_option(label="Weather helper")
    shot("agent tools as forms")

    select_node(page, "call")
    panel = page.get_by_label("Settings of call", exact=True)
    panel.get_by_label("Workflow", exact=True).select_option(label="Weather helper")
    panel.get_by_label("Workflow name", exact=True).fill("")
    shot("workflow picked by name")

    saved = _saved(page, made["id"])
    assert saved["agent"]["model"] == "my-finetune-1"
    tools = saved["agent"]["tools"]
    assert (tools[0]["kind"], tools[0]["name"]) == ("http", "weather")
    assert tools[0]["parameters"] == {"type": "object"}
    assert {k: tools[1][k] for k in ("kind", "name", "workflow_id")} == {
        "kind": "workflow",
        "name": "helper",
        "workflow_id": helper["id"],
    }
    assert saved["call"]["workflow_id"] == helper["id"]


def test_run_inputs_of_list_type_are_a_list_not_json(page: Any, shot: Shot) -> None:
    sign_up(page)
    fields = [
        {"name": "name", "type": "string", "default": "world"},
        {"name": "topics", "type": "list", "default": ["graphs", "nodes"]},
    ]
    made = create_workflow(
        page,
        "Inputs",
        {
            "schema_version": 1,
            "nodes": [
                _node("start", "trigger.manual", 0, {"fields": fields}),
                _node("joined", "text.join", 240, {"separator": "+"}),
            ],
            "edges": [
                {
                    "id": "e1",
                    "source": "start",
                    "sourceHandle": "topics",
                    "target": "joined",
                    "targetHandle": "items",
                }
            ],
        },
    )
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    dialog = page.get_by_role("dialog", name="Run with inputs")
    assert dialog.locator("textarea").count() == 0  # no JSON box: the list is a list
    assert dialog.get_by_label(at("topics", "item 2"), exact=True).input_value() == "nodes"
    dialog.get_by_role("button", name="+ Add item").click()
    dialog.get_by_label(at("topics", "item 3"), exact=True).fill("edges")
    shot("a list input as a list")
    dialog.get_by_role("button", name="Run").click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    runs = call(page, "GET", f"/api/v1/workflows/{made['id']}/runs")["items"]
    assert runs[0]["inputs"]["topics"] == ["graphs", "nodes", "edges"]
    detail = call(page, "GET", f"/api/v1/runs/{runs[0]['id']}")
    joined = next(n for n in detail["nodes"] if n["node_id"] == "joined")
    assert joined["outputs"]["text"] == "graphs+nodes+edges"
