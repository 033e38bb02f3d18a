"""The command line refuses what the database cannot store, before anything is written: an
input of ``flowloom run`` (``-i NAME=VALUE``), a definition file, or an option of ``users
create`` or ``generate`` holding a NUL or a lone surrogate (how Python passes on argument bytes
that are not UTF-8) exits 2 with one line naming the input, field or option."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowloom.cli.main import app
from flowloom.cli.run import parse_inputs
from flowloom.exceptions import InputError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello_template.json"

runner = CliRunner()


def flowloom(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args], input=stdin)
    return result.exit_code, result.output


def stored_rows(data_dir: Path) -> tuple[int, int]:
    """(workflows, runs) in the data dir's database; (0, 0) when none was made."""
    path = data_dir / "flowloom.db"
    if not path.exists():
        return 0, 0
    with sqlite3.connect(path) as connection:
        workflows = connection.execute("SELECT count(*) FROM workflows").fetchone()[0]
        runs = connection.execute("SELECT count(*) FROM workflow_runs").fetchone()[0]
    return int(workflows), int(runs)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ('name="\\u0000"', "name"),
        ('name="\\ud800"', "name"),
        ("name=a\udcffb", "name"),  # a byte that is not UTF-8, as the shell hands it over
        ('name={"a": ["ok", "\\u0000"]}', "name.a.1"),
        ("name=1e400", "name"),
        ("n\udcff=x", "n\\udcff"),
    ],
)
def test_parse_inputs_refuses_what_cannot_be_stored_naming_the_input(item: str, field: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_inputs([item])
    assert refused.value.field == field
    assert field in str(refused.value)


def test_parse_inputs_keeps_nan_and_infinity_as_text() -> None:
    assert parse_inputs(["a=NaN", "b=-Infinity", "c=1.5"]) == {
        "a": "NaN",
        "b": "-Infinity",
        "c": 1.5,
    }


@pytest.mark.parametrize("value", ['"\\u0000"', '"\\ud800"'], ids=["nul", "surrogate"])
def test_run_with_an_unstorable_input_exits_2_and_writes_nothing(
    tmp_path: Path, value: str
) -> None:
    data_dir = tmp_path / "data"
    code, output = flowloom(data_dir, "run", str(EXAMPLE), "-i", f"name={value}", "--json")
    assert code == 2, output
    (line,) = output.strip().splitlines()
    assert line.startswith("flowloom: error: --input name:")
    assert stored_rows(data_dir) == (0, 0)


@pytest.mark.parametrize("text", ["\\u0000", "\\ud800"], ids=["nul", "surrogate"])
def test_run_of_a_file_with_unstorable_text_exits_2_and_writes_nothing(
    tmp_path: Path, text: str
) -> None:
    definition = json.loads(EXAMPLE.read_text())
    index, key = next(
        (i, k)
        for i, n in enumerate(definition["nodes"])
        for k, v in n["data"].get("config", {}).items()
        if isinstance(v, str)
    )
    definition["nodes"][index]["data"]["config"][key] = "PLACEHOLDER"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(definition).replace("PLACEHOLDER", f"x{text}"))
    data_dir = tmp_path / "data"

    code, output = flowloom(data_dir, "run", str(path), "--json")

    assert code == 2, output
    (line,) = output.strip().splitlines()
    assert line.startswith(f"flowloom: error: {path}: nodes.{index}.data.config.{key}:"), line
    assert stored_rows(data_dir) == (0, 0)


def test_users_create_refuses_an_unstorable_email_or_password(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    email = flowloom(
        data_dir,
        "users",
        "create",
        "--email",
        "a\udcff@example.com",
        "--password-stdin",
        stdin="long enough password\n",
    )
    password = flowloom(
        data_dir,
        "users",
        "create",
        "--email",
        "a@example.com",
        "--password-stdin",
        stdin="long enough\x00password\n",
    )
    for (code, output), option in ((email, "--email"), (password, "the password")):
        assert code == 2, output
        (line,) = output.strip().splitlines()[-1:]
        assert line.startswith(f"flowloom: error: {option}:"), output
    assert stored_rows(data_dir) == (0, 0)


def test_generate_refuses_an_unstorable_prompt_or_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    prompt = flowloom(data_dir, "generate", "sort \udcff these")
    name = flowloom(data_dir, "generate", "sort these", "--name", "n\udcff")
    for (code, output), option in ((prompt, "the prompt"), (name, "--name")):
        assert code == 2, output
        (line,) = output.strip().splitlines()
        assert line.startswith(f"flowloom: error: {option}:"), output
    assert stored_rows(data_dir) == (0, 0)
