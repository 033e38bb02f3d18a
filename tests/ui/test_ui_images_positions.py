"""Image outputs as thumbnails (the owner's "Image crop" example, run in the browser), opened
full size, and seen again in a past run's details; a dragged node's position saved in place
(no new version) and found again after a reload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from uiflows import OWNER_EMAIL, call, create_workflow, open_editor, sign_in, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "image_crop.json"


def test_image_outputs_show_as_thumbnails(page: Any, shot: Shot, owner_password: str) -> None:
    sign_in(page, OWNER_EMAIL, owner_password)
    page.get_by_label("Search").fill("Image crop")
    page.get_by_role("link", name="Image crop").click()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()

    thumb = page.locator('[data-testid="node-resize"] [data-testid="image-thumb"]')
    thumb.wait_for()
    # The bytes arrived and decoded: the browser knows the picture's own size.
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0",
        arg=thumb.element_handle(),
    )
    # The example crops the middle half of an 80x60 picture (40x30), then doubles it.
    assert thumb.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [80, 60]
    assert "image/png 80\u00d760" in (thumb.get_attribute("alt") or "")
    assert page.locator('[data-testid="node-crop"] [data-testid="image-thumb"]').count() == 1
    shot("thumbnails on the nodes")

    page.get_by_test_id("node-resize").get_by_role("button", name="Open image full size").click()
    dialog = page.get_by_role("dialog", name="image full size")
    dialog.wait_for()
    full = dialog.get_by_test_id("image-full")
    page.wait_for_function("el => el.complete && el.naturalWidth === 80", arg=full.element_handle())
    shot("full size")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")

    # A past run opened from the history shows the same thumbnails in the node's details.
    page.get_by_role("button", name="Clear results").click()
    page.get_by_role("tab", name="Runs").click()
    page.locator(".run-item").first.click()
    page.get_by_test_id("past-run-banner").wait_for()
    page.get_by_test_id("node-crop").click()
    page.get_by_role("tab", name="Node").click()
    details = page.get_by_test_id("run-images").get_by_test_id("image-thumb")
    details.wait_for()
    page.wait_for_function(
        "el => el.complete && el.naturalWidth === 40", arg=details.element_handle()
    )
    shot("thumbnail in the run details")


def test_a_dragged_node_keeps_its_place_without_a_new_version(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(page, "Moving", json.loads(EXAMPLE.read_text()))
    open_editor(page, made["id"])
    assert page.get_by_test_id("version").inner_text() == "v1"
    node = page.get_by_test_id("node-crop")
    before = node.bounding_box()
    page_y_of_load_before = page.get_by_test_id("node-load").bounding_box()["y"]
    shot("before the drag")

    head = page.locator('[data-testid="node-crop"] .node-head')
    box = head.bounding_box()
    with page.expect_response(
        lambda r: (
            r.url.endswith(f"/api/v1/workflows/{made['id']}/positions")
            and r.request.method == "PATCH"
        )
    ) as answered:
        page.mouse.move(box["x"] + 20, box["y"] + 8)
        page.mouse.down()
        page.mouse.move(box["x"] + 80, box["y"] + 60, steps=8)
        page.mouse.move(box["x"] + 140, box["y"] + 128, steps=8)
        page.mouse.up()
    assert answered.value.status == 200
    assert answered.value.json() == {"version": 1}
    sent = answered.value.request.post_data_json["positions"]
    assert list(sent) == ["crop"]
    assert sent["crop"]["x"] > 300
    assert sent["crop"]["y"] > 0
    # Layout is not an edit: nothing left to save.
    assert page.get_by_role("status").filter(has_text="saved").first.inner_text() == "saved"
    shot("after the drag")

    page.reload()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    after = page.get_by_test_id("node-crop").bounding_box()
    assert page.get_by_test_id("version").inner_text() == "v1"
    stored = call(page, "GET", f"/api/v1/workflows/{made['id']}")
    assert stored["version"] == 1
    crop = next(n for n in stored["definition"]["nodes"] if n["id"] == "crop")
    assert crop["position"] == sent["crop"]
    versions = call(page, "GET", f"/api/v1/workflows/{made['id']}/versions")
    assert [v["version"] for v in versions["items"]] == [1]
    # Seen after the reload where it was dropped: below the unmoved node it was level with.
    loaded = page.get_by_test_id("node-load").bounding_box()
    assert abs(before["y"] - page_y_of_load_before) < 1
    assert after["y"] - loaded["y"] > 20
    shot("after the reload")
