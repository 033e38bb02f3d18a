"""The editor in a real Chromium against a real ``flowloom serve``: sign up, build a workflow by
dragging from the palette and wiring handles, see a refused wire and a validation problem on
its node, save, run and watch the node states change live, then reload and read the run back
from the history. Screenshots of every step go to the artifacts directory."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from uiflows import select_node
from uikit import Shot

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.slow


def sign_up(page: Any, shot: Shot) -> str:
    email = f"ui-{secrets.token_hex(4)}@example.com"
    page.goto("/")
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    shot("sign up")
    page.get_by_role("button", name="Create an account").click()
    page.get_by_role("heading", name="Workflows").wait_for()
    return email


def drop(page: Any, node_type: str, x: int, y: int) -> None:
    """Drag a node type from the palette onto the canvas at (x, y) of the canvas."""
    page.locator(f'.palette-item[data-node-type="{node_type}"]').drag_to(
        page.get_by_test_id("canvas"), target_position={"x": x, "y": y}
    )


def handle(page: Any, node_id: str, port: str, kind: str) -> Any:
    return page.locator(
        f'[data-testid="node-{node_id}"] .react-flow__handle.{kind}[data-port="{port}"]'
    )


def wire(page: Any, source: str, out_port: str, target: str, in_port: str) -> None:
    """Press on an output handle, move to an input handle, release: React Flow's gesture."""
    start = handle(page, source, out_port, "source").bounding_box()
    end = handle(page, target, in_port, "target").bounding_box()
    assert start is not None
    assert end is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def test_build_run_and_read_back(page: Any, shot: Shot) -> None:
    sign_up(page, shot)
    page.get_by_label("New workflow").fill("Greeting")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    shot("empty editor")

    # The palette is grouped by category and searchable.
    page.get_by_placeholder("Search nodes…").fill("text.")
    assert page.locator(".palette-item").count() == 4
    page.get_by_placeholder("Search nodes…").fill("")

    drop(page, "text.value", 10, 120)
    page.get_by_label("Text", exact=True).fill("flowloom")
    drop(page, "text.template", 260, 120)
    page.get_by_label("Variables", exact=True).fill("name")
    page.get_by_label("Template", exact=True).fill("Hello, {{ name }}!")
    drop(page, "flow.delay", 510, 120)
    page.get_by_label("Seconds", exact=True).fill("1.5")
    shot("three nodes dropped")

    # The template's variable became an input port that nothing feeds: the server's validator
    # says so, on that node.
    problems = page.locator('[data-testid="node-template_1"] [data-testid="node-problems"]')
    problems.wait_for()
    assert re.search(r"name", problems.inner_text())
    shot("validation problem on its node")

    # A string output cannot feed an image input: the wire is refused, visibly.
    drop(page, "image.resize", 280, 400)
    wire(page, "value_1", "text", "resize_1", "image")
    page.get_by_role("alert").filter(has_text="Connection refused").wait_for()
    assert (
        "takes image"
        in page.get_by_role("alert").filter(has_text="Connection refused").inner_text()
    )
    assert page.locator(".react-flow__edge").count() == 0
    shot("refused connection")
    select_node(page, "resize_1")
    page.locator(".react-flow__pane").focus()
    page.keyboard.press("Delete")
    assert page.get_by_test_id("node-resize_1").count() == 0

    wire(page, "value_1", "text", "template_1", "name")
    wire(page, "template_1", "text", "delay_1", "value")
    assert page.locator(".react-flow__edge").count() == 2
    problems.wait_for(state="detached")
    shot("wired")

    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved as version").wait_for()
    shot("saved")

    page.get_by_role("button", name="Run", exact=True).click()
    delay_status = page.locator('[data-testid="node-delay_1"] [data-testid="node-status"]')
    page.locator('[data-testid="node-delay_1"] [data-status="RUNNING"]').wait_for()
    assert page.locator('[data-testid="node-delay_1"] .spinner').count() == 1
    page.locator('[data-testid="node-template_1"] [data-status="SUCCEEDED"]').wait_for()
    shot("running")
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    page.locator('[data-testid="node-delay_1"] [data-status="SUCCEEDED"]').wait_for()
    assert re.search(r"\d+ ms", delay_status.inner_text(), re.IGNORECASE)
    outputs = page.locator('[data-testid="node-template_1"] [data-testid="node-outputs"]')
    outputs.filter(has_text="Hello, flowloom!").wait_for()
    shot("completed")

    page.reload()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    assert page.get_by_test_id("node-outputs").count() == 0
    page.get_by_role("tab", name="Runs").click()
    history = page.get_by_role("list", name="Run history, newest first")
    first = history.get_by_role("button").first
    first.filter(has_text="completed").wait_for()
    shot("history after reload")
    first.click()
    page.get_by_test_id("past-run-banner").wait_for()
    outputs.filter(has_text="Hello, flowloom!").wait_for()
    page.locator('[data-testid="node-delay_1"] [data-status="SUCCEEDED"]').wait_for()
    shot("past run on the canvas")
