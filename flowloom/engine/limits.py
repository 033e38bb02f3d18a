"""Per-key concurrency limits, checked when a node is claimed (DESIGN §3).

Besides the engine's global limit, a node attempt may count against two more:

- its run owner's: at most ``per_owner`` attempts of one user's runs running at once;
- its node type's key (``Node.concurrency_key(config)``, such as ``http:api.example.com``):
  ``per_key`` names either a whole key or a family (the part before ``:``), in which case the
  family's limit applies to each of its keys on its own. A whole key's entry wins.

A node that would exceed a limit is not failed: it stays READY, and its run is woken to claim
it again when an attempt holding that limit ends. The counts live in this engine's process:
they bound what one engine runs, which is the whole story in embedded mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ClaimLimits", "Holding"]


@dataclass(frozen=True, slots=True)
class Holding:
    """What one running attempt counts against: its owner and, if any, its key."""

    owner: str
    key: str | None


class ClaimLimits:
    """The counts of running attempts per owner and per key, and the limits on them."""

    def __init__(
        self, *, per_owner: int | None = None, per_key: Mapping[str, int] | None = None
    ) -> None:
        if per_owner is not None and per_owner < 1:
            raise ValueError("per_owner must be at least 1")
        if any(limit < 1 for limit in (per_key or {}).values()):
            raise ValueError("every per_key limit must be at least 1")
        self.per_owner = per_owner
        self.per_key = dict(per_key or {})
        self.active = per_owner is not None or bool(self.per_key)
        """Whether any limit is set; without one the engine skips all of this."""
        self._held: dict[tuple[str, str], Holding] = {}
        self._owners: dict[str, int] = {}
        self._keys: dict[str, int] = {}

    def key_limit(self, key: str) -> int | None:
        """The limit on ``key``: its own entry, else its family's, else None (no limit)."""
        found = self.per_key.get(key)
        if found is None:
            found = self.per_key.get(key.partition(":")[0])
        return found

    def running(self, *, owner: str | None = None, key: str | None = None) -> int:
        """How many attempts of ``owner`` (or with ``key``) hold a place now."""
        if owner is not None:
            return self._owners.get(owner, 0)
        return self._keys.get(key or "", 0)

    def try_take(self, run_id: str, node_id: str, *, owner: str, key: str | None) -> str | None:
        """Take a place for the attempt, or name the limit that refuses it (taking nothing).

        The refusal names are ``owner:<id>`` and ``key:<key>``; :meth:`give_back` returns the
        same names, so the caller can wake exactly the runs waiting for them.
        """
        if self.per_owner is not None and self._owners.get(owner, 0) >= self.per_owner:
            return f"owner:{owner}"
        if key is not None:
            limit = self.key_limit(key)
            if limit is not None and self._keys.get(key, 0) >= limit:
                return f"key:{key}"
        self.take(run_id, node_id, Holding(owner, key))
        return None

    def take(self, run_id: str, node_id: str, holding: Holding) -> None:
        """Count the attempt whatever the limits say (a place given back for a while)."""
        if (run_id, node_id) in self._held:
            return
        self._held[(run_id, node_id)] = holding
        self._owners[holding.owner] = self._owners.get(holding.owner, 0) + 1
        if holding.key is not None:
            self._keys[holding.key] = self._keys.get(holding.key, 0) + 1

    def give_back(self, run_id: str, node_id: str) -> tuple[Holding | None, list[str]]:
        """Free the attempt's place: what it held (None if nothing) and the limits it frees."""
        holding = self._held.pop((run_id, node_id), None)
        if holding is None:
            return None, []
        freed = [f"owner:{holding.owner}"]
        _decrement(self._owners, holding.owner)
        if holding.key is not None:
            _decrement(self._keys, holding.key)
            freed.append(f"key:{holding.key}")
        return holding, freed

    def give_back_run(self, run_id: str) -> list[str]:
        """Free every place the run's attempts hold (its driver ended); the limits freed."""
        freed: list[str] = []
        for held_run, node_id in [key for key in self._held if key[0] == run_id]:
            freed.extend(self.give_back(held_run, node_id)[1])
        return freed


def _decrement(counts: dict[str, int], name: str) -> None:
    left = counts.get(name, 0) - 1
    if left > 0:
        counts[name] = left
    else:
        counts.pop(name, None)
