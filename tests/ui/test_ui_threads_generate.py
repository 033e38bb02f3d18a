"""Agents, threads and "describe a workflow" in the browser, against a local server speaking
OpenAI's protocol (tests/providers/fake_servers.py): a reply streamed into the chat, an
agent's tool call shown as a step, the history paged, and a generation repaired once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from drafts import BROKEN, GOOD
from providers.fake_servers import API_KEY, FakeServer
from servekit import serve
from uiflows import call, create_workflow, sign_up
from uikit import Shot, require_browser

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Iterator[str]:
    """A server of this module's own, whose OpenAI is the fake one."""
    require_browser()
    root: Path = tmp_path_factory.mktemp("ui-ai-server")
    env = {"FLOWLOOM_OPENAI_API_KEY": API_KEY, "FLOWLOOM_OPENAI_BASE_URL": fake.openai_base_url}
    with serve(root / "data", root / "serve.log", env=env) as (_process, base):
        yield base


def test_a_thread_streams_its_reply_and_pages_its_history(
    page: Any, shot: Shot, fake: FakeServer
) -> None:
    fake.reset()
    fake.reply_text = "Hello there, I am the fake model streaming in pieces."
    sign_up(page)
    page.get_by_role("link", name="Threads").click()
    new = page.get_by_role("form", name="New thread")
    new.get_by_label("Name", exact=True).fill("Small talk")
    new.get_by_label("Model", exact=True).fill("gpt-test")
    new.get_by_role("button", name="Start the thread").click()
    page.get_by_role("heading", name="Small talk").wait_for()
    page.get_by_text("No messages yet").wait_for()

    page.get_by_label("Message", exact=True).fill("Hi!")
    with page.expect_response(lambda r: "/messages?stream=true" in r.url) as answered:
        page.get_by_label("Message", exact=True).press("Enter")
    assert answered.value.headers["content-type"].startswith("text/event-stream")
    reply = page.get_by_test_id("message-assistant")
    reply.wait_for()
    assert reply.inner_text().endswith(fake.reply_text)
    assert page.get_by_test_id("message-user").inner_text().endswith("Hi!")
    streamed = [r for r in fake.requests if r.body.get("stream")]
    assert len(streamed) == 1
    shot("streamed reply")

    # 11 more turns through the API: 24 messages, more than one page of 20.
    thread_id = page.url.rsplit("/", 1)[1]
    for i in range(11):
        call(
            page,
            "POST",
            f"/api/v1/threads/{thread_id}/messages",
            {"content": f"message {i}"},
            expect=201,
        )
    page.reload()
    log = page.get_by_role("log", name="Messages")
    log.get_by_text("message 10", exact=True).wait_for()
    assert log.get_by_role("listitem").count() == 20
    assert log.get_by_text("Hi!", exact=True).count() == 0
    log.get_by_role("button", name="Load older messages").click()
    log.get_by_text("Hi!", exact=True).wait_for()
    assert log.get_by_role("listitem").count() == 24
    assert log.get_by_role("button", name="Load older messages").count() == 0
    shot("older messages")

    # A provider failure: the problem is shown and the text given back.
    fake.fail_next("400")
    page.get_by_label("Message", exact=True).fill("This one fails")
    page.get_by_role("button", name="Send").click()
    alert = page.get_by_role("alert").filter(has_text="Not sent")
    alert.wait_for()
    assert page.get_by_label("Message", exact=True).input_value() == "This one fails"
    shot("failed reply")


