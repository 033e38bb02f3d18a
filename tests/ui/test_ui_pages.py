"""The rest of the UI in a real Chromium: readable errors at sign-in, the workflow list
(search, duplicate, delete), API keys shown once, the editor by keyboard (add from the
palette, copy, paste, undo, redo), restoring a version, and answering an approval."""

from __future__ import annotations

from typing import Any

import pytest
from uiflows import select_node, sign_up
from uikit import Shot

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.slow


def create_workflow(page: Any, name: str) -> None:
    page.goto("/")
    page.get_by_label("New workflow").fill(name)
    page.get_by_role("button", name="Create").click()
    page.get_by_role("toolbar", name="Workflow").wait_for()


def test_sign_in_errors_keys_and_the_workflow_list(page: Any, shot: Shot) -> None:
    email = sign_up(page)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="wrong email or password").wait_for()
    shot("wrong password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Workflows").wait_for()

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("ci")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-key")
    secret.wait_for()
    assert secret.inner_text().startswith("flk_")
    shot("key shown once")
    page.reload()
    page.get_by_role("cell", name="ci", exact=True).wait_for()
    assert page.get_by_test_id("new-key").count() == 0
    page.get_by_role("button", name="Revoke ci").click(no_wait_after=True)

    for name in ("Invoices", "Photos"):
        create_workflow(page, name)
    page.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Invoices").wait_for()
    page.get_by_label("Search").fill("phot")
    page.get_by_role("link", name="Invoices").wait_for(state="detached")
    page.get_by_role("link", name="Photos").wait_for()
    page.get_by_label("Search").fill("")
    page.get_by_role("button", name="Duplicate Photos").click()
    page.get_by_role("link", name="Photos (copy)").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete Invoices").click()
    page.get_by_role("link", name="Invoices").wait_for(state="detached")
    shot("workflow list")


def test_editor_by_keyboard_versions_and_an_approval(page: Any, shot: Shot) -> None:
    sign_up(page)
    create_workflow(page, "Ship it")

    # Keyboard only: Tab to a palette entry and press Enter to add it.
    page.locator('.palette-item[data-node-type="text.value"]').focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("node-value_1").wait_for()
    page.get_by_label("Text", exact=True).fill("release 1.0")
    page.locator('.palette-item[data-node-type="human.approval"]').focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("node-approval_1").wait_for()
    page.keyboard.press("Shift+L")  # the palette button keeps focus; auto-layout is global
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved as version 2").wait_for()

    # Copy and paste the selected node, undo the paste, redo it.
    select_node(page, "approval_1")
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    page.get_by_test_id("node-approval_2").wait_for()
    page.keyboard.press("Control+z")
    page.get_by_test_id("node-approval_2").wait_for(state="detached")
    page.keyboard.press("Control+Shift+z")
    page.get_by_test_id("node-approval_2").wait_for()
    shot("pasted")
    page.keyboard.press("Control+s")
    page.get_by_role("status").filter(has_text="Saved as version 3").wait_for()

    # Version 2 had one approval node: restoring it makes version 4 with that graph.
    page.get_by_role("tab", name="Versions").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Restore version 2").click()
    page.get_by_test_id("version").filter(has_text="v4").wait_for()
    page.get_by_test_id("node-approval_2").wait_for(state="detached")
    shot("restored")

    # Wire value -> approval and run: the approval waits for an answer on its node.
    start = page.locator('[data-testid="node-value_1"] .react-flow__handle.source').bounding_box()
    end = page.locator('[data-testid="node-approval_1"] .react-flow__handle.target').bounding_box()
    page.mouse.move(start["x"] + 5, start["y"] + 5)
    page.mouse.down()
    page.mouse.move(end["x"] + 5, end["y"] + 5, steps=10)
    page.mouse.up()
    assert page.locator(".react-flow__edge").count() == 1
    page.get_by_role("button", name="Run", exact=True).click()
    approve = page.locator('[data-testid="node-approval_1"]').get_by_role("button", name="Approve")
    approve.wait_for()
    assert page.locator('[data-testid="run-status"]').get_attribute("data-status") == "WAITING"
    shot("waiting for approval")
    approve.click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    page.locator('[data-testid="node-approval_1"] [data-status="SUCCEEDED"]').wait_for()
    shot("approved")


