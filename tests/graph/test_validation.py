"""Validation against the real node registry: every kind of problem, all reported at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from graphkit import edge

from flowloom.exceptions import Problem, ValidationFailed
from flowloom.graph import ensure_valid, parse_definition, validate
from flowloom.nodes import default_registry

REGISTRY = default_registry()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def node(node_id: str, type_name: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": type_name,
        "position": {"x": 0, "y": 0},
        "data": {"config": config},
    }


def problems_of(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> list[Problem]:
    return validate(parse_definition({"nodes": nodes, "edges": edges}), REGISTRY)


def where(problems: list[Problem]) -> set[tuple[str | None, str | None, str | None]]:
    return {(p.node_id, p.port, p.field) for p in problems}


@pytest.mark.parametrize("name", ["hello_template", "sort_numbers", "image_crop"])
def test_each_example_validates_without_problems(name: str) -> None:
    definition = parse_definition(json.loads((EXAMPLES / f"{name}.json").read_text()))

    assert validate(definition, REGISTRY) == []


def test_every_example_file_is_covered() -> None:
    assert {path.stem for path in EXAMPLES.glob("*.json")} >= {
        "hello_template",
        "sort_numbers",
        "image_crop",
    }


def test_unknown_type_suggests_close_names() -> None:
    problems = problems_of([node("t", "text.templat")], [])

    assert where(problems) == {("t", None, "type")}
    assert "did you mean 'text.template'" in problems[0].message


def test_bad_config_points_at_the_nested_field() -> None:
    problems = problems_of(
        [
            node("start", "trigger.manual", fields=[{"name": "ok"}, {"name": "no spaces"}]),
            node("crop", "image.crop", x=60, width=50),
            node("sort", "list.sort", order="sideways"),
        ],
        [],
    )

    # Ports of a node with a bad config are unknown, so list.sort's unwired input is not blamed.
    assert where(problems) == {
        ("start", None, "fields.1.name"),
        ("crop", None, "width"),
        ("sort", None, "order"),
    }
    crop = next(p for p in problems if p.node_id == "crop")
    assert "110" in crop.message
    assert "edge" in crop.message


def test_problems_of_a_node_with_bad_config_do_not_cascade() -> None:
    problems = problems_of(
        [node("v", "text.value", text="3,1"), node("split", "text.split", max_items=0)],
        [edge("v", "text", "split", "text")],
    )

    assert where(problems) == {("split", None, "max_items")}


def test_duplicate_node_ids() -> None:
    problems = problems_of([node("a", "text.value"), node("a", "text.value")], [])

    assert [(p.node_id, p.message) for p in problems] == [("a", "duplicate node id")]


def test_dangling_edges_name_the_missing_node_or_port() -> None:
    problems = problems_of(
        [node("v", "text.value"), node("split", "text.split")],
        [
            edge("ghost", "text", "split", "text"),
            edge("v", "txt", "split", "text"),
            edge("v", "text", "split", "body"),
            edge("v", "text", "nowhere", "x"),
        ],
    )

    messages = {(p.node_id, p.port): p.message for p in problems}
    assert "'ghost', which does not exist" in messages[("split", "text")]
    assert "no output port 'txt'; outputs are 'text'" in messages[("v", "txt")]
    assert "no input port 'body'; inputs are 'text'" in messages[("split", "body")]
    assert "'nowhere', which does not exist" in messages[("v", "text")]


def test_incompatible_port_types() -> None:
    problems = problems_of(
        [node("v", "text.value"), node("sort", "list.sort")],
        [edge("v", "text", "sort", "items")],
    )

    assert where(problems) == {("sort", "items", None)}
    assert "gives string, this input takes list" in problems[0].message


def test_integer_feeds_number_and_anything_feeds_any() -> None:
    problems = problems_of(
        [
            node("start", "trigger.manual", fields=[{"name": "n", "type": "integer"}]),
            node("cond", "flow.condition", operator="gt", operand=3),
            node("http", "http.request", url="https://example.com"),
            node("extract", "json.extract", expression="a"),
        ],
        [
            edge("start", "n", "cond", "value"),
            edge("http", "status", "extract", "data"),
        ],
    )

    assert problems == []


def test_two_edges_into_a_single_value_port_but_not_into_a_list_port() -> None:
    problems = problems_of(
        [
            node("a", "text.value"),
            node("b", "text.value"),
            node("split", "text.split"),
            node("merge", "flow.merge"),
        ],
        [
            edge("a", "text", "split", "text"),
            edge("b", "text", "split", "text"),
            edge("a", "text", "merge", "values"),
            edge("b", "text", "merge", "values"),
        ],
    )

    assert where(problems) == {("split", "text", None)}
    assert "2 edges" in problems[0].message
    assert "flow.merge" in problems[0].message


def test_missing_required_input_unless_wired_typed_in_or_defaulted() -> None:
    problems = problems_of(
        [
            node("split", "text.split"),
            node("typed", "text.split", text="a\nb"),
            node("delay", "flow.delay"),
            node("t", "text.template", template="{{ a }}{{ b }}", variables=["a", "b"], b=1),
        ],
        [],
    )

    assert where(problems) == {("split", "text", None), ("t", "a", None)}


def test_config_literal_of_the_wrong_type_and_unknown_config_keys() -> None:
    problems = problems_of(
        [node("split", "text.split", text=42), node("v", "text.value", txet="typo")],
        [],
    )

    messages = {(p.node_id, p.port, p.field): p.message for p in problems}
    assert messages[("split", "text", None)] == "value is number, but the input takes string"
    assert "unknown config field 'txet'" in messages[("v", None, "txet")]


def test_cycle_names_its_nodes() -> None:
    template = {"template": "{{ x }}", "variables": ["x"]}
    problems = problems_of(
        [
            node("a", "text.template", **template),
            node("b", "text.template", **template),
            node("c", "text.template", **template),
            node("after", "text.template", **template),
            node("self", "text.template", **template),
        ],
        [
            edge("a", "text", "b", "x"),
            edge("b", "text", "c", "x"),
            edge("c", "text", "a", "x"),
            edge("c", "text", "after", "x"),
            edge("self", "text", "self", "x"),
        ],
    )

    assert sorted(p.message for p in problems) == ["cycle: a -> b -> c -> a", "cycle: self -> self"]


def test_all_problems_are_reported_at_once() -> None:
    definition = parse_definition(
        {
            "nodes": [
                node("unknown", "text.nope"),
                node("bad", "flow.delay", seconds=-1),
                node("sort", "list.sort"),
                node("v", "text.value"),
                node("v", "text.value"),
                node("split", "text.split"),
            ],
            "edges": [edge("v", "text", "sort", "items"), edge("v", "text", "ghost", "x")],
        }
    )

    with pytest.raises(ValidationFailed) as caught:
        ensure_valid(definition, REGISTRY)

    found = where(caught.value.problems)
    assert ("unknown", None, "type") in found
    assert ("bad", None, "seconds") in found
    assert ("v", None, None) in found  # duplicate id
    assert ("sort", "items", None) in found  # incompatible
    assert ("v", "text", None) in found  # dangling
    assert ("split", "text", None) in found  # missing input
    assert len(caught.value.problems) == 6