def test_an_agent_calls_a_tool_in_a_thread(page: Any, shot: Shot, fake: FakeServer) -> None:
    fake.reset()
    sign_up(page)
    tool_workflow = create_workflow(
        page,
        "Shout tool",
        {"schema_version": 1, "nodes": GOOD["nodes"], "edges": GOOD["edges"]},
    )
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("button", name="New agent").click()
    form = page.get_by_role("form", name="New agent")
    form.get_by_label("Name", exact=True).fill("Shouter")
    form.get_by_label("Instructions").fill("Use the shout tool, then answer.")
    form.get_by_label("Model", exact=True).select_option(label="Another model (write its name)…")
    form.get_by_label("Model: name at the provider").fill("gpt-test")
    # The tools: a form per tool, of the kind picked (no JSON to write).
    form.get_by_label("Kind of the new tool").select_option(label="Workflow")
    form.get_by_role("button", name="+ Add tool").click()
    tool = form.get_by_role("group", name="Tool 1")
    tool.get_by_label("Name *", exact=True).fill("shout")
    tool.get_by_label("Description", exact=True).fill("Shouts hi.")
    tool.get_by_label("Workflow *", exact=True).select_option(label="Shout tool")
    shot("new agent")
    form.get_by_role("button", name="Create the agent").click()
    page.get_by_role("heading", name="Shouter").wait_for()

    # Edit: a tool's name that cannot be one is said at once, then a real change.
    page.get_by_role("button", name="Edit Shouter").click()
    edit = page.get_by_role("form", name="Edit Shouter")
    edit_tool = edit.get_by_role("group", name="Tool 1")
    assert edit_tool.get_by_label("Name *", exact=True).input_value() == "shout"
    edit_tool.get_by_label("Name *", exact=True).fill("no spaces allowed")
    edit_tool.get_by_role("alert").filter(has_text="Name must match").wait_for()
    edit_tool.get_by_label("Name *", exact=True).fill("shout")
    edit.get_by_label("Context (optional)").fill("The user likes loud answers.")
    edit.get_by_role("button", name="Save the agent").click()
    edit.wait_for(state="detached")
    agent = call(page, "GET", "/api/v1/agents")["items"][0]
    assert agent["context"] == "The user likes loud answers."
    assert agent["tools"][0]["workflow_id"] == tool_workflow["id"]

    fake.script_replies(
        {"tool_calls": [{"name": "shout", "arguments": {}}]},
        {"text": "The tool said HI."},
    )
    page.get_by_role("button", name="Chat with Shouter").click()
    page.get_by_role("heading", name="Chat with Shouter").wait_for()
    page.get_by_label("Message", exact=True).fill("Say hi loudly")
    page.get_by_role("button", name="Send").click()
    reply = page.get_by_test_id("message-assistant")
    reply.wait_for(timeout=30_000)
    assert reply.inner_text().endswith("The tool said HI.")
    step = reply.get_by_test_id("tool-step")
    assert step.count() == 1
    step.get_by_text("called shout").click()
    step.get_by_text('"HI"').wait_for()
    shot("tool call as a step")

    page.goto("/agents")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete Shouter").click()
    page.get_by_role("heading", name="Shouter").wait_for(state="detached")
    assert call(page, "GET", "/api/v1/agents")["items"] == []


def test_describe_a_workflow_repaired_once(page: Any, shot: Shot, fake: FakeServer) -> None:
    fake.reset()
    sign_up(page)
    page.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Describe a workflow…").click()
    page.get_by_role("heading", name="Describe a workflow").wait_for()
    page.get_by_text("No generations yet.").wait_for()

    # Still broken after no repair: each attempt's problems, nothing saved.
    fake.script_replies({"text": json.dumps(BROKEN)})
    page.get_by_label("What should it do?").fill("Say hi loudly")
    page.get_by_label("Model", exact=True).fill("gpt-test")
    page.get_by_label("Repairs at most").fill("0")
    page.get_by_role("button", name="Generate").click()
    failed = page.get_by_role("alert", name="Generation failed")
    failed.wait_for()
    assert "still invalid after 1 attempt" in failed.inner_text()
    attempt = failed.get_by_test_id("attempt")
    assert attempt.count() == 1
    assert attempt.get_attribute("data-outcome") == "invalid"
    assert "text.tempalte" in attempt.inner_text()
    shot("failed with its problems")

    fake.script_replies({"text": json.dumps(BROKEN)}, {"text": json.dumps(GOOD)})
    page.get_by_label("Repairs at most").fill("2")
    page.get_by_role("button", name="Generate").click()
    page.get_by_role("toolbar", name="Workflow").wait_for(timeout=30_000)
    banner = page.get_by_test_id("generated-banner")
    banner.get_by_text("in 2 attempts (1 repair)").wait_for()
    banner.get_by_text("Generated from your description").click()
    outcomes = banner.get_by_test_id("attempt").evaluate_all(
        "items => items.map(i => i.dataset.outcome)"
    )
    assert outcomes == ["invalid", "valid"]
    page.get_by_test_id("node-loud").wait_for()
    assert page.locator('input[value="Shout"]').count() == 1
    shot("opened in the editor")

    page.goto("/generate")
    history = page.get_by_role("table", name="Generation history, newest first")
    history.wait_for()
    rows = history.locator("tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).get_by_role("link", name="open").count() == 1
    assert rows.nth(2).get_by_text("invalid").count() == 1
    shot("history")
