"""The workflow list in a real Chromium: a new account's empty list offers the templates and
one click makes a workflow of one; a workflow exported to a file and imported back, after a
pasted file with problems shows every one of them and cannot be saved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from uiflows import create_workflow, sign_up
from uikit import ROOT, Shot

pytestmark = pytest.mark.slow


def test_a_new_account_starts_from_a_template(page: Any, shot: Shot) -> None:
    sign_up(page)
    gallery = page.get_by_role("region", name="Templates")
    gallery.get_by_role("article", name="Sort numbers").wait_for()
    expect(gallery.get_by_role("article").nth(4)).to_be_visible()  # five templates at least
    shot("templates on the empty list")

    gallery.get_by_role("button", name="Use the Sort numbers template").click()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    assert page.locator('[data-testid="node-sort"]').count() == 1
    page.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Sort numbers", exact=True).wait_for()
    assert page.get_by_role("region", name="Templates").count() == 0
    shot("the workflow made from it")


def test_export_then_import_with_every_problem_shown_first(
    page: Any, shot: Shot, tmp_path: Path
) -> None:
    sign_up(page)
    definition = json.loads((ROOT / "examples" / "hello_template.json").read_text())
    create_workflow(page, "Greeter", definition)
    page.goto("/")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export Greeter").click()
    exported = tmp_path / "greeter.json"
    download_info.value.save_as(exported)
    document = json.loads(exported.read_text())
    assert document["name"] == "Greeter"
    assert document["definition"]["nodes"] == definition["nodes"]

    page.get_by_role("button", name="Import…").click()
    box = page.get_by_role("region", name="Import a workflow")
    box.get_by_label("Or paste its JSON").fill('{"name": "Broken", ')
    box.get_by_role("alert").filter(has_text="does not parse").wait_for()
    broken = {
        "name": "Broken",
        "definition": {
            "schema_version": 1,
            "nodes": [
                {"id": "a", "type": "text.value", "data": {"config": {"text": "x"}}},
                {"id": "b", "type": "no.such.type", "data": {"config": {}}},
            ],
            "edges": [{"id": "e1", "source": "a", "sourceHandle": "text",
                       "target": "ghost", "targetHandle": "value"}],
        },
    }  # fmt: skip
    box.get_by_label("Or paste its JSON").fill(json.dumps(broken, indent=2))
    problems = box.get_by_role("alert", name="Problems of the file")
    problems.wait_for()
    assert problems.locator("li").count() >= 2
    assert "node b" in problems.inner_text()
    assert "ghost" in problems.inner_text()
    assert box.get_by_role("button", name="Save as a new workflow").is_disabled()
    shot("every problem before saving")

    box.get_by_label("From a file").set_input_files(str(exported))
    box.get_by_label("Name", exact=True).fill("Greeter, imported")
    box.get_by_role("status").filter(has_text="Ready").filter(
        has_text="Greeter, imported"
    ).wait_for()
    shot("ready to import")
    box.get_by_role("button", name="Save as a new workflow").click()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    assert page.get_by_role("toolbar", name="Workflow").get_by_role(
        "textbox"
    ).first.input_value() == ("Greeter, imported")
    page.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Greeter, imported").wait_for()
    page.get_by_role("link", name="Greeter", exact=True).wait_for()
