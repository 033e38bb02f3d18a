"""The editor's defects of issue 13, each as a user meets it in a real Chromium against a real
``flowloom serve``: unsaved edits and in-app links, piled-up nodes, a separator that looked
empty, problems that named no field, stale results and banners, previews that grew over their
neighbours, and focus that could not be seen. Screenshots of every step go to the artifacts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from graphkit import edge
from uiflows import call, create_workflow, open_editor, select_node, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow


def node(
    node_id: str, node_type: str, config: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": node_type,
        "position": extra.pop("position", {"x": 0, "y": 0}),
        "data": {"label": extra.pop("label", node_id), "config": config or {}},
    }


def graph(nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"schema_version": 1, "nodes": nodes, "edges": edges or []}


def boxes(page: Any) -> dict[str, dict[str, float]]:
    """Each node's box on screen, by node id."""
    found: dict[str, dict[str, float]] = page.evaluate(
        """() => Object.fromEntries(
            [...document.querySelectorAll('[data-testid^="node-"].flow-node')].map((el) => {
                const r = el.getBoundingClientRect();
                return [el.dataset.testid.slice(5), {x: r.x, y: r.y, w: r.width, h: r.height}];
            }))"""
    )
    return found


def overlapping(found: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    pairs = []
    ids = sorted(found)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            p, q = found[a], found[b]
            across = p["x"] < q["x"] + q["w"] and q["x"] < p["x"] + p["w"]
            down = p["y"] < q["y"] + q["h"] and q["y"] < p["y"] + p["h"]
            if across and down:
                pairs.append((a, b))
    return pairs


def saved_state(page: Any) -> Any:
    return page.get_by_role("toolbar", name="Workflow").get_by_role("status")


# ---- 1. unsaved edits and in-app navigation


def test_leaving_with_unsaved_changes_asks_first(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(page, "Guarded", graph([node("greeting", "text.value", {"text": "hi"})]))
    open_editor(page, made["id"])
    select_node(page, "greeting")
    page.get_by_label("Label", exact=True).fill("Renamed greeting")
    saved_state(page).filter(has_text="unsaved changes").wait_for()

    # A link of the app, not a reload: the dialog asks, and "Stay" keeps the edit on screen.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
    dialog = page.get_by_role("alertdialog", name="Leave with unsaved changes?")
    dialog.wait_for()
    shot("asked before leaving")
    dialog.get_by_role("button", name="Stay").click()
    assert page.get_by_role("toolbar", name="Workflow").is_visible()
    assert page.get_by_label("Label", exact=True).input_value() == "Renamed greeting"

    # "Save and leave" saves a new version, then goes.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
    dialog.get_by_role("button", name="Save and leave").click()
    page.get_by_role("heading", name="Workflows").wait_for()
    saved = call(page, "GET", f"/api/v1/workflows/{made['id']}")
    assert saved["definition"]["nodes"][0]["data"]["label"] == "Renamed greeting"

    # "Leave without saving" drops the edit, as asked; a saved graph leaves without a word.
    open_editor(page, made["id"])
    select_node(page, "greeting")
    page.get_by_label("Label", exact=True).fill("Dropped")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    dialog.get_by_role("button", name="Leave without saving").click()
    page.get_by_role("heading", name="Usage").wait_for()
    assert (
        call(page, "GET", f"/api/v1/workflows/{made['id']}")["definition"]["nodes"][0]["data"][
            "label"
        ]
        == "Renamed greeting"
    )
    open_editor(page, made["id"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
    page.get_by_role("heading", name="Workflows").wait_for()
    assert dialog.count() == 0


# ---- 2. nodes piled on one spot


def test_piled_up_nodes_are_laid_out_and_new_nodes_find_free_space(page: Any, shot: Shot) -> None:
    sign_up(page)
    nodes = [
        node("source", "text.value", {"text": "b a c"}),
        node("split", "text.split", {"separator": " "}),
        node("sort", "list.sort"),
        node("join", "text.join", {"separator": ", "}),
        node("wait", "flow.delay", {"seconds": 0}),
    ]
    edges = [
        edge("source", "text", "split", "text"),
        edge("split", "items", "sort", "items"),
        edge("sort", "items", "join", "items"),
        edge("join", "text", "wait", "value"),
    ]
    made = create_workflow(page, "Piled", graph(nodes, edges))
    open_editor(page, made["id"])
    page.get_by_test_id("node-wait").wait_for()
    page.wait_for_timeout(500)
    shot("opened laid out")
    found = boxes(page)
    assert len(found) == 5
    assert overlapping(found) == []
    # Laid out left to right, in the order of the wires; and saved in place like a drag.
    assert found["source"]["x"] < found["split"]["x"] < found["sort"]["x"] < found["join"]["x"]
    page.wait_for_timeout(800)
    stored = call(page, "GET", f"/api/v1/workflows/{made['id']}")["definition"]["nodes"]
    assert len({(n["position"]["x"], n["position"]["y"]) for n in stored}) == 5

    # Added from the palette by keyboard, twice: side by side, not on top of each other.
    item = page.locator('.palette-item[data-node-type="text.value"]')
    item.focus()
    page.keyboard.press("Enter")
    item.focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("node-value_2").wait_for()
    shot("two nodes added by keyboard")
    assert overlapping(boxes(page)) == []


# ---- 3. text.split's separator


def test_a_line_break_separator_is_visible_and_empty_splits_at_whitespace(
    page: Any, shot: Shot
) -> None:
    sign_up(page)
    nodes = [
        node("words", "text.value", {"text": "zebra apple mango"}, position={"x": 0, "y": 0}),
        node("split", "text.split", position={"x": 320, "y": 0}),
    ]
    made = create_workflow(page, "Split", graph(nodes, [edge("words", "text", "split", "text")]))
    open_editor(page, made["id"])
    select_node(page, "split")
    separator = page.get_by_label("Separator", exact=True)
    assert separator.input_value() == "\\n"
    help_text = page.locator(".field", has=separator).locator(".help").inner_text()
    assert "line break" in help_text
    assert "``" not in help_text
    shot("separator shows its line break")

    separator.fill("")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved as version").wait_for()
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    outputs = page.locator('[data-testid="node-split"] [data-testid="node-outputs"]')
    assert '["zebra","apple","mango"]' in outputs.inner_text()
    shot("split at whitespace")


# ---- 4. problems: named, at the field, listed; no run of a broken graph; stale results


def test_problems_name_their_field_and_are_listed(page: Any, shot: Shot) -> None:
    sign_up(page)
    nodes = [
        node("fetch", "http.request", {"url": ""}, position={"x": 0, "y": 0}),
        node("first", "flow.delay", {"seconds": 0}, position={"x": 0, "y": 200}),
        node("second", "flow.delay", {"seconds": 0}, position={"x": 320, "y": 200}),
    ]
    loop = [edge("first", "value", "second", "value"), edge("second", "value", "first", "value")]
    made = create_workflow(page, "Problems", graph(nodes, loop))
    open_editor(page, made["id"])

    # The counter opens the list; an entry shows its node and its settings.
    count = page.get_by_test_id("problem-count")
    count.wait_for()
    count.click()
    listed = page.get_by_role("list", name="Problems of this workflow")
    listed.wait_for()
    text = listed.inner_text()
    assert "URL: must not be empty" in text
    assert "String should have" not in text
    assert "cycle" in text
    shot("problems listed")
    listed.get_by_role("button").filter(has_text="URL").click()
    page.get_by_label("Settings of fetch", exact=True).wait_for()

    # At the field itself, marked invalid.
    url = page.locator("#cfg-fetch-url")
    assert url.get_attribute("aria-invalid") == "true"
    field_problem = page.locator(".field", has=url).get_by_test_id("field-problem")
    assert field_problem.inner_text() == "URL: must not be empty"
    shot("problem at its field")

    # Run refuses a graph with a cycle, without asking for inputs.
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("alert").filter(has_text="Fix the").wait_for()
    assert page.get_by_role("dialog").count() == 0
    assert listed.is_visible()
    shot("run refused")

    url.fill("http://127.0.0.1:9/")
    page.get_by_test_id("node-fetch").locator('[data-testid="node-problems"]').wait_for(
        state="detached"
    )


def test_results_of_a_finished_run_leave_when_the_graph_changes(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(page, "Stale", graph([node("greeting", "text.value", {"text": "hi"})]))
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    page.get_by_test_id("node-outputs").wait_for()
    shot("completed")
    select_node(page, "greeting")
    page.get_by_label("Text", exact=True).fill("changed")
    page.get_by_test_id("run-status").wait_for(state="detached")
    assert page.get_by_test_id("node-outputs").count() == 0
    shot("results cleared after an edit")


# ---- 5. previews, minimap, fit on open


def test_previews_stay_small_and_a_small_graph_opens_fitted(page: Any, shot: Shot) -> None:
    sign_up(page)
    long_text = "\n".join(f"line {i} of a long answer that goes on and on" for i in range(80))
    nodes = [
        node("long", "text.value", {"text": long_text}, position={"x": 0, "y": 0}),
        node("below", "text.value", {"text": "short"}, position={"x": 0, "y": 160}),
        node("b", "text.value", {"text": "b"}, position={"x": 300, "y": 0}),
        node("c", "text.value", {"text": "c"}, position={"x": 600, "y": 0}),
        node("d", "text.value", {"text": "d"}, position={"x": 300, "y": 160}),
    ]
    made = create_workflow(page, "Previews", graph(nodes))
    open_editor(page, made["id"])
    page.get_by_test_id("node-d").wait_for()
    page.wait_for_timeout(400)
    shot("opened")

    # Fitted: the graph fills the middle of the canvas at a readable zoom, none under the minimap.
    canvas = page.get_by_test_id("canvas").bounding_box()
    found = boxes(page)
    left = min(b["x"] for b in found.values())
    right = max(b["x"] + b["w"] for b in found.values())
    assert right - left > 0.5 * canvas["width"]
    assert abs((left - canvas["x"]) - (canvas["x"] + canvas["width"] - right)) < 40
    zoom = page.evaluate(
        "() => new DOMMatrix("
        "getComputedStyle(document.querySelector('.react-flow__viewport')).transform).a"
    )
    assert zoom >= 0.75
    minimap = page.get_by_label("Minimap", exact=True)
    assert minimap.count() == 0
    page.get_by_role("button", name="Show the minimap").click()
    minimap.wait_for()

    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    page.locator('[data-testid="node-long"] [data-testid="node-outputs"]').wait_for()
    shot("long output")
    found = boxes(page)
    assert found["long"]["h"] < 260 * zoom
    assert overlapping({k: found[k] for k in ("long", "below")}) == []


def test_a_tall_graph_opens_and_fits_below_the_find_box(page: Any, shot: Shot) -> None:
    sign_up(page)
    column = [
        node(f"step{i}", "text.value", {"text": str(i)}, position={"x": 0, "y": 150 * i})
        for i in range(6)
    ]
    made = create_workflow(page, "Tall", graph(column))
    open_editor(page, made["id"])
    page.get_by_test_id("node-step5").wait_for()
    page.wait_for_timeout(400)
    shot("opened")

    def clear_of_the_find_box() -> list[tuple[str, str]]:
        find = page.locator(".canvas-search").bounding_box()
        found = boxes(page)
        assert len(found) == 6
        return overlapping({**found, "find": find | {"w": find["width"], "h": find["height"]}})

    assert clear_of_the_find_box() == []
    page.get_by_role("button", name="Fit the whole graph").click()
    page.wait_for_timeout(400)
    assert clear_of_the_find_box() == []


# ---- 6. banners, undo to saved, help text


def test_banners_follow_what_happened(page: Any, shot: Shot) -> None:
    sign_up(page)
    nodes = [
        node("words", "text.value", {"text": "a b"}, position={"x": 0, "y": 0}),
        node("resize", "image.resize", position={"x": 320, "y": 0}),
        node("joined", "text.join", position={"x": 320, "y": 200}),
    ]
    made = create_workflow(page, "Banners", graph(nodes))
    open_editor(page, made["id"])
    page.get_by_test_id("node-joined").wait_for()

    def wire(source: str, out_port: str, target: str, in_port: str) -> None:
        start = page.locator(
            f'[data-testid="node-{source}"] .react-flow__handle.source[data-port="{out_port}"]'
        ).bounding_box()
        end = page.locator(
            f'[data-testid="node-{target}"] .react-flow__handle.target[data-port="{in_port}"]'
        ).bounding_box()
        page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
        page.mouse.down()
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
        page.mouse.up()

    refused = page.get_by_role("alert").filter(has_text="Connection refused")
    wire("words", "text", "resize", "image")
    refused.wait_for()
    shot("refused")
    wire("words", "text", "joined", "items")
    refused.wait_for(state="detached")
    assert page.locator(".react-flow__edge").count() == 1

    # Undo back to the saved graph: saved again.
    saved_state(page).filter(has_text="unsaved changes").wait_for()
    page.locator(".react-flow__pane").click()
    page.keyboard.press("Control+z")
    saved_state(page).filter(has_text=re.compile("^saved$")).wait_for()

    # Copy then paste: the banner tells of the paste.
    select_node(page, "words")
    page.locator(".react-flow__pane").focus()
    page.keyboard.press("Control+c")
    page.get_by_role("status").filter(has_text="Copied 1 node").wait_for()
    page.keyboard.press("Control+v")
    page.get_by_role("status").filter(has_text="Pasted 1 node").wait_for()
    assert page.get_by_role("status").filter(has_text="Copied").count() == 0
    shot("pasted")


def test_help_text_reads_as_text(page: Any, shot: Shot) -> None:
    sign_up(page)
    nodes = [
        node(
            "route", "flow.condition", {"operator": "==", "operand": 1}, position={"x": 0, "y": 0}
        ),
        node("order", "list.sort", position={"x": 320, "y": 0}),
    ]
    made = create_workflow(page, "Help", graph(nodes))
    open_editor(page, made["id"])
    for node_id in ("route", "order"):
        select_node(page, node_id)
        panel = page.get_by_label(f"Settings of {node_id}", exact=True)
        text = panel.inner_text()
        assert "`" not in text, text
        assert "None" not in text, text
    assert page.get_by_label("Settings of order").locator("code").count() > 0
    shot("help with code set as code")


# ---- 7. focus and alignment


def test_keyboard_focus_shows_and_rows_line_up(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(page, "Focus", graph([node("greeting", "text.value", {"text": "hi"})]))
    page.goto("/")
    page.get_by_role("heading", name="Workflows").wait_for()
    cells = page.locator("table.list tbody tr").filter(has_text="Focus").locator("td")
    cells.first.wait_for()
    tops = [cells.nth(i).bounding_box()["y"] for i in range(cells.count())]
    heights = [cells.nth(i).bounding_box()["height"] for i in range(cells.count())]
    assert max(tops) - min(tops) < 1, tops
    assert max(heights) - min(heights) < 1, heights
    shot("workflow list")

    open_editor(page, made["id"])
    page.get_by_test_id("node-greeting").wait_for()
    page.locator(".react-flow__node").first.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    outline = page.evaluate(
        """() => { const el = document.activeElement;
                   const inner = el && el.querySelector('.flow-node');
                   return inner ? getComputedStyle(inner).outlineStyle : 'none'; }"""
    )
    assert outline == "solid"
    shot("node focused")

    page.locator(".react-flow__pane").click()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    dialog.wait_for()
    keys = dialog.locator("dt")
    texts = dialog.locator("dd")
    assert len({round(keys.nth(i).bounding_box()["x"]) for i in range(keys.count())}) == 1
    assert len({round(texts.nth(i).bounding_box()["x"]) for i in range(texts.count())}) == 1
    shot("shortcuts")
