"""What a new user meets in the editor after the defects of issue 13 were fixed, in a real
Chromium against a real ``flowloom serve``: a node chosen on the canvas shows itself in the side
panel whichever tab was open, and a setting of only spaces says so. Screenshots of every step
go to the artifacts."""

from __future__ import annotations

from typing import Any

import pytest
from uiflows import create_workflow, open_editor, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow


def _node(node_id: str, node_type: str, x: int, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": node_type,
        "position": {"x": x, "y": 0},
        "data": {"label": node_id.title(), "config": config},
    }


def test_a_node_chosen_after_a_run_shows_in_the_side_panel(page: Any, shot: Shot) -> None:
    sign_up(page)
    definition = {
        "schema_version": 1,
        "nodes": [
            _node("words", "text.value", 0, {"text": "b a"}),
            _node("split", "text.split", 320, {"separator": " "}),
        ],
        "edges": [
            {
                "id": "e1",
                "source": "words",
                "sourceHandle": "text",
                "target": "split",
                "targetHandle": "text",
            }
        ],
    }
    made = create_workflow(page, "Chosen", definition)
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    runs_tab = page.get_by_role("tab", name="Runs")
    assert runs_tab.get_attribute("aria-selected") == "true"

    # One click on a node: its settings, and what it received and gave in that run.
    page.locator('[data-testid="node-split"] .node-head').click()
    panel = page.get_by_label("Settings of split", exact=True)
    panel.wait_for()
    assert page.get_by_role("tab", name="Node").get_attribute("aria-selected") == "true"
    shot("the node chosen after the run")

    # Its separator is one space: the box looks empty, so the words under it say so (an empty
    # box would split at any whitespace); a visible separator needs no such words.
    separator = panel.get_by_label("Separator", exact=True)
    holds = panel.get_by_test_id("field-holds")
    assert separator.input_value() == " "
    assert holds.inner_text() == "Holds 1 space."
    separator.fill(",")
    holds.wait_for(state="detached")
    separator.fill("  ")
    assert holds.inner_text() == "Holds 2 spaces."

    # Another tab chosen by hand stays until another node is chosen.
    page.get_by_role("tab", name="Versions").click()
    page.get_by_role("heading", name="Versions").wait_for()
    page.locator('[data-testid="node-words"] .node-head').click()
    page.get_by_label("Settings of words", exact=True).wait_for()
