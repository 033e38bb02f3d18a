"""``run_file`` as ``flowloom run`` calls it: the examples run, invalid files and inputs exit 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from flowloom.cli.run import coerce_inputs, parse_inputs, run_file
from flowloom.example_workflows import example_dir
from flowloom.exceptions import InputError
from flowloom.graph import parse_definition
from flowloom.nodes.registry import default_registry
from flowloom.settings import Settings

EXAMPLES = sorted(example_dir().glob("*.json"))
#: Examples that stop to ask a person; the command line cannot answer them.
WAITING_EXAMPLES = {"approval_gate"}
RUNNABLE_EXAMPLES = [path for path in EXAMPLES if path.stem not in WAITING_EXAMPLES]


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False), out


@pytest.mark.parametrize("path", RUNNABLE_EXAMPLES, ids=lambda p: p.stem)
async def test_every_example_runs_and_prints_its_outputs(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    shown, out = console()
    code = await run_file(settings, path, {}, as_json=False, console=shown)
    assert code == 0, out.getvalue()
    assert "run completed" in out.getvalue()
    assert " = " in out.getvalue(), "outputs are printed"

    code = await run_file(settings, path, {}, as_json=True, console=shown)
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "COMPLETED"
    assert set(printed) >= {"run_id", "status", "duration_ms", "outputs", "nodes"}
    assert all(n["status"] in ("SUCCEEDED", "CACHED", "SKIPPED") for n in printed["nodes"].values())


async def test_an_example_that_waits_for_a_person_exits_1_and_says_so(tmp_path: Path) -> None:
    shown, out = console()
    (path,) = [p for p in EXAMPLES if p.stem == "approval_gate"]
    code = await run_file(Settings(data_dir=tmp_path / "data"), path, {}, False, shown)
    assert code == 1
    assert "waiting: review (approval)" in out.getvalue()


async def test_an_invalid_file_exits_2_naming_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "nodes": [{"id": "x", "type": "text.nope", "data": {"config": {}}}],
                "edges": [],
            }
        )
    )
    shown, out = console()
    code = await run_file(Settings(data_dir=tmp_path / "d"), bad, {}, as_json=False, console=shown)
    assert code == 2
    assert "x.type: unknown node type 'text.nope'" in out.getvalue()
    assert not (tmp_path / "d" / "flowloom.db").exists(), "nothing is written"


async def test_a_failing_run_exits_1(tmp_path: Path) -> None:
    graph = {
        "nodes": [
            {
                "id": "t",
                "type": "trigger.manual",
                "data": {"config": {"fields": [{"name": "n", "type": "number", "required": True}]}},
            },
        ],
        "edges": [],
    }
    path = tmp_path / "needs.json"
    path.write_text(json.dumps(graph))
    shown, out = console()
    code = await run_file(Settings(data_dir=tmp_path / "d"), path, {}, as_json=False, console=shown)
    assert code == 1
    assert "the run needs the input 'n'" in out.getvalue()
    code = await run_file(
        Settings(data_dir=tmp_path / "d"), path, {"n": "abc"}, as_json=False, console=shown
    )
    assert code == 2
    assert "input 'n' should be number" in out.getvalue()


def test_parse_inputs_decodes_json_and_keeps_text() -> None:
    assert parse_inputs(["k=3", "s=hello", "b=true", "l=[1,2]", "e="]) == {
        "k": 3,
        "s": "hello",
        "b": True,
        "l": [1, 2],
        "e": "",
    }
    with pytest.raises(InputError):
        parse_inputs(["novalue"])


def test_text_fields_keep_what_was_typed() -> None:
    definition = parse_definition(
        {
            "nodes": [
                {
                    "id": "t",
                    "type": "trigger.manual",
                    "data": {"config": {"fields": [{"name": "zip", "type": "string"}]}},
                }
            ],
            "edges": [],
        }
    )
    assert coerce_inputs(definition, {"zip": 1234}, default_registry()) == {"zip": "1234"}


async def test_a_called_workflow_beside_the_file_is_stored_and_its_problems_refused(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    for name in ("shout_each_word", "shout_item"):
        (folder / f"{name}.json").write_text((example_dir() / f"{name}.json").read_text())
    settings = Settings(data_dir=tmp_path / "data")
    shown, out = console()
    assert await run_file(settings, folder / "shout_each_word.json", {}, False, shown) == 0
    assert 'join.text = "GRAPHS! NODES! EDGES!"' in out.getvalue()

    broken = json.loads((folder / "shout_item.json").read_text())
    broken["nodes"][1]["type"] = "text.nope"
    (folder / "shout_item.json").write_text(json.dumps(broken))
    shown, out = console()
    assert await run_file(settings, folder / "shout_each_word.json", {}, False, shown) == 2
    assert "shout_item.json: unknown node type 'text.nope'" in out.getvalue()
