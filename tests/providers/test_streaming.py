"""Streamed answers through each provider's real SDK against the local server: the pieces in
order and whole, the usage of the answer's last chunk, a 429 before the first piece retried, and
a stream cut mid-way refused cleanly whichever way it was cut.

``stream_answer`` is what ``ai.llm``, the agent loop and threads read streams with; a cut
stream must end in a retryable ProviderError and never in a partial text taken for an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from providers.fake_servers import API_KEY, FakeServer, running_server

from flowloom.providers import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    MalformedResponse,
    ProviderClient,
    ProviderError,
    ProviderUnavailable,
    RetryPolicy,
    TokenUsage,
    ToolSpec,
    make_backend,
)
from flowloom.providers.streaming import stream_answer

PROVIDERS = ["openai", "anthropic", "gemini"]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_script(server: FakeServer) -> None:
    server.reset()


def client(server: FakeServer, provider: str) -> ProviderClient:
    base_url = server.openai_base_url if provider == "openai" else server.base_url
    return ProviderClient(
        make_backend(provider, API_KEY, base_url),
        retry=RetryPolicy(attempts=3, base_delay_s=0.05, max_delay_s=0.2),
        timeout_s=5.0,
    )


ASK = ChatRequest(model="test-model", messages=(ChatMessage("user", "Tell me a story"),))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_pieces_come_in_order_and_the_usage_is_the_last_chunks(
    server: FakeServer, provider: str
) -> None:
    server.reply_text = "Once upon a time, a graph ran itself."
    server.stream_piece_chars = 4
    server.tokens_in, server.tokens_out = 31, 17
    pieces: list[str] = []

    response = await stream_answer(client(server, provider), ASK, pieces.append)

    expected = [server.reply_text[i : i + 4] for i in range(0, len(server.reply_text), 4)]
    assert pieces == expected
    assert response.text == server.reply_text
    assert (response.usage.tokens_in, response.usage.tokens_out) == (31, 17)
    assert response.finish_reason in {"stop", "STOP", "end_turn"}
    assert response.provider == provider
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_429_before_the_first_piece_is_retried_after_retry_after(
    server: FakeServer, provider: str
) -> None:
    server.fail_next("429:0.3")
    pieces: list[str] = []

    response = await stream_answer(client(server, provider), ASK, pieces.append)

    assert response.text == "".join(pieces) == server.reply_text
    first, second = server.requests
    assert 0.3 <= second.received_at - first.received_at < 2.0


@pytest.mark.parametrize(
    ("how", "error", "says"),
    [
        ("end", MalformedResponse, "cut short"),
        ("drop", ProviderUnavailable, "the connection was lost mid-answer"),
    ],
)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_cut_mid_answer_is_refused_and_not_taken_for_the_answer(
    server: FakeServer, provider: str, how: str, error: type[ProviderError], says: str
) -> None:
    server.cut_streams = 1
    server.cut_how = how  # type: ignore[assignment]
    pieces: list[str] = []

    with pytest.raises(error, match=says) as caught:
        await stream_answer(client(server, provider), ASK, pieces.append)

    assert caught.value.provider == provider
    assert caught.value.retryable, "the engine may try the node again"
    assert len(pieces) == 1, "the first piece was shown before the cut"
    assert server.reply_text.startswith(pieces[0])
    assert len(server.requests) == 1, "not retried after text went out"

    # The cut is over: the next stream is whole again.
    response = await stream_answer(client(server, provider), ASK, lambda _: None)
    assert response.text == server.reply_text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_calls_come_whole_at_the_end_of_a_stream(
    server: FakeServer, provider: str
) -> None:
    server.stream_piece_chars = 5
    server.script_replies(
        {
            "text": "Two lookups.",
            "tool_calls": [
                {"name": "find", "arguments": {"q": "rivers", "limit": 3}},
                {"name": "clock", "arguments": {}},
            ],
            "tokens_in": 21,
            "tokens_out": 8,
        }
    )
    offered = ToolSpec("find", "Find things.", {"type": "object"}), ToolSpec("clock", "", {})
    pieces: list[str] = []

    response = await stream_answer(
        client(server, provider), replace(ASK, tools=offered), pieces.append
    )

    assert pieces == ["Two l", "ookup", "s."]
    assert response.text == "Two lookups."
    assert [(call.name, call.arguments) for call in response.tool_calls] == [
        ("find", {"q": "rivers", "limit": 3}),
        ("clock", {}),
    ]
    assert len({call.id for call in response.tool_calls}) == 2, "each call has its own id"
    assert (response.usage.tokens_in, response.usage.tokens_out) == (21, 8)
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_stream_cut_while_a_tool_call_streams_is_refused(
    server: FakeServer, provider: str
) -> None:
    """The first fragment of a call came, then the stream ended: no half call is taken."""
    server.script_replies({"tool_calls": [{"name": "find", "arguments": {"q": "x"}}]})
    server.cut_streams = 1
    offered = (ToolSpec("find", "", {"type": "object"}),)

    with pytest.raises(MalformedResponse, match="cut short"):
        await stream_answer(client(server, provider), replace(ASK, tools=offered), lambda _: None)


class _Burst:
    """A provider whose stream hands over every chunk without awaiting, as an SDK does with
    chunks that came in one network read."""

    name = "burst"

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        for piece in ("One", " two", " three"):
            yield ChatChunk(text=piece)
        yield ChatChunk(usage=TokenUsage(3, 3), finish_reason="stop")


async def test_the_first_piece_reaches_a_watcher_before_the_rest_of_its_burst() -> None:
    pieces: list[str] = []
    first = asyncio.Event()
    seen_at_first: list[int] = []

    def on_text(text: str) -> None:
        pieces.append(text)
        first.set()

    async def watch() -> None:
        await first.wait()
        seen_at_first.append(len(pieces))

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    response = await stream_answer(_Burst(), ASK, on_text)  # type: ignore[arg-type]
    await watcher

    assert response.text == "One two three"
    assert seen_at_first == [1], "the watcher ran between the first piece and the second"
