"""``BatchedLookups``: the cache look-ups a worker's drivers ask close together go to the store
as one, and each asker gets the answer (a fake store counts the calls)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowloom.worker.lookups import BatchedLookups


class FakeStore:
    def __init__(self, fail: BaseException | None = None, delay_s: float = 0.0) -> None:
        self.calls: list[tuple[list[str], bool]] = []
        self.fail = fail
        self.delay_s = delay_s
        self.db = "the store's own"

    async def find_cached(
        self, signatures: list[str], *, near: bool = False
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        self.calls.append((list(signatures), near))
        await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        return {s: (f"row-{s}", {"v": s}) for s in signatures if s.startswith("hit")}


async def test_look_ups_of_every_driver_are_one_call_and_each_asker_gets_the_answer() -> None:
    store = FakeStore()
    lookups = BatchedLookups(store, lambda: 3, window_s=60)

    found = await asyncio.gather(
        lookups.find_cached(["hit-a", "miss-a"], near=True),
        lookups.find_cached(["hit-b"], near=True),
        lookups.find_cached(iter(["hit-a", "hit-c"]), near=True),
    )

    assert store.calls == [(["hit-a", "miss-a", "hit-b", "hit-c"], True)]
    for answer in found:
        assert answer["hit-a"] == ("row-hit-a", {"v": "hit-a"})
        assert set(answer) == {"hit-a", "hit-b", "hit-c"}
    assert (lookups.asked, lookups.made) == (3, 1)


async def test_look_ups_of_the_other_kind_and_of_a_lone_driver_are_calls_of_their_own() -> None:
    store = FakeStore()
    drivers = [2]
    lookups = BatchedLookups(store, lambda: drivers[0], window_s=60)

    await asyncio.gather(
        lookups.find_cached(["hit-a"], near=True),
        lookups.find_cached(["hit-b"]),
        lookups.find_cached(["hit-d"], near=True),
        lookups.find_cached(["hit-e"]),
    )
    drivers[0] = 1  # alone: asked at once, without waiting for anyone
    later = await lookups.find_cached(["hit-c"], near=True)

    assert later == {"hit-c": ("row-hit-c", {"v": "hit-c"})}
    assert sorted(store.calls) == [
        (["hit-a", "hit-d"], True),
        (["hit-b", "hit-e"], False),
        (["hit-c"], True),
    ]


async def test_a_batch_short_of_a_driver_goes_when_its_window_passed() -> None:
    store = FakeStore()
    lookups = BatchedLookups(store, lambda: 3, window_s=0.05)
    began = asyncio.get_running_loop().time()

    found = await asyncio.gather(lookups.find_cached(["hit-a"]), lookups.find_cached(["hit-b"]))

    assert asyncio.get_running_loop().time() - began >= 0.04
    assert (
        found
        == [{"hit-a": ("row-hit-a", {"v": "hit-a"}), "hit-b": ("row-hit-b", {"v": "hit-b"})}] * 2
    )
    assert store.calls == [(["hit-a", "hit-b"], False)]


async def test_a_look_up_asked_while_one_is_on_its_way_is_not_added_to_it() -> None:
    store = FakeStore(delay_s=0.05)
    lookups = BatchedLookups(store, lambda: 2, window_s=0.001)
    first = asyncio.create_task(lookups.find_cached(["hit-a"]))
    await asyncio.sleep(0.01)  # the first call is in the store now

    second = await lookups.find_cached(["hit-b"])

    assert await first == {"hit-a": ("row-hit-a", {"v": "hit-a"})}
    assert second == {"hit-b": ("row-hit-b", {"v": "hit-b"})}
    assert store.calls == [(["hit-a"], False), (["hit-b"], False)]


async def test_a_failed_look_up_fails_every_asker() -> None:
    lookups = BatchedLookups(FakeStore(fail=ConnectionError("the database went away")), lambda: 2)

    found = await asyncio.gather(
        lookups.find_cached(["a"]), lookups.find_cached(["b"]), return_exceptions=True
    )

    assert [type(answer) for answer in found] == [ConnectionError, ConnectionError]


async def test_an_asker_cancelled_does_not_cancel_the_others() -> None:
    store = FakeStore(delay_s=0.05)
    lookups = BatchedLookups(store, lambda: 2)
    stopped = asyncio.create_task(lookups.find_cached(["hit-a"]))
    waiting = asyncio.create_task(lookups.find_cached(["hit-b"]))
    await asyncio.sleep(0.01)

    stopped.cancel()

    assert set(await waiting) == {"hit-a", "hit-b"}
    with pytest.raises(asyncio.CancelledError):
        await stopped
    assert len(store.calls) == 1


async def test_everything_else_is_the_store_s_own() -> None:
    store = FakeStore()
    lookups = BatchedLookups(store, lambda: 1)

    assert lookups.db == "the store's own"
    assert not hasattr(lookups, "commit_probing")
