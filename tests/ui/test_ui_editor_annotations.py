"""Sticky notes and groups on the canvas: added from the toolbar, written on, coloured, a
group framing the selected nodes and taking them along when dragged by its title; all saved
in the definition's annotations and back after a reload."""

from __future__ import annotations

from typing import Any

import pytest
from uiflows import call, create_workflow, open_editor
from uiflows import sign_up as sign_up_user
from uikit import Shot

pytestmark = pytest.mark.slow


def _value(node_id: str, x: int) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "text.value",
        "position": {"x": x, "y": 0},
        "data": {"label": node_id, "config": {"text": node_id}},
    }


def test_notes_and_groups_are_drawn_saved_and_moved(page: Any, shot: Shot) -> None:
    sign_up_user(page)
    made = create_workflow(
        page,
        "Annotated",
        {
            "schema_version": 1,
            "nodes": [_value("first", 0), _value("second", 300)],
            "edges": [],
        },
    )
    open_editor(page, made["id"])

    # A group around the selected nodes (Ctrl+A selects both).
    page.locator('[data-testid="node-first"] .node-head').click()
    page.keyboard.press("Control+a")
    page.get_by_role("button", name="+ Group").click()
    group = page.locator('[data-testid^="group-"]')
    group.wait_for()
    page.get_by_label("Title").fill("Inputs")
    page.get_by_role("radio", name="green").check()

    # A note, written on the canvas by a double-click.
    page.get_by_role("button", name="+ Note").click()
    note = page.locator('[data-testid^="note-"]')
    note.dblclick()
    page.get_by_label("Note text").fill("Two fixed texts.\nChange them before a demo.")
    page.locator(".react-flow__pane").click(position={"x": 40, "y": 40})
    assert "Change them before a demo." in note.inner_text()
    shot("a group and a note")

    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved as version").wait_for()
    definition = call(page, "GET", f"/api/v1/workflows/{made['id']}")["definition"]
    kinds = {a["type"]: a for a in definition["annotations"]}
    assert kinds["group"]["data"]["label"] == "Inputs"
    assert kinds["group"]["data"]["color"] == "green"
    assert kinds["note"]["data"]["text"] == "Two fixed texts.\nChange them before a demo."
    assert [n["id"] for n in definition["nodes"]] == ["first", "second"]

    # Dragging the group by its title takes the nodes inside along (saved in place).
    before = {n["id"]: n["position"] for n in definition["nodes"]}
    title = page.locator(".group-title")
    box = title.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 90, steps=8)
    page.mouse.up()
    page.wait_for_timeout(1500)
    moved = call(page, "GET", f"/api/v1/workflows/{made['id']}")["definition"]
    after = {n["id"]: n["position"] for n in moved["nodes"]}
    for node_id in ("first", "second"):
        assert after[node_id]["y"] > before[node_id]["y"] + 40, (before, after)
    assert moved["annotations"][0]["position"]["y"] > kinds["group"]["position"]["y"] + 40

    page.reload()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    page.locator('[data-testid^="note-"]').wait_for()
    assert "Change them before a demo." in page.locator('[data-testid^="note-"]').inner_text()
    assert page.locator(".group-title").inner_text() == "Inputs"
    shot("after a reload")


def test_notes_groups_pins_and_typed_values_in_dark_mode(page: Any, shot: Shot) -> None:
    page.emulate_media(color_scheme="dark")
    sign_up_user(page)
    post = {
        "id": "post",
        "type": "http.request",
        "position": {"x": 300, "y": 0},
        "data": {
            "label": "post",
            "config": {"url": "https://example.com/", "method": "POST", "body": {"city": "Oslo"}},
            "pinned": {"status": 200, "headers": {}, "body": {"ok": True}},
        },
    }
    made = create_workflow(
        page,
        "Dark",
        {
            "schema_version": 1,
            "nodes": [_value("first", 0), post],
            "edges": [],
            "annotations": [
                {
                    "id": "group_1",
                    "type": "group",
                    "position": {"x": -40, "y": -80},
                    "width": 640,
                    "height": 300,
                    "data": {"label": "Request", "color": "purple"},
                },
                {
                    "id": "note_1",
                    "type": "note",
                    "position": {"x": 0, "y": 260},
                    "width": 260,
                    "height": 120,
                    "data": {"text": "The body is pinned while the API is down.", "color": "pink"},
                },
            ],
        },
    )
    open_editor(page, made["id"])
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    page.locator('[data-testid="node-post"] .node-head').click()
    page.get_by_test_id("pinned-outputs").wait_for()
    assert page.locator('[data-testid="node-post"] [data-testid="pinned-badge"]').count() == 1
    shot("dark canvas with a group a note and a pinned node")
    page.get_by_label("Settings of post", exact=True).get_by_text(
        "Body", exact=True
    ).scroll_into_view_if_needed()
    shot("dark typed body")
    # Usable at 1920x1080 too: the canvas takes the room, the panels keep their width.
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.get_by_role("button", name="Fit the whole graph").click()
    page.wait_for_timeout(400)
    canvas = page.get_by_test_id("canvas").bounding_box()
    assert canvas["width"] >= 1280
    shot("dark at 1920x1080")
