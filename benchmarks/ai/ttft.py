"""Time to first token: what flowloom adds before the first piece of a streamed answer.

    python -m benchmarks.ai.ttft [--calls 300] [--providers openai,anthropic,gemini]

For each provider, against the same local server speaking its protocol (the tests' fake, on
uvicorn in its own thread; it answers at once, so the numbers are client-side costs):

- bare SDK: from the call to the first text chunk of the SDK's own streaming API;
- ai.llm: from ``run_node("ai.llm", ...)`` to the node's first ``delta`` progress event, the
  moment the engine would publish it (config parsed, template rendered, provider resolved,
  retrying client, stream adapter);
- ai.agent: the same for an agent with one HTTP tool on offer, to its first ``delta`` (every
  step of an agent streams, tools or not; the tool's declaration goes in the request, which
  the bare call does not carry);
- added: the difference of the medians, and (paired) the median of the differences of calls
  made one after the other, which a busy machine's drift disturbs less. The aim is under 1 ms.

The three are measured in alternation, after a warm-up, so drift of a busy machine hits both.
Client and server share one process, so absolute times include the server's work; the
difference does not.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from providers.fake_servers import API_KEY, FakeServer, running_server

from flowloom.nodes.registry import default_registry
from flowloom.providers import ProviderConfig, SettingsProviderResolver, UsageEvent
from flowloom.testing import make_context, run_node

__all__ = ["measure"]

PROVIDERS = ("openai", "anthropic", "gemini")
PROMPT = "Say hello to Ada."


class _NoUsage:
    async def record(self, event: UsageEvent) -> Decimal:
        return Decimal(0)


def _bare(server: FakeServer, provider: str) -> tuple[Callable[[], Awaitable[float]], Any]:
    """A function timing one bare SDK stream to its first text chunk, and the SDK client."""
    if provider == "openai":
        from openai import AsyncOpenAI

        openai = AsyncOpenAI(api_key=API_KEY, base_url=server.openai_base_url, max_retries=0)

        async def first_openai() -> float:
            started = time.perf_counter()
            stream = await openai.chat.completions.create(
                model="bench",
                messages=[{"role": "user", "content": PROMPT}],
                stream=True,
                stream_options={"include_usage": True},
            )
            first = 0.0
            async for chunk in stream:
                if not first and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - started
            return first

        return first_openai, openai
    if provider == "anthropic":
        from anthropic import AsyncAnthropic

        anthropic = AsyncAnthropic(api_key=API_KEY, base_url=server.base_url, max_retries=0)

        async def first_anthropic() -> float:
            started = time.perf_counter()
            stream = await anthropic.messages.create(
                model="bench",
                max_tokens=256,
                messages=[{"role": "user", "content": PROMPT}],
                stream=True,
            )
            first = 0.0
            async for event in stream:
                if not first and event.type == "content_block_delta":
                    first = time.perf_counter() - started
            return first

        return first_anthropic, anthropic
    from google import genai
    from google.genai import types

    options = types.HttpOptions(
        base_url=server.base_url, retry_options=types.HttpRetryOptions(attempts=1)
    )
    gemini = genai.Client(api_key=API_KEY, vertexai=False, http_options=options)

    async def first_gemini() -> float:
        started = time.perf_counter()
        stream = await gemini.aio.models.generate_content_stream(model="bench", contents=PROMPT)
        first = 0.0
        async for response in stream:
            if not first and response.text:
                first = time.perf_counter() - started
        return first

    return first_gemini, gemini


_TOOL = {
    "kind": "http",
    "name": "lookup",
    "description": "Look a name up.",
    "url": "https://example.test/people?name={{ name }}",
    "parameters": {"type": "object", "properties": {"name": {"type": "string"}}},
}


def _node(
    resolver: SettingsProviderResolver, provider: str, node_type: str = "ai.llm"
) -> Callable[[], Awaitable[float]]:
    """A function timing one ``ai.llm`` (or ``ai.agent``, with a tool) node to its first
    delta."""
    config: dict[str, Any] = {
        "provider": provider,
        "model": "bench",
        "user_message": "Say hello to {{ name }}.",
        "variables": ["name"],
    }
    if node_type == "ai.agent":
        config["tools"] = [_TOOL]
    base = dataclasses.replace(make_context(), providers=resolver, usage=_NoUsage())
    registry = default_registry()  # built once, as the engine does

    async def first_delta() -> float:
        first = 0.0
        started = 0.0

        def progress(kind: str, data: Mapping[str, Any]) -> None:
            nonlocal first
            if kind == "delta" and not first:
                first = time.perf_counter() - started

        ctx = dataclasses.replace(base, progress=progress)
        started = time.perf_counter()
        await run_node(node_type, config, {"name": "Ada"}, ctx=ctx, registry=registry)
        return first

    return first_delta


async def measure(
    server: FakeServer, provider: str, calls: int
) -> tuple[float, float, float, float, float]:
    """Median time to first token (ms) through the bare SDK, through ``ai.llm`` and through
    ``ai.agent``, and for each node the median of the differences of each pair of calls made
    one after the other."""
    base_url = server.openai_base_url if provider == "openai" else server.base_url
    resolver = SettingsProviderResolver({provider: ProviderConfig(API_KEY, base_url)})
    bare, sdk = _bare(server, provider)
    node = _node(resolver, provider)
    agent = _node(resolver, provider, "ai.agent")
    for _ in range(20):  # warm-up: imports, connections, caches
        await bare()
        await node()
        await agent()
    bare_s: list[float] = []
    node_s: list[float] = []
    agent_s: list[float] = []
    for _ in range(calls):
        bare_s.append(await bare())
        node_s.append(await node())
        agent_s.append(await agent())
    await resolver.aclose()
    closing = sdk.aio.aclose() if provider == "gemini" else sdk.close()
    if closing is not None:
        await closing
    paired = statistics.median(n - b for n, b in zip(node_s, bare_s, strict=True))
    paired_agent = statistics.median(a - b for a, b in zip(agent_s, bare_s, strict=True))
    return (
        statistics.median(bare_s) * 1000,
        statistics.median(node_s) * 1000,
        paired * 1000,
        statistics.median(agent_s) * 1000,
        paired_agent * 1000,
    )


async def bench(server: FakeServer, providers: list[str], calls: int) -> None:
    print(f"time to first token, median of {calls} calls each (added: paired median)")
    print(
        f"{'provider':<12}{'bare SDK':>12}{'ai.llm':>12}{'added':>12}{'ai.agent':>12}{'added':>12}"
    )
    for provider in providers:
        bare_ms, node_ms, paired_ms, agent_ms, agent_paired_ms = await measure(
            server, provider, calls
        )
        print(
            f"{provider:<12}{bare_ms:>10.2f}ms{node_ms:>10.2f}ms{paired_ms:>+10.2f}ms"
            f"{agent_ms:>10.2f}ms{agent_paired_ms:>+10.2f}ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    args = parser.parse_args()
    with running_server() as server:
        asyncio.run(bench(server, args.providers.split(","), args.calls))


if __name__ == "__main__":
    main()
