"""``flowloom run``'s live table shows the end of each node's streamed text as it arrives,
and a node's new attempt starts its text over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console
from rich.live import Live

from flowloom.cli.run import _follow, _table
from flowloom.engine.events import DELTA, Event


class _Frames:
    """A Live stand-in that renders every update."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    def update(self, renderable: Any) -> None:
        console = Console(width=120, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        console.print(renderable)
        self.frames.append(console.export_text())


async def _events(*events: Event) -> AsyncIterator[Event]:
    for event in events:
        await asyncio.sleep(0)
        yield event


async def test_streamed_text_shows_as_it_comes() -> None:
    live = _Frames()
    states: dict[str, str] = {}
    texts: dict[str, str] = {}
    await _follow(
        _events(
            Event("node.started", "r", "ask"),
            Event(DELTA, "r", "ask", data={"text": "Once upon", "offset": 0, "attempt": 1}),
            Event(DELTA, "r", "ask", data={"text": " a [bold]time", "offset": 9, "attempt": 1}),
            Event(DELTA, "r", "ask", data={"text": "Retried", "offset": 0, "attempt": 2}),
            Event("node.succeeded", "r", "ask"),
            Event("run.completed", "r"),
        ),
        "r",
        states,
        texts,
        live,  # type: ignore[arg-type]
    )
    frames = live.frames
    assert "Once upon" in frames[1]
    assert "Once upon a [bold]time" in frames[2]  # markup in model text is shown, not applied
    assert "Retried" in frames[3]
    assert "Once upon" not in frames[3]
    assert "running" in frames[0]
    assert "succeeded" in frames[-1]
    assert texts == {"ask": "Retried"}


def test_the_table_shows_the_end_of_a_long_text() -> None:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(_table({"ask": "RUNNING"}, {"ask": "word " * 100 + "THE END"}))
    assert "THE END" in console.export_text()


def test_no_text_column_without_streamed_text() -> None:
    assert len(_table({"a": "SUCCEEDED"}, {}).columns) == 2
    assert Live  # the table is what the live display renders
