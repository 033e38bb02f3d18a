"""Node types as people read them, and structured settings edited as structure: friendly names,
icons and descriptions in the palette, on nodes and in the settings panel (the type id still in
small print); a key/value table for HTTP headers and a form per item for a trigger's fields,
each saved, reloaded and read back. Screenshots of every step go to the artifacts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from uiflows import call, create_workflow, open_editor, select_node, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow


def test_node_types_have_friendly_names_icons_and_descriptions(page: Any, shot: Shot) -> None:
    sign_up(page)
    types = call(page, "GET", "/api/v1/node-types")["items"]
    by_type = {t["type"]: t for t in types}
    assert by_type["list.sort"]["display_name"] == "Sort list"
    assert all(t["display_name"] and t["color"].startswith("#") for t in types)

    made = create_workflow(
        page,
        "Names",
        {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "sorter",
                    "type": "list.sort",
                    "position": {"x": 0, "y": 0},
                    "data": {"label": "Order the prices", "config": {}},
                }
            ],
            "edges": [],
        },
    )
    open_editor(page, made["id"])

    # The palette: names people read, searchable by them, the type id in small print.
    item = page.locator('.palette-item[data-node-type="list.sort"]')
    assert item.locator(".palette-name").inner_text() == "Sort list"
    assert item.locator(".palette-type").inner_text() == "list.sort"
    assert item.locator("svg path").count() == 1
    page.get_by_placeholder("Search nodes…").fill("ask a model")
    assert page.locator(".palette-item").count() == 1
    assert page.locator('.palette-item[data-node-type="ai.llm"]').count() == 1
    page.get_by_placeholder("Search nodes…").fill("")

    # On the node, and in its settings.
    head = page.locator('[data-testid="node-sorter"] .node-head')
    assert "Sort list" in head.inner_text()
    assert "list.sort" in head.inner_text()
    select_node(page, "sorter")
    panel = page.get_by_label("Settings of sorter", exact=True)
    assert "Sort list" in panel.inner_text()
    assert "The items in order" in panel.inner_text()
    shot("friendly names")


def test_new_nodes_are_named_after_their_type_and_follow_one_another(page: Any, shot: Shot) -> None:
    sign_up(page)
    # The templates on the first screen name their kinds of node as the palette does.
    sort_card = page.get_by_role("article", name="Sort numbers")
    kinds = sort_card.get_by_role("list", name="Kinds of node in Sort numbers")
    kinds.get_by_text("Split text", exact=True).wait_for()
    assert kinds.get_by_role("listitem").all_inner_texts() == ["Text", "Split text", "Sort list"]
    assert "text.split" not in sort_card.inner_text()
    shot("templates name their nodes")

    made = create_workflow(page, "Named", {"schema_version": 1, "nodes": [], "edges": []})
    open_editor(page, made["id"])
    for node_type in ("trigger.manual", "text.template", "text.template"):
        page.locator(f'.palette-item[data-node-type="{node_type}"]').click()
    page.get_by_test_id("node-template_2").wait_for()
    page.wait_for_timeout(700)  # the canvas pans to a node placed off screen in 200 ms
    shot("three nodes added")

    # Named as people read them, numbered when the name is taken; the id only in small print.
    titles = {
        node_id: page.locator(f'[data-testid="node-{node_id}"] .node-label').inner_text()
        for node_id in ("manual_1", "template_1", "template_2")
    }
    assert titles == {
        "manual_1": "Manual trigger",
        "template_1": "Text template",
        "template_2": "Text template 2",
    }
    assert page.get_by_label("Label", exact=True).input_value() == "Text template 2"
    head = page.get_by_label("Settings of template_2", exact=True).locator(".panel-head")
    assert head.inner_text().split("\n") == [
        "Text template 2",
        "Text template · text.template · id template_2",
    ]

    # Each lands right of the one added before it (it was selected), on the same row.
    boxes = {
        node_id: page.get_by_test_id(f"node-{node_id}").bounding_box()
        for node_id in ("manual_1", "template_1", "template_2")
    }
    assert boxes["manual_1"]["x"] + boxes["manual_1"]["width"] < boxes["template_1"]["x"]
    assert boxes["template_1"]["x"] + boxes["template_1"]["width"] < boxes["template_2"]["x"]
    assert abs(boxes["manual_1"]["y"] - boxes["template_2"]["y"]) < 2
    # The third was placed past the right edge at first: the canvas followed it.
    canvas = page.get_by_test_id("canvas").bounding_box()
    assert boxes["template_2"]["x"] + boxes["template_2"]["width"] <= canvas["x"] + canvas["width"]

    select_node(page, "template_1")  # named as its type: the type's name is not said twice
    head = page.get_by_label("Settings of template_1", exact=True).locator(".panel-head")
    assert head.inner_text().split("\n") == ["Text template", "text.template · id template_1"]

    # Saved under those names.
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved as version").wait_for()
    stored = call(page, "GET", f"/api/v1/workflows/{made['id']}")["definition"]["nodes"]
    assert sorted(n["data"]["label"] for n in stored) == [
        "Manual trigger",
        "Text template",
        "Text template 2",
    ]


def test_headers_as_a_table_and_trigger_fields_as_forms_round_trip(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(
        page,
        "Structured",
        {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "fetch",
                    "type": "http.request",
                    "position": {"x": 0, "y": 0},
                    "data": {"label": "fetch", "config": {"url": "http://127.0.0.1:9/"}},
                },
                {
                    "id": "start",
                    "type": "trigger.manual",
                    "position": {"x": 0, "y": 240},
                    "data": {"label": "start", "config": {}},
                },
            ],
            "edges": [],
        },
    )
    open_editor(page, made["id"])
    select_node(page, "fetch")
    page.get_by_role("button", name="+ Add header").click()
    page.get_by_label("Headers: name 1").fill("Accept")
    page.get_by_label("Headers: value 1").fill("application/json")
    page.get_by_role("button", name="+ Add header").click()
    page.get_by_label("Headers: name 2").fill("X-Trace")
    page.get_by_label("Headers: value 2").fill("on")
    shot("headers as a table")
    page.get_by_role("button", name="Remove header 2").click()

    select_node(page, "start")
    page.get_by_role("button", name="+ Add field").click()
    shot("field added")
    item = page.get_by_role("group", name="Field 1")
    item.get_by_label("Name *", exact=True).fill("city")
    item.get_by_label("Type", exact=True).select_option(label="string")
    item.get_by_label("Required", exact=True).check()
    page.get_by_role("button", name="+ Add field").click()
    page.get_by_role("group", name="Field 2").get_by_label("Name *", exact=True).fill("days")
    page.get_by_role("group", name="Field 2").get_by_label("Type", exact=True).select_option(
        label="integer"
    )
    page.locator('[data-testid="node-start"] .react-flow__handle[data-port="days"]').wait_for()
    shot("trigger fields as forms")

    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved as version").wait_for()
    stored = {
        n["id"]: n["data"]["config"]
        for n in call(page, "GET", f"/api/v1/workflows/{made['id']}")["definition"]["nodes"]
    }
    assert stored["fetch"]["headers"] == {"Accept": "application/json"}
    assert [(f["name"], f["type"], f.get("required")) for f in stored["start"]["fields"]] == [
        ("city", "string", True),
        ("days", "integer", False),
    ]

    page.reload()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    select_node(page, "fetch")
    assert page.get_by_label("Headers: name 1").input_value() == "Accept"
    assert page.get_by_label("Headers: value 1").input_value() == "application/json"
    assert page.get_by_label("Headers: name 2").count() == 0
    select_node(page, "start")
    assert (
        page.get_by_role("group", name="Field 2").get_by_label("Name *", exact=True).input_value()
        == "days"
    )
    shot("read back after reload")


def test_dark_mode_follows_the_system_and_the_toggle(page: Any, shot: Shot) -> None:
    page.emulate_media(color_scheme="dark")
    sign_up(page)
    made = create_workflow(
        page,
        "Dark",
        {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "words",
                    "type": "text.value",
                    "position": {"x": 0, "y": 0},
                    "data": {"label": "words", "config": {"text": "night"}},
                },
                {
                    "id": "route",
                    "type": "flow.condition",
                    "position": {"x": 320, "y": 0},
                    "data": {"label": "route", "config": {"operator": "eq", "operand": "x"}},
                },
            ],
            "edges": [
                {
                    "id": "e1",
                    "source": "words",
                    "sourceHandle": "text",
                    "target": "route",
                    "targetHandle": "value",
                }
            ],
        },
    )
    open_editor(page, made["id"])
    select_node(page, "route")

    def background(selector: str) -> tuple[int, ...]:
        color = page.evaluate(
            f"() => getComputedStyle(document.querySelector('{selector}')).backgroundColor"
        )
        return tuple(int(x) for x in re.findall(r"\d+", color)[:3])

    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    assert sum(background(".flow-node")) < 150
    assert sum(background(".side-panel")) < 150
    shot("dark editor")

    toggle = page.get_by_role("button", name="Dark mode", exact=True)
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
    assert sum(background(".flow-node")) > 600
    page.reload()
    page.get_by_role("toolbar", name="Workflow").wait_for()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
    shot("light by choice")


def test_an_inline_mcp_server_is_a_form_with_an_env_table(page: Any, shot: Shot) -> None:
    sign_up(page)
    made = create_workflow(
        page,
        "Inline MCP",
        {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "tool",
                    "type": "mcp.tool",
                    "position": {"x": 0, "y": 0},
                    "data": {"label": "tool", "config": {"tool": "echo"}},
                }
            ],
            "edges": [],
        },
    )
    open_editor(page, made["id"])
    select_node(page, "tool")
    inline = page.get_by_role("group", name="Server written inline")
    inline.get_by_label("Transport").select_option("stdio")
    inline.get_by_label("Command").fill("python3")
    inline.get_by_role("button", name="+ Add env").click()
    inline.get_by_label("Env: name 1").fill("API_REGION")
    inline.get_by_label("Env: value 1").fill("eu")
    shot("inline server with env")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text=re.compile("Save")).wait_for()
    stored = call(page, "GET", f"/api/v1/workflows/{made['id']}")["definition"]["nodes"][0]
    server = stored["data"]["config"]["server"]
    assert server["transport"] == "stdio"
    assert server["command"] == "python3"
    assert server["env"] == {"API_REGION": "eu"}
