"""``flowloom run``'s live table shows the end of each node's streamed text as it arrives,
and a node's new attempt starts its text over; the whole command, against the local provider
server, shows an answer growing in the terminal."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from providers.fake_servers import API_KEY, running_server
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live

from flowloom.cli.run import _follow, _table, run_file
from flowloom.engine.events import DELTA, Event
from flowloom.settings import Settings


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


ANSWER = "Rivers carry the mountain down to the sea."


async def test_flowloom_run_shows_the_answer_growing_in_the_terminal(tmp_path: Path) -> None:
    """The whole command against the local server that speaks OpenAI's protocol, streaming
    slowly: the terminal shows the node's text at several lengths while the node runs, each a
    beginning of the answer, and the report the whole answer."""
    with running_server() as server:
        server.reply_text = ANSWER
        server.stream_piece_chars = 3
        server.stream_delay_s = 0.08
        settings = Settings(
            data_dir=tmp_path / "data",
            openai_api_key=SecretStr(API_KEY),
            openai_base_url=server.openai_base_url,
        )
        ask = {"provider": "openai", "model": "model-test", "user_message": "Tell me."}
        path = tmp_path / "ask.json"
        path.write_text(
            json.dumps(
                {
                    "schema_version": 1,
                    "nodes": [{"id": "ask", "type": "ai.llm", "data": {"config": ask}}],
                    "edges": [],
                }
            )
        )
        out = io.StringIO()
        console = Console(file=out, width=160, force_terminal=True, color_system=None)

        code = await run_file(settings, path, {}, as_json=False, console=console)

    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert code == 0, shown
    growing = re.findall(r"│ ask\s*│ running\s*│ (.*?)\s*│", shown)
    lengths = sorted({len(text) for text in growing})
    assert len(lengths) >= 3, growing  # several frames while the node ran, not one at the end
    assert all(ANSWER.startswith(text) for text in growing), growing
    assert lengths[0] < len(ANSWER)
    assert f'ask.text = "{ANSWER}"' in shown
