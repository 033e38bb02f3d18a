"""The agent loop: model -> tool calls -> model, until the model answers or the steps run out.

Shared by the ``ai.agent`` node and by threads. Each step is one call to the model with the
conversation so far and the tools on offer; when the model asks for tools, each runs (through a
:class:`~flowloom.agents.tools.Toolbox`), its result joins the conversation, and the next step
begins. A tool that fails does not stop the loop: the model is told, and may try something else.

The caller decides what a model call costs and where that goes (``record``), and may follow the
loop as it goes (``on_step`` for each tool call, ``on_delta`` for text as it arrives). With
``on_delta`` every step is streamed, tools on offer or not: what the model says reaches
``on_delta`` as it comes (before a step's tool calls too, when the model says something
first), and the tool calls come whole at the stream's end. The text of a step after tools ran
starts with a blank line when some text went out before it, so the pieces read as one
transcript.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from flowloom.agents.tools import Toolbox
from flowloom.exceptions import ExecutionError

if TYPE_CHECKING:
    from flowloom.providers import ChatMessage, ChatProvider, ChatResponse
    from flowloom.providers.errors import ProviderError

__all__ = [
    "LoopOptions",
    "LoopOutcome",
    "Recorder",
    "StepFailed",
    "Totals",
    "run_agent_loop",
]

Recorder = Callable[["ChatResponse", int], Awaitable[Decimal | None]]
"""Records one model call (the answer and its step number); returns its exact cost, or None
when it could not be recorded."""

StepListener = Callable[[dict[str, Any]], Awaitable[None]]
DeltaListener = Callable[[str], Awaitable[None]]


class StepFailed(ExecutionError):
    """A model call of the loop failed: ``step`` says which, ``error`` is the provider's."""

    def __init__(self, step: int, error: ProviderError) -> None:
        self.step = step
        self.error = error
        super().__init__(f"step {step}: {error}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopOptions:
    """How the model is asked, the same on every step."""

    model: str
    instructions: str | None = None
    """The system prompt."""
    max_steps: int = 10
    temperature: float | None = None
    max_tokens: int | None = None
    tool_result_max_chars: int = 20_000
    """A tool's result is cut to this many characters before the model reads it."""
    idempotency_key: str | None = None
    """Each step sends ``<key>:<step>`` as its ``Idempotency-Key``."""


@dataclass(slots=True)
class Totals:
    """Usage summed over every model call of a loop."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal | None = Decimal(0)
    """None once any call's cost is unknown."""
    calls: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_total": self.tokens_in + self.tokens_out,
            "cost": None if self.cost is None else str(self.cost),
            "calls": self.calls,
        }


@dataclass(slots=True)
class LoopOutcome:
    text: str
    """The final answer (the last assistant text when the steps ran out)."""
    steps: list[dict[str, Any]]
    """Each tool call in order, then the final answer (``tool`` null): ``step``, ``tool``,
    ``arguments``, ``result``, ``is_error`` and ``usage`` (of the model call that asked for it,
    on its first tool call only, so the steps sum to the totals)."""
    totals: Totals = field(default_factory=Totals)
    stop_reason: Literal["answer", "max_steps"] = "answer"
    model: str | None = None
    """The model that gave the last answer, as the provider names it."""


async def run_agent_loop(
    provider: ChatProvider,
    messages: list[ChatMessage],
    toolbox: Toolbox,
    options: LoopOptions,
    *,
    record: Recorder,
    on_step: StepListener | None = None,
    on_delta: DeltaListener | None = None,
) -> LoopOutcome:
    """Run the loop over ``messages`` (the conversation so far, ending with the task), which
    gains the assistant and tool turns as they happen.

    Raises StepFailed when a model call fails; what ``record``, ``on_step`` and ``on_delta``
    raise propagates.
    """
    from flowloom.providers import ChatMessage

    outcome = LoopOutcome(text="", steps=[])
    transcript = None if on_delta is None else _Transcript(on_delta)
    for step in range(1, options.max_steps + 1):
        response = await _ask(
            provider,
            messages,
            toolbox,
            options,
            step,
            None if transcript is None else transcript.say,
        )
        outcome.model = response.model
        usage = await _count(response, await record(response, step), outcome.totals)
        if not response.tool_calls:
            outcome.steps.append(_step(step, None, None, response.text, False, usage))
            outcome.text = response.text
            return outcome
        messages.append(ChatMessage("assistant", response.text, tool_calls=response.tool_calls))
        for index, call in enumerate(response.tool_calls):
            result = await toolbox.call(call, f"{step}.{index}")
            entry = _step(
                step,
                call.name,
                call.arguments,
                result.value,
                result.is_error,
                usage if index == 0 else None,
            )
            outcome.steps.append(entry)
            if on_step is not None:
                await on_step(entry)
            text = result.for_model
            if len(text) > options.tool_result_max_chars:
                text = text[: options.tool_result_max_chars] + " [cut]"
            messages.append(ChatMessage("tool", text, tool_call_id=call.id, tool_name=call.name))
        if transcript is not None:
            transcript.turn()
    outcome.text = next((m.text for m in reversed(messages) if m.role == "assistant"), "")
    outcome.stop_reason = "max_steps"
    return outcome


class _Transcript:
    """``on_delta`` over the whole loop: a blank line before the first text after tools ran,
    when some text went out before them."""

    def __init__(self, on_delta: DeltaListener) -> None:
        self._on_delta = on_delta
        self._spoke = False
        self._turned = False

    async def say(self, text: str) -> None:
        if self._turned and self._spoke:
            await self._on_delta("\n\n")
        self._turned = False
        self._spoke = True
        await self._on_delta(text)

    def turn(self) -> None:
        self._turned = True


def _step(
    step: int,
    tool: str | None,
    arguments: Any,
    result: Any,
    is_error: bool,
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "step": step,
        "tool": tool,
        "arguments": arguments,
        "result": result,
        "is_error": is_error,
        "usage": usage,
    }


async def _ask(
    provider: ChatProvider,
    messages: list[ChatMessage],
    toolbox: Toolbox,
    options: LoopOptions,
    step: int,
    on_delta: DeltaListener | None,
) -> ChatResponse:
    from flowloom.providers import ChatRequest, ProviderError
    from flowloom.providers.streaming import stream_answer

    request = ChatRequest(
        model=options.model,
        messages=tuple(messages),
        system_prompt=options.instructions or None,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        idempotency_key=(
            None if options.idempotency_key is None else f"{options.idempotency_key}:{step}"
        ),
        tools=tuple(toolbox.specs),
    )
    try:
        if on_delta is not None:
            return await stream_answer(provider, request, on_delta)
        return await provider.chat(request)
    except ProviderError as exc:
        raise StepFailed(step, exc) from None


async def _count(response: ChatResponse, cost: Decimal | None, totals: Totals) -> dict[str, Any]:
    """Add one call to ``totals``; its usage for the step."""
    tokens_in, tokens_out = response.usage.tokens_in, response.usage.tokens_out
    totals.calls += 1
    totals.tokens_in += tokens_in
    totals.tokens_out += tokens_out
    totals.cost = None if cost is None or totals.cost is None else totals.cost + cost
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_total": tokens_in + tokens_out,
        "cost": None if cost is None else str(cost),
    }
