"""Pinned outputs, as in a test bench: run once, pin a node's outputs, change the node, then
"Run what follows": the nodes after it get the pinned values (the node itself does not run),
the run is marked as using pinned data, and its page and the history say so."""

from __future__ import annotations

from typing import Any

import pytest
from uiflows import call, create_workflow, open_editor, select_node, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow

DEFINITION = {
    "schema_version": 1,
    "nodes": [
        {
            "id": "source",
            "type": "text.value",
            "position": {"x": 0, "y": 0},
            "data": {"label": "source", "config": {"text": "first draft"}},
        },
        {
            "id": "wrap",
            "type": "text.template",
            "position": {"x": 320, "y": 0},
            "data": {"label": "wrap", "config": {"template": "Got: {{ t }}", "variables": ["t"]}},
        },
    ],
    "edges": [
        {
            "id": "e1",
            "source": "source",
            "sourceHandle": "text",
            "target": "wrap",
            "targetHandle": "t",
        }
    ],
}


def test_pin_outputs_and_run_what_follows(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(page, "Pinned", DEFINITION)
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()

    # Inputs beside outputs: wrap received what source gave.
    select_node(page, "wrap")
    assert '"t": "first draft"' in page.get_by_test_id("inputs-received").inner_text()
    assert "Got: first draft" in page.get_by_test_id("outputs-given").inner_text()

    select_node(page, "source")
    page.get_by_role("button", name="Pin these outputs").click()
    page.get_by_test_id("pinned-outputs").wait_for()
    assert page.locator('[data-testid="node-source"] [data-testid="pinned-badge"]').count() == 1
    # The node changes, but its pin does not: what follows gets the pinned value.
    page.get_by_label("Text", exact=True).fill("second draft")
    shot("outputs pinned")

    page.get_by_role("button", name="Run what follows").click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    runs = call(page, "GET", f"/api/v1/workflows/{made['id']}/runs")["items"]
    latest = call(page, "GET", f"/api/v1/runs/{runs[0]['id']}")
    assert latest["used_pinned"] is True
    assert [n["node_id"] for n in latest["nodes"]] == ["wrap"]
    assert latest["nodes"][0]["outputs"]["text"] == "Got: first draft"
    saved = call(page, "GET", f"/api/v1/workflows/{made['id']}")["definition"]["nodes"]
    assert saved[0]["data"]["pinned"] == {"text": "first draft"}
    assert saved[0]["data"]["config"]["text"] == "second draft"

    page.get_by_role("tab", name="Runs").click()
    assert "with pinned data" in page.locator(".run-entry").first.inner_text()
    shot("ran what follows")

    # The run's own page says so too; each run has its own address.
    page.goto(f"/runs/{latest['id']}")
    page.get_by_text("What follows the pinned nodes").wait_for()

    # Unpinned, the node runs again as it is now.
    open_editor(page, made["id"])
    select_node(page, "source")
    page.get_by_role("button", name="Unpin").click()
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    select_node(page, "wrap")
    assert "Got: second draft" in page.get_by_test_id("outputs-given").inner_text()
