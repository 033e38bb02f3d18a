"""json.extract: JMESPath over the input, expressions checked when the config is."""

from __future__ import annotations

import pytest

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.testing import run_node

PEOPLE = {"people": [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]}


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("people[?age > `40`].name", ["Alan"]),
        ("people[0]", {"name": "Ada", "age": 36}),
        ("length(people)", 2),
        ("nobody", None),
    ],
)
async def test_extracts(expression: str, result: object) -> None:
    outputs = (await run_node("json.extract", {"expression": expression}, {"data": PEOPLE})).outputs

    assert outputs == {"result": result}


@pytest.mark.parametrize("expression", ["people[?", "", "  ", "a.[b"])
async def test_bad_expression_is_a_config_problem(expression: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("json.extract", {"expression": expression}, {"data": {}})

    [problem] = caught.value.problems
    assert problem.field == "expression"


async def test_function_on_the_wrong_type_fails_at_run_time() -> None:
    with pytest.raises(NodeFailed, match="JMESPath"):
        await run_node("json.extract", {"expression": "length(@)"}, {"data": 5})
