"""Human-in-the-loop nodes: a person approves or rejects before the run goes on."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from flowloom.nodes.base import (
    Category,
    Node,
    NodeConfig,
    NodeResult,
    Port,
    PortType,
    RunContext,
    WaitForInput,
)

__all__ = ["Approval", "ApprovalConfig"]


class ApprovalConfig(NodeConfig):
    prompt: str = Field(default="Approve?", min_length=1)
    """The question shown to the person who answers."""


class Approval(Node[ApprovalConfig]):
    """Park the run as WAITING until a person answers; emit on ``approved`` or ``rejected``.

    The answer is a JSON object with a boolean ``approved`` and anything else the answering
    side adds (a comment, who answered). The emitted value is that answer plus ``value``, the
    input that was under review.
    """

    type_name = "human.approval"
    display_name = "Approval"
    icon = "hand"
    category = Category.HUMAN_IN_THE_LOOP
    deterministic = False
    Config = ApprovalConfig

    def inputs(self, config: ApprovalConfig) -> list[Port]:
        return [
            Port(
                "value",
                PortType.ANY,
                required=False,
                default=None,
                description="What the person is asked to approve; shown with the prompt.",
            )
        ]

    def outputs(self, config: ApprovalConfig) -> list[Port]:
        return [Port("approved", PortType.OBJECT), Port("rejected", PortType.OBJECT)]

    async def run(
        self, ctx: RunContext, config: ApprovalConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        value = inputs.get("value")
        if ctx.answer is None:
            raise WaitForInput(
                config.prompt, kind="approval", payload={"prompt": config.prompt, "value": value}
            )
        approved = ctx.answer.get("approved")
        if not isinstance(approved, bool):
            raise ctx.fail("the answer must say approved: true or false")
        answer = {**ctx.answer, "value": value}
        return NodeResult({"approved" if approved else "rejected": answer})
