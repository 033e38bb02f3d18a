"""Request limits enforced before a route runs: the body size (413), and the checks on what a
body holds that routes share (nodes per workflow, run inputs size: 422 naming the field)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowloom.api.errors import problem_json
from flowloom.exceptions import InputError

__all__ = ["BodySizeLimit", "check_inputs_size", "replay", "send_problem"]


class BodySizeLimit:
    """ASGI middleware: 413 problem+json for a body over ``max_bytes``, declared or sent.

    A declared ``Content-Length`` over the limit is refused before anything is read. A body
    sent without one (chunked) is read here first, up to the limit, and handed on whole, so
    the route never starts on a body that turns out too large. Either way nothing is written.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})
        """Paths (exact) that take bodies up to their own limit: uploads."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = _content_length(scope)
        if declared is not None:
            if declared > limit:
                await self._refuse(scope, send, limit)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away; let the app see that as it would have.
                await self.app(scope, replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([whole], receive), send)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        body = problem_json(
            413,
            f"the request body is larger than {limit} bytes",
            limit_bytes=limit,
            instance=scope.get("path", ""),
        )
        # The rest of the body is never read: the connection cannot serve another request.
        await send_problem(send, body, close=True)


async def send_problem(send: Send, body: dict[str, Any], *, close: bool = False) -> None:
    """Answer with the problem document ``body`` from ASGI middleware (before any route)."""
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": body["status"], "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then whatever the client sends next (for a
    middleware that read the body before the app)."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def check_inputs_size(inputs: dict[str, Any], *, max_bytes: int) -> None:
    """InputError naming ``inputs`` when the run inputs are larger than ``max_bytes`` as JSON."""
    size = len(json.dumps(inputs, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise InputError(
            f"run inputs may be at most {max_bytes} bytes as JSON; these are {size}",
            field="inputs",
        )
