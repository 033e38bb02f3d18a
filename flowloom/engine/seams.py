"""The engine's seams: what each part of it needs from the engine that runs it, as protocols.

``Engine`` (``scheduler.py``) implements all of them; drivers, the lease keeper and sub-runs
depend on these protocols instead, so none of them imports the scheduler, and another engine
(a worker host, a test double) plugs in by providing them.

- ``RunClient``: start a run, wait for it, cancel it, follow its events (a ``workflow.call``
  node's sub-runs use it).
- ``Executor``: a ``RunClient`` that also drives runs: the store and clock, the node
  dependencies (blobs, providers, integrations, secrets, settings), limits and leases, and how
  one node attempt is executed.
- ``RunDriver``: one run's driver as the executor and the lease keeper see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Protocol

from flowloom.engine.context import BlobAdapter
from flowloom.engine.events import EventBus
from flowloom.engine.execution import Outcome
from flowloom.engine.failpoints import Failpoints
from flowloom.engine.limits import ClaimLimits, Holding
from flowloom.engine.ports import Clock, RunResult, RunStore, StoredRun
from flowloom.engine.run_state import NodeSpec, RunState
from flowloom.integrations.mcp import McpServers
from flowloom.integrations.oauth_http import HttpSecrets
from flowloom.nodes.base import NodeSettings, RunContext
from flowloom.nodes.registry import NodeRegistry
from flowloom.providers.base import ProviderResolver
from flowloom.storage.enums import TriggerKind

__all__ = ["Executor", "RunClient", "RunDriver"]


class RunDriver(Protocol):
    """One run's driver, as the engine and the lease keeper see it."""

    @property
    def run_id(self) -> str: ...

    @property
    def state(self) -> RunState | None: ...

    @property
    def task(self) -> asyncio.Task[None] | None: ...

    @property
    def finished(self) -> asyncio.Future[None]: ...

    def running_nodes(self) -> list[str]:
        """The nodes whose attempts the driver has in flight."""
        ...

    def abandon(self, reason: str) -> None:
        """Stop at once, writing nothing more (another holder took the run over)."""
        ...

    def wake_to_claim(self) -> None:
        """A limit that kept one of the run's READY nodes waiting has room now."""
        ...


class RunClient(Protocol):
    """Starting, following, awaiting and cancelling runs."""

    @property
    def closed(self) -> bool: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def store(self) -> RunStore: ...

    @property
    def concurrency(self) -> asyncio.Semaphore:
        """Bounds the node attempts running at once (a waiting parent lends its place)."""
        ...

    @property
    def limits(self) -> ClaimLimits: ...

    async def start_run(
        self,
        *,
        owner_id: str,
        workflow_id: str,
        version: int | None = None,
        inputs: Any = None,
        trigger_kind: TriggerKind = TriggerKind.MANUAL,
        parent_run_id: str | None = None,
        parent_node_id: str | None = None,
        parent_attempt: int | None = None,
    ) -> str:
        """Create the run and hand it to whoever drives it; its id."""
        ...

    async def wait(self, run_id: str) -> RunResult:
        """Once the run finished, or waits with nothing in flight."""
        ...

    async def cancel(self, run_id: str) -> None: ...

    def give_back_place(self, run_id: str, node_id: str) -> Holding | None:
        """Free a node's place under its limits (a parent waiting for a sub-run)."""
        ...


class Executor(RunClient, Protocol):
    """What the drivers of runs and the lease keeper need from the engine running them."""

    @property
    def clock(self) -> Clock: ...

    @property
    def blobs(self) -> BlobAdapter: ...

    @property
    def failpoints(self) -> Failpoints: ...

    @property
    def node_settings(self) -> NodeSettings: ...

    @property
    def registry(self) -> NodeRegistry: ...

    @property
    def providers(self) -> ProviderResolver | None: ...

    @property
    def integrations(self) -> McpServers | None: ...

    @property
    def http_secrets(self) -> HttpSecrets | None: ...

    @property
    def owner_token(self) -> str:
        """The lease owner name of this engine's claims."""
        ...

    @property
    def lease_s(self) -> float: ...

    def drivers(self) -> Iterator[RunDriver]:
        """The drivers running now (a snapshot)."""
        ...

    def take_place(self, driver: RunDriver, node_id: str, *, owner: str, key: str | None) -> bool:
        """Count the node against its limits, or note that ``driver`` waits for room."""
        ...

    def lease_keeper(self) -> object:
        """Make sure running nodes' leases are renewed (started on demand)."""
        ...

    def driver_ended(self, driver: RunDriver) -> None: ...

    async def load_state(self, run_id: str) -> tuple[RunState, bool]:
        """The run's state from the store, and whether it may use the cache."""
        ...

    def state_of(self, run: StoredRun) -> tuple[RunState, bool]:
        """The state of a run as stored (just written), and whether it may use the cache."""
        ...

    @property
    def batch_window_s(self) -> float:
        """The longest a tick's commit may be deferred (``batching.py``)."""
        ...

    def starts_uncommitted(self, spec: NodeSpec) -> bool:
        """Whether a node of ``spec`` may start before its claim is committed."""
        ...

    async def execute_node(
        self, spec: NodeSpec, config: Any, ctx: RunContext, inputs: dict[str, Any], run: RunState
    ) -> Outcome:
        """One attempt of one node of ``run``; never raises but ``CancelledError``."""
        ...
