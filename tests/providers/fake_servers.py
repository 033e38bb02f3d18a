"""A local server that speaks the three providers' wire protocols, for the real SDKs to call.

One FastAPI app answers OpenAI chat completions (``/v1/chat/completions``, plain and SSE),
Gemini ``generateContent`` / ``streamGenerateContent`` and Anthropic ``/v1/messages`` (plain and
SSE events). It runs on uvicorn in its own thread on a free 127.0.0.1 port. Tests script it:

    server.fail_next("429:0.4", "ok")   # a 429 with Retry-After: 0.4, then a normal answer
    server.fail_next("500", "500")      # two 500s
    server.fail_next("malformed")       # 200 with a body that is not the protocol's JSON
    server.fail_next("hang")            # never answer (until the server stops)

and read back what the SDK sent in ``server.requests``. Replies can also be scripted whole, one
per request, for tool calling; each provider's endpoint answers them in its own shape (OpenAI
``tool_calls``, Anthropic ``tool_use`` blocks, Gemini ``functionCall`` parts), plain or
streamed (the text in pieces, then each call: OpenAI and Anthropic send a call's arguments in
two fragments, Gemini sends each call whole):

    server.script_replies(
        {"tool_calls": [{"name": "add", "arguments": {"a": 1}}], "tokens_in": 30},
        {"text": "The answer is 3."},
    )

Streamed answers come in three pieces without pause; a test that watches text grow asks for
smaller, slower ones:

    server.stream_piece_chars = 4       # pieces of 4 characters
    server.stream_delay_s = 0.05        # 50 ms before each piece

and a test of a connection lost mid-answer cuts the next streams, on every provider, after
their first piece:

    server.cut_streams = 1              # the next stream stops after its first piece
    server.cut_how = "drop"             # ... the connection drops ("end": the body just ends)

The model ``no-such-model`` answers
404 in each provider's own error format; a wrong API key answers 401 with a message that echoes
the key, as some providers do, so tests can check it is redacted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from appthread import AppThread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

API_KEY = "sk-test-0123456789abcdefSECRET"
"""The key the server accepts (shaped like a real one, so redaction is really tested)."""
UNKNOWN_MODEL = "no-such-model"


@dataclass
class Recorded:
    """One request as the server saw it."""

    provider: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    images: list[tuple[str, bytes]] = field(default_factory=list)
    received_at: float = 0.0


class FakeServer:
    """The server and its script. Thread-safe enough for tests: deques and appends only."""

    def __init__(self) -> None:
        self.reply_text = "Hello from the fake model."
        self.json_reply: Any = {"answer": 42}
        self.tokens_in = 12
        self.tokens_out = 5
        self.api_key = API_KEY
        self.requests: list[Recorded] = []
        self._faults: deque[str] = deque()
        self._replies: deque[dict[str, Any]] = deque()
        self.cut_streams = 0
        """How many of the next streams (any provider) stop after their first piece, without
        the events that end an answer (finish reason, usage, [DONE])."""
        self.cut_how: Literal["end", "drop"] = "end"
        """How a cut stream stops: ``end``, the body ends early in good order (as a proxy that
        gives up may end it); ``drop``, the connection closes with the body unfinished."""
        self.stream_piece_chars = 0
        """Streamed text in pieces of this many characters; 0: in three pieces."""
        self.stream_delay_s = 0.0
        """A pause before each streamed piece of text."""
        self._release = threading.Event()
        self._serving = AppThread(_app(self), what="the fake provider server")
        self.port = 0

    # ---- script

    def fail_next(self, *faults: str) -> None:
        """Queue behaviours for the next requests, one each: ``ok``, ``429[:retry_after]``,
        ``500``, ``503[:retry_after]``, ``400``, ``malformed``, ``hang``."""
        self._faults.extend(faults)

    def script_replies(self, *replies: dict[str, Any]) -> None:
        """Queue whole replies, one per request, for whichever provider is asked: ``text``, or
        ``tool_calls`` (each ``{"name", "arguments"}``, optionally ``"id"``; OpenAI and
        Anthropic make ids up, Gemini sends none unless given, as its API may; Gemini also
        sends ``"signature"``, base64, as the part's thought signature), and optionally
        ``tokens_in`` / ``tokens_out``."""
        self._replies.extend(replies)

    def reset(self) -> None:
        self._faults.clear()
        self._replies.clear()
        self.requests.clear()
        self.reply_text = "Hello from the fake model."
        self.json_reply = {"answer": 42}
        self.tokens_in, self.tokens_out = 12, 5
        self.api_key = API_KEY
        self.cut_streams = 0
        self.cut_how = "end"
        self.stream_piece_chars = 0
        self.stream_delay_s = 0.0

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle

    def start(self) -> None:
        self.port = self._serving.start()

    def stop(self) -> None:
        self._release.set()
        self._serving.stop()

    # ---- behaviour, used by the routes

    def _next_fault(self) -> str:
        try:
            return self._faults.popleft()
        except IndexError:
            return "ok"

    def _take_cut(self) -> bool:
        """Whether the stream now starting is to be cut (and one fewer cut left)."""
        cut = self.cut_streams > 0
        self.cut_streams -= cut
        return cut

    async def _stream(
        self, pieces: list[bytes], ending: list[bytes], *, cut: bool
    ) -> AsyncIterator[bytes]:
        """``pieces`` (each after ``stream_delay_s``) then ``ending``; a cut stream stops
        after the first piece, as ``cut_how`` says."""
        for piece in pieces:
            await _pause(self.stream_delay_s)
            yield piece
            if cut:
                if self.cut_how == "drop":
                    # Raised inside the body, it makes uvicorn close the connection with the
                    # chunked body unfinished: what the client of a lost connection sees.
                    raise ConnectionAbortedError("the fake server drops the connection")
                return
        for event in ending:
            yield event

    async def _hang(self) -> None:
        # A threading.Event: stop() sets it from the test's thread.
        await asyncio.to_thread(self._release.wait)


@contextlib.contextmanager
def running_server() -> Iterator[FakeServer]:
    server = FakeServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---- the app


def _app(server: FakeServer) -> FastAPI:
    app = FastAPI()

    async def prologue(
        request: Request, provider: str, key: str | None, model: str, body: dict[str, Any]
    ) -> Response | None:
        """Record the request, then answer any scripted fault, bad key or unknown model."""
        images = _images(provider, body)
        server.requests.append(
            Recorded(
                provider,
                request.url.path,
                {k.lower(): v for k, v in request.headers.items()},
                body,
                images,
                time.monotonic(),
            )
        )
        fault = server._next_fault()
        kind, _, retry_after = fault.partition(":")
        if kind == "hang":
            await server._hang()
            return _error(provider, 503, "shutting down")
        if kind == "malformed":
            return Response("<html>this is not JSON</html>", media_type="application/json")
        if kind in ("429", "500", "503", "400"):
            headers = {"retry-after": retry_after} if retry_after else {}
            return _error(provider, int(kind), f"scripted {kind}", headers)
        if key != server.api_key:
            return _error(provider, 401, f"Incorrect API key provided: {key}")
        if model == UNKNOWN_MODEL:
            return _error(provider, 404, f"The model `{model}` does not exist")
        return None

    @app.post("/v1/chat/completions")
    async def openai_chat(request: Request) -> Response:
        body = await request.json()
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        model = body.get("model", "")
        refused = await prologue(request, "openai", key, model, body)
        if refused is not None:
            return refused
        text = _reply(
            server, body.get("response_format") is not None, images=len(server.requests[-1].images)
        )
        usage = {
            "prompt_tokens": server.tokens_in,
            "completion_tokens": server.tokens_out,
            "total_tokens": server.tokens_in + server.tokens_out,
        }
        reply = server._replies.popleft() if server._replies else None
        if reply is not None and not body.get("stream"):
            return JSONResponse(_openai_scripted(model, reply, usage))
        if body.get("stream"):
            reply = reply or {"text": text}
            calls = reply.get("tool_calls") or []
            pieces = [
                _data(_openai_chunk(model, {"content": piece}, None))
                for piece in (
                    _pieces(reply["text"], server.stream_piece_chars) if reply.get("text") else []
                )
            ]
            for index, call in enumerate(calls):
                # A call's first fragment names it; its arguments' JSON follows in two pieces.
                arguments = _arguments_json(call["arguments"])
                half = len(arguments) // 2
                function = {"name": call["name"], "arguments": arguments[:half]}
                first = {
                    "index": index,
                    "id": f"call_{index}",
                    "type": "function",
                    "function": function,
                }
                rest = {"index": index, "function": {"arguments": arguments[half:]}}
                pieces.append(_data(_openai_chunk(model, {"tool_calls": [first]}, None)))
                pieces.append(_data(_openai_chunk(model, {"tool_calls": [rest]}, None)))
            ending = [_data(_openai_chunk(model, {}, "tool_calls" if calls else "stop"))]
            if (body.get("stream_options") or {}).get("include_usage"):
                tokens_in = int(reply.get("tokens_in", server.tokens_in))
                tokens_out = int(reply.get("tokens_out", server.tokens_out))
                counted = {
                    "prompt_tokens": tokens_in,
                    "completion_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                }
                ending.append(
                    _data({**_openai_chunk(model, {}, None), "choices": [], "usage": counted})
                )
            ending.append(b"data: [DONE]\n\n")
            return StreamingResponse(
                server._stream(pieces, ending, cut=server._take_cut()),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )

    # The SDK's API version changes between releases (v1beta, v1); answer both.
    @app.post("/v1/images/generations")
    @app.post("/v1/images/edits")
    async def openai_images(request: Request) -> Response:
        edit = request.url.path.endswith("/edits")
        if edit:
            form = await request.form()
            body: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
            upload = form.get("image")
            body["image_bytes"] = len(await upload.read()) if hasattr(upload, "read") else 0
        else:
            body = await request.json()
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        refused = await prologue(request, "openai", key, str(body.get("model", "")), body)
        if refused is not None:
            return refused
        count = int(body.get("n") or 1)
        picture = base64.b64encode(fake_png(str(body.get("size") or "64x64"))).decode()
        return JSONResponse(
            {
                "created": 0,
                "data": [{"b64_json": picture} for _ in range(count)],
                "usage": {
                    "input_tokens": server.tokens_in,
                    "output_tokens": server.tokens_out * count,
                    "total_tokens": server.tokens_in + server.tokens_out * count,
                },
            }
        )

    @app.post("/v1/embeddings")
    async def openai_embeddings(request: Request) -> Response:
        body = await request.json()
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        model = body.get("model", "")
        refused = await prologue(request, "openai", key, model, body)
        if refused is not None:
            return refused
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(len(text.split()) for text in texts)
        return JSONResponse(
            {
                "object": "list",
                "model": model,
                "data": [
                    {"object": "embedding", "index": i, "embedding": fake_vector(text)}
                    for i, text in enumerate(texts)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    @app.post("/v1beta/models/{target}")
    @app.post("/v1/models/{target}")
    async def gemini(target: str, request: Request) -> Response:
        body = await request.json()
        model, _, action = target.partition(":")
        key = request.headers.get("x-goog-api-key")
        refused = await prologue(request, "gemini", key, model, body)
        if refused is not None:
            return refused
        if "IMAGE" in ((body.get("generationConfig") or {}).get("responseModalities") or ()):
            picture = base64.b64encode(fake_png("64x64")).decode()
            inline = {"inlineData": {"mimeType": "image/png", "data": picture}}
            return JSONResponse(
                {
                    "candidates": [
                        {
                            "content": {
                                "role": "model",
                                "parts": [inline],
                            },
                            "finishReason": "STOP",
                        }
                    ],
                    "usageMetadata": {
                        "promptTokenCount": server.tokens_in,
                        "candidatesTokenCount": server.tokens_out,
                        "totalTokenCount": server.tokens_in + server.tokens_out,
                    },
                }
            )
        if action in ("batchEmbedContents", "embedContent"):
            requests = body.get("requests") or [body]
            texts = ["".join(p.get("text", "") for p in r["content"]["parts"]) for r in requests]
            vectors = [{"values": fake_vector(text)} for text in texts]
            if action == "embedContent":
                return JSONResponse({"embedding": vectors[0]})
            return JSONResponse({"embeddings": vectors})
        config = body.get("generationConfig") or {}
        structured = "responseJsonSchema" in config or "responseSchema" in config
        text = _reply(server, structured, images=len(server.requests[-1].images))
        usage = {
            "promptTokenCount": server.tokens_in,
            "candidatesTokenCount": server.tokens_out,
            "totalTokenCount": server.tokens_in + server.tokens_out,
        }

        def answer(piece: str, finish: str | None, with_usage: bool) -> dict[str, Any]:
            candidate: dict[str, Any] = {
                "content": {"role": "model", "parts": [{"text": piece}]},
                "index": 0,
            }
            if finish:
                candidate["finishReason"] = finish
            out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
            if with_usage:
                out["usageMetadata"] = usage
            return out

        reply = server._replies.popleft() if server._replies else None
        if reply is not None and action != "streamGenerateContent":
            return JSONResponse(_gemini_scripted(model, reply, usage))
        if action == "streamGenerateContent":
            if reply is None:
                chunks = [[{"text": piece}] for piece in _pieces(text, server.stream_piece_chars)]
            else:
                # The text in pieces, then each function call whole (as Gemini streams them).
                scripted = _gemini_scripted(model, reply, usage)
                chunks = [
                    [{"text": piece}]
                    for piece in (
                        _pieces(reply["text"], server.stream_piece_chars)
                        if reply.get("text")
                        else []
                    )
                ]
                chunks += [
                    [part]
                    for part in scripted["candidates"][0]["content"]["parts"]
                    if "functionCall" in part
                ]
                usage = scripted["usageMetadata"]
            if len(chunks) == 1:
                # The one piece would also be the last: a cut must come before finish and usage.
                chunks.append([{"text": ""}])
            pieces = []
            for i, parts in enumerate(chunks):
                last = i == len(chunks) - 1
                candidate: dict[str, Any] = {
                    "content": {"role": "model", "parts": parts},
                    "index": 0,
                }
                out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
                if last:
                    candidate["finishReason"] = "STOP"
                    out["usageMetadata"] = usage
                pieces.append(_data(out, end="\r\n\r\n"))
            return StreamingResponse(
                server._stream(pieces, [], cut=server._take_cut()),
                media_type="text/event-stream",
            )
        return JSONResponse(answer(text, "STOP", True))

    @app.post("/v1/messages")
    async def anthropic_messages(request: Request) -> Response:
        body = await request.json()
        # The SDK sends the key as x-api-key or, in newer releases, as a bearer token.
        key = request.headers.get("x-api-key") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        model = body.get("model", "")
        refused = await prologue(request, "anthropic", key, model, body)
        if refused is not None:
            return refused
        structured = "format" in (body.get("output_config") or {})
        text = _reply(server, structured, images=len(server.requests[-1].images))
        reply = server._replies.popleft() if server._replies else None
        if reply is not None and not body.get("stream"):
            usage = {"input_tokens": server.tokens_in, "output_tokens": server.tokens_out}
            return JSONResponse(_anthropic_scripted(model, reply, usage))
        if body.get("stream"):
            reply = reply or {"text": text}
            calls = reply.get("tool_calls") or []
            start = {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": int(reply.get("tokens_in", server.tokens_in)),
                        "output_tokens": 1,
                    },
                },
            }
            # (event, whether it is a delta): the stream is cut into pieces after each delta.
            events: list[tuple[bytes, bool]] = [(_sse("message_start", start), False)]
            blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
            if reply.get("text") or not calls:
                blocks.append(
                    (
                        {"type": "text", "text": ""},
                        [
                            {"type": "text_delta", "text": piece}
                            for piece in _pieces(reply.get("text") or "", server.stream_piece_chars)
                        ],
                    )
                )
            for index, call in enumerate(calls):
                arguments = _arguments_json(call["arguments"])
                half = len(arguments) // 2
                use = {
                    "type": "tool_use",
                    "id": call.get("id", f"toolu_{index}"),
                    "name": call["name"],
                    "input": {},
                }
                blocks.append(
                    (
                        use,
                        [
                            {"type": "input_json_delta", "partial_json": arguments[:half]},
                            {"type": "input_json_delta", "partial_json": arguments[half:]},
                        ],
                    )
                )
            for index, (block, deltas) in enumerate(blocks):
                opened = {"type": "content_block_start", "index": index, "content_block": block}
                events.append((_sse("content_block_start", opened), False))
                for delta in deltas:
                    data = {"type": "content_block_delta", "index": index, "delta": delta}
                    events.append((_sse("content_block_delta", data), True))
                closed = {"type": "content_block_stop", "index": index}
                events.append((_sse("content_block_stop", closed), False))
            finished = {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "tool_use" if calls else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": int(reply.get("tokens_out", server.tokens_out))},
            }
            events.append((_sse("message_delta", finished), False))
            events.append((_sse("message_stop", {"type": "message_stop"}), False))
            pieces: list[bytes] = []
            pending = b""
            for event, is_delta in events:
                pending += event
                if is_delta:
                    pieces.append(pending)
                    pending = b""
            ending = [pending]
            return StreamingResponse(
                server._stream(pieces, ending, cut=server._take_cut()),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": server.tokens_in, "output_tokens": server.tokens_out},
            }
        )

    return app


def _reply(server: FakeServer, structured: bool, *, images: int) -> str:
    if structured:
        return json.dumps(server.json_reply)
    if images:
        return f"{server.reply_text} I see {images} image(s)."
    return server.reply_text


def _pieces(text: str, size: int = 0) -> list[str]:
    """The text in pieces of ``size`` characters, or by default in three pieces (or fewer), as
    a model would stream it."""
    if size > 0:
        return [text[i : i + size] for i in range(0, len(text), size)] or [text]
    if len(text) < 3:
        return [text]
    third = len(text) // 3
    return [text[:third], text[third : 2 * third], text[2 * third :]]


async def _pause(delay_s: float) -> None:
    if delay_s > 0:
        await asyncio.sleep(delay_s)


def _openai_chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _data(data: dict[str, Any], *, end: str = "\n\n") -> bytes:
    """One Server-Sent Event of JSON data (Gemini ends its events with CRLF CRLF)."""
    return f"data: {json.dumps(data)}{end}".encode()


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_ANTHROPIC_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


def _error(
    provider: str, status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any]
    if provider == "openai":
        body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    elif provider == "gemini":
        body = {"error": {"code": status, "message": message, "status": _GOOGLE_STATUS[status]}}
    else:
        body = {"type": "error", "error": {"type": _ANTHROPIC_TYPE[status], "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _images(provider: str, body: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Every image in the request, decoded, whatever the provider's format."""
    found: list[tuple[str, bytes]] = []
    if provider == "openai":
        for message in body.get("messages", []):
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image_url":
                    header, _, data = part["image_url"]["url"].partition(",")
                    found.append((header[5:].split(";")[0], base64.b64decode(data)))
    elif provider == "gemini":
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                inline = part.get("inlineData") or part.get("inline_data")
                if inline:
                    mime = inline.get("mimeType") or inline.get("mime_type")
                    # The SDK sends URL-safe base64, unpadded.
                    data = inline["data"]
                    found.append((mime, base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))))
    else:
        for message in body.get("messages", []):
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image":
                    source = part["source"]
                    found.append((source["media_type"], base64.b64decode(source["data"])))
    return found


