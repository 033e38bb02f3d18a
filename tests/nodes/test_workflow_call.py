"""workflow.call against a fake SubRuns: inputs, item order, the concurrency limit, failures."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.nodes.base import RunContext, WorkflowRef
from flowloom.nodes.registry import default_registry
from flowloom.testing import make_context, run_node


class FakeSubRuns:
    """Answers each call with its inputs echoed back, after a short pause; counts overlap."""

    def __init__(self, *, fail_on: Any = None, pause_s: float = 0.02) -> None:
        self.calls: list[tuple[str, int | None, dict[str, Any]]] = []
        self.running = 0
        self.most_running = 0
        self.fail_on = fail_on
        self.pause_s = pause_s

    async def start_and_wait(
        self, workflow: WorkflowRef, version: int | None, inputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.calls.append((workflow.id or f"name:{workflow.name}", version, dict(inputs)))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.pause_s)
            if self.fail_on is not None and inputs.get("item") == self.fail_on:
                raise NodeFailed("child boom", node_id="call", attempt=1)
            return {"echo": {"got": dict(inputs)}}
        finally:
            self.running -= 1


def context(subruns: Any) -> RunContext:
    return dataclasses.replace(make_context(node_id="call"), subruns=subruns)


async def test_one_call_passes_the_inputs_and_outputs_the_child_outputs() -> None:
    fake = FakeSubRuns()
    result = await run_node(
        "workflow.call",
        {"workflow_id": "wf_child", "version": 3},
        {"inputs": {"a": 1}},
        ctx=context(fake),
    )
    assert result.outputs == {"outputs": {"echo": {"got": {"a": 1}}}}
    assert fake.calls == [("wf_child", 3, {"a": 1})]


async def test_for_each_keeps_item_order_and_never_exceeds_its_concurrency() -> None:
    fake = FakeSubRuns()
    items = list(range(10))
    result = await run_node(
        "workflow.call",
        {"workflow_id": "wf_child", "for_each": True, "concurrency": 3},
        {"items": items, "inputs": {"fixed": "x"}},
        ctx=context(fake),
    )
    assert [out["echo"]["got"]["item"] for out in result.outputs["outputs"]] == items
    assert all(out["echo"]["got"]["fixed"] == "x" for out in result.outputs["outputs"])
    assert fake.most_running == 3


async def test_input_mapping_reads_item_index_and_inputs() -> None:
    fake = FakeSubRuns()
    await run_node(
        "workflow.call",
        {
            "workflow_id": "wf_child",
            "for_each": True,
            "input_mapping": {"url": "item.href", "n": "index", "who": "inputs.user"},
        },
        {"items": [{"href": "a"}, {"href": "b"}], "inputs": {"user": "ada"}},
        ctx=context(fake),
    )
    got = sorted((call[2]["n"], call[2]["url"], call[2]["who"]) for call in fake.calls)
    assert got == [(0, "a", "ada"), (1, "b", "ada")]
    assert "item" not in fake.calls[0][2], "a mapping replaces the implicit item"


async def test_a_mapping_that_leads_nowhere_fails_naming_the_input_and_item() -> None:
    with pytest.raises(
        NodeFailed, match=r"input_mapping 'url': 'item.href' leads nowhere for item 1"
    ):
        await run_node(
            "workflow.call",
            {"workflow_id": "w", "for_each": True, "input_mapping": {"url": "item.href"}},
            {"items": [{"href": "a"}, {"nope": 1}]},
            ctx=context(FakeSubRuns()),
        )


async def test_a_failing_item_fails_the_node_with_its_error_and_stops_the_rest() -> None:
    fake = FakeSubRuns(fail_on=2, pause_s=0.05)
    with pytest.raises(NodeFailed, match="item 2: child boom"):
        await run_node(
            "workflow.call",
            {"workflow_id": "wf_child", "for_each": True, "concurrency": 3},
            {"items": list(range(30))},
            ctx=context(fake),
        )
    assert len(fake.calls) < 30, "items after the failure were not all started"
    assert fake.running == 0, "the siblings in flight were cancelled"


async def test_without_an_engine_the_node_fails_saying_why() -> None:
    with pytest.raises(NodeFailed, match="no engine"):
        await run_node("workflow.call", {"workflow_id": "w"}, {})


def test_config_refuses_a_mapping_from_elsewhere_and_for_each_needs_items() -> None:
    with pytest.raises(ValidationFailed, match="must start with inputs, item or index"):
        asyncio.run(run_node("workflow.call", {"workflow_id": "w", "input_mapping": {"a": "x"}}))
    node = default_registry().get("workflow.call")
    config = node.parse_config({"workflow_id": "w", "for_each": True})
    assert [(p.name, p.required) for p in node.inputs(config)] == [
        ("inputs", False),
        ("items", True),
    ]
    assert node.outputs(config)[0].type.value == "list"


async def test_a_workflow_may_be_named_instead_of_given_by_id() -> None:
    fake = FakeSubRuns()
    await run_node("workflow.call", {"workflow_name": "shout_item"}, {}, ctx=context(fake))
    assert fake.calls == [("name:shout_item", None, {})]


@pytest.mark.parametrize(
    "config", [{}, {"workflow_id": "w", "workflow_name": "n"}], ids=["neither", "both"]
)
def test_config_takes_exactly_one_of_id_and_name(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of workflow_id and workflow_name"):
        default_registry().get("workflow.call").parse_config(config)
