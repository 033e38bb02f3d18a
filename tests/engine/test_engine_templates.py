"""Templates in string config fields, rendered over the node's inputs before it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from enginekit import definition, edge, make_owner, node, node_rows, registry, save_workflow
from pydantic import Field

from flowloom.engine import Engine, signature
from flowloom.graph.ports import Port, PortType
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus


class EchoConfig(NodeConfig):
    text: str = Field(default="", max_length=30)
    parts: list[str] = Field(default_factory=list)
    raw: str = ""


class Echo(Node[EchoConfig]):
    """Outputs its config as it received it."""

    type_name = "test.echo"
    category = Category.ACTION
    Config = EchoConfig
    raw_template_fields = frozenset({"raw"})

    def inputs(self, config: EchoConfig) -> list[Port]:
        return [Port("value", PortType.ANY)]

    def outputs(self, config: EchoConfig) -> list[Port]:
        return [Port("config", PortType.OBJECT)]

    async def run(self, ctx: RunContext, config: EchoConfig, inputs: dict[str, Any]) -> NodeResult:
        return NodeResult({"config": config.model_dump(include={"text", "parts", "raw"})})


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[Engine]:
    types = registry()
    types.register(Echo)
    engine = Engine(db, types)
    yield engine
    await engine.close()


async def run_echo(engine: Engine, db: Database, config: dict[str, Any]) -> Any:
    graph = definition(
        [node("start", "test.add", {"amount": 20}), node("echo", "test.echo", config)],
        [edge("start", "echo")],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    return owner, result, (await node_rows(db, result.run_id))["echo"]


async def test_string_fields_render_over_the_inputs_nested_ones_too(
    engine: Engine, db: Database
) -> None:
    _, result, _ = await run_echo(
        engine,
        db,
        {"text": "got {{ value * 2 }}", "parts": ["a", "{{ value + 1 }}"], "raw": "{{ value }}"},
    )
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {
        "echo": {"config": {"text": "got 40.0", "parts": ["a", "21.0"], "raw": "{{ value }}"}}
    }


async def test_the_signature_is_over_the_rendered_config(engine: Engine, db: Database) -> None:
    owner, result, row = await run_echo(engine, db, {"text": "v={{ value }}"})
    assert result.status is RunStatus.COMPLETED
    assert row.cache_signature == signature(
        owner_id=owner,
        node_type="test.echo",
        version=1,
        config={"text": "v=20.0"},
        inputs={"value": 20.0},
    )


async def test_an_undefined_name_fails_the_node_naming_the_field(
    engine: Engine, db: Database
) -> None:
    _, result, row = await run_echo(engine, db, {"parts": ["ok", "{{ missing }}"]})
    assert result.status is RunStatus.FAILED
    assert row.status == NodeStatus.FAILED
    assert row.error["message"] == "config field 'parts.1': template error: 'missing' is undefined"


async def test_a_rendered_value_the_config_refuses_fails_naming_the_field(
    engine: Engine, db: Database
) -> None:
    _, result, row = await run_echo(engine, db, {"text": "{{ 'x' * 40 }}"})
    assert result.status is RunStatus.FAILED
    assert row.error["message"].startswith("config field 'text': rendered to a bad value")
    assert "at most 30 characters" in row.error["message"]


async def test_the_sandbox_refuses_private_attributes(engine: Engine, db: Database) -> None:
    _, result, row = await run_echo(engine, db, {"text": "{{ value.__class__ }}"})
    assert result.status is RunStatus.FAILED
    assert row.error["message"].startswith("config field 'text':")


async def test_text_template_renders_its_own_template_once(engine: Engine, db: Database) -> None:
    # Rendered twice, this would print "Ada"; rendered once it prints the braces it built.
    graph = definition(
        [
            node("name", "text.value", {"text": "Ada"}),
            node(
                "greet",
                "text.template",
                {"template": "{{ '{{' }} name }} is {{ name }}", "variables": ["name"]},
            ),
        ],
        [edge("name", "greet", source_handle="text", target_handle="name")],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    assert result.outputs == {"greet": {"text": "{{ name }} is Ada"}}