def _arguments_json(arguments: Any) -> str:
    """A scripted call's arguments as the wire carries them: JSON text (a string stays as it
    is, so a test can script arguments that are not JSON)."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _openai_scripted(model: str, reply: dict[str, Any], usage: dict[str, int]) -> dict[str, Any]:
    tokens_in = int(reply.get("tokens_in", usage["prompt_tokens"]))
    tokens_out = int(reply.get("tokens_out", usage["completion_tokens"]))
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("text")}
    finish = "stop"
    if reply.get("tool_calls"):
        finish = "tool_calls"
        message["tool_calls"] = [
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": _arguments_json(call["arguments"]),
                },
            }
            for index, call in enumerate(reply["tool_calls"])
        ]
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
    }


def _anthropic_scripted(model: str, reply: dict[str, Any], usage: dict[str, int]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.get("text"):
        content.append({"type": "text", "text": reply["text"]})
    content += [
        {
            "type": "tool_use",
            "id": call.get("id", f"toolu_{index}"),
            "name": call["name"],
            "input": call["arguments"],
        }
        for index, call in enumerate(reply.get("tool_calls") or ())
    ]
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.get("tool_calls") else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": int(reply.get("tokens_in", usage["input_tokens"])),
            "output_tokens": int(reply.get("tokens_out", usage["output_tokens"])),
        },
    }


def _gemini_scripted(model: str, reply: dict[str, Any], usage: dict[str, int]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if reply.get("text"):
        parts.append({"text": reply["text"]})
    for call in reply.get("tool_calls") or ():
        function_call: dict[str, Any] = {"name": call["name"], "args": call["arguments"]}
        if "id" in call:
            function_call["id"] = call["id"]
        part: dict[str, Any] = {"functionCall": function_call}
        if "signature" in call:
            part["thoughtSignature"] = call["signature"]
        parts.append(part)
    tokens_in = int(reply.get("tokens_in", usage["promptTokenCount"]))
    tokens_out = int(reply.get("tokens_out", usage["candidatesTokenCount"]))
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "index": 0, "finishReason": "STOP"}
        ],
        "modelVersion": model,
        "usageMetadata": {
            "promptTokenCount": tokens_in,
            "candidatesTokenCount": tokens_out,
            "totalTokenCount": tokens_in + tokens_out,
        },
    }


EMBEDDING_DIMENSIONS = 8


def fake_vector(text: str) -> list[float]:
    """A vector that depends on the text only, the same every time."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255, 6) for byte in digest[:EMBEDDING_DIMENSIONS]]


def fake_png(size: str) -> bytes:
    """A small PNG of ``WIDTHxHEIGHT`` (64x64 for ``auto``), as a model's image would come."""
    from PIL import Image

    width, _, height = size.partition("x")
    dims = (int(width), int(height)) if width.isdigit() and height.isdigit() else (64, 64)
    out = io.BytesIO()
    Image.new("RGB", (dims[0] // 16, dims[1] // 16), "teal").save(out, format="PNG")
    return out.getvalue()
