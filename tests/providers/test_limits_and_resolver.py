"""The rate limiter holds its rate, backoff honours Retry-After, the resolver finds keys."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from providers.fake_servers import API_KEY, FakeServer, running_server

from flowloom.exceptions import ConfigurationError
from flowloom.providers import (
    ChatMessage,
    ChatRequest,
    ProviderConfig,
    RateLimiter,
    RetryPolicy,
    SettingsProviderResolver,
    parse_retry_after,
)
from flowloom.settings import Settings


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


def ask() -> ChatRequest:
    return ChatRequest(model="m", messages=(ChatMessage("user", "hi"),))


async def test_the_rate_limiter_holds_the_configured_rate_within_5_percent(
    server: FakeServer,
) -> None:
    rate = 40.0
    resolver = SettingsProviderResolver(
        {"openai": ProviderConfig(API_KEY, server.openai_base_url, requests_per_s=rate)}
    )
    provider = await resolver.resolve("openai")
    await provider.chat(ask())  # spends the one-call burst and warms the connection
    server.requests.clear()

    started = time.monotonic()
    await asyncio.gather(*(provider.chat(ask()) for _ in range(50)))
    elapsed_s = time.monotonic() - started

    arrivals = sorted(r.received_at for r in server.requests)
    measured_rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert len(arrivals) == 50
    assert abs(measured_rate - rate) / rate < 0.05, measured_rate
    assert elapsed_s >= 49 / rate * 0.95
    await resolver.aclose()


async def test_one_limiter_is_shared_by_every_key_of_a_provider() -> None:
    resolver = SettingsProviderResolver({"openai": ProviderConfig("sk-a", None, requests_per_s=5)})
    first = await resolver.resolve("openai")
    assert first is await resolver.resolve("openai")  # the SDK client is reused
    assert first.limiter is resolver.limiter("openai")
    assert resolver.limiter("gemini") is None


async def test_rate_limiter_spaces_calls_on_a_fake_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    limiter = RateLimiter(10, burst=2, clock=lambda: now[0], sleep=sleep)
    waits = [await limiter.acquire() for _ in range(4)]
    assert waits == [0.0, 0.0, pytest.approx(0.1), pytest.approx(0.2)]
    now[0] = 10.0  # long idle: the bucket refills to its burst, no more
    assert [await limiter.acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]


def test_retry_after_in_seconds_milliseconds_and_http_dates() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    when = datetime(2030, 1, 1, tzinfo=UTC)
    later = format_datetime(when + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": later}, now=when.timestamp) == 30.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_doubles_with_jitter_and_caps() -> None:
    policy = RetryPolicy(base_delay_s=1, max_delay_s=5, jitter=0.5, random=lambda: 1.0)
    assert [policy.delay_s(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert policy.delay_s(3, retry_after_s=7.0) == 7.0


async def test_a_retry_after_longer_than_allowed_ends_the_call_at_once(
    server: FakeServer,
) -> None:
    server.reset()
    server.fail_next("429:120")
    resolver = SettingsProviderResolver(
        {"openai": ProviderConfig(API_KEY, server.openai_base_url)},
        retry=RetryPolicy(max_retry_after_s=10),
    )
    provider = await resolver.resolve("openai")
    from flowloom.providers import ProviderUnavailable

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.chat(ask())
    assert caught.value.retry_after_s == 120.0
    assert time.monotonic() - started < 1
    assert len(server.requests) == 1


async def test_a_missing_key_names_the_setting() -> None:
    resolver = SettingsProviderResolver.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="FLOWLOOM_GEMINI_API_KEY"):
        await resolver.resolve("gemini")
    with pytest.raises(ConfigurationError, match="unknown provider 'mistral'"):
        await resolver.resolve("mistral")
    with pytest.raises(ConfigurationError, match="stored credentials are not available"):
        await resolver.resolve("openai", credential="mine", owner_id="usr_1")


async def test_settings_reach_the_provider(server: FakeServer) -> None:
    server.reset()
    settings = Settings(
        openai_api_key=API_KEY,  # type: ignore[arg-type]
        openai_base_url=server.openai_base_url,
        openai_requests_per_s=100,
        provider_max_attempts=2,
    )
    resolver = SettingsProviderResolver.from_settings(settings)
    provider = await resolver.resolve("openai")
    assert provider.retry.attempts == 2
    assert provider.limiter is not None
    assert provider.limiter.requests_per_s == 100
    assert (await provider.chat(ask())).text == "Hello from the fake model."
    assert API_KEY not in repr(provider)
    await resolver.aclose()


def test_importing_providers_and_nodes_imports_no_sdk() -> None:
    code = (
        "import sys, flowloom.nodes, flowloom.providers, flowloom.integrations; "
        "from flowloom.providers import SettingsProviderResolver; "
        "bad = [m for m in ('openai', 'anthropic', 'google.genai', 'jsonschema') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
