"""What ``GET /runs/{id}/events`` sends, as pydantic models: the OpenAPI document of the stream.

Each Server-Sent Event has an ``id`` (a sequence number), an ``event`` (its type) and one
``data`` line of JSON. The first is ``snapshot``, whose data is the whole run
(``RunDetail``); every other event's data is a ``RunEvent``: ``{"type", "run_id",
"node_id", "at", "data"}``, its ``type`` equal to the SSE ``event``. ``RunEvent`` is a union
discriminated by ``type``; ``RunStreamMessage`` is the union of whole messages, discriminated
by ``event``.

The engine publishes ``events.dropped`` to a subscriber that read too slowly; the stream never
passes it on, it sends a fresh ``snapshot`` instead. A reader that lost only streamed text gets
the node's whole text so far as one ``node.delta`` at offset 0 (``flowloom.api.run_feed``).
A node type may publish other progress kinds (``node.<kind>``); the stream passes them on as
they are, so a reader ignores an event type it does not know.

The route writes events as they are (no validation per event: deltas come many per second);
tests hold the stream to these models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Generic, Literal, TypeVar, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from flowloom.api.schemas.common import ApiModel
from flowloom.api.schemas.runs import RunDetail

__all__ = [
    "RUN_EVENT_MODELS",
    "NodeCached",
    "NodeCancelled",
    "NodeDelta",
    "NodeFailed",
    "NodeRetrying",
    "NodeSkipped",
    "NodeStarted",
    "NodeStep",
    "NodeSucceeded",
    "NodeWaiting",
    "RunCancelled",
    "RunCompleted",
    "RunEvent",
    "RunFailed",
    "RunResumed",
    "RunStarted",
    "RunStreamMessage",
    "RunWaiting",
    "SnapshotMessage",
    "event_type",
]


T = TypeVar("T")


class _Data(ApiModel):
    # A reader must not trip over a field added later.
    model_config = ConfigDict(extra="allow")


class NoData(_Data):
    """This event carries nothing but its type, run, node and time."""


class RunEndedData(_Data):
    workflow_id: str | None = None
    duration_ms: int | None = None
    """From the run's start to its end; both absent when the end was learned otherwise (a lost
    connection, a run failed from outside its driver)."""


class RunFailedData(RunEndedData):
    error: dict[str, Any] | None = None
    """Why: ``message``; ``node_id`` and ``type`` when a node failed. Absent when the end was
    learned after a lost connection (read the run for it)."""


class RunWaitingData(_Data):
    waiting: list[str] = Field(default_factory=list)
    """The ids of the nodes that wait for an answer, a delay or a debugger step."""


class AttemptData(_Data):
    attempt: int
    """1 for the first attempt of the node in this run."""


class NodeEndedData(AttemptData):
    duration_ms: int | None
    node_type: str | None = None
    """The node's type (``ai.llm``, ...)."""


class NodeSucceededData(NodeEndedData):
    """The attempt that gave the node's outputs."""


class NodeCachedData(_Data):
    cached_from_id: str
    """The node execution whose outputs were reused."""


class NodeFailedData(NodeEndedData):
    duration_ms: int | None = None
    error: dict[str, Any] | None
    """``message``, ``type`` and whatever the node told about it."""


class NodeRetryingData(AttemptData):
    retry_in_s: float
    """When the next attempt (``attempt`` + 1) starts."""
    error: dict[str, Any]
    """Why this attempt failed."""


class NodeWaitingData(_Data):
    kind: str | None
    """What it waits for: ``approval``, ``delay``, ``breakpoint``, ..."""
    reason: str | None
    payload: Any = None


class NodeDeltaData(AttemptData):
    text: str
    """A piece of the node's streamed text (never stored: the node's outputs have it whole)."""
    offset: int
    """Where ``text`` starts in the attempt's whole text; a slow reader gets longer pieces."""


class NodeStepData(AttemptData):
    step: int
    tool: str
    """The tool the agent called."""
    is_error: bool


class _RunLevel(ApiModel):
    run_id: str
    node_id: None = None
    at: datetime


class _NodeLevel(ApiModel):
    run_id: str
    node_id: str
    at: datetime


class RunStarted(_RunLevel):
    type: Literal["run.started"]
    data: NoData


