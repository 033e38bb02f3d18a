"""list.sort: seed 000's sorting step, with key paths, order, numeric mode and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.testing import run_node


async def sort(items: list[Any], **config: Any) -> list[Any]:
    result = await run_node("list.sort", config, {"items": items})
    return list(result.outputs["items"])


async def test_sorts_numbers_and_text() -> None:
    assert await sort([3, 1.5, 2]) == [1.5, 2, 3]
    assert await sort(["pear", "apple", "fig"], order="desc") == ["pear", "fig", "apple"]


async def test_numeric_mode_reads_numeric_text_but_keeps_the_items() -> None:
    assert await sort(["10", "9", " 100 ", "-1.5"], numeric=True) == ["-1.5", "9", "10", " 100 "]


async def test_text_mode_sorts_numeric_text_as_text() -> None:
    assert await sort(["10", "9", "100"]) == ["10", "100", "9"]


async def test_sorts_objects_by_a_key_path_stably() -> None:
    people = [
        {"name": "b", "info": {"age": 30}},
        {"name": "a", "info": {"age": 25}},
        {"name": "c", "info": {"age": 30}},
    ]

    ascending = await sort(people, key="info.age")
    descending = await sort(people, key="info.age", order="desc")

    assert [p["name"] for p in ascending] == ["a", "b", "c"]
    assert [p["name"] for p in descending] == ["b", "c", "a"]


async def test_key_path_may_index_lists() -> None:
    assert await sort([[2, "x"], [1, "y"]], key="0") == [[1, "y"], [2, "x"]]


async def test_mixed_kinds_are_refused_with_a_clear_message() -> None:
    with pytest.raises(NodeFailed) as caught:
        await sort([3, "2", 1])

    assert "cannot compare number (item 0: 3) with string (item 1: '2')" in str(caught.value)


async def test_booleans_are_not_numbers() -> None:
    with pytest.raises(NodeFailed, match="cannot compare number"):
        await sort([1, True])
    with pytest.raises(NodeFailed, match="True is not a number"):
        await sort([1, True], numeric=True)


async def test_non_numeric_text_in_numeric_mode_names_the_item() -> None:
    with pytest.raises(NodeFailed, match="item 1: 'abc' is not a number"):
        await sort(["1", "abc"], numeric=True)


async def test_missing_key_names_the_item_and_path() -> None:
    with pytest.raises(NodeFailed, match="item 1 has no value at 'age' to sort by"):
        await sort([{"age": 1}, {"name": "x"}], key="age")


async def test_empty_list_sorts_to_empty() -> None:
    assert await sort([]) == []


async def test_bad_key_path_is_a_config_problem() -> None:
    with pytest.raises(ValidationFailed) as caught:
        await sort([1], key="a..b")

    assert [p.field for p in caught.value.problems] == ["key"]
