"""trigger.manual: one output per declared field, values from the run's inputs."""

from __future__ import annotations

import pytest

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.graph import PortType
from flowloom.nodes import default_registry
from flowloom.testing import make_context, run_node

FIELDS = {
    "fields": [
        {"name": "name", "type": "string", "required": True},
        {"name": "count", "type": "integer", "default": 3},
        {"name": "ratio", "type": "number"},
    ]
}


def test_one_typed_output_per_field() -> None:
    node = default_registry().get("trigger.manual")

    ports = node.outputs(node.parse_config(FIELDS))

    assert [(p.name, p.type) for p in ports] == [
        ("name", PortType.STRING),
        ("count", PortType.INTEGER),
        ("ratio", PortType.NUMBER),
    ]


async def test_outputs_take_run_inputs_then_defaults() -> None:
    ctx = make_context(run_inputs={"name": "Ada", "ratio": 2, "unrelated": True})

    result = await run_node("trigger.manual", FIELDS, ctx=ctx)

    assert result.outputs == {"name": "Ada", "count": 3, "ratio": 2}


async def test_a_required_input_missing_from_the_run_fails_naming_it() -> None:
    with pytest.raises(NodeFailed, match="needs the input 'name'"):
        await run_node("trigger.manual", FIELDS, ctx=make_context(run_inputs={}))


async def test_an_input_of_the_wrong_type_fails_naming_it() -> None:
    ctx = make_context(run_inputs={"name": "Ada", "count": "three"})

    with pytest.raises(NodeFailed, match="input 'count' should be integer, got string"):
        await run_node("trigger.manual", FIELDS, ctx=ctx)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ([{"name": "a"}, {"name": "a"}], "fields", "a repeated"),
        ([{"name": "1st"}], "fields.0.name", "String should match pattern"),
        ([{"name": "n", "type": "integer", "default": "x"}], "fields.0", "is string, not integer"),
        ([{"name": "n", "type": "picture"}], "fields.0.type", "Input should be"),
    ],
)
async def test_bad_fields_are_config_problems(fields: object, field: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("trigger.manual", {"fields": fields})

    [problem] = caught.value.problems
    assert problem.field == field
    assert message in problem.message
