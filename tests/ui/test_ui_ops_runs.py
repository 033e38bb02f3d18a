"""The Runs page in a real Chromium: every workflow's runs, filtered by workflow and status,
one run's page node by node, and from there the run on the canvas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from uiflows import call, create_workflow, sign_up
from uikit import ROOT, Shot

pytestmark = pytest.mark.slow

SLOW: dict[str, Any] = {
    "schema_version": 1,
    "nodes": [
        {"id": "value", "type": "text.value", "data": {"config": {"text": "x"}}},
        {"id": "wait", "type": "flow.delay", "data": {"config": {"seconds": 3600}}},
    ],
    "edges": [
        {"id": "e1", "source": "value", "sourceHandle": "text", "target": "wait",
         "targetHandle": "value"}
    ],
}  # fmt: skip


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "examples" / f"{name}.json").read_text())
    return loaded


def _run(page: Any, workflow_id: str) -> str:
    run = call(page, "POST", f"/api/v1/workflows/{workflow_id}/runs?wait=true", {})
    return str(run["id"])


def test_runs_filter_open_one_and_see_it_on_the_canvas(page: Any, shot: Shot) -> None:
    sign_up(page)
    sorter = create_workflow(page, "Number sorter", _example("sort_numbers"))
    waiter = create_workflow(page, "Slow waiter", SLOW)
    sorted_runs = [_run(page, sorter["id"]) for _ in range(2)]
    waiting = call(page, "POST", f"/api/v1/workflows/{waiter['id']}/runs", {}, expect=202)
    call(page, "POST", f"/api/v1/runs/{waiting['id']}/cancel")

    page.get_by_role("link", name="Runs", exact=True).click()
    page.get_by_role("heading", name="Runs").wait_for()
    rows = page.get_by_role("table", name="Runs, newest first").locator("tbody tr")
    rows.nth(2).wait_for()
    assert rows.count() == 3
    assert rows.first.get_attribute("data-run-id") == waiting["id"]
    shot("every run")

    page.get_by_label("Workflow", exact=True).select_option(label="Number sorter")
    page.locator(f'tr[data-run-id="{waiting["id"]}"]').wait_for(state="detached")
    assert [rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())] == (
        sorted_runs[::-1]
    )
    page.get_by_label("Status", exact=True).select_option(label="Cancelled")
    page.get_by_text("No run matches these filters.").wait_for()
    page.get_by_label("Workflow", exact=True).select_option(label="All workflows")
    page.locator(f'tr[data-run-id="{waiting["id"]}"]').wait_for()
    assert rows.count() == 1
    assert "status=CANCELLED" in page.url
    shot("cancelled runs")

    page.get_by_role("button", name="Clear filters").click()
    rows.nth(2).wait_for()
    page.get_by_role("link", name=f"Open run {sorted_runs[0]}").click()
    page.get_by_role("heading", name="Run of Number sorter").wait_for()
    nodes = page.get_by_role("table", name="Nodes of the run")
    nodes.locator('tr[data-node-id="sort"]').get_by_text("succeeded").wait_for()
    assert page.url.endswith(f"/runs/{sorted_runs[0]}")
    shot("one run")

    page.get_by_role("link", name="Open on the canvas").click()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    page.locator(f'[data-run-id="{sorted_runs[0]}"][aria-current="true"]').wait_for()
    shot("the run on the canvas")

    page.goto("/runs/run_01jd4y9q6xf3k8r2m5t7v9w0ab")
    page.get_by_role("alert").filter(has_text="not found").wait_for()
