"""Unsaved edits survive the browser's Back button and signing out: both ask first, "Stay"
keeps the edit on screen, leaving drops it as asked, and a saved graph goes back with one
press of Back as before."""

from __future__ import annotations

from typing import Any

import pytest
from uiflows import call, create_workflow, open_editor, select_node, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow

GRAPH = {
    "schema_version": 1,
    "nodes": [
        {
            "id": "greeting",
            "type": "text.value",
            "position": {"x": 0, "y": 0},
            "data": {"label": "greeting", "config": {"text": "hi"}},
        }
    ],
    "edges": [],
}


def _label(page: Any, workflow_id: str) -> str:
    nodes = call(page, "GET", f"/api/v1/workflows/{workflow_id}")["definition"]["nodes"]
    return str(nodes[0]["data"]["label"])


def test_back_button_and_sign_out_ask_before_dropping_edits(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(page, "Guarded", GRAPH)
    page.get_by_role("link", name="Runs").click()
    page.get_by_role("heading", name="Runs").wait_for()
    page.goto(f"/workflows/{made['id']}")
    page.get_by_role("toolbar", name="Workflow").wait_for()
    select_node(page, "greeting")
    page.get_by_label("Label", exact=True).fill("Renamed")
    dialog = page.get_by_role("alertdialog", name="Leave with unsaved changes?")

    # Back: asked; Stay keeps the edit and the page.
    page.go_back()
    dialog.wait_for()
    shot("back asks first")
    dialog.get_by_role("button", name="Stay").click()
    assert page.get_by_label("Label", exact=True).input_value() == "Renamed"
    assert f"/workflows/{made['id']}" in page.url

    # Back again, asked again: Save and leave saves, then goes back where the person was.
    page.go_back()
    dialog.get_by_role("button", name="Save and leave").click()
    page.get_by_role("heading", name="Runs").wait_for()
    assert _label(page, made["id"]) == "Renamed"

    # A saved graph goes back with one press, without a word.
    page.go_forward()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    page.go_back()
    page.get_by_role("heading", name="Runs").wait_for()
    assert dialog.count() == 0

    # Signing out with an unsaved edit asks too; Stay signs nobody out.
    open_editor(page, made["id"])
    select_node(page, "greeting")
    page.get_by_label("Label", exact=True).fill("Dropped")
    page.get_by_role("button", name="Sign out").click()
    dialog.wait_for()
    dialog.get_by_role("button", name="Stay").click()
    assert page.get_by_role("button", name="Sign out").is_visible()
    page.get_by_role("button", name="Sign out").click()
    dialog.get_by_role("button", name="Leave without saving").click()
    page.get_by_role("button", name="Sign in").wait_for()
    assert "/signin" in page.url
