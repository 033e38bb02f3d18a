"""text.value, text.template (sandboxed), text.join, text.split."""

from __future__ import annotations

import pytest

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.nodes import default_registry
from flowloom.testing import make_context, run_node


async def test_value_outputs_its_text() -> None:
    result = await run_node("text.value", {"text": "hello"})

    assert result.outputs == {"text": "hello"}


async def test_template_renders_its_variables() -> None:
    config = {
        "template": "Hi {{ name }}, you have {{ items | length }} items: {{ items | join(', ') }}",
        "variables": ["name", "items"],
    }

    result = await run_node("text.template", config, {"name": "Ada", "items": ["a", "b"]})

    assert result.outputs == {"text": "Hi Ada, you have 2 items: a, b"}


def test_template_has_one_input_port_per_variable() -> None:
    node = default_registry().get("text.template")
    config = node.parse_config({"template": "{{ a }}{{ b }}", "variables": ["a", "b"]})

    assert [port.name for port in node.inputs(config)] == ["a", "b"]


async def test_template_variable_may_be_a_config_literal() -> None:
    config = {"template": "{{ greeting }}!", "variables": ["greeting"], "greeting": "hey"}

    assert (await run_node("text.template", config)).outputs == {"text": "hey!"}


async def test_missing_variable_at_run_time_is_an_error_naming_it() -> None:
    node = default_registry().get("text.template")
    config = node.parse_config(
        {"template": "{{ who }} and {{ what }}", "variables": ["who", "what"]}
    )

    with pytest.raises(NodeFailed, match="'what' is undefined"):
        await node.run(make_context(), config, {"who": "me"})


@pytest.mark.parametrize(
    "template",
    [
        "{{ x.__class__.__mro__ }}",
        "{{ x.__class__.__subclasses__() }}",
        "{{ x.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
async def test_sandbox_refuses_dunder_attribute_access(template: str) -> None:
    with pytest.raises(NodeFailed, match="sandbox forbids"):
        await run_node("text.template", {"template": template, "variables": ["x"]}, {"x": "s"})


async def test_sandbox_refuses_attribute_access_on_a_string_literal() -> None:
    with pytest.raises(NodeFailed, match="unsafe"):
        await run_node("text.template", {"template": "{{ ''.__class__ }}"})


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ({"template": "{{ x }"}, None, "template syntax error on line 1"),
        ({"template": "{{ name }}"}, None, "uses 'name', not declared"),
        ({"template": "", "variables": ["ok", "not ok"]}, "variables", "'not ok' is not"),
        ({"template": "", "variables": ["a", "a"]}, "variables", "declared twice: a"),
        ({"template": "", "variables": ["template"]}, "variables", "clashes"),
    ],
)
async def test_bad_template_config_is_a_config_problem(
    config: dict[str, object], field: str | None, message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("text.template", config)

    [problem] = caught.value.problems
    assert problem.field == field
    assert message in problem.message


async def test_template_loop_variables_and_builtins_are_not_inputs() -> None:
    config = {"template": "{% for i in range(n) %}{{ i }}{% endfor %}", "variables": ["n"]}

    assert (await run_node("text.template", config, {"n": 3})).outputs == {"text": "012"}


async def test_join_flattens_one_level_and_renders_values() -> None:
    items = ["Hello", ["a", 1, True, None], {"k": "v"}, 2.5]

    result = await run_node("text.join", {"separator": "|"}, {"items": items})

    assert result.outputs == {"text": 'Hello|a|1|true|{"k": "v"}|2.5'}


@pytest.mark.parametrize(
    ("config", "text", "items"),
    [
        ({}, " 3\n\n1 \n2\n", ["3", "1", "2"]),
        ({"separator": ",", "strip": False}, "a, b,,c", ["a", " b", "c"]),
        ({"separator": ",", "drop_empty": False}, "a,,b", ["a", "", "b"]),
        ({"separator": ""}, "one  two\tthree", ["one", "two", "three"]),
        ({"separator": ",", "max_items": 2}, "a,b,c", ["a", "b,c"]),
    ],
)
async def test_split(config: dict[str, object], text: str, items: list[str]) -> None:
    assert (await run_node("text.split", config, {"text": text})).outputs == {"items": items}


async def test_split_refuses_a_non_text_input() -> None:
    with pytest.raises(NodeFailed, match="text must be a string, got list"):
        await run_node("text.split", {}, {"text": ["a"]})
