"""The node contract: what a node type declares, what it receives, and what it returns.

A node type is a class. It declares a ``type_name`` (a public contract: saved workflows name
it), a :class:`Category`, a ``version`` (bumped when its outputs change for the same inputs,
which invalidates cached results), whether it is ``deterministic`` (only deterministic nodes
are cached), a pydantic ``Config`` model, and its ports, which may depend on the config. The
engine calls :meth:`Node.run` with a :class:`RunContext`: everything a node needs from outside
(blob store, workflow memory, HTTP, settings, the answer to a wait) reaches it there, never by
importing the storage or API layers, so every node runs against the fakes in
:mod:`flowloom.testing`.

Two named exceptions steer the engine from inside ``run``:
:class:`flowloom.exceptions.RetryNode` (run me again after ``after_s``) and
:class:`WaitForInput` (park me as WAITING until answered or until a timer fires).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from flowloom.exceptions import ExecutionError, NodeFailed
from flowloom.field_docs import describe_fields
from flowloom.graph.ports import NO_DEFAULT, Port, PortType
from flowloom.ids import idempotency_key
from flowloom.integrations.http_client import HttpClientFactory, default_http_client

if TYPE_CHECKING:
    from flowloom.integrations.mcp import McpServers
    from flowloom.integrations.oauth_http import HttpSecrets
    from flowloom.providers.base import ProviderResolver
    from flowloom.providers.usage import UsageSink

__all__ = [
    "NO_DEFAULT",
    "BlobStore",
    "Category",
    "HttpClientFactory",
    "MemoryItem",
    "MemoryStore",
    "Node",
    "NodeConfig",
    "NodeResult",
    "NodeSettings",
    "Port",
    "PortType",
    "RunContext",
    "SubRuns",
    "WaitForInput",
    "WorkflowRef",
    "default_http_client",
    "idempotency_key",
]


class Category(StrEnum):
    """The eight kinds of node of the engine document (seed 003); the palette groups by them."""

    TRIGGER = "TRIGGER"
    """Starts a run and hands it its inputs."""
    AI_AGENT = "AI_AGENT"
    """Calls a language model or an agent."""
    EXTERNAL_ACTION = "EXTERNAL_ACTION"
    """Talks to a service outside flowloom (HTTP, third-party APIs)."""
    ACTION = "ACTION"
    """Transforms data in process: text, lists, JSON, images."""
    FLOW = "FLOW"
    """Steers the run: branches, merges, delays."""
    HUMAN_IN_THE_LOOP = "HUMAN_IN_THE_LOOP"
    """Waits for a person's answer."""
    TOOL = "TOOL"
    """A tool an agent may call (MCP and the like)."""
    MEMORY = "MEMORY"
    """Reads or writes the workflow's keyed memory."""


class NodeConfig(BaseModel):
    """Base of every node's config model.

    Unknown keys are kept rather than refused because a config may also hold literal values
    for input ports, under the port's name (a value typed into the node instead of wired in);
    validation refuses extra keys that name no input port.
    """

    # Attribute docstrings become field descriptions in the JSON Schema the config form shows.
    # Built at first use (a workflow checked or run, the form's schema asked for), so a server
    # does not build every node type's config model while it starts.
    model_config = ConfigDict(extra="allow", json_schema_extra=describe_fields, defer_build=True)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class NodeResult:
    """What a run produced, by output port name.

    Only the outputs present were produced: a condition that takes its ``true`` branch returns
    ``{"true": value}`` and nothing for ``false``, and the engine skips the nodes fed only by
    outputs that are absent.
    """

    outputs: dict[str, Any] = field(default_factory=dict)


class WaitForInput(ExecutionError):
    """Control flow, not failure: park this node as WAITING and free its slot.

    The engine stores ``kind``, ``reason`` and ``payload`` (what a person or the API needs to
    answer: a prompt, the value under review) and runs the node again when the wait is answered,
    with the answer in ``RunContext.answer``. With ``resume_after_s`` the engine answers it
    itself once that much time has passed (a long delay).
    """

    def __init__(
        self,
        reason: str,
        *,
        kind: str = "input",
        payload: Mapping[str, Any] | None = None,
        resume_after_s: float | None = None,
    ) -> None:
        self.reason = reason
        self.kind = kind
        self.payload: dict[str, Any] = dict(payload or {})
        self.resume_after_s = resume_after_s
        super().__init__(f"waiting for {kind}: {reason}")