class RunResumed(_RunLevel):
    """An answer or a timer woke a WAITING run."""

    type: Literal["run.resumed"]
    data: NoData


class RunWaiting(_RunLevel):
    type: Literal["run.waiting"]
    data: RunWaitingData


class RunCompleted(_RunLevel):
    """The last event of the stream."""

    type: Literal["run.completed"]
    data: RunEndedData


class RunFailed(_RunLevel):
    """The last event of the stream."""

    type: Literal["run.failed"]
    data: RunFailedData


class RunCancelled(_RunLevel):
    """The last event of the stream."""

    type: Literal["run.cancelled"]
    data: RunEndedData


class NodeStarted(_NodeLevel):
    type: Literal["node.started"]
    data: AttemptData


class NodeSucceeded(_NodeLevel):
    type: Literal["node.succeeded"]
    data: NodeSucceededData


class NodeCached(_NodeLevel):
    type: Literal["node.cached"]
    data: NodeCachedData


class NodeFailed(_NodeLevel):
    type: Literal["node.failed"]
    data: NodeFailedData


class NodeRetrying(_NodeLevel):
    type: Literal["node.retrying"]
    data: NodeRetryingData


class NodeWaiting(_NodeLevel):
    type: Literal["node.waiting"]
    data: NodeWaitingData


class NodeSkipped(_NodeLevel):
    type: Literal["node.skipped"]
    data: NoData


class NodeCancelled(_NodeLevel):
    type: Literal["node.cancelled"]
    data: NoData


class NodeDelta(_NodeLevel):
    """Progress of ``ai.llm`` and ``ai.agent``, while the node runs."""

    type: Literal["node.delta"]
    data: NodeDeltaData


class NodeStep(_NodeLevel):
    """A tool call of ``ai.agent``, as it finishes."""

    type: Literal["node.step"]
    data: NodeStepData


RUN_EVENT_MODELS: Final[tuple[type[BaseModel], ...]] = (
    RunStarted,
    RunResumed,
    RunWaiting,
    RunCompleted,
    RunFailed,
    RunCancelled,
    NodeStarted,
    NodeSucceeded,
    NodeCached,
    NodeFailed,
    NodeRetrying,
    NodeWaiting,
    NodeSkipped,
    NodeCancelled,
    NodeDelta,
    NodeStep,
)

RunEvent = Annotated[
    RunStarted
    | RunResumed
    | RunWaiting
    | RunCompleted
    | RunFailed
    | RunCancelled
    | NodeStarted
    | NodeSucceeded
    | NodeCached
    | NodeFailed
    | NodeRetrying
    | NodeWaiting
    | NodeSkipped
    | NodeCancelled
    | NodeDelta
    | NodeStep,
    Field(discriminator="type"),
]
"""The data of every stream event but ``snapshot``."""


def event_type(model: type[BaseModel]) -> str:
    """The ``type`` a run event model stands for (``RunStarted`` -> ``run.started``)."""
    literal = model.model_fields["type"].annotation
    (value,) = get_args(literal)
    return str(value)


class SnapshotMessage(ApiModel):
    """The first message, and the message after a reader fell behind: the run as it is now."""

    id: int
    event: Literal["snapshot"]
    data: RunDetail


def _message(model: type[BaseModel]) -> type[BaseModel]:
    kind = event_type(model)
    literal: Any = Literal[kind]
    return create_model(
        f"{model.__name__}Message",
        __doc__=f"A ``{kind}`` event.",
        id=(int, ...),
        event=(literal, ...),
        data=(model, ...),
        __base__=ApiModel,
    )


_MESSAGE: Any = Annotated[
    Union[(SnapshotMessage, *(_message(model) for model in RUN_EVENT_MODELS))],
    Field(discriminator="event"),
]


class _DeferredRoot(RootModel[T], Generic[T]):
    # RootModel's own config builds each parametrization at once; ApiModel's waits for a use.
    model_config = ConfigDict(defer_build=True)


class RunStreamMessage(_DeferredRoot[_MESSAGE]):
    """One Server-Sent Event of ``GET /runs/{id}/events``: ``id``, ``event`` and JSON ``data``,
    discriminated by ``event``."""
