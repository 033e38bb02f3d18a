"""Live output on the canvas, in a real Chromium against a real ``flowloom serve`` whose
providers are the local fake (tests/providers/fake_servers.py), streaming slowly in small
pieces: an answer grows on its node token by token, stays the size of a preview, and opens
whole in the side viewer, which also shows structured outputs as a tree and images full size."""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphkit import edge
from providers.fake_servers import API_KEY, FakeServer
from servekit import provider_env, serve
from uiflows import call, create_workflow, open_editor, sign_up
from uikit import Shot, require_browser

pytestmark = pytest.mark.slow

ANSWER = (
    "Rivers carry the mountain down to the sea, one grain at a time. "
    "Over a thousand years a valley opens where a stream once ran thin, "
    "and the stones at its mouth remember every storm that passed above. "
    "Nothing in the valley is in a hurry, and nothing in it stands still."
)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Iterator[str]:
    """A server of this module's own, whose providers are the fake ones."""
    require_browser()
    root: Path = tmp_path_factory.mktemp("ui-editor-live-server")
    # The agent's tool calls a local address (the fake server itself).
    env = {**provider_env(fake.base_url, fake.openai_base_url, API_KEY)}
    env["FLOWLOOM_ALLOW_PRIVATE_HTTP"] = "1"
    with serve(root / "data", root / "serve.log", env=env) as (_process, base):
        yield base


def one_llm(provider: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "nodes": [
            {
                "id": "ask",
                "type": "ai.llm",
                "position": {"x": 0, "y": 0},
                "data": {
                    "label": "Ask",
                    "config": {"provider": provider, "model": "model-test", "user_message": "Hi"},
                },
            }
        ],
        "edges": [],
    }


def live_chars(page: Any) -> int:
    chars = page.locator('[data-testid="node-ask"] [data-testid="live-text"]').get_attribute(
        "data-chars"
    )
    return int(chars or 0)


def watch_live_text(page: Any) -> list[int]:
    """How long the node's live text was at each look, until four lengths or 10 s."""
    seen = [live_chars(page)]
    deadline = time.monotonic() + 10
    while len(set(seen)) < 4 and time.monotonic() < deadline:
        page.wait_for_timeout(150)
        seen.append(live_chars(page))
    return seen


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_an_answer_grows_on_its_node_as_it_streams(
    page: Any, shot: Shot, fake: FakeServer, provider: str
) -> None:
    fake.reset()
    fake.reply_text = ANSWER
    fake.stream_piece_chars = 5
    fake.stream_delay_s = 0.05
    sign_up(page)
    made = create_workflow(page, "Streams", one_llm(provider))
    open_editor(page, made["id"])
    if provider == "anthropic":  # and its screenshots in dark mode
        page.get_by_role("button", name="Dark mode").click()
    node = page.locator('[data-testid="node-ask"]')
    height_before = node.bounding_box()["height"]

    page.get_by_role("button", name="Run", exact=True).click()
    live = node.locator('[data-testid="live-text"]')
    live.wait_for()
    # The text grows on the node while the node runs, a piece at a time.
    seen = watch_live_text(page)
    assert "run-running" in (node.get_attribute("class") or "")
    lengths = sorted(set(seen))
    assert len(lengths) >= 4, seen
    assert seen == sorted(seen), seen
    assert 0 < lengths[-1] < len(ANSWER), seen
    shown = live.inner_text().lstrip("…")
    assert shown, live.inner_text()
    assert shown in ANSWER, shown
    shot("the answer streaming on the node")

    # The whole answer so far, in the side viewer, still growing.
    node.get_by_role("button", name="Open the whole answer of ask").click()
    viewer = page.get_by_role("complementary", name="Output of ask")
    text = viewer.get_by_test_id("viewer-text")
    text.wait_for()
    first = text.inner_text()
    assert ANSWER.startswith(first), first
    page.wait_for_timeout(300)  # the canvas brings the node into sight beside the viewer
    shot("the viewer while streaming")

    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    page.wait_for_function(
        "expected => [...document.querySelectorAll('[data-testid=viewer-text]')]"
        ".some(e => e.textContent === expected)",
        arg=ANSWER,
    )
    assert len(text.first.inner_text()) > len(first)
    # Once done, the node shows its output preview, no taller than a preview may be.
    node.locator('[data-testid="node-outputs"]').wait_for()
    assert node.locator('[data-testid="live-text"]').count() == 0
    assert node.bounding_box()["height"] < height_before + 200
    shot("the finished answer in the viewer")

    page.keyboard.press("Escape")
    viewer.wait_for(state="detached")


