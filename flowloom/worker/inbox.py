"""The runs' inbox: a Redis list of run ids that the workers' engines drain themselves.

When the broker is the Redis of the run claims (the default: one ``redis://`` URL for both),
runs do not travel as Celery tasks. The API and the sweep push run ids onto the list
``flowloom:{queue}:inbox``, and each worker process's engine pops them itself, from its own
event loop, whenever it has room for more runs (``worker_runs_at_once``). A Celery task cost a
worker's main process about 1.6 ms of CPU (receiving, handing to a child, acknowledging) and
its child more, which was a fifth of what a worker spent on a short run; a pop costs one
round trip for several runs, and nothing needs acknowledging.

Nothing is lost that a task would have kept:

- Pop and claim are one Lua script (``take``): a run leaves the list only as the claim of the
  engine that took it, so no moment exists at which a run is neither queued nor claimed
  (a Celery task, once handed from the broker to a child, was neither). A claimed run whose
  worker dies is the sweep's as soon as its claim lapses, exactly as before.
- The one exception is an engine that had nothing to do: it waits in ``BLPOP`` and claims
  what that pop gave in its next round trip. A worker killed between the two leaves that run
  with its "queued" mark; the mark lapses (``queued_for_s``) and the sweep queues the run
  again, the bound that a task handed to a worker killed before it claimed had too.
- A run id pushed twice (an answer or a cancellation queues a run that is queued already) is
  found claimed, driven or finished by the second pop, as a second task found it.

With RabbitMQ, or a Redis broker apart from the claims' Redis, runs still go as Celery tasks
(``drive_runs``): the inbox needs pop and claim in one Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowloom.settings import Settings
from flowloom.worker.claims import RunClaims

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["ENTRY_MAX", "RunInbox", "inbox_used"]

# KEYS[1]: the inbox; KEYS[2..]: the runs' claim keys. ARGV[1]: the mark's TTL (ms); ARGV[2]:
# "1" to push a run whatever its key holds; ARGV[3]: the most runs an entry holds; ARGV[4..]:
# the run ids, in the keys' order. Marks each run "queued" unless its key is set, and pushes
# those it marked (all of them with ARGV[2] = "1"), their ids apart by spaces, as few entries
# as that most allows: 1 or 0 per run.
_PUT = """
local flags = {}
local pushed = {}
local most = tonumber(ARGV[3])
for i = 2, #KEYS do
  local marked = redis.call('SET', KEYS[i], 'queued', 'NX', 'PX', ARGV[1])
  if marked or ARGV[2] == '1' then
    pushed[#pushed + 1] = ARGV[i + 2]
    flags[i - 1] = 1
    if #pushed == most then
      redis.call('RPUSH', KEYS[1], table.concat(pushed, ' '))
      pushed = {}
    end
  else
    flags[i - 1] = 0
  end
end
if #pushed > 0 then
  redis.call('RPUSH', KEYS[1], table.concat(pushed, ' '))
end
return flags
"""

# KEYS[1]: the inbox. ARGV[1]: the owner token; ARGV[2]: the claim TTL (ms); ARGV[3]: how many
# runs to take (entries are popped while fewer are taken: the last may bring more); ARGV[4]:
# the claim keys' prefix; ARGV[5]: an entry popped already (by BLPOP), or none. Claims the
# runs of each entry; a run another engine holds is dropped (it is driven). The runs claimed,
# in order.
_TAKE = """
local taken = {}
local function take(entry)
  for run_id in string.gmatch(entry, '%S+') do
    local key = ARGV[4] .. run_id
    local held = redis.call('GET', key)
    if (not held) or held == ARGV[1] or held == 'queued' then
      redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
      taken[#taken + 1] = run_id
    end
  end
end
if ARGV[5] then take(ARGV[5]) end
local want = tonumber(ARGV[3])
while #taken < want do
  local entry = redis.call('LPOP', KEYS[1])
  if not entry then break end
  take(entry)
end
return taken
"""


def inbox_used(settings: Settings) -> bool:
    """Whether runs go through the inbox (the broker is the claims' Redis), not Celery."""
    url = settings.broker_url
    return url.partition("://")[0] in ("redis", "rediss") and url == settings.resolved_events_url


ENTRY_MAX = 8
"""The most runs one entry holds: a sweep that queues the hundreds of runs of a dead worker
spreads them over the workers, as the API's sends of at most eight runs do."""


class RunInbox:
    """The inbox of one flowloom instance (``claims.namespace``), in the claims' Redis."""

    def __init__(self, claims: RunClaims) -> None:
        self.claims = claims
        self.redis: Redis = claims.redis
        self.key = f"flowloom:{claims.namespace}:inbox"
        self._prefix = claims.key("")

    async def put(self, run_ids: list[str], *, for_s: float, always: bool) -> list[bool]:
        """Mark each run queued (for ``for_s``) unless its key is set, and push those marked
        (all of them with ``always``), ``ENTRY_MAX`` to an entry, in one round trip; for each
        run, whether it was pushed."""
        if not run_ids:
            return []
        keys = [self.claims.key(run_id) for run_id in run_ids]
        ttl_ms = max(1, round(for_s * 1000))
        found = await self.redis.eval(
            _PUT,
            len(keys) + 1,
            self.key,
            *keys,
            ttl_ms,
            "1" if always else "0",
            ENTRY_MAX,
            *run_ids,
        )
        return [int(value) == 1 for value in found]

    async def take(self, owner: str, count: int, popped: str | None = None) -> list[str]:
        """Claim for ``owner`` the runs of the entry ``popped`` already, then of entries
        popped from the inbox while fewer than ``count`` are taken (one round trip; the last
        entry may bring more); the runs claimed, in the order they were queued."""
        given = () if popped is None else (popped,)
        found = await self.redis.eval(
            _TAKE, 1, self.key, owner, self.claims.ttl_ms, count, self._prefix, *given
        )
        return [value.decode() if isinstance(value, bytes) else str(value) for value in found]

    async def wait(self, timeout_s: float) -> str | None:
        """The next entry (run ids apart by spaces), waiting up to ``timeout_s`` for one
        (popped, not claimed yet: ``take`` it next)."""
        found = await self.redis.blpop([self.key], timeout=timeout_s)
        if found is None:
            return None
        value = found[1]
        return value.decode() if isinstance(value, bytes) else str(value)

    async def size(self) -> int:
        """How many entries (each the runs of one push) wait in the inbox."""
        return int(await self.redis.llen(self.key))
