"""``Database.ping`` (what ``/healthz`` asks) after an outage: it answers for the database as
it is now, not for the pooled connections the outage broke."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from flowloom.storage.errors import DatabaseUnavailable
from tests.outagekit import Outage


async def _pool_connections(outage: Outage, count: int) -> None:
    """``count`` connections used and put back in the pool, as after a burst of requests."""
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(count):
            conn = await stack.enter_async_context(outage.db.engine.connect())
            await conn.exec_driver_sql("SELECT 1")


async def test_the_first_ping_after_an_outage_answers_for_the_database_as_it_is(
    outage: Outage,
) -> None:
    await _pool_connections(outage, 3)
    await asyncio.to_thread(outage.cut)
    await asyncio.to_thread(outage.restore)
    # Nothing used the pool during the outage: every pooled connection is one it broke.
    await outage.db.ping()
    await outage.db.ping()


@pytest.mark.parametrize("outage_kind", ["postgresql"], indirect=True)
async def test_a_ping_during_an_outage_says_the_database_is_unavailable(outage: Outage) -> None:
    await _pool_connections(outage, 2)
    await asyncio.to_thread(outage.cut)
    try:
        with pytest.raises(DatabaseUnavailable):
            await outage.db.ping()
    finally:
        await asyncio.to_thread(outage.restore)
    await outage.db.ping()
