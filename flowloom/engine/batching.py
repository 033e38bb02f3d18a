"""Batched ticks: the writes of several ticks of one run committed at once, when that is safe.

A tick normally commits before anything it decided is acted on: children start only on
committed results. For a run of small, pure nodes (``Node.pure``: deterministic, no effect
beyond their outputs) that commit is most of the cost of a node. So a tick may be *deferred*:
its rows stay dirty in the run's state and its claimed nodes start at once, and a later tick
commits every row changed since the last commit in one transaction.

A tick is deferred only when nothing outside the process depends on it:

- every outcome it applies is the success of a pure node, and every node it claims is pure and
  runs in this process (a node run elsewhere checks its own claim in the database);
- it changes nothing but node rows: not the run's status (a run is never reported started,
  waiting or finished before that is committed), no answer or cancellation (their callers are
  told after the commit), no debug session;
- the batch is young and small (the engine's ``batch_window_s``, ``MAX_ROWS``): a deferred
  tick is committed at the latest ``batch_window_s`` later, even if the run has nothing else
  to do.

Events of deferred ticks are published after the commit that makes them true, as ever.

What a crash (or a lost commit) costs: the pure nodes that finished or started since the last
commit run again (their rows still say READY, PENDING or RUNNING as last committed): at-least-
once, as for any node that was running, and harmless for a pure node. A node with effects never
starts on an uncommitted result, and its own outcome is committed by the tick that applies it.

The lease fence still guards every committed batch: the rows whose RUNNING claim was committed
are written only while this engine's lease holds; rows claimed inside the batch were never
RUNNING in the database, so they are written like any row a tick claims.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from flowloom.engine.execution import Outcome

__all__ = ["DEFAULT_WINDOW_S", "MAX_ROWS", "Uncommitted"]

DEFAULT_WINDOW_S: Final = 0.010
"""The longest a deferred tick waits for its commit, unless the engine says otherwise."""
MAX_ROWS: Final = 2_000
"""The most changed node rows a batch gathers before it is committed."""


class Uncommitted:
    """What the ticks deferred since the last commit did, and when they must be committed."""

    __slots__ = ("_commit_by", "_expired", "_timer", "claims", "fenced", "outcomes", "window_s")

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.window_s = window_s
        """The longest a deferred tick waits for its commit."""
        self.claims: dict[str, int] = {}
        """Nodes claimed (and started) by deferred ticks: node id -> attempt."""
        self.fenced: set[str] = set()
        """Rows whose outcomes deferred ticks applied (fenced when the batch commits)."""
        self.outcomes: list[asyncio.Task[Outcome]] = []
        """The finished attempts deferred ticks applied (applied again if the batch is lost)."""
        self._commit_by: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False

    def __bool__(self) -> bool:
        return self._commit_by is not None

    def defer(
        self,
        claimed: Mapping[str, int],
        fenced: Iterable[str],
        finished: Iterable[asyncio.Task[Outcome]],
        wake: Callable[[], object],
    ) -> None:
        """Note one deferred tick: the nodes it claimed, the rows it fenced, what it applied;
        ``wake`` is called when the batch is due (once per batch: one timer, not one a tick)."""
        if self._commit_by is None:
            self._commit_by = time.monotonic() + self.window_s
            self._timer = asyncio.get_running_loop().call_later(self.window_s, self._expire, wake)
        self.claims.update(claimed)
        self.fenced.update(fenced)
        self.outcomes.extend(finished)

    def _expire(self, wake: Callable[[], object]) -> None:
        self._expired = True
        wake()

    def due(self) -> bool:
        """Whether the batch must be committed now."""
        if self._commit_by is None:
            return False
        return self._expired or time.monotonic() >= self._commit_by

    def committed(self) -> None:
        """Everything deferred is committed now."""
        self.claims.clear()
        self.fenced.clear()
        self.outcomes.clear()
        self._commit_by = None
        self._expired = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def is_uncommitted_claim(self, outcome: Outcome) -> bool:
        """Whether ``outcome`` is of an attempt whose claim was never committed."""
        return self.claims.get(outcome.node_id) == outcome.attempt
