"""``workflow.call``: run another workflow of the same owner as a sub-run, once or per item.

The node never touches the engine or storage: it asks ``ctx.subruns`` to start a child run and
wait for it. The engine links the child to this run and node, cancels it when this node is
cancelled, and refuses to nest sub-runs deeper than its limit (a workflow calling itself).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from flowloom.exceptions import ExecutionError, NodeFailed
from flowloom.nodes._paths import MISSING, check_path, lookup
from flowloom.nodes.base import (
    Category,
    Node,
    NodeConfig,
    NodeResult,
    Port,
    PortType,
    RunContext,
    WorkflowRef,
)

__all__ = ["WorkflowCall", "WorkflowCallConfig"]


class WorkflowCallConfig(NodeConfig):
    workflow_id: str | None = Field(
        default=None, min_length=1, json_schema_extra={"x-refers-to": "workflow"}
    )
    """The workflow to run (one of the same owner), by id; or give ``workflow_name``."""
    workflow_name: str | None = Field(default=None, min_length=1, max_length=200)
    """The workflow to run by name, so that a definition can travel between accounts; case,
    ``_`` and spaces are ignored when no workflow has exactly this name."""
    version: int | None = Field(default=None, ge=1)
    """Its saved version to run; the current one when empty."""
    for_each: bool = False
    """Run the workflow once per item of the ``items`` input; output the list of results."""
    concurrency: int = Field(default=4, ge=1, le=100)
    """With ``for_each``: how many sub-runs may run at once."""
    input_mapping: dict[str, str] = Field(default_factory=dict)
    """Sub-run input name -> dotted path into ``inputs``, ``item`` or ``index`` (the item and its
    position, with ``for_each``): ``{"url": "item.href", "n": "index"}``. Mapped names are set
    on top of the ``inputs`` object; without a mapping a ``for_each`` run also gets ``item``."""

    @field_validator("input_mapping")
    @classmethod
    def _check_mapping(cls, mapping: dict[str, str]) -> dict[str, str]:
        for name, path in mapping.items():
            check_path(path)
            if path.split(".", 1)[0] not in ("inputs", "item", "index"):
                raise ValueError(
                    f"input {name!r}: the path {path!r} must start with inputs, item or index"
                )
        return mapping

    @model_validator(mode="after")
    def _one_reference(self) -> WorkflowCallConfig:
        if (self.workflow_id is None) == (self.workflow_name is None):
            raise ValueError("give exactly one of workflow_id and workflow_name")
        return self

    @property
    def workflow(self) -> WorkflowRef:
        return WorkflowRef(id=self.workflow_id, name=self.workflow_name)


class WorkflowCall(Node[WorkflowCallConfig]):
    """Run another workflow as a sub-run and output its outputs (by node id).

    With ``for_each`` the workflow runs once per item of ``items``, at most ``concurrency`` at
    a time, and ``outputs`` is the list of their outputs in item order. A sub-run that fails
    fails this node with the sub-run's error, and the sub-runs still going are cancelled.
    """

    type_name = "workflow.call"
    display_name = "Call a workflow"
    icon = "workflow"
    category = Category.FLOW
    # A sub-workflow may do anything (HTTP calls, approvals): never served from the cache.
    deterministic = False
    dynamic_ports = True
    Config = WorkflowCallConfig

    def inputs(self, config: WorkflowCallConfig) -> list[Port]:
        ports = [Port("inputs", PortType.OBJECT, required=False, default={})]
        if config.for_each:
            ports.append(Port("items", PortType.LIST))
        return ports

    def outputs(self, config: WorkflowCallConfig) -> list[Port]:
        return [Port("outputs", PortType.LIST if config.for_each else PortType.OBJECT)]

    async def run(
        self, ctx: RunContext, config: WorkflowCallConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        base = inputs.get("inputs") or {}
        if not isinstance(base, dict):
            raise ctx.fail(f"inputs must be an object, got {type(base).__name__}")
        if not config.for_each:
            child_inputs = _child_inputs(ctx, config, base, item=MISSING, index=None)
            return NodeResult({"outputs": await _call(ctx, config, child_inputs)})
        items = inputs.get("items")
        if not isinstance(items, list):
            raise ctx.fail(f"items must be a list, got {type(items).__name__}")
        every = [
            _child_inputs(ctx, config, base, item=item, index=index)
            for index, item in enumerate(items)
        ]
        return NodeResult({"outputs": await _call_each(ctx, config, every)})


def _child_inputs(
    ctx: RunContext,
    config: WorkflowCallConfig,
    base: dict[str, Any],
    *,
    item: Any,
    index: int | None,
) -> dict[str, Any]:
    scope: dict[str, Any] = {"inputs": base}
    if index is not None:
        scope.update(item=item, index=index)
    child = dict(base)
    if index is not None and not config.input_mapping:
        child["item"] = item
    for name, path in config.input_mapping.items():
        value = lookup(scope, path)
        if value is MISSING:
            where = "" if index is None else f" for item {index}"
            raise ctx.fail(f"input_mapping {name!r}: {path!r} leads nowhere{where}")
        child[name] = value
    return child


async def _call(
    ctx: RunContext, config: WorkflowCallConfig, child_inputs: Mapping[str, Any]
) -> dict[str, Any]:
    try:
        return await ctx.subruns.start_and_wait(config.workflow, config.version, child_inputs)
    except NodeFailed:
        raise
    except ExecutionError as exc:
        raise ctx.fail(str(exc)) from None


async def _call_each(
    ctx: RunContext, config: WorkflowCallConfig, every: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(config.concurrency)
    results: list[dict[str, Any]] = [{} for _ in every]

    async def one(index: int) -> None:
        async with limit:
            try:
                results[index] = await _call(ctx, config, every[index])
            except NodeFailed as exc:
                # NodeFailed's text starts with the node and attempt; keep only the reason.
                reason = str(exc).split("): ", 1)[-1]
                raise ctx.fail(f"item {index}: {reason}") from None

    # A TaskGroup cancels the sibling sub-runs as soon as one fails; the first failure is the
    # node's error (the others are mostly the cancellations it caused).
    try:
        async with asyncio.TaskGroup() as group:
            for index in range(len(every)):
                group.create_task(one(index))
    except ExceptionGroup as group_error:
        first = group_error.exceptions[0]
        if isinstance(first, NodeFailed):
            raise first from None
        raise
    return results
