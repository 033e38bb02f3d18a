"""``validate_file`` as ``flowloom validate`` calls it: every problem, exit 0 or 2, nothing run."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from graphkit import edge
from rich.console import Console

from flowloom.cli.validate import validate_file
from flowloom.example_workflows import example_dir

EXAMPLES = sorted(example_dir().glob("*.json"))


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=300, force_terminal=False), out


def write(tmp_path: Path, graph: Any) -> Path:
    path = tmp_path / "graph.json"
    path.write_text(graph if isinstance(graph, str) else json.dumps(graph))
    return path


def node(node_id: str, type_: str, config: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": type_, "data": {"config": config, **data}}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_is_valid(path: Path) -> None:
    shown, out = console()
    assert validate_file(path, shown, as_json=False) == 0
    assert f"{path}: valid (" in out.getvalue()


def test_every_problem_is_printed_with_node_port_and_message(tmp_path: Path) -> None:
    graph = {
        "nodes": [
            node("ghost", "text.nope", {}),
            node("sort", "list.sort", {"order": "sideways"}),
            node("join", "text.join", {}),
            node("crop", "image.crop", {"x": 1, "y": 1, "width": 5, "height": 5}),
            node("slow", "text.value", {}, timeout_s=-1, retry={"max_attempts": 0}),
        ],
        "edges": [
            edge("missing", "text", "join", "items"),
            edge("slow", "text", "crop", "image"),
        ],
    }
    shown, out = console()

    assert validate_file(write(tmp_path, graph), shown, as_json=False) == 2

    lines = out.getvalue().splitlines()
    printed = "\n".join(lines)
    assert "ghost.type: unknown node type 'text.nope'" in printed
    assert "sort.order:" in printed
    missing = "edge 'missing.text->join.items' comes from node 'missing', which does not exist"
    assert missing in printed
    assert "crop.image: edge 'slow.text->crop.image': incompatible port types" in printed
    assert "slow.timeout_s: timeout_s must be a positive number" in printed
    assert "slow.retry: bad retry policy" in printed
    assert lines[-1] == "6 problem(s)"
    assert all(line.startswith(f"{tmp_path / 'graph.json'}: ") for line in lines[:-1])


def test_json_output_is_one_object_listing_the_problems(tmp_path: Path) -> None:
    graph = {
        "nodes": [node("a", "list.sort", {}), node("b", "list.sort", {})],
        "edges": [edge("a", "items", "b", "items"), edge("b", "items", "a", "items")],
    }
    shown, out = console()

    assert validate_file(write(tmp_path, graph), shown, as_json=True) == 2

    report = json.loads(out.getvalue())
    assert report["valid"] is False
    assert (report["nodes"], report["edges"]) == (2, 2)
    assert report["problems"] == [
        {"node_id": "a", "port": None, "field": None, "message": "cycle: a -> b -> a"}
    ]


def test_a_valid_file_as_json(tmp_path: Path) -> None:
    graph = {"nodes": [node("t", "text.value", {"text": "hi"})], "edges": []}
    shown, out = console()
    assert validate_file(write(tmp_path, graph), shown, as_json=True) == 0
    assert json.loads(out.getvalue()) == {
        "file": str(tmp_path / "graph.json"),
        "valid": True,
        "nodes": 1,
        "edges": 0,
        "problems": [],
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"nodes": 3}', "nodes"),
    ],
)
def test_malformed_files_exit_2(tmp_path: Path, content: str, expected: str) -> None:
    shown, out = console()
    assert validate_file(write(tmp_path, content), shown, as_json=False) == 2
    assert expected in out.getvalue()


def test_an_unreadable_file_exits_2(tmp_path: Path) -> None:
    shown, out = console()
    assert validate_file(tmp_path / "absent.json", shown, as_json=True) == 2
    report = json.loads(out.getvalue())
    assert report["problems"][0]["message"].startswith("cannot read the file")
    assert report["nodes"] is None