def test_run_asks_for_the_manual_trigger_inputs(page: Any, shot: Shot) -> None:
    sign_up(page)
    create_workflow(page, "Greeter")
    page.locator('.palette-item[data-node-type="trigger.manual"]').focus()
    page.keyboard.press("Enter")
    # The trigger's fields: one small form per field (type "string" by default).
    page.get_by_role("button", name="+ Add field").click()
    field = page.get_by_role("group", name="Field 1")
    field.get_by_label("Name *", exact=True).fill("who")
    field.get_by_label("Required", exact=True).check()
    trigger_out = page.locator('[data-testid="node-manual_1"] .react-flow__handle[data-port="who"]')
    trigger_out.wait_for()
    select_node(page, "manual_1")
    page.keyboard.press("Shift+L")
    page.locator('.palette-item[data-node-type="text.template"]').focus()
    page.keyboard.press("Enter")
    page.get_by_label("Variables", exact=True).fill("who")
    page.get_by_label("Template", exact=True).fill("Hi, {{ who }}")
    # Nodes added from the keyboard land in the middle: lay them out before wiring.
    page.locator(".react-flow__pane").click(position={"x": 5, "y": 5})
    page.keyboard.press("Shift+L")
    page.wait_for_timeout(400)
    start = trigger_out.bounding_box()
    end = page.locator(
        '[data-testid="node-template_1"] .react-flow__handle[data-port="who"]'
    ).bounding_box()
    page.mouse.move(start["x"] + 5, start["y"] + 5)
    page.mouse.down()
    page.mouse.move(end["x"] + 5, end["y"] + 5, steps=10)
    page.mouse.up()
    assert page.locator(".react-flow__edge").count() == 1

    page.get_by_role("button", name="Run", exact=True).click()
    dialog = page.get_by_role("dialog", name="Run with inputs")
    dialog.get_by_role("button", name="Run").click()
    dialog.get_by_role("alert").filter(has_text="Fill in who").wait_for()
    dialog.get_by_label("who").fill("Ada")
    shot("run inputs")
    dialog.get_by_role("button", name="Run").click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    outputs = page.locator('[data-testid="node-template_1"] [data-testid="node-outputs"]')
    outputs.filter(has_text="Hi, Ada").wait_for()
    shot("ran with inputs")

    # The usage page counts this month's runs against the plan.
    page.get_by_role("link", name="Usage").click()
    runs_used = page.get_by_test_id("runs-used")
    runs_used.wait_for()
    assert runs_used.inner_text().startswith("1 ")
    page.get_by_text("No model calls in this range.").wait_for()
    shot("usage")


def test_breakpoints_pause_a_debug_run_and_presets_reach_the_palette(page: Any, shot: Shot) -> None:
    sign_up(page)
    create_workflow(page, "Debugged")
    for text in ("first", "second"):
        page.locator('.palette-item[data-node-type="text.value"]').focus()
        page.keyboard.press("Enter")
        page.get_by_label("Text", exact=True).fill(text)
    page.locator(".react-flow__pane").click(position={"x": 5, "y": 5})
    page.keyboard.press("Shift+L")

    # A breakpoint on value_2: the run becomes a debug run that pauses before it.
    select_node(page, "value_2")
    page.get_by_role("button", name="Add breakpoint").click()
    page.locator('[data-testid="node-value_2"]').get_by_role("img", name="breakpoint").wait_for()
    page.get_by_role("button", name="Debug run").click()
    page.locator('[data-testid="node-value_2"] [data-status="WAITING"]').wait_for()
    page.locator('[data-testid="node-value_1"] [data-status="SUCCEEDED"]').wait_for()
    assert "paused before this node" in page.get_by_test_id("node-value_2").inner_text()
    shot("paused at a breakpoint")
    page.get_by_role("button", name="Continue").click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    page.locator('[data-testid="node-value_2"] [data-status="SUCCEEDED"]').wait_for()

    # Save value_1 as a preset; it shows in the palette and adds a configured node.
    page.get_by_role("button", name="Clear results").click()
    select_node(page, "value_1")
    page.once("dialog", lambda dialog: dialog.accept("Opening line"))
    page.get_by_role("button", name="Save as preset").click()
    preset = page.get_by_role("region", name="Presets").get_by_role("button", name="Opening line")
    preset.wait_for()
    preset.focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Opening line").wait_for()
    assert page.get_by_label("Text", exact=True).input_value() == "first"
    shot("preset added")
