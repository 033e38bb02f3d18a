"""A client that stops reading the event stream of a run never slows the run.

The app is driven as a server drives it (ASGI), by a client whose socket takes the first write
and then nothing until the test lets it go: the route is stuck writing while an ``ai.llm``
node streams hundreds of pieces through the real OpenAI SDK from the local fake provider. The
run still completes; the stuck reader's queue stays bounded; when the client reads again it
gets what it lost in a better form: the node's whole text so far, or a fresh snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apikit import Account, create_workflow, make_settings, sign_up
from fastapi import FastAPI
from providers.fake_servers import API_KEY, FakeServer
from ssekit import sse_messages, streamed_text

from flowloom.api.run_feed import RunFeeds
from flowloom.api.state import AppState
from flowloom.engine.events import DELTA
from flowloom.settings import Settings

MAX_QUEUED = 10
REPLY = "".join(f"word{i:03d} " for i in range(90))  # 720 characters: 240 pieces of 3


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("data"),
        openai_api_key=API_KEY,
        openai_base_url=fake.openai_base_url,
    )


@pytest.fixture
def streaming(fake: FakeServer) -> Iterator[FakeServer]:
    fake.reset()
    fake.reply_text = REPLY
    fake.stream_piece_chars = 3
    fake.stream_delay_s = 0.002
    yield fake
    fake.reset()


def _state(app: FastAPI) -> AppState:
    state = app.state.flowloom
    assert isinstance(state, AppState)
    return state


class StuckClient:
    """GET ``path`` as a client that takes the first write and then reads nothing until
    ``release()``."""

    def __init__(self, app: FastAPI, path: str, account: Account) -> None:
        self.body = bytearray()
        self.writes = 0
        self._released = asyncio.Event()
        self._first = asyncio.Event()
        self._done = asyncio.Event()
        self._asked = False
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"flowloom.test"),
                (b"authorization", f"Bearer {account.token}".encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("flowloom.test", 80),
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._done.wait()  # the client never hangs up first
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        self.body += message.get("body", b"")
        self.writes += 1
        self._first.set()
        if not message.get("more_body", False):
            self._done.set()
            return
        await self._released.wait()  # a full socket: the write does not return

    async def first_write(self) -> None:
        await asyncio.wait_for(self._first.wait(), 10)

    async def finish(self) -> list[tuple[str, dict[str, Any]]]:
        self._released.set()
        await asyncio.wait_for(self.task, 30)
        return sse_messages(bytes(self.body))


async def _start_run(client: httpx.AsyncClient, account: Account) -> str:
    config = {"provider": "openai", "model": "fake-model", "user_message": "Talk."}
    node = {"id": "ask", "type": "ai.llm", "position": {"x": 0, "y": 0}, "data": {"config": config}}
    workflow = await create_workflow(
        client, account, {"schema_version": 1, "nodes": [node], "edges": []}
    )
    started = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs", json={}, headers=account.bearer
    )
    assert started.status_code == 202, started.text
    run_id: str = started.json()["id"]
    return run_id


async def _status(client: httpx.AsyncClient, account: Account, run_id: str) -> str:
    run = await client.get(f"/api/v1/runs/{run_id}", headers=account.bearer)
    status: str = run.json()["status"]
    return status


async def test_the_run_completes_while_its_reader_is_stuck_and_the_reader_gets_a_snapshot(
    app: FastAPI, client: httpx.AsyncClient, streaming: FakeServer
) -> None:
    state = _state(app)
    state.feeds = RunFeeds(state.require_engine().bus, max_queued=MAX_QUEUED)
    account = await sign_up(client)
    run_id = await _start_run(client, account)
    stuck = StuckClient(app, f"/api/v1/runs/{run_id}/events", account)
    await stuck.first_write()
    feed = state.feeds.feed(run_id)
    assert feed is not None
    [reader] = feed.readers

    for _ in range(600):
        if await _status(client, account, run_id) == "COMPLETED":
            break
        assert reader.queued <= MAX_QUEUED
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the run did not complete while its reader was stuck")
    assert stuck.writes == 1, "the client was stuck all along"
    messages = await stuck.finish()

    assert reader.dropped > 0, "the reader fell behind"
    kinds = [kind for kind, _ in messages]
    assert kinds[0] == "snapshot"
    if kinds[-1] == "snapshot":
        # The node's end came while the queue was full of pieces: the lost state changes
        # come back as the run itself, read from the database, and the stream ends with it.
        assert kinds == ["snapshot", "snapshot"]
        last_snapshot = messages[-1][1]
        assert last_snapshot["status"] == "COMPLETED"
        [ask] = [n for n in last_snapshot["nodes"] if n["node_id"] == "ask"]
        assert ask["outputs"]["text"] == REPLY
    else:
        # Only pieces were lost (the feed merges them as they come, so the queue may have had
        # room for the node's end): they come back as the whole text, then every state change.
        assert kinds[-1] == "run.completed"
        assert "node.succeeded" in kinds
        assert streamed_text(messages, "ask") == REPLY
    assert len(state.feeds) == 0, "the feed went with its reader"


async def test_a_reader_stuck_mid_answer_gets_the_whole_text_so_far_when_it_reads_again(
    app: FastAPI, client: httpx.AsyncClient, streaming: FakeServer
) -> None:
    state = _state(app)
    state.feeds = RunFeeds(state.require_engine().bus, max_queued=MAX_QUEUED)
    streaming.stream_delay_s = 0.01  # slow enough to read again before the answer ends
    account = await sign_up(client)
    run_id = await _start_run(client, account)
    stuck = StuckClient(app, f"/api/v1/runs/{run_id}/events", account)
    await stuck.first_write()

    for _ in range(600):
        feed = state.feeds.feed(run_id)
        if feed is not None and feed.readers and feed.readers[0].dropped > 0:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the reader never fell behind")
    assert await _status(client, account, run_id) == "RUNNING"
    messages = await stuck.finish()

    kinds = [kind for kind, _ in messages]
    assert kinds[0] == "snapshot"
    assert kinds[-1] == "run.completed"
    assert "node.succeeded" in kinds
    assert streamed_text(messages, "ask") == REPLY, "every piece, the lost ones as the whole text"
    assert any(
        kind == DELTA and data["data"]["offset"] == 0 and len(data["data"]["text"]) > 3
        for kind, data in messages
    ), "the pieces it lost came back as one"


async def test_a_reader_that_keeps_up_sees_the_text_grow_in_steps(
    app: FastAPI, client: httpx.AsyncClient, streaming: FakeServer, tmp_path: Path
) -> None:
    account = await sign_up(client)
    run_id = await _start_run(client, account)
    async with client.stream(
        "GET", f"/api/v1/runs/{run_id}/events", headers=account.bearer
    ) as stream:
        body = b""
        async for chunk in stream.aiter_bytes():
            body += chunk
    messages = sse_messages(body)

    deltas = [data for kind, data in messages if kind == DELTA]
    assert len(deltas) >= 2
    assert streamed_text(messages, "ask") == REPLY
    assert [kind for kind, _ in messages][-1] == "run.completed"


async def test_a_reader_who_comes_in_the_middle_of_an_answer_gets_its_beginning(
    app: FastAPI, client: httpx.AsyncClient, streaming: FakeServer
) -> None:
    streaming.stream_delay_s = 0.01  # 2.4 s of answer: time to come in the middle
    account = await sign_up(client)
    run_id = await _start_run(client, account)
    texts = _state(app).require_engine().bus.texts
    for _ in range(500):
        so_far = texts.text(run_id, "ask")
        if so_far is not None and len(so_far[0]) >= 30:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the node never streamed 30 characters")
    assert _state(app).run_feeds().feed(run_id) is None, "nobody followed the run before"

    async with client.stream(
        "GET", f"/api/v1/runs/{run_id}/events", headers=account.bearer
    ) as stream:
        body = b"".join([chunk async for chunk in stream.aiter_bytes()])
    messages = sse_messages(body)

    first = next(data for kind, data in messages if kind == DELTA)
    assert first["data"]["offset"] == 0
    assert len(first["data"]["text"]) >= 30, "the text so far, in one piece"
    assert streamed_text(messages, "ask") == REPLY
    assert [kind for kind, _ in messages][-1] == "run.completed"
    assert texts.text(run_id, "ask") is None, "the bus let the text go with the node"
