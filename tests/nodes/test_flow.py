"""flow.condition, flow.switch, flow.merge, flow.delay."""

from __future__ import annotations

from typing import Any

import pytest

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.nodes import NodeSettings, WaitForInput, default_registry
from flowloom.testing import make_context, run_node


async def condition(
    value: Any, operator: str, operand: Any = None, **config: Any
) -> dict[str, Any]:
    config |= {"operator": operator, "operand": operand}
    return dict((await run_node("flow.condition", config, {"value": value})).outputs)


@pytest.mark.parametrize(
    ("value", "operator", "operand", "taken"),
    [
        (3, "eq", 3, True),
        (3, "eq", 3.0, True),
        (1, "eq", True, False),
        ("a", "ne", "b", True),
        (5, "gt", 4, True),
        (4, "gte", 4, True),
        (4, "lt", 4, False),
        ("apple", "lte", "banana", True),
        ("hello world", "contains", "lo w", True),
        (["a", "b"], "contains", "b", True),
        ({"k": 1}, "contains", "k", True),
        ([1, 2], "not_contains", 3, True),
        ([], "truthy", None, False),
        (0, "falsy", None, True),
        ("", "empty", None, True),
        (0, "empty", None, False),
        ({}, "not_empty", None, False),
        ("order-1234", "matches", r"^order-\d+$", True),
        ("order-x", "matches", r"^order-\d+$", False),
    ],
)
async def test_condition_emits_the_value_only_on_the_taken_output(
    value: Any, operator: str, operand: Any, taken: bool
) -> None:
    outputs = await condition(value, operator, operand)

    assert outputs == {"true" if taken else "false": value}


async def test_condition_can_test_a_key_inside_the_value_and_missing_keys_read_as_null() -> None:
    order = {"total": 120, "customer": {"tier": "gold"}}

    assert await condition(order, "gt", 100, key="total") == {"true": order}
    assert await condition(order, "eq", "gold", key="customer.tier") == {"true": order}
    assert await condition(order, "empty", key="customer.email") == {"true": order}


async def test_condition_refuses_to_order_different_kinds() -> None:
    with pytest.raises(NodeFailed, match="cannot compare string '5' with number 3 using gt"):
        await condition("5", "gt", 3)


@pytest.mark.parametrize(
    ("operator", "operand", "message"),
    [
        ("gt", None, "gt needs a number or a text operand"),
        ("matches", "(unclosed", "not a regular expression"),
        ("matches", 3, "regular expression (text)"),
        ("sideways", 1, "Input should be"),
    ],
)
async def test_condition_config_problems(operator: str, operand: Any, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await condition(1, operator, operand)

    assert message in caught.value.problems[0].message


SWITCH = {
    "cases": [
        {"name": "small", "operator": "lt", "operand": 10},
        {"name": "medium", "operator": "lt", "operand": 100},
    ]
}


def test_switch_has_one_output_per_case_plus_default() -> None:
    node = default_registry().get("flow.switch")

    ports = node.outputs(node.parse_config(SWITCH))

    assert [port.name for port in ports] == ["small", "medium", "default"]


@pytest.mark.parametrize(("value", "output"), [(5, "small"), (50, "medium"), (500, "default")])
async def test_switch_takes_the_first_case_that_holds(value: int, output: str) -> None:
    assert (await run_node("flow.switch", SWITCH, {"value": value})).outputs == {output: value}


@pytest.mark.parametrize(
    ("cases", "field", "message"),
    [
        ([{"name": "a"}, {"name": "a"}], "cases", "a repeated"),
        ([{"name": "default"}], "cases.0.name", "'default' is the output"),
        ([{"name": "x", "operator": "gt"}], "cases.0.operand", "gt needs"),
        ([{"name": "x", "extra": 1}], "cases.0.extra", "Extra inputs"),
    ],
)
async def test_switch_config_problems(cases: list[Any], field: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("flow.switch", {"cases": cases}, {"value": 1})

    [problem] = caught.value.problems
    assert problem.field == field
    assert message in problem.message


async def test_merge_all_keeps_edge_order_and_first_takes_the_first() -> None:
    values = ["from b", "from a"]

    all_values = await run_node("flow.merge", {"mode": "all"}, {"values": values})
    first = await run_node("flow.merge", {"mode": "first"}, {"values": values})
    nothing = await run_node("flow.merge", {"mode": "first"}, {"values": []})

    assert all_values.outputs == {"values": ["from b", "from a"]}
    assert first.outputs == {"values": "from b"}
    assert nothing.outputs == {}


def test_merge_input_is_a_list_port() -> None:
    node = default_registry().get("flow.merge")

    [port] = node.inputs(node.parse_config({}))

    assert port.is_list


async def test_short_delay_sleeps_through_the_context_and_passes_the_value() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    ctx = make_context(sleep=sleep)
    result = await run_node("flow.delay", {"seconds": 2.5}, {"value": {"x": 1}}, ctx=ctx)

    assert slept == [2.5]
    assert result.outputs == {"value": {"x": 1}}


async def test_delay_without_a_value_passes_null() -> None:
    result = await run_node("flow.delay", {"seconds": 0})

    assert result.outputs == {"value": None}


async def test_long_delay_parks_the_node_and_passes_the_value_once_resumed() -> None:
    settings = NodeSettings(inline_delay_max_s=60)

    with pytest.raises(WaitForInput) as caught:
        await run_node(
            "flow.delay", {"seconds": 3600}, {"value": 1}, ctx=make_context(settings=settings)
        )
    resumed = await run_node(
        "flow.delay",
        {"seconds": 3600},
        {"value": 1},
        ctx=make_context(settings=settings, answer={}),
    )

    assert caught.value.kind == "delay"
    assert caught.value.resume_after_s == 3600
    assert resumed.outputs == {"value": 1}


async def test_negative_delay_is_a_config_problem() -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("flow.delay", {"seconds": -1})

    assert caught.value.problems[0].field == "seconds"
