"""http.request does not carry credentials typed into its ``headers`` across origins.

Two real local servers on different ports (so different origins): the first redirects, the
second records the headers it got. Headers that look like credentials are dropped when the
redirect leaves the origin, kept when it stays on it; other headers always go along.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from appthread import AppThread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from flowloom.nodes._net import is_credential_header
from flowloom.testing import make_context, run_node

TYPED = {
    "Authorization": "Bearer typed-SECRET-1",
    "X-Api-Key": "typed-SECRET-2",
    "Cookie": "sid=typed-SECRET-3",
    "Proxy-Authorization": "Basic typed-SECRET-4",
    "X-Session-Id": "typed-SECRET-5",
    "X-Upstream-Token": "typed-SECRET-6",
    "X-Client-Secret": "typed-SECRET-7",
    "X-Trace": "trace-1",
    "Accept-Language": "en",
}
CREDENTIALS = {
    "authorization",
    "x-api-key",
    "cookie",
    "proxy-authorization",
    "x-session-id",
    "x-upstream-token",
    "x-client-secret",
}


class Recorder:
    """A server that records each request's headers and redirects ``/go?to=...``."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.thread = AppThread(self.app(), what="redirect test server")
        self.port = 0

    def app(self) -> Starlette:
        async def go(request: Request) -> Response:
            self.seen.append(dict(request.headers))
            return RedirectResponse(request.query_params["to"], status_code=302)

        async def land(request: Request) -> Response:
            self.seen.append(dict(request.headers))
            return JSONResponse({"landed": True})

        methods = ["GET", "POST"]
        return Starlette(
            routes=[Route("/go", go, methods=methods), Route("/land", land, methods=methods)]
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    first, second = Recorder(), Recorder()
    first.port = first.thread.start()
    second.port = second.thread.start()
    try:
        yield first, second
    finally:
        first.thread.stop()
        second.thread.stop()


async def fetch_via(first: Recorder, target: str, **config: Any) -> dict[str, Any]:
    result = await run_node(
        "http.request",
        {"url": f"{first.base}/go?to={target}", "headers": TYPED, **config},
        ctx=make_context(allow_private_http=True),
    )
    return dict(result.outputs)


async def test_typed_credentials_are_dropped_on_a_cross_origin_redirect(
    servers: tuple[Recorder, Recorder],
) -> None:
    first, second = servers
    first.seen.clear()
    second.seen.clear()

    outputs = await fetch_via(first, f"{second.base}/land")

    assert outputs["body"] == {"landed": True}
    # The first origin got everything that was typed...
    assert {name.lower() for name in TYPED} <= set(first.seen[0])
    # ...the other origin none of the credentials, but the rest.
    landed = second.seen[0]
    assert CREDENTIALS.isdisjoint(landed), landed
    assert landed["x-trace"] == "trace-1"
    assert landed["accept-language"] == "en"
    assert "typed-SECRET" not in repr(landed)


async def test_a_post_keeps_its_idempotency_key_across_origins(
    servers: tuple[Recorder, Recorder],
) -> None:
    first, second = servers
    second.seen.clear()

    await fetch_via(first, f"{second.base}/land", method="POST", body={"a": 1})

    landed = second.seen[0]
    assert "idempotency-key" in landed
    assert CREDENTIALS.isdisjoint(landed)


async def test_a_same_origin_redirect_keeps_the_headers(
    servers: tuple[Recorder, Recorder],
) -> None:
    first, _second = servers
    first.seen.clear()

    await fetch_via(first, "/land")

    landed = first.seen[1]
    for name, value in TYPED.items():
        assert landed[name.lower()] == value


async def test_credentials_stay_dropped_when_a_later_hop_comes_back(
    servers: tuple[Recorder, Recorder],
) -> None:
    first, second = servers
    first.seen.clear()
    second.seen.clear()
    back = f"{second.base}/go?to={first.base}/land"

    await run_node(
        "http.request",
        {"url": f"{first.base}/go?to={back.replace('?', '%3F').replace('=', '%3D')}"}
        | {"headers": TYPED},
        ctx=make_context(allow_private_http=True),
    )

    assert CREDENTIALS.isdisjoint(second.seen[0])
    assert CREDENTIALS.isdisjoint(first.seen[-1])


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("Authorization", True),
        ("proxy-authorization", True),
        ("X-API-Key", True),
        ("Cookie", True),
        ("X-Auth-Token", True),
        ("X-Refresh-Token", True),
        ("X-My-Secret", True),
        ("X-Session", True),
        ("X-Password", True),
        ("Idempotency-Key", False),
        ("Accept", False),
        ("User-Agent", False),
        ("X-Request-Id", False),
    ],
)
def test_credential_like_header_names(name: str, credential: bool) -> None:
    assert is_credential_header(name) is credential
