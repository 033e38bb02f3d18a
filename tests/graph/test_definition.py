"""The definition document: React Flow's shape in, the same document out, clear shape errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flowloom.exceptions import ValidationFailed
from flowloom.graph import parse_definition, parse_definition_json

CANVAS: dict[str, Any] = {
    "schema_version": 1,
    "viewport": {"x": 12.5, "y": -40, "zoom": 0.8},
    "nodes": [
        {
            "id": "load",
            "type": "image.load",
            "position": {"x": 0, "y": 0},
            "data": {"label": "Load", "config": {"url": "https://example.com/a.png"}},
            "measured": {"width": 220, "height": 96},
            "selected": True,
            "width": 220,
            "dragging": False,
        },
        {
            "id": "crop",
            "type": "image.crop",
            "position": {"x": 300, "y": 20.5},
            "data": {
                "label": "Crop",
                "config": {"x": 10, "y": 10, "width": 50, "height": 50},
                "collapsed": True,
            },
            "sourcePosition": "right",
        },
    ],
    "edges": [
        {
            "id": "e1",
            "source": "load",
            "sourceHandle": "image",
            "target": "crop",
            "targetHandle": "image",
            "animated": True,
            "style": {"stroke": "#999"},
        }
    ],
}


def test_canvas_document_round_trips_unchanged() -> None:
    definition = parse_definition(copy.deepcopy(CANVAS))

    assert definition.to_json() == CANVAS


def test_fields_read_as_python_names() -> None:
    definition = parse_definition(CANVAS)

    edge = definition.edges[0]
    assert (edge.source, edge.source_handle, edge.target, edge.target_handle) == (
        "load",
        "image",
        "crop",
        "image",
    )
    assert definition.nodes[1].config == {"x": 10, "y": 10, "width": 50, "height": 50}
    assert definition.node_map()["load"].data.label == "Load"


def test_schema_version_is_written_even_when_the_input_left_it_out() -> None:
    document = {"nodes": [], "edges": []}

    assert parse_definition(document).to_json() == {"schema_version": 1, "nodes": [], "edges": []}


def test_every_malformed_part_is_reported_with_its_path_and_node() -> None:
    document = {
        "nodes": [
            {"id": "a", "position": {"x": 0, "y": "left"}, "data": {}},
            {"id": "b", "type": "text.value", "data": {"config": "not an object"}},
        ],
        "edges": [{"id": "e1", "source": "a", "target": "b", "targetHandle": "text"}],
    }

    with pytest.raises(ValidationFailed) as caught:
        parse_definition(document)

    found = {(p.node_id, p.field) for p in caught.value.problems}
    assert found == {
        ("a", "nodes.0.type"),
        ("a", "nodes.0.position.y"),
        ("b", "nodes.1.data.config"),
        (None, "edges.0.sourceHandle"),
    }
    edge_problem = next(p for p in caught.value.problems if p.field == "edges.0.sourceHandle")
    assert edge_problem.message.startswith("edge 'e1':")


def test_unknown_schema_version_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_definition({"schema_version": 2, "nodes": [], "edges": []})

    assert [p.field for p in caught.value.problems] == ["schema_version"]


@pytest.mark.parametrize("document", [[], "nodes", None, 3])
def test_a_document_that_is_not_an_object_is_one_clear_problem(document: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_definition(document)

    assert len(caught.value.problems) == 1
    assert "JSON object" in caught.value.problems[0].message


def test_json_text_that_does_not_parse_names_the_position() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_definition_json('{"nodes": [}')

    assert "line 1, column 12" in caught.value.problems[0].message


def test_json_text_parses_to_a_definition() -> None:
    definition = parse_definition_json(b'{"nodes": [{"id": "v", "type": "text.value"}]}')

    assert definition.nodes[0].position.x == 0
    assert definition.nodes[0].config == {}
