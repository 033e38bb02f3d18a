"""Failpoints: named places where the engine kills its own process, for crash tests.

Armed only by the environment variable ``FLOWLOOM_FAILPOINTS``, read once when an Engine is
built: a comma-separated list of ``name`` (die the first time the point is reached) or
``name@N`` (die the N-th time), each optionally followed by ``:kill``. The process ends with
``os._exit(FAILPOINT_EXIT_CODE)``, or with ``:kill`` by SIGKILL sent to itself: no ``finally``
blocks, no commit, no flush, exactly like a power cut as far as the database sees.

The points:

- ``after_effect_before_commit``: nodes have run (their side effects happened) and their
  results are about to be committed;
- ``after_commit_before_release``: results are committed and the children they made ready are
  about to be dispatched.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import Final

from flowloom.exceptions import ConfigurationError

__all__ = ["ENV_VAR", "FAILPOINT_EXIT_CODE", "POINTS", "Failpoints"]

ENV_VAR: Final = "FLOWLOOM_FAILPOINTS"
FAILPOINT_EXIT_CODE: Final = 77
POINTS: Final = frozenset({"after_effect_before_commit", "after_commit_before_release"})


class Failpoints:
    """The armed points and how many times each has been reached."""

    def __init__(
        self, armed: Mapping[str, int] | None = None, killed: frozenset[str] = frozenset()
    ) -> None:
        self._armed = dict(armed or {})
        self._killed = killed
        """The points that end the process by SIGKILL rather than an exit code."""
        self._hits: dict[str, int] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Failpoints:
        """The points named in ``FLOWLOOM_FAILPOINTS``; ConfigurationError for an unknown one."""
        spec = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
        armed: dict[str, int] = {}
        killed: set[str] = set()
        for item in filter(None, (part.strip() for part in spec.split(","))):
            point, _, mode = item.partition(":")
            if mode not in ("", "kill"):
                raise ConfigurationError(f"{ENV_VAR}: unknown mode {mode!r} in {item!r}")
            name, _, count = point.partition("@")
            if mode:
                killed.add(name)
            if name not in POINTS:
                raise ConfigurationError(f"{ENV_VAR}: unknown failpoint {name!r}")
            try:
                armed[name] = int(count) if count else 1
            except ValueError:
                raise ConfigurationError(f"{ENV_VAR}: bad count in {item!r}") from None
        return cls(armed, frozenset(killed))

    def __bool__(self) -> bool:
        return bool(self._armed)

    def reach(self, name: str) -> None:
        """Die here if ``name`` is armed and this is the time it was armed for."""
        target = self._armed.get(name)
        if target is None:
            return
        hits = self._hits.get(name, 0) + 1
        self._hits[name] = hits
        if hits >= target:
            if name in self._killed:
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(FAILPOINT_EXIT_CODE)