def test_an_agent_shows_its_tool_steps_as_they_happen(
    page: Any, shot: Shot, fake: FakeServer
) -> None:
    fake.reset()
    # The model asks for the tool twice, then answers. The tool calls the fake server, which
    # is told to hang on those calls: each times out after a moment, a failed step.
    fake.script_replies(
        {"tool_calls": [{"name": "lookup", "arguments": {"q": "rivers"}}]},
        {"tool_calls": [{"name": "lookup", "arguments": {"q": "valleys"}}]},
        {"text": "I could not look it up."},
    )
    fake.fail_next("ok", "hang", "ok", "hang")
    tool = {
        "kind": "http",
        "name": "lookup",
        "description": "Look something up.",
        "method": "POST",
        "url": f"{fake.openai_base_url}/chat/completions",
        "timeout_s": 1.5,
    }
    agent = {
        "id": "agent",
        "type": "ai.agent",
        "position": {"x": 0, "y": 0},
        "data": {
            "label": "Researcher",
            "config": {
                "provider": "openai",
                "model": "model-test",
                "user_message": "Find out about rivers.",
                "tools": [tool],
            },
        },
    }
    sign_up(page)
    made = create_workflow(page, "Agent", {"schema_version": 1, "nodes": [agent], "edges": []})
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    steps = page.locator('[data-testid="node-agent"] [data-testid="live-steps"]')
    steps.get_by_text("lookup").wait_for()
    assert "failed" in steps.inner_text()
    assert "run-running" in (page.get_by_test_id("node-agent").get_attribute("class") or "")
    shot("a tool step on the agent")

    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    outputs = page.locator('[data-testid="node-agent"] [data-testid="node-outputs"]')
    outputs.get_by_text("I could not look it up.").wait_for()
    shot("the agent's answer")


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_an_agent_with_tools_streams_its_answer_on_the_node(
    page: Any, shot: Shot, fake: FakeServer, provider: str
) -> None:
    fake.reset()
    fake.stream_piece_chars = 5
    fake.stream_delay_s = 0.05
    fake.script_replies(
        {"text": "Looking.", "tool_calls": [{"name": "lookup", "arguments": {"q": "rivers"}}]},
        {"text": ANSWER},
    )
    tool = {
        "kind": "http",
        "name": "lookup",
        "method": "GET",
        "url": f"{fake.base_url}/lookup?q={{{{ q }}}}",
        "timeout_s": 5,
    }
    config = {"provider": provider, "model": "m", "user_message": "Rivers?", "tools": [tool]}
    agent = {
        "id": "ask",
        "type": "ai.agent",
        "position": {"x": 0, "y": 0},
        "data": {"label": "Agent", "config": config},
    }
    sign_up(page)
    made = create_workflow(
        page, "Agent stream", {"schema_version": 1, "nodes": [agent], "edges": []}
    )
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    node = page.locator('[data-testid="node-ask"]')
    node.locator('[data-testid="live-steps"]').get_by_text("lookup").wait_for()
    # After the tool step the answer grows on the node while the agent runs.
    seen = watch_live_text(page)
    assert "run-running" in (node.get_attribute("class") or "")
    assert len(set(seen)) >= 4, seen
    assert seen == sorted(seen), seen
    shot("an agent's answer streaming after its tool step")

    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    node.locator('[data-testid="node-outputs"]').wait_for()
    assert node.locator('[data-testid="live-text"]').count() == 0


