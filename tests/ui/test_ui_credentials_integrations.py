"""Credentials (created, listed, offered in a node's form, deleted; the value never shown
again) and integrations (a real stdio MCP server registered by the admin owner: its tools
listed with descriptions and schemas, a connection test, and its tools offered in mcp.tool)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from uiflows import OWNER_EMAIL, call, create_workflow, open_editor, sign_in, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow

MCP_SERVER = Path(__file__).resolve().parents[1] / "integrations" / "mcp_test_server.py"
SECRET = "sk-live-9f8e7d6c5b4a-NEVER-SHOWN"


def test_credentials_are_written_once_and_offered_by_name(page: Any, shot: Shot) -> None:
    sign_up(page)
    page.get_by_role("link", name="Credentials").click()
    page.get_by_role("heading", name="Credentials").wait_for()
    form = page.get_by_role("form", name="New credential")
    form.get_by_label("Name").fill("openai-work")
    form.get_by_label("Kind").select_option("api_key")
    form.get_by_label("Provider (optional)").fill("openai")
    form.get_by_label("Value", exact=True).fill(SECRET)
    shot("new credential")
    form.get_by_role("button", name="Save credential").click()
    page.get_by_role("status").filter(has_text="will not be shown again").wait_for()
    table = page.get_by_role("table", name="Your credentials")
    table.get_by_role("cell", name="openai-work", exact=True).wait_for()
    assert form.get_by_label("Value", exact=True).input_value() == ""
    assert SECRET not in page.content()
    shot("listed without its value")

    # A second one, then the list after a reload: names and kinds, never a value.
    form.get_by_label("Name").fill("webhook-token")
    form.get_by_label("Kind").select_option("bearer_token")
    form.get_by_label("Value", exact=True).fill("tok-123456")
    form.get_by_role("button", name="Save credential").click()
    table.get_by_role("cell", name="webhook-token", exact=True).wait_for()
    page.reload()
    table.get_by_role("cell", name="openai-work", exact=True).wait_for()
    assert table.get_by_role("cell", name="Bearer token").count() == 1
    assert SECRET not in page.content()
    assert "tok-123456" not in page.content()
    listed = call(page, "GET", "/api/v1/credentials")
    assert {c["name"] for c in listed["items"]} == {"openai-work", "webhook-token"}
    assert all("value" not in c for c in listed["items"])

    # Replacing the value: the form takes a new one, and shows none.
    page.get_by_role("button", name="Replace the value of openai-work").click()
    page.get_by_label("New value of openai-work").fill("sk-rotated-value")
    page.get_by_role("button", name="Replace", exact=True).click()
    page.get_by_role("status").filter(has_text='Replaced the value of "openai-work"').wait_for()
    assert "sk-rotated-value" not in page.content()

    # A node's credential setting offers the names.
    made = create_workflow(
        page,
        "Uses a key",
        {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "ask",
                    "type": "ai.llm",
                    "position": {"x": 0, "y": 0},
                    "data": {"config": {"model": "gpt-4o-mini", "prompt": "hi"}},
                }
            ],
            "edges": [],
        },
    )
    open_editor(page, made["id"])
    page.get_by_test_id("node-ask").click()
    credential = page.get_by_label("Credential", exact=True)
    list_id = credential.get_attribute("list")
    assert list_id
    options = page.locator(f'datalist[id="{list_id}"] option')
    options.first.wait_for(state="attached")
    assert sorted(options.evaluate_all("os => os.map(o => o.value)")) == [
        "openai-work",
        "webhook-token",
    ]
    credential.fill("openai-work")
    page.get_by_text("One of your 2 credentials").wait_for()
    shot("offered in the node form")
    credential.fill("nope")
    page.get_by_text("You have no credential named “nope”.").wait_for()
    page.keyboard.press("Control+z")

    page.goto("/credentials")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete openai-work").click()
    table.get_by_role("cell", name="openai-work", exact=True).wait_for(state="detached")
    page.reload()
    table.get_by_role("cell", name="webhook-token", exact=True).wait_for()
    assert table.get_by_role("cell", name="openai-work", exact=True).count() == 0
    shot("deleted")


def test_integrations_list_a_servers_tools(page: Any, shot: Shot, owner_password: str) -> None:
    sign_in(page, OWNER_EMAIL, owner_password)
    page.get_by_role("link", name="Integrations").click()
    page.get_by_role("button", name="Add an MCP server").click()
    form = page.get_by_role("form", name="New MCP server")
    form.get_by_label("Name", exact=True).fill("Test tools")
    form.get_by_role("radio", name="stdio").check()
    form.get_by_label("Command", exact=True).fill(sys.executable)
    form.get_by_label("Arguments (one per line)").fill(str(MCP_SERVER))
    form.get_by_label("Environment").fill("GREETING=hello-from-env")
    shot("new stdio server")
    form.get_by_role("button", name="Add server").click()
    card = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name="Test tools"))
    card.wait_for()
    # The env value is sealed: only its name is shown.
    card.get_by_text("env: GREETING").wait_for()
    assert "hello-from-env" not in page.content()

    card.get_by_role("button", name="List the tools of Test tools").click()
    tools = card.get_by_role("list", name="Tools")
    tools.get_by_text("Add two integers.").wait_for(timeout=30_000)
    names = tools.locator(".tool-name").all_inner_texts()
    assert {"add", "weather", "shout", "read_env", "fail"} <= set(names)
    add = tools.get_by_role("listitem").filter(has=page.locator(".tool-name", has_text="add"))
    add.get_by_text("Input schema").click()
    schema = add.locator("pre").inner_text()
    assert '"a"' in schema
    assert '"integer"' in schema
    shot("tools listed")

    card.get_by_role("button", name="Test Test tools").click()
    result = card.get_by_test_id("test-result")
    result.wait_for(timeout=30_000)
    assert result.inner_text().startswith("OK: ")
    assert "tool(s)" in result.inner_text()
    shot("connection ok")

    # In mcp.tool, the server is one of the integrations, then the tool one of its tools.
    integration_id = call(page, "GET", "/api/v1/integrations")["items"][0]["id"]
    made = create_workflow(
        page,
        "Adds",
        {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "sum",
                    "type": "mcp.tool",
                    "position": {"x": 0, "y": 0},
                    "data": {"config": {"server": {"transport": "stdio", "command": "x"}}},
                }
            ],
            "edges": [],
        },
    )
    open_editor(page, made["id"])
    page.get_by_test_id("node-sum").click()
    server = page.get_by_label("Server (integration)")
    server.select_option(integration_id)
    tool = page.locator("#cfg-sum-tool")
    list_id = tool.get_attribute("list")
    options = page.locator(f'datalist[id="{list_id}"] option')
    options.first.wait_for(state="attached", timeout=30_000)
    assert "add" in options.evaluate_all("os => os.map(o => o.value)")
    tool.fill("add")
    page.locator(".tool-info summary", has_text="Add two integers.").wait_for()
    shot("tools offered in mcp.tool")

    # Back on the page: a failing server says why.
    page.goto("/integrations")
    card.get_by_role("button", name="Edit Test tools").click()
    edit = page.get_by_role("form", name="Edit Test tools")
    edit.get_by_label("Command", exact=True).fill("/nonexistent/mcp-server")
    edit.get_by_role("button", name="Save changes").click()
    card.get_by_text("/nonexistent/mcp-server").first.wait_for()
    card.get_by_role("button", name="Test Test tools").click()
    result.wait_for()
    page.wait_for_function(
        "el => el.innerText.startsWith('Failed: ')", arg=result.element_handle(), timeout=30_000
    )
    shot("connection failed")
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Delete Test tools").click()
    card.wait_for(state="detached")
