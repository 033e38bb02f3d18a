"""Run claims in Redis: which worker drives which run, with a TTL its driver keeps renewing.

A key per run, ``flowloom:{namespace}:run:{run_id}``, holds either ``queued`` (a task for the
run is in the queue; keeps the sweep from queueing it again and again) or the lease owner
token of the engine driving it. Taking and renewing are one Lua script each, so two workers
can never both believe they hold a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline

__all__ = ["QUEUED", "RENEW_MANY_SCRIPT", "RENEW_SCRIPT", "RunClaims"]

QUEUED: Final = "queued"

# Take the run if nobody holds it, it is only queued, or we hold it already (renewal).
_TAKE = """
local held = redis.call('GET', KEYS[1])
if (not held) or held == ARGV[1] or held == 'queued' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# _TAKE for every key of KEYS at once (a task's runs, one round trip): 1 or 0 per key.
_TAKE_MANY = """
local taken = {}
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if (not held) or held == ARGV[1] or held == 'queued' then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    taken[i] = 1
  else
    taken[i] = 0
  end
end
return taken
"""

# Renew only what we hold (a key that expired meanwhile is taken again if nobody took it).
RENEW_SCRIPT = """
local held = redis.call('GET', KEYS[1])
if (not held) or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# RENEW_SCRIPT for every key of KEYS at once (a heartbeat's one round trip): 1 or 0 per key.
RENEW_MANY_SCRIPT = """
local kept = {}
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if (not held) or held == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    kept[i] = 1
  else
    kept[i] = 0
  end
end
return kept
"""

# Forget a "queued" mark whose task was never sent (the broker refused it), so the sweep sees
# the run as needing a driver at once instead of when the mark expires.
_UNMARK = """
if redis.call('GET', KEYS[1]) == 'queued' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RunClaims:
    """The claims of one flowloom instance (``namespace``: its worker queue) in one Redis."""

    def __init__(self, redis: Redis, *, namespace: str, ttl_s: float) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl_ms = max(1, round(ttl_s * 1000))

    def key(self, run_id: str) -> str:
        return f"flowloom:{self.namespace}:run:{run_id}"

    async def mark_queued(self, run_ids: list[str], *, for_s: float) -> list[bool]:
        """Note that a task for each run is queued, unless its key is set; for each, whether
        it was not (one round trip for them all)."""
        if not run_ids:
            return []
        if len(run_ids) == 1:
            # Most sends carry one run: a plain SET costs the API ~30 us of CPU less than a
            # pipeline of one.
            key = self.key(run_ids[0])
            return [bool(await self.redis.set(key, QUEUED, nx=True, px=round(for_s * 1000)))]
        async with self.redis.pipeline(transaction=False) as pipe:
            self.mark_in(pipe, run_ids, for_s=for_s)
            done = await pipe.execute()
        return [bool(value) for value in done]

    def mark_in(self, pipe: Pipeline, run_ids: list[str], *, for_s: float) -> None:
        """Add :meth:`mark_queued`'s commands to ``pipe`` (one reply each, truthy if marked)."""
        ttl_ms = round(for_s * 1000)
        for run_id in run_ids:
            pipe.set(self.key(run_id), QUEUED, nx=True, px=ttl_ms)

    async def unmark_queued(self, run_ids: list[str]) -> None:
        """Undo :meth:`mark_queued` (only ``queued`` marks: never a worker's claim)."""
        if not run_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.eval(_UNMARK, 1, self.key(run_id))
            await pipe.execute()

    async def take(self, run_id: str, owner: str) -> bool:
        """Claim the run for ``owner``; False when another worker drives it."""
        return await self._script(_TAKE, run_id, owner, self.ttl_ms) == 1

    async def take_many(self, run_ids: list[str], owner: str) -> list[bool]:
        """``take`` for each of ``run_ids``, in one round trip; for each, whether it was taken."""
        if not run_ids:
            return []
        keys = [self.key(run_id) for run_id in run_ids]
        found = await self.redis.eval(_TAKE_MANY, len(keys), *keys, owner, self.ttl_ms)
        return [int(value) == 1 for value in found]

    async def renew(self, run_id: str, owner: str) -> bool:
        """Keep ``owner``'s claim alive; False when another worker holds the run now."""
        return await self._script(RENEW_SCRIPT, run_id, owner, self.ttl_ms) == 1

    async def release(self, run_id: str, owner: str) -> None:
        await self._script(_RELEASE, run_id, owner)

    async def unheld(self, run_ids: list[str]) -> list[str]:
        """Those of ``run_ids`` that nobody holds or has queued now (one round trip)."""
        if not run_ids:
            return []
        held = await self.redis.mget([self.key(run_id) for run_id in run_ids])
        return [run_id for run_id, value in zip(run_ids, held, strict=True) if value is None]

    async def holder(self, run_id: str) -> str | None:
        raw = await self.redis.get(self.key(run_id))
        return raw.decode() if isinstance(raw, bytes) else raw

    async def try_lock(self, name: str, owner: str, *, for_s: float) -> bool:
        """Take a lock of its own (the sweep's) for ``for_s``, or keep it for ``for_s`` more
        when ``owner`` holds it already; False while another owner holds it."""
        key = f"flowloom:{self.namespace}:lock:{name}"
        return (
            int(await self.redis.eval(RENEW_SCRIPT, 1, key, owner, max(1, round(for_s * 1000))))
            == 1
        )

    async def _script(self, script: str, run_id: str, *args: str | int) -> int:
        result = await self.redis.eval(script, 1, self.key(run_id), *args)
        return int(result)