def png_base64() -> str:
    from PIL import Image

    picture = Image.new("RGB", (640, 360), (30, 120, 200))
    for x in range(0, 640, 40):
        for y in range(0, 360, 40):
            if (x + y) // 40 % 2:
                picture.paste((250, 200, 40), (x, y, x + 40, y + 40))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_the_viewer_shows_a_list_as_a_tree_and_an_image_full_size(page: Any, shot: Shot) -> None:
    words = " ".join(f"word{i}" for i in range(40))
    definition = {
        "schema_version": 1,
        "nodes": [
            {
                "id": "words",
                "type": "text.value",
                "position": {"x": 0, "y": 0},
                "data": {"label": "Words", "config": {"text": words}},
            },
            {
                "id": "split",
                "type": "text.split",
                "position": {"x": 320, "y": 0},
                "data": {"label": "Split", "config": {"separator": ""}},
            },
            {
                "id": "picture",
                "type": "image.load",
                "position": {"x": 0, "y": 220},
                "data": {"label": "Picture", "config": {"base64": png_base64()}},
            },
        ],
        "edges": [edge("words", "text", "split", "text")],
    }
    sign_up(page)
    made = create_workflow(page, "Viewer", definition)
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()

    split = page.locator('[data-testid="node-split"]')
    split.get_by_role("button", name="Open items of split").click()
    viewer = page.get_by_role("complementary", name="Output of split")
    tree = viewer.get_by_test_id("viewer-json")
    tree.wait_for()
    assert "[40 items]" in tree.inner_text()
    assert "word39" in tree.inner_text()
    page.wait_for_timeout(400)  # the canvas brings the node into sight beside the viewer
    shot("a list as a tree")

    # What the node received, beside what it gave.
    page.locator('[data-testid="node-split"] .node-head').click()
    page.get_by_role("tab", name="Node").click()
    received = page.get_by_test_id("inputs-received")
    received.get_by_text("word39", exact=False).wait_for()
    assert '"text"' in received.inner_text()

    # The viewer brought the split node into sight: find the picture to select it.
    page.keyboard.press("Control+f")
    page.get_by_role("combobox", name="Find a node on the canvas").fill("picture")
    page.get_by_role("combobox", name="Find a node on the canvas").press("Enter")
    page.locator('[data-testid="node-picture"].selected').wait_for()
    page.get_by_role("tab", name="Node").click()
    page.get_by_role("button", name="Open in the viewer").click()
    viewer = page.get_by_role("complementary", name="Output of picture")
    image = viewer.get_by_test_id("viewer-image")
    image.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=viewer-image]')?.naturalWidth === 640"
    )
    shot("an image full size")
    viewer.get_by_role("button", name="Close the viewer").click()
    viewer.wait_for(state="detached")


def test_the_run_history_shows_inputs_filters_by_status_and_links_to_runs(
    page: Any, shot: Shot, fake: FakeServer
) -> None:
    fake.reset()
    definition = one_llm("openai")
    definition["nodes"].append(
        {
            "id": "start",
            "type": "trigger.manual",
            "position": {"x": -320, "y": 0},
            "data": {"label": "Start", "config": {"fields": [{"name": "topic"}]}},
        }
    )
    sign_up(page)
    made = create_workflow(page, "Remembers", definition)
    runs = f"/api/v1/workflows/{made['id']}/runs?wait=true"
    done = call(page, "POST", runs, {"scope": "FULL", "inputs": {"topic": "rivers"}})
    fake.fail_next("400")
    failed = call(page, "POST", runs, {"scope": "FULL", "inputs": {"topic": "storms"}})
    assert (done["status"], failed["status"]) == ("COMPLETED", "FAILED")

    open_editor(page, made["id"])
    page.get_by_role("tab", name="Runs").click()
    history = page.get_by_role("list", name="Run history, newest first")
    history.get_by_text('topic: "storms"').wait_for()
    history.get_by_text('topic: "rivers"').wait_for()
    assert history.get_by_role("listitem").count() == 2
    shot("both runs with their inputs")

    # Again, with the same inputs.
    history.get_by_role("listitem").filter(has_text='topic: "rivers"').get_by_role(
        "button", name="Run again"
    ).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    newest = history.get_by_role("listitem").first
    newest.get_by_text('topic: "rivers"').wait_for()
    newest.get_by_text("completed").wait_for()
    assert history.get_by_role("listitem").count() == 3
    shot("run again with the same inputs")

    page.get_by_label("Status").select_option("FAILED")
    history.get_by_role("listitem").nth(1).wait_for(state="detached")
    assert history.get_by_role("listitem").count() == 1
    history.get_by_text('topic: "storms"').wait_for()
    shot("only the failed run")

    page.get_by_label("Status").select_option("CANCELLED")
    page.get_by_text("No cancelled runs.").wait_for()
    page.get_by_label("Status").select_option("FAILED")

    history.get_by_role("link", name=re.compile("Page of the run")).click()
    page.wait_for_url(f"**/runs/{failed['id']}")
    page.get_by_role("heading", name="Run of Remembers").wait_for()
    shot("the run's page")
