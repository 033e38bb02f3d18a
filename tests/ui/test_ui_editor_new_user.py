"""What a new user meets in the editor after the defects of issue 13 were fixed, in a real
Chromium against a real ``flowloom serve``: a node chosen on the canvas shows itself in the side
panel whichever tab was open, and a setting of only spaces says so. Screenshots of every step
go to the artifacts."""

from __future__ import annotations

from typing import Any

import pytest
from graphkit import edge
from uiflows import call, create_workflow, open_editor, sign_up
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
        "edges": [edge("words", "text", "split", "text")],
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


def test_a_template_opens_with_room_for_its_wires_and_a_focused_wire_shows(
    page: Any, shot: Shot
) -> None:
    sign_up(page)
    page.get_by_role("button", name="Use the Fan out merge template").click()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    page.get_by_test_id("node-join").wait_for()
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    page.wait_for_timeout(300)
    shot("ran with every output shown")

    # Every wire has room to be seen (40 px on screen at least; it was 11), and nodes showing their
    # outputs still cover none of their neighbours.
    gaps = page.evaluate(
        """() => {
            const box = (id) => document.querySelector(`[data-testid="node-${id}"]`)
                .getBoundingClientRect();
            return [...document.querySelectorAll('.react-flow__edge')].map((el) => {
                const [source, target] = el.getAttribute('aria-label')
                    .replace('Edge from ', '').split(' to ');
                return box(target).left - box(source).right;
            });
        }"""
    )
    assert len(gaps) == 9
    assert min(gaps) >= 40, gaps
    tops = page.evaluate(
        """() => [0, 1, 2, 3].map((i) => {
            const r = document.querySelector(`[data-testid="node-wait${i}"]`)
                .getBoundingClientRect();
            return [r.top, r.bottom];
        })"""
    )
    assert all(tops[i][1] < tops[i + 1][0] for i in range(3)), tops

    # A wire reached by keyboard is drawn in the focus colour, thicker than the others.
    page.locator(".react-flow__edge").first.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    focused, other = page.evaluate(
        """() => [document.activeElement, document.querySelectorAll('.react-flow__edge')[5]]
            .map((el) => {
                const path = getComputedStyle(el.querySelector('.react-flow__edge-path'));
                return [path.stroke, path.strokeWidth];
            })"""
    )
    assert focused == ["rgb(245, 158, 11)", "4px"], focused
    assert other[1] == "2px", other
    shot("a wire focused")


def test_a_cycle_error_leaves_when_a_valid_version_is_restored(page: Any, shot: Shot) -> None:
    sign_up(page)
    good = {
        "schema_version": 1,
        "nodes": [
            _node("a", "flow.delay", 0, {"seconds": 0}),
            _node("b", "flow.delay", 320, {"seconds": 0}),
        ],
        "edges": [edge("a", "value", "b", "value")],
    }
    made = create_workflow(page, "Loop", good)
    looped = {**good, "edges": [*good["edges"], edge("b", "value", "a", "value")]}
    call(page, "PATCH", f"/api/v1/workflows/{made['id']}", {"definition": looped})
    open_editor(page, made["id"])

    page.get_by_role("button", name="Run", exact=True).click()
    refused = page.get_by_role("alert").filter(has_text="Fix the 1 problem")
    refused.wait_for()
    assert page.get_by_test_id("problem-count").inner_text() == "1 problem"
    shot("run refused on the cycle")

    page.get_by_role("tab", name="Versions").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Restore version 1").click()
    page.get_by_test_id("version").filter(has_text="v3").wait_for()
    refused.wait_for(state="detached")
    assert page.get_by_test_id("problem-count").count() == 0
    assert page.locator('[data-testid="node-a"] [data-testid="node-problems"]').count() == 0
    shot("restored without the cycle or its error")
