"""CPU work on user data is bounded and keeps the event loop free: regular expressions run in
linear time (RE2), templates stop at their size, output and time limits, JMESPath and big sorts
run off the loop under a deadline; each failure names the limit (and the field) it passed."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from flowloom.engine.templating import TemplateFailed, render_config, templated_fields
from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.nodes import _sandbox, data, default_registry
from flowloom.providers import SettingsProviderResolver
from flowloom.testing import make_context, run_node

T = TypeVar("T")

LOOP_BOMB = "{% for a in s %}{% for b in s %}{{ '' }}{% endfor %}{% endfor %}"
"""Iterating over text escapes the range() budget: only the time limit stops it."""

LIMIT_S = 1.5
"""The time limit the runaway tests set. Work done on the event loop would hold it for the whole
limit; work done off it leaves the loop late only by what a loaded machine's scheduler adds, so
the loop's worst lateness must stay under ``OFF_LOOP_S``."""
OFF_LOOP_S = LIMIT_S / 2
LIMIT_TEXT = re.escape(f"time limit of {LIMIT_S:g} s")

CATASTROPHIC = r"^(a+)+$"
"""Backtracking engines take time 2^n on ``a``*n + ``!``: 15 s at n = 29."""


@asynccontextmanager
async def loop_watch() -> AsyncIterator[list[float]]:
    """The longest time (in the yielded list) the loop went without running a 10 ms ticker."""
    worst = [0.0]

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst[0] = max(worst[0], time.perf_counter() - before - 0.01)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)
    try:
        yield worst
    finally:
        # Let the ticker run once more: a block at the very end shows only in its next tick.
        await asyncio.sleep(0.03)
        ticker.cancel()


async def timed(work: Awaitable[T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await work
    return result, time.perf_counter() - started


async def template(source: str, **variables: Any) -> str:
    config = {"template": source, "variables": list(variables)}
    result = await run_node("text.template", config, variables)
    return str(result.outputs["text"])


# ---- regular expressions


@pytest.mark.parametrize(("text", "taken"), [("a" * 29 + "!", "false"), ("a" * 29, "true")])
async def test_a_catastrophic_pattern_answers_at_once_and_rightly(text: str, taken: str) -> None:
    config = {"operator": "matches", "operand": CATASTROPHIC}

    result, elapsed_s = await timed(run_node("flow.condition", config, {"value": text}))

    assert result.outputs == {taken: text}
    assert elapsed_s < 2.0  # backtracking would take minutes; the margin is for a loaded machine


async def test_a_long_text_is_matched_off_the_loop_with_the_right_answer() -> None:
    text = "x" * 3_000_000 + " needle " + "y" * 3_000_000
    found = {"operator": "matches", "operand": r"\bne+dle\b"}
    missing = {"operator": "matches", "operand": r"(x+x+)+z"}

    async with loop_watch() as worst:
        hit = await run_node("flow.condition", found, {"value": text})
        miss = await run_node("flow.condition", missing, {"value": text})

    assert set(hit.outputs) == {"true"}
    assert set(miss.outputs) == {"false"}
    assert worst[0] < 0.2


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(?=order)\w+", "lookaround"),
        (r"(?<!x)y", "lookaround"),
        (r"(a)\1", "backreferences"),
        (r"(?P<x>a)(?P=x)", "backreferences"),
    ],
)
async def test_patterns_that_need_backtracking_are_refused_naming_the_field(
    pattern: str, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("flow.condition", {"operator": "matches", "operand": pattern}, {"value": ""})

    [problem] = caught.value.problems
    assert problem.field == "operand"
    assert reason in problem.message


def test_a_switch_case_pattern_is_checked_too() -> None:
    node = default_registry().get("flow.switch")
    case = {"name": "x", "operator": "matches", "operand": r"(?<=a)b"}

    with pytest.raises(ValueError, match=r"cases\.0\.operand[\s\S]*lookaround"):
        node.parse_config({"cases": [case]})


# ---- templates


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        ("{{ 'a' * 50000000 }}", "the text made with * passes the limit of 4,194,304 characters"),
        ("{{ '{:>50000000}'.format(1) }}", "a format width passes the limit of 4,194,304"),
        ("{{ '%50000000d' % 1 }}", "a % format width passes the limit of 4,194,304"),
        ("{{ 'a'.ljust(50000000) }}", "the width given to ljust() passes the limit"),
        ("{{ 'a' | center(50000000) }}", "the width given to center passes the limit"),
        ("{{ 2 ** 10000000 }}", "the number made with ** passes the limit of 65,536 bits"),
        (
            "{% for i in range(5000) %}{{ 'x' * 1000 }}{% endfor %}",
            "the output passes the limit of 4,194,304 characters",
        ),
        (
            # 2^30 leaves when printed or compared, from thirty lines without a loop.
            "{% set a = ['x', 'x'] %}" + "{% set a = [a, a] %}" * 30 + "{{ a == [a] }}",
            "a list or object the template built printed as text passes the limit of 4,194,304",
        ),
        (
            # Each inner range() is charged in full when it is made, so this trips the budget
            # after 50 rounds, as nested loops over them would (without their iterations, so
            # the 2 s wall limit of a busy machine never comes first).
            "{% for i in range(20000) %}{{ range(20000) | length }}{% endfor %}",
            "the numbers all range() calls yield passes the limit of 1,000,000",
        ),
    ],
)
async def test_a_template_past_a_limit_fails_the_node_naming_it(source: str, limit: str) -> None:
    async with loop_watch() as worst:
        with pytest.raises(NodeFailed) as caught:
            await template(source)

    assert f"template: {limit}" in str(caught.value)
    assert worst[0] < 0.2


