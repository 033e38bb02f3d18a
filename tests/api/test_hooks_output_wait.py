"""A ``respond: output`` webhook's wait for a run driven in this process: the run's own event
settles it, and a driver that ends without one still answers (its result, or its error)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest

from flowloom.api.routes.hooks import _output
from flowloom.engine import Engine, EventBus, RunResult
from flowloom.engine.driver import LeaseLost
from flowloom.engine.events import Event
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus

RUN = "run_1"
DONE = RunResult(RUN, RunStatus.COMPLETED, {"respond": {"text": "hi"}}, None, 7)


class _Driver:
    def __init__(self) -> None:
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.result: RunResult | None = None


class _Engine:
    """What ``_output`` asks of an engine driving the run here."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.driver: _Driver | None = _Driver()
        self.waited = 0

    def driver_of(self, run_id: str) -> _Driver | None:
        return self.driver

    async def wait(self, run_id: str) -> RunResult:
        self.waited += 1
        return RunResult(run_id, RunStatus.RUNNING, None, None, None)


def _answered(engine: _Engine, timeout_s: float = 5) -> asyncio.Task[Any]:
    db = cast(Database, None)  # never read: every outcome here is the driver's or wait's
    return asyncio.ensure_future(_output(cast(Engine, engine), db, RUN, "usr_1", timeout_s))


def _body(response: Any) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(response.body))


async def test_the_runs_event_answers_with_the_drivers_result() -> None:
    engine = _Engine()
    answer = _answered(engine)
    await asyncio.sleep(0)
    assert engine.driver is not None
    engine.driver.result = DONE
    engine.bus.publish([Event("run.completed", RUN)])
    response = await answer
    assert (response.status_code, _body(response)["outputs"]) == (200, DONE.outputs)
    assert engine.waited == 0
    assert not engine.bus.watched_runs()


async def test_a_driver_that_ends_without_an_event_answers_with_its_result() -> None:
    engine = _Engine()
    answer = _answered(engine)
    await asyncio.sleep(0)
    assert engine.driver is not None
    engine.driver.result = DONE
    engine.driver.finished.set_result(None)
    response = await answer
    assert (response.status_code, _body(response)["status"]) == (200, "COMPLETED")
    assert engine.waited == 0


async def test_a_driver_that_ends_with_no_result_answers_with_the_run_as_it_stands() -> None:
    engine = _Engine()
    answer = _answered(engine)
    await asyncio.sleep(0)
    assert engine.driver is not None
    engine.driver.finished.set_result(None)
    response = await answer
    assert (response.status_code, _body(response)["status"]) == (200, "RUNNING")
    assert engine.waited == 1


async def test_a_driver_that_ends_in_error_raises_it() -> None:
    engine = _Engine()
    answer = _answered(engine)
    await asyncio.sleep(0)
    assert engine.driver is not None
    engine.driver.finished.set_exception(LeaseLost("taken"))
    with pytest.raises(LeaseLost):
        await answer


async def test_no_event_within_the_timeout_answers_202() -> None:
    engine = _Engine()
    response = await _answered(engine, timeout_s=0.01)
    assert (response.status_code, _body(response)["status"]) == (202, "RUNNING")
    assert not engine.bus.watched_runs()
