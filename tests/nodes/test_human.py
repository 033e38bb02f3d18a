"""human.approval parks the run until answered, then emits on approved or rejected."""

from __future__ import annotations

import pytest

from flowloom.exceptions import NodeFailed
from flowloom.nodes import WaitForInput
from flowloom.testing import make_context, run_node

CONFIG = {"prompt": "Publish this post?"}


async def test_first_run_parks_with_the_prompt_and_the_value_under_review() -> None:
    with pytest.raises(WaitForInput) as caught:
        await run_node("human.approval", CONFIG, {"value": "draft text"})

    assert caught.value.kind == "approval"
    assert caught.value.reason == "Publish this post?"
    assert caught.value.payload == {"prompt": "Publish this post?", "value": "draft text"}


@pytest.mark.parametrize(("approved", "output"), [(True, "approved"), (False, "rejected")])
async def test_answer_emits_on_one_output_only(approved: bool, output: str) -> None:
    ctx = make_context(answer={"approved": approved, "comment": "ok", "by": "usr_1"})

    result = await run_node("human.approval", CONFIG, {"value": "draft"}, ctx=ctx)

    assert result.outputs == {
        output: {"approved": approved, "comment": "ok", "by": "usr_1", "value": "draft"}
    }


async def test_an_answer_without_a_decision_fails() -> None:
    with pytest.raises(NodeFailed, match="approved: true or false"):
        await run_node("human.approval", CONFIG, ctx=make_context(answer={"approved": "yes"}))
