"""Canvas conveniences in a real Chromium against a real ``flowloom serve``: finding a node that
is off screen by a few letters, dropping a wire on empty space to add a node wired to it from a
palette of the types that fit, and a new wire into an occupied input replacing the old one,
undoably."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect
from uiflows import create_workflow, open_editor, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow


def text_node(node_id: str, label: str, x: int, y: int, text: str = "a b c") -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "text.value",
        "position": {"x": x, "y": y},
        "data": {"label": label, "config": {"text": text}},
    }


def split_node(node_id: str, x: int, y: int) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "text.split",
        "position": {"x": x, "y": y},
        "data": {"label": "Split", "config": {"separator": ""}},
    }


def wire(source: str, target: str) -> dict[str, Any]:
    return {
        "id": f"e_{source}.text_{target}.text",
        "source": source,
        "sourceHandle": "text",
        "target": target,
        "targetHandle": "text",
    }


def center(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=8)
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def in_canvas(page: Any, node: Any) -> bool:
    box = node.bounding_box()
    canvas = page.get_by_test_id("canvas").bounding_box()
    return (
        box is not None
        and box["x"] >= canvas["x"]
        and box["x"] + box["width"] <= canvas["x"] + canvas["width"]
        and box["y"] >= canvas["y"]
        and box["y"] + box["height"] <= canvas["y"] + canvas["height"]
    )


def test_find_a_node_on_the_canvas(page: Any, shot: Shot) -> None:
    # Far apart, so that a readable zoom shows only some of them.
    nodes = [text_node(f"t{i}", f"Step {i}", (i % 6) * 700, (i // 6) * 600) for i in range(48)]
    nodes.append(text_node("needle", "Summarize the week", 4200, 3000))
    sign_up(page)
    made = create_workflow(page, "Big", {"schema_version": 1, "nodes": nodes, "edges": []})
    open_editor(page, made["id"])
    target = page.get_by_test_id("node-needle")
    assert target.count() == 0 or not in_canvas(page, target)

    page.get_by_test_id("canvas").click(position={"x": 20, "y": 400})
    page.keyboard.press("Control+f")
    search = page.get_by_role("combobox", name="Find a node on the canvas")
    assert search.evaluate("e => e === document.activeElement")
    search.fill("summ")
    page.get_by_role("listbox", name="Nodes found").get_by_text("Summarize the week").wait_for()
    shot("a match offered")
    search.press("Enter")
    page.locator('[data-testid="node-needle"].selected').wait_for()
    page.wait_for_timeout(400)  # the pan to it
    assert in_canvas(page, target)
    assert "1 of 1" in page.locator(".search-count").inner_text()
    shot("gone to the node")

    # Several matches: Enter goes through them.
    search.fill("step 1")
    search.press("Enter")
    page.locator('[data-testid="node-t1"].selected').wait_for()
    search.press("Enter")
    page.locator('[data-testid="node-t10"].selected').wait_for()
    # Only the match gone to stays selected (polled: a pan re-renders the visible nodes).
    expect(page.locator(".flow-node.selected")).to_have_count(1)
    expect(page.locator(".flow-node.selected")).to_have_attribute("data-testid", "node-t10")


Point = tuple[float, float]


def open_quick_add(
    page: Any, drop: Callable[[Point, dict[str, float]], Point]
) -> tuple[Any, Point]:
    """A graph of one text node, its text output's wire dropped at ``drop(handle, canvas)``:
    the palette that opened, and where the wire was dropped."""
    sign_up(page)
    definition = {"schema_version": 1, "nodes": [text_node("words", "Words", 0, 0)], "edges": []}
    made = create_workflow(page, "Grow", definition)
    open_editor(page, made["id"])
    handle = page.locator('[data-testid="node-words"] .react-flow__handle[data-port="text"]')
    start = center(handle)
    end = drop(start, page.get_by_test_id("canvas").bounding_box())
    drag(page, start, end)
    palette = page.get_by_role("dialog", name="Add a node taking string")
    palette.wait_for()
    return palette, end


def added(page: Any, node_id: str, node_type: str) -> Any:
    """The node ``node_id`` added from the palette, of ``node_type``, wired to words.text and
    whole on the canvas."""
    node = page.get_by_test_id(f"node-{node_id}")
    node.wait_for()
    expect(node).to_have_attribute("data-node-type", node_type)
    page.locator(f'[data-testid^="rf__edge-e_words.text_{node_id}."]').wait_for()
    assert in_canvas(page, node), (
        node.bounding_box(),
        page.get_by_test_id("canvas").bounding_box(),
    )
    return node


def test_drop_a_wire_on_empty_space_to_add_a_wired_node(page: Any, shot: Shot) -> None:
    # Below the node, in the open: the node added goes where the wire ends.
    palette, (x, y) = open_quick_add(page, lambda start, _canvas: (start[0] - 100, start[1] + 150))
    options = palette.get_by_role("option")
    offered = [options.nth(i).get_attribute("data-node-type") for i in range(options.count())]
    assert "text.split" in offered
    assert "image.resize" not in offered  # takes an image, not text
    assert "trigger.manual" not in offered  # takes nothing
    shot("the types that fit")

    palette.get_by_role("combobox", name="Search node types").fill("split")
    palette.get_by_role("combobox", name="Search node types").press("Enter")
    palette.wait_for(state="detached")
    new = added(page, "split_1", "text.split").bounding_box()
    assert abs(new["x"] - x) < 40, (new, x)
    assert abs(new["y"] - (y - 40)) < 40, (new, y)
    shot("the node added and wired")

    page.get_by_role("button", name="Undo", exact=True).click()
    page.get_by_test_id("node-split_1").wait_for(state="detached")
    assert page.get_by_test_id("rf__edge-e_words.text_split_1.text").count() == 0


def test_a_wire_dropped_past_the_canvas_edge_adds_the_node_in_sight(page: Any, shot: Shot) -> None:
    # Let go over the side panel: the canvas would not even draw a node out there.
    palette, _ = open_quick_add(
        page, lambda start, canvas: (canvas["x"] + canvas["width"] + 30, start[1] + 60)
    )
    palette.get_by_role("combobox", name="Search node types").fill("split")
    palette.get_by_role("combobox", name="Search node types").press("Enter")
    palette.wait_for(state="detached")
    added(page, "split_1", "text.split")
    shot("the node added whole on the canvas")


def test_typing_in_the_quick_add_palette_keeps_its_choice_from_a_resting_pointer(
    page: Any,
) -> None:
    palette, _ = open_quick_add(page, lambda start, _canvas: (start[0] - 100, start[1] + 150))
    search = palette.get_by_role("combobox", name="Search node types")
    options = palette.get_by_role("option")
    # Moving the pointer onto a type chooses it.
    third = options.nth(2).bounding_box()
    page.mouse.move(third["x"] + 30, third["y"] + third["height"] / 2, steps=4)
    expect(options.nth(2)).to_have_attribute("aria-selected", "true")

    # Typing narrows the list, sliding other types under the pointer, which stays put: the
    # first match stays chosen (two frames for the browser to update what is under the pointer).
    search.fill("flow")
    page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )
    first, under = (
        options.nth(0).get_attribute("data-node-type"),
        options.nth(2).get_attribute("data-node-type"),
    )
    assert first != under, (first, under)
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    expect(options.nth(2)).to_have_attribute("aria-selected", "false")
    search.press("Enter")
    palette.wait_for(state="detached")
    assert first is not None
    added(page, f"{first.split('.')[-1]}_1", first)
    types = page.locator(".flow-node").evaluate_all(
        "(nodes) => nodes.map((n) => n.dataset.nodeType)"
    )
    assert sorted(types) == sorted(["text.value", first]), types


def test_a_new_wire_replaces_the_one_in_a_single_input_and_undo_restores_it(
    page: Any, shot: Shot
) -> None:
    sign_up(page)
    definition = {
        "schema_version": 1,
        "nodes": [
            text_node("first", "First", 0, 0),
            text_node("second", "Second", 0, 260),
            split_node("split", 420, 120),
        ],
        "edges": [wire("first", "split")],
    }
    made = create_workflow(page, "Rewire", definition)
    open_editor(page, made["id"])
    old = page.get_by_test_id("rf__edge-e_first.text_split.text")
    new = page.get_by_test_id("rf__edge-e_second.text_split.text")
    old.wait_for()

    source = page.locator('[data-testid="node-second"] .react-flow__handle[data-port="text"]')
    target = page.locator('[data-testid="node-split"] .react-flow__handle[data-port="text"]')
    drag(page, center(source), center(target))
    new.wait_for()
    old.wait_for(state="detached")
    page.get_by_role("status").filter(has_text="Replaced the wire from first.text").wait_for()
    shot("the wire replaced")

    page.get_by_role("button", name="Undo", exact=True).click()
    old.wait_for()
    new.wait_for(state="detached")
    shot("undone")
    page.get_by_role("button", name="Redo", exact=True).click()
    new.wait_for()
    old.wait_for(state="detached")