async def test_a_template_loop_bomb_stops_at_the_time_limit_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_sandbox, "TIME_LIMIT_S", LIMIT_S)
    bomb = LOOP_BOMB

    async with loop_watch() as worst:
        with pytest.raises(NodeFailed, match=LIMIT_TEXT):
            await template(bomb, s="x" * 20000)

    assert worst[0] < OFF_LOOP_S


@pytest.mark.parametrize(
    ("node_type", "config"),
    [
        ("ai.llm", {"model": "any", "user_message": LOOP_BOMB, "variables": ["s"]}),
        ("mcp.tool", {"server": "intg_x", "tool": "t", "arguments": {"q": LOOP_BOMB}}),
    ],
)
async def test_the_templates_of_model_and_tool_nodes_stop_at_the_time_limit_off_the_loop(
    monkeypatch: pytest.MonkeyPatch, node_type: str, config: dict[str, Any]
) -> None:
    monkeypatch.setattr(_sandbox, "TIME_LIMIT_S", LIMIT_S)
    ctx = dataclasses.replace(make_context(), providers=SettingsProviderResolver({}))
    if node_type == "mcp.tool":
        config = {**config, "variables": ["s"]}

    async with loop_watch() as worst:
        with pytest.raises(NodeFailed, match=LIMIT_TEXT):
            await run_node(node_type, config, {"s": "x" * 20000}, ctx=ctx)

    assert worst[0] < OFF_LOOP_S


async def test_loop_free_templates_render_inline_and_loops_still_work() -> None:
    compiled = _sandbox.sandbox().from_string("Hello {{ name | upper }}!")

    assert isinstance(compiled, _sandbox.BoundedTemplate)
    assert compiled.may_run_long is False
    assert await template("Hello {{ name | upper }}!", name="ada") == "Hello ADA!"
    assert await template("{% for x in xs %}{{ x }};{% endfor %}", xs=[1, 2]) == "1;2;"
    assert await template("{{ '%5.1f|{:>4}' % 2.25 }}") == "  2.2|{:>4}"
    assert await template("{{ '{:>4}'.format(7) }}{{ 'ab' | center(6) }}") == "   7  ab  "


async def test_a_config_field_template_past_a_limit_fails_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_sandbox, "TIME_LIMIT_S", LIMIT_S)
    node = default_registry().get("text.value")
    bomb = "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}{{ 'x' }}"
    huge = {"text": "{{ 'ab' * 10000000 }}"}
    slow = {"text": f"{{% set s = 'x' * 20000 %}}{bomb}"}

    with pytest.raises(TemplateFailed, match=r"'text'.*\* passes the limit of 4,194,304"):
        await render_config(node, huge, templated_fields(node, huge), {})
    async with loop_watch() as worst:
        with pytest.raises(TemplateFailed, match=rf"'text'.*{LIMIT_TEXT}"):
            await render_config(node, slow, templated_fields(node, slow), {})
    assert worst[0] < OFF_LOOP_S


# ---- JMESPath and sorting


async def test_an_exploding_jmespath_search_stops_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(data, "SEARCH_TIME_LIMIT_S", LIMIT_S)
    # Each stage doubles the list: 2^40 items unless something stops it.
    doubling = " | ".join(["[@, @][]"] * 40)

    async with loop_watch() as worst:
        with pytest.raises(NodeFailed, match=LIMIT_TEXT):
            await run_node("json.extract", {"expression": doubling}, {"data": [1, 2, 3]})

    assert worst[0] < OFF_LOOP_S


async def test_a_long_list_is_sorted_off_the_loop_with_the_same_rules() -> None:
    items = [{"n": (i * 7919) % 100_003} for i in range(100_000)]

    result = await run_node("list.sort", {"key": "n"}, {"items": items})
    assert [item["n"] for item in result.outputs["items"]] == sorted(item["n"] for item in items)
    with pytest.raises(NodeFailed, match="item 99999"):
        await run_node("list.sort", {"key": "n"}, {"items": [*items[:-1], {"n": "text"}]})