class BlobStore(Protocol):
    """Content-addressed bytes: binary data lives here, outputs hold its SHA-256."""

    async def put(self, data: bytes) -> str:
        """Store ``data`` (idempotently) and return its SHA-256 in lower-case hex."""
        ...

    async def read(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; raises NotFound when there are none."""
        ...


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One value of a workflow's keyed memory."""

    key: str
    value: Any
    value_type: str
    """The JSON type: string, number, boolean, object, array or null."""
    expires_at: datetime | None = None


class MemoryStore(Protocol):
    """The keyed memory of the running workflow (already scoped to it by the engine)."""

    async def get(self, key: str) -> MemoryItem | None:
        """The live value under ``key``, or None when absent or expired."""
        ...

    async def set(self, key: str, value: Any, *, ttl_s: float | None = None) -> MemoryItem:
        """Store ``value`` (JSON) under ``key``, expiring after ``ttl_s`` seconds if given."""
        ...

    async def delete(self, key: str) -> bool:
        """Forget ``key``; whether there was a live value."""
        ...


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    """A workflow of the same owner, by id or by name (exactly one of the two)."""

    id: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        return repr(self.id) if self.id is not None else f"named {self.name!r}"


class SubRuns(Protocol):
    """Runs other workflows of the same owner as sub-runs of the running node (``workflow.call``).

    The engine implements it by starting a child run (trigger kind ``subworkflow``, linked to
    the parent run and node) and awaiting its end; cancelling the node cancels the child.
    """

    async def start_and_wait(
        self, workflow: WorkflowRef, version: int | None, inputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The child run's outputs (by sink node id) once it COMPLETED.

        Raises NodeFailed carrying the child's error when it failed or was cancelled, when the
        workflow is not the owner's or cannot run, and when sub-runs nest too deep (any other
        ExecutionError means sub-runs are not available at all).
        """
        ...


class NoSubRuns:
    """The SubRuns of a context with no engine behind it: every call fails the node."""

    async def start_and_wait(
        self, workflow: WorkflowRef, version: int | None, inputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        raise ExecutionError(f"cannot run workflow {workflow}: this context has no engine")


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """The instance settings nodes obey; the engine fills them from ``flowloom.Settings``."""

    allow_private_http: bool = False
    """Let http.request and image.load reach private, loopback and link-local addresses."""
    http_max_response_bytes: int = 10 * 1024 * 1024
    """Largest response body a node reads; bigger ones fail the node."""
    image_max_bytes: int = 50 * 1024 * 1024
    """Largest image image.load accepts."""
    inline_delay_max_s: float = 60.0
    """flow.delay sleeps in place up to this long; longer delays park the node as WAITING."""


_log = logging.getLogger("flowloom.nodes")


def no_progress(kind: str, data: Mapping[str, Any]) -> None:
    """Where a node's progress goes when nobody follows the run (tests, ``run_node``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """Everything a node may use from outside, for one attempt of one node in one run."""

    run_id: str
    node_id: str
    attempt: int = 1
    idempotency_key: str
    """Pass it to services that deduplicate (an ``Idempotency-Key`` header); the same for
    every attempt of this node in this run (see :func:`idempotency_key`)."""
    blobs: BlobStore
    memory: MemoryStore
    workflow_id: str | None = None
    run_inputs: Mapping[str, Any] = field(default_factory=dict)
    """The inputs the run was started with (a trigger hands them to the graph)."""
    answer: Mapping[str, Any] | None = None
    """The answer to this node's earlier WaitForInput; None on a first run."""
    settings: NodeSettings = field(default_factory=NodeSettings)
    http_client: HttpClientFactory = default_http_client
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """How a node waits in place; the engine may pass one that wakes on cancellation."""
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = _log
    subruns: SubRuns = field(default_factory=NoSubRuns)
    """Starts other workflows as sub-runs of this node and waits for them."""
    owner_id: str | None = None
    """The user the run belongs to: stored credentials are read on their behalf."""
    providers: ProviderResolver | None = None
    """LLM providers (``flowloom.providers``); None where none are configured, and AI nodes
    then fail with a clear message."""
    usage: UsageSink | None = None
    """Where AI nodes record each provider call (tokens, exact cost); bound by the engine to the
    run's user, API key and run. None records nothing."""
    integrations: McpServers | None = None
    """The owner's registered MCP servers, and whether the owner may start stdio servers (used
    by ``mcp.tool`` and ``ai.agent``). None where there are none: registered servers then fail
    the node, and stdio servers are refused."""
    secrets: HttpSecrets | None = None
    """The owner's stored credentials and OAuth connections as HTTP authentication (used by
    ``http.request``'s ``auth``). None where there are none: such requests then fail."""
    progress: Callable[[str, Mapping[str, Any]], None] = no_progress
    """Live progress for whoever follows the run, never stored: ``progress("delta", {"text":
    ..., "offset": n})`` for streamed text (``offset``: its position in the node's whole text),
    ``progress("step", {...})`` for a step of a longer job. Published as a ``node.<kind>``
    event; the node's outputs stay the only record."""

    def fail(self, message: str, *, retryable: bool = False) -> NodeFailed:
        """A NodeFailed for this node and attempt, to raise: ``raise ctx.fail("...")``."""
        return NodeFailed(message, node_id=self.node_id, attempt=self.attempt, retryable=retryable)


class Node(ABC, Generic[ConfigT]):
    """Base of every node type. Subclasses set the class attributes and implement ``run``.

    Instances hold no state: the registry keeps one per type and the engine calls it
    concurrently for many runs.
    """

    type_name: ClassVar[str]
    """The public name, ``family.name`` (``text.template``)."""
    category: ClassVar[Category]
    version: ClassVar[int] = 1
    deterministic: ClassVar[bool] = True
    """Same config and inputs give the same outputs, so results may be cached."""
    pure: ClassVar[bool] = False
    """Deterministic, and running it has no effect beyond its outputs: no call out, no write
    (blobs, memory, files), no message, no sub-run, no wait. The engine may then start it
    before the results it is fed (and its own claim) are committed, batching the commits of
    several ticks; after a crash it may run again although it had finished. Say so only for
    plain computation on the inputs and config."""
    dynamic_ports: ClassVar[bool] = False
    """Ports depend on the config; the palette shows the ports of the default config."""
    Config: ClassVar[type[BaseModel]] = NodeConfig
    display_name: ClassVar[str] = ""
    """The name people read in the palette and on the canvas ("Text template"); empty: made
    from ``type_name``."""
    icon: ClassVar[str] = ""
    """A name from the UI's icon set (``sparkles``, ``scissors``, ``globe``...) or the path data
    of a 24x24 SVG icon (``M4 4h16v16H4z``); empty: the category's icon."""
    color: ClassVar[str] = ""
    """The accent colour of the node's header as ``#rrggbb``; empty: the category's colour."""
    raw_template_fields: ClassVar[frozenset[str]] = frozenset()
    """Config fields the node renders itself as templates (``text.template``'s ``template``).

    The engine renders ``{{ ... }}`` in every other string config field over the node's inputs
    before ``run``; a field named here reaches ``run`` as written.
    """

    @classmethod
    def description(cls) -> str:
        """The first paragraph of the class docstring, for the palette."""
        doc = (cls.__doc__ or "").strip()
        return " ".join(doc.split("\n\n", 1)[0].split())

    def parse_config(self, raw: Mapping[str, Any]) -> ConfigT:
        """The validated config; raises pydantic's ValidationError naming each bad field."""
        return cast(ConfigT, self.Config.model_validate(raw))

    def is_deterministic(self, config: ConfigT) -> bool:
        """Whether results for ``config`` may be cached (``deterministic`` unless overridden)."""
        return self.deterministic

    def concurrency_key(self, config: ConfigT) -> str | None:
        """The key whose concurrency limit this execution counts against, or None for none.

        ``family:detail``, e.g. ``http:api.example.com``: the engine's limits name either a
        whole key or a family, whose limit then applies to each of its keys on its own.
        """
        return None

    def inputs(self, config: ConfigT) -> list[Port]:
        """The input ports for ``config`` (none by default)."""
        return []

    def outputs(self, config: ConfigT) -> list[Port]:
        """The output ports for ``config`` (none by default)."""
        return []

    @abstractmethod
    async def run(self, ctx: RunContext, config: ConfigT, inputs: dict[str, Any]) -> NodeResult:
        """Do the work. ``inputs`` holds a value for every input port that has one.

        Raise ``ctx.fail(...)`` for a failure worth a clear message, RetryNode to be run again
        later, WaitForInput to park. Return the produced outputs only.
        """
