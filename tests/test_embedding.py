"""flowloom from Python: ``flowloom.run()`` on an in-memory database, ``Flowloom`` on a data dir."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pgkit import POSTGRES_URL, require_postgres
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import flowloom
from flowloom.example_workflows import example_dir
from flowloom.graph import parse_definition
from flowloom.storage.database import Database

ROOT = Path(__file__).resolve().parent.parent
HELLO = example_dir() / "hello_template.json"
RUNNABLE = sorted(p for p in example_dir().glob("*.json") if p.stem != "approval_gate")


def needs_number() -> dict[str, Any]:
    """A trigger that needs a number ``n``, and a template that shows it."""
    return {
        "nodes": [
            {
                "id": "t",
                "type": "trigger.manual",
                "data": {"config": {"fields": [{"name": "n", "type": "number", "required": True}]}},
            },
            {
                "id": "show",
                "type": "text.template",
                "data": {"config": {"template": "n is {{ n }}", "variables": ["n"]}},
            },
        ],
        "edges": [
            {"id": "e", "source": "t", "sourceHandle": "n", "target": "show", "targetHandle": "n"}
        ],
    }


def test_run_a_file_and_read_outputs_and_every_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = flowloom.run(HELLO, inputs={"name": "Ada"})

    assert result.ok
    assert result.status is flowloom.RunStatus.COMPLETED
    assert result.outputs["lines"]["text"].startswith("Hello, Ada! Today's 3 topics:")
    assert list(result.nodes) == ["start", "greet", "lines"]
    greet = result.nodes["greet"]
    assert greet.status is flowloom.NodeStatus.SUCCEEDED
    assert greet.type == "text.template"
    assert greet.outputs == {"text": "Hello, Ada! Today's 3 topics:"}
    assert greet.attempts == 1
    assert result.raise_for_status() is result
    assert list(tmp_path.iterdir()) == [], "an in-memory run leaves nothing on disk"


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.stem)
def test_every_example_runs_in_memory(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = flowloom.run(str(path))
    assert result.status is flowloom.RunStatus.COMPLETED, result.error
    assert result.outputs
    assert list(tmp_path.iterdir()) == [], "blobs (image_crop's) stay in memory too"


def test_a_dict_and_a_definition_run_like_the_file() -> None:
    raw = json.loads(HELLO.read_text())
    from_dict = flowloom.run(raw, inputs={"name": "Bo"})
    from_definition = flowloom.run(parse_definition(raw), inputs={"name": "Bo"})
    assert from_dict.outputs == from_definition.outputs
    assert from_dict.outputs["lines"]["text"].startswith("Hello, Bo!")


def test_a_failing_node_gives_a_failed_result_naming_it() -> None:
    result = flowloom.run(needs_number())

    assert result.status is flowloom.RunStatus.FAILED
    assert not result.ok
    assert result.nodes["t"].status is flowloom.NodeStatus.FAILED
    assert "the run needs the input 'n'" in str(result.nodes["t"].error)
    assert result.nodes["show"].status is not flowloom.NodeStatus.SUCCEEDED
    with pytest.raises(flowloom.NodeFailed, match="the run needs the input 'n'") as caught:
        result.raise_for_status()
    assert caught.value.node_id == "t"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"m": 1}, "unknown input 'm': this workflow takes 'n'"),
        ({"n": "three"}, "input 'n' should be number, got string 'three'"),
        ({"n": "\x00"}, "input 'n' should be number"),
        ([("n", 1)], "inputs are a mapping of names to values, not list"),
    ],
    ids=["unknown", "wrong-type", "nul", "not-a-mapping"],
)
def test_bad_inputs_are_refused_naming_what_is_wrong(inputs: Any, message: str) -> None:
    with pytest.raises(flowloom.InputError, match=message):
        flowloom.run(needs_number(), inputs=inputs)


def test_an_input_that_no_database_can_store_is_refused() -> None:
    with pytest.raises(flowloom.InputError, match="name"):
        flowloom.run(HELLO, inputs={"name": "a\x00b"})


def test_a_missing_file_and_an_invalid_definition_are_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(flowloom.NotFound, match=f"workflow file '{missing}' not found"):
        flowloom.run(missing)

    bad = {"nodes": [{"id": "x", "type": "text.nope", "data": {"config": {}}}], "edges": []}
    with pytest.raises(flowloom.ValidationFailed) as caught:
        flowloom.run(bad)
    (problem,) = caught.value.problems
    assert str(problem).startswith("x.type: unknown node type 'text.nope'")

    with pytest.raises(TypeError, match="not int"):
        flowloom.run(3)  # type: ignore[arg-type]


async def test_run_refuses_a_running_event_loop_and_says_what_to_use() -> None:
    with pytest.raises(RuntimeError, match=r"async with flowloom\.Flowloom"):
        flowloom.run(HELLO)


async def test_flowloom_on_a_data_dir_keeps_runs_across_instances(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with flowloom.Flowloom(data_dir=data_dir) as fl:
        assert not fl.in_memory
        first = await fl.run(HELLO, inputs={"name": "Ada"})
        failed = await fl.run(needs_number(), name="needs number")
    assert first.ok
    assert failed.status is flowloom.RunStatus.FAILED
    assert (data_dir / "flowloom.db").is_file()

    database_url = f"sqlite:///{data_dir / 'flowloom.db'}"
    async with flowloom.Flowloom(data_dir=data_dir, database_url=database_url) as fl:
        again = await fl.wait(first.run_id)
    assert again == first


async def test_flowloom_in_memory_answers_a_waiting_run_and_forgets_it_when_closed() -> None:
    async with flowloom.Flowloom() as fl:
        assert fl.in_memory
        waiting = await fl.run(example_dir() / "approval_gate.json")
        assert waiting.status is flowloom.RunStatus.WAITING
        assert waiting.nodes["review"].wait is not None
        with pytest.raises(flowloom.ExecutionError, match="waits for an answer to 'review'"):
            waiting.raise_for_status()

        done = await fl.answer(waiting.run_id, "review", {"approved": True})

        assert done.ok
        assert done.nodes["publish"].status is flowloom.NodeStatus.SUCCEEDED
        assert done.nodes["revise"].status is flowloom.NodeStatus.SKIPPED

    async with flowloom.Flowloom() as other:
        with pytest.raises(flowloom.NotFound):
            await other.wait(done.run_id)


async def test_flowloom_refuses_settings_given_twice_and_use_before_open(tmp_path: Path) -> None:
    with pytest.raises(flowloom.ConfigurationError, match="not both"):
        flowloom.Flowloom(data_dir=tmp_path, settings=flowloom.Flowloom().settings)
    with pytest.raises(flowloom.ConfigurationError, match="database_url"):
        flowloom.Flowloom(database_url="mysql://x/y")
    with pytest.raises(RuntimeError, match="not open"):
        await flowloom.Flowloom().run(HELLO)


def test_every_exported_name_resolves_and_importing_loads_no_engine() -> None:
    for name in flowloom.__all__:
        assert getattr(flowloom, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = flowloom.nothing
    code = "import sys, flowloom; print(any(m.startswith('flowloom.engine') for m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert printed.stdout.strip() == "False"


async def test_an_in_memory_database_is_one_database_for_all_its_connections() -> None:
    first, second = Database("sqlite://"), Database("sqlite:///:memory:")
    try:
        assert first.in_memory
        assert second.in_memory
        async with first.write() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
            await session.execute(text("INSERT INTO t VALUES (1)"))
        await first.run_write(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (2)"))
        fast = await first.run_read(
            lambda conn: conn.exec_driver_sql("SELECT x FROM t ORDER BY x").scalars().all()
        )
        async with first.read() as session:
            orm = (await session.execute(text("SELECT x FROM t ORDER BY x"))).scalars().all()
        assert fast == orm == [1, 2]
        async with second.read() as session:
            with pytest.raises(OperationalError, match="no such table"):
                await session.execute(text("SELECT x FROM t"))
    finally:
        await first.dispose()
        await second.dispose()


def test_the_readme_examples_run(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## From Python") :].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2
    (tmp_path / "examples").symlink_to(example_dir())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    printed = [
        subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for block in blocks
    ]
    assert printed[0].startswith("COMPLETED\nHello, Ada!")
    assert "Published: " in printed[1]
    assert (tmp_path / ".flowloom" / "flowloom.db").is_file(), "the second keeps its runs"


async def _admin(sql: str) -> None:
    admin = Database(POSTGRES_URL)
    try:
        async with admin.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(sql)
    finally:
        await admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty database on the test PostgreSQL, dropped afterwards."""
    require_postgres()
    name = f"flowloom_embedding_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
async def test_flowloom_on_postgresql_keeps_runs_across_instances(
    postgres_url: str, tmp_path: Path
) -> None:
    async with flowloom.Flowloom(data_dir=tmp_path, database_url=postgres_url) as fl:
        first = await fl.run(HELLO, inputs={"name": "Pg"})
    async with flowloom.Flowloom(data_dir=tmp_path, database_url=postgres_url) as fl:
        again = await fl.wait(first.run_id)
    assert first.ok
    assert again == first
    assert not (tmp_path / "flowloom.db").exists()
