"""The AI benchmark: what flowloom adds around a provider call, and whether the rate limit holds.

    python -m benchmarks.ai.calls [--calls 200] [--concurrency 50] [--rate 50]

A local server speaking the OpenAI protocol (the tests' fake, on uvicorn in its own thread)
answers at once, so the numbers are our overhead, not a model's latency:

- floor: one streamed chat completion through the bare ``openai`` SDK, read to its end
  (median of ``--calls``); ``ai.llm`` streams too;
- ai.llm: one ``ai.llm`` node through ``run_node`` (template, resolver, retrying client, usage
  recorded in memory); overhead = ai.llm median - floor median;
- concurrent: ``--concurrency`` ai.llm nodes at once, calls per second over ``--calls`` calls;
- rate limit: ``--calls`` calls through a limiter set to ``--rate`` per second, measured rate
  (first to last arrival at the server) and its error.

Client and server share one process (and its GIL), so the calls per second are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from providers.fake_servers import API_KEY, FakeServer, running_server

from flowloom.nodes.registry import default_registry
from flowloom.providers import (
    ChatMessage,
    ChatRequest,
    ProviderConfig,
    SettingsProviderResolver,
    UsageEvent,
)
from flowloom.testing import make_context, run_node

CONFIG = {
    "provider": "openai",
    "model": "bench",
    "user_message": "Hi {{ name }}",
    "variables": ["name"],
}


class CountingSink:
    def __init__(self) -> None:
        self.calls = 0

    async def record(self, event: UsageEvent) -> Decimal:
        self.calls += 1
        return Decimal(0)


async def bench(server: FakeServer, calls: int, concurrency: int, rate: float) -> None:
    from openai import AsyncOpenAI

    sdk = AsyncOpenAI(api_key=API_KEY, base_url=server.openai_base_url, max_retries=0)
    floor: list[float] = []
    for _ in range(calls + 10):
        started = time.perf_counter()
        # ai.llm streams (without a response_schema): the floor is the SDK's streamed call.
        stream = await sdk.chat.completions.create(
            model="bench",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _chunk in stream:
            pass
        floor.append(time.perf_counter() - started)
    floor = floor[10:]
    registry = default_registry()  # built once, as the engine does

    resolver = SettingsProviderResolver({"openai": ProviderConfig(API_KEY, server.openai_base_url)})
    sink = CountingSink()
    ctx = dataclasses.replace(make_context(), providers=resolver, usage=sink)
    node: list[float] = []
    for _ in range(calls + 10):
        started = time.perf_counter()
        await run_node("ai.llm", CONFIG, {"name": "Ada"}, ctx=ctx, registry=registry)
        node.append(time.perf_counter() - started)
    node = node[10:]

    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            await run_node("ai.llm", CONFIG, {"name": "Ada"}, ctx=ctx, registry=registry)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    concurrent_s = time.perf_counter() - started

    limited = SettingsProviderResolver(
        {"openai": ProviderConfig(API_KEY, server.openai_base_url, requests_per_s=rate)}
    )
    provider = await limited.resolve("openai")
    request = ChatRequest(model="bench", messages=(ChatMessage("user", "Hi"),))
    await provider.chat(request)
    server.requests.clear()
    await asyncio.gather(*(provider.chat(request) for _ in range(calls)))
    arrivals = sorted(r.received_at for r in server.requests)
    measured = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])

    floor_ms, node_ms = statistics.median(floor) * 1000, statistics.median(node) * 1000
    print(f"{'measure':<44}{'value':>12}")
    print(f"{'bare SDK streamed call, median (floor)':<44}{floor_ms:>10.2f}ms")
    print(f"{'ai.llm node call, median':<44}{node_ms:>10.2f}ms")
    print(f"{'ai.llm overhead over the bare SDK':<44}{node_ms - floor_ms:>10.2f}ms")
    print(
        f"{'ai.llm calls/s, ' + str(concurrency) + ' concurrent':<44}{calls / concurrent_s:>12.0f}"
    )
    print(f"{'rate limit: configured / measured (req/s)':<44}{rate:>6.1f} / {measured:.2f}")
    print(f"{'rate limit error':<44}{abs(measured - rate) / rate * 100:>11.2f}%")
    print(f"(usage events recorded: {sink.calls})")
    await sdk.close()
    await resolver.aclose()
    await limited.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    with running_server() as server:
        asyncio.run(bench(server, args.calls, args.concurrency, args.rate))


if __name__ == "__main__":
    main()
