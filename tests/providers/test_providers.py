"""Each provider's real SDK against a local server speaking its wire protocol.

Every test runs three times, once per provider: the behaviour promised by ``ChatProvider`` is
the same whichever SDK is underneath.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from providers.fake_servers import API_KEY, UNKNOWN_MODEL, FakeServer, running_server

from flowloom.providers import (
    ChatMessage,
    ChatRequest,
    ImagePart,
    MalformedResponse,
    ProviderClient,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
    RetryPolicy,
    UnknownModel,
    make_backend,
)

PROVIDERS = ["openai", "gemini", "anthropic"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_script(server: FakeServer) -> None:
    server.reset()


def client(
    server: FakeServer,
    provider: str,
    *,
    api_key: str = API_KEY,
    attempts: int = 3,
    timeout_s: float = 5.0,
) -> ProviderClient:
    base_url = server.openai_base_url if provider == "openai" else server.base_url
    return ProviderClient(
        make_backend(provider, api_key, base_url),
        retry=RetryPolicy(attempts=attempts, base_delay_s=0.05, max_delay_s=0.2),
        timeout_s=timeout_s,
    )


def ask(text: str = "Say hello", **kw: object) -> ChatRequest:
    return ChatRequest(model="test-model", messages=(ChatMessage("user", text),), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_plain_answer_with_usage_system_prompt_and_idempotency_key(
    server: FakeServer, provider: str
) -> None:
    response = await client(server, provider).chat(
        ask("What is up?", system_prompt="Be brief.", temperature=0.0, idempotency_key="run:n:1")
    )

    assert response.text == "Hello from the fake model."
    assert (response.usage.tokens_in, response.usage.tokens_out) == (12, 5)
    assert response.usage.tokens_total == 17
    assert response.model == "test-model"
    assert response.provider == provider
    assert response.finish_reason in {"stop", "STOP", "end_turn"}
    assert response.json is None
    [seen] = server.requests
    assert seen.headers["idempotency-key"] == "run:n:1"
    assert "What is up?" in str(seen.body)
    assert "Be brief." in str(seen.body)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streamed_answer_arrives_in_pieces_and_ends_with_usage(
    server: FakeServer, provider: str
) -> None:
    chunks = [chunk async for chunk in client(server, provider).stream(ask())]

    texts = [chunk.text for chunk in chunks if chunk.text]
    assert len(texts) == 3
    assert "".join(texts) == "Hello from the fake model."
    last = chunks[-1]
    assert last.usage is not None
    assert (last.usage.tokens_in, last.usage.tokens_out) == (12, 5)
    assert last.finish_reason in {"stop", "STOP", "end_turn"}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_structured_output_is_parsed_and_checked_against_the_schema(
    server: FakeServer, provider: str
) -> None:
    provider_client = client(server, provider)
    server.json_reply = {"answer": 42}

    response = await provider_client.chat(ask(response_schema=SCHEMA))

    assert response.json == {"answer": 42}
    assert "answer" in str(server.requests[-1].body)  # the schema went to the provider

    server.json_reply = {"answer": "forty-two"}
    with pytest.raises(MalformedResponse, match=r"does not match the schema: at answer"):
        await provider_client.chat(ask(response_schema=SCHEMA))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_images_reach_the_model_as_their_exact_bytes(
    server: FakeServer, provider: str
) -> None:
    request = ChatRequest(
        model="test-model",
        messages=(ChatMessage("user", "What is this?", (ImagePart(PNG, "image/png"),)),),
    )

    response = await client(server, provider).chat(request)

    assert response.text.endswith("I see 1 image(s).")
    assert server.requests[-1].images == [("image/png", PNG)]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_is_retried_after_the_servers_retry_after(
    server: FakeServer, provider: str
) -> None:
    server.fail_next("429:0.4", "ok")

    response = await client(server, provider).chat(ask())

    assert response.text == "Hello from the fake model."
    first, second = server.requests
    waited_s = second.received_at - first.received_at
    # The client's own backoff is at most 0.2 s: waiting 0.4 s or more is Retry-After's doing.
    # The upper bound only catches a wait of another order (a unit taken wrong, a fixed long
    # backoff): a loaded machine stretched 0.4 s to 2.6 s once, so it leaves room for that.
    assert 0.4 <= waited_s < 10.0, waited_s


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_500_is_retried_then_fails_after_the_last_attempt(
    server: FakeServer, provider: str
) -> None:
    server.fail_next("500", "500", "500", "ok")

    with pytest.raises(ProviderUnavailable, match="HTTP 500") as caught:
        await client(server, provider, attempts=3).chat(ask())

    assert len(server.requests) == 3
    assert caught.value.retryable
    assert caught.value.status_code == 500


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streams_are_retried_until_the_first_piece(server: FakeServer, provider: str) -> None:
    server.fail_next("503:0.1")

    chunks = [chunk async for chunk in client(server, provider).stream(ask())]

    assert "".join(chunk.text for chunk in chunks) == "Hello from the fake model."
    assert len(server.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_malformed_body_is_a_clear_error_and_not_retried(
    server: FakeServer, provider: str
) -> None:
    server.fail_next("malformed")

    with pytest.raises(MalformedResponse, match=f"{provider}: .*not a valid response body"):
        await client(server, provider).chat(ask())

    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_hanging_server_times_out_and_the_retry_succeeds(
    server: FakeServer, provider: str
) -> None:
    server.fail_next("hang", "ok")
    started = time.monotonic()

    response = await client(server, provider, timeout_s=0.3).chat(ask())

    assert response.text == "Hello from the fake model."
    assert 0.3 <= time.monotonic() - started < 1.5


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_timeout_on_every_attempt_raises_provider_timeout(
    server: FakeServer, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.fail_next("hang", "hang")

    with (
        caplog.at_level(logging.INFO, logger="flowloom.providers"),
        pytest.raises(ProviderTimeout, match=r"no answer within 0.2 s"),
    ):
        await client(server, provider, attempts=2, timeout_s=0.2).chat(ask())

    # Counted on the client's side: the server may not finish reading a request before the
    # client gives up on it, so its own record can miss the second attempt.
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 1, "one retry after the first timeout, none after the last"
    assert server.requests, "the first attempt reached the server"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_unknown_model_names_the_model_and_is_not_retried(
    server: FakeServer, provider: str
) -> None:
    request = ChatRequest(model=UNKNOWN_MODEL, messages=(ChatMessage("user", "hi"),))

    with pytest.raises(UnknownModel, match=f"unknown model '{UNKNOWN_MODEL}'") as caught:
        await client(server, provider).chat(request)

    assert not caught.value.retryable
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_refused_key_is_reported_without_the_key(
    server: FakeServer, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "sk-wrong-key-that-must-never-be-shown-0001"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ProviderRefused, match="HTTP 401") as caught:
        await client(server, provider, api_key=wrong_key).chat(ask())

    assert not isinstance(caught.value, UnknownModel)
    assert "Incorrect API key provided: ***" in str(caught.value)
    assert wrong_key not in str(caught.value)
    assert wrong_key not in repr(caught.value.args)
    assert all(wrong_key not in record.getMessage() for record in caplog.records)
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_other_4xx_carry_the_providers_message_and_are_not_retried(
    server: FakeServer, provider: str
) -> None:
    server.fail_next("400")

    with pytest.raises(ProviderRefused, match=r"refused \(HTTP 400\): scripted 400"):
        await client(server, provider).chat(ask())

    assert len(server.requests) == 1
