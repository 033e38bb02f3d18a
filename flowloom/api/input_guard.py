"""The checks every request passes before any route sees it: nothing unstorable, nothing too deep.

``InputGuard`` is a pure ASGI middleware, so no route can forget it. It answers 422
problem+json, ``errors: [{field, message}]`` as for any other bad input, and nothing is written:

- text that cannot be stored (a NUL, a lone surrogate) or a number that is not finite (NaN,
  Infinity), in a body (JSON, whatever its declared type: a webhook reads any body as JSON;
  or a form), the query string, a path parameter or a header, the field named
  (``definition.nodes.0.data.config.text``, ``name``, ``status``, ``user-agent``; see
  ``flowloom.storable``);
- a JSON body nested deeper than ``MAX_JSON_DEPTH`` arrays and objects (field ``body``): past
  it, parsing, validating and serialising recurse far enough to fail, and nothing flowloom
  stores needs so many levels.

It is on the hot path of every request, the webhook first (benchmark S3), so the common case
costs a few byte scans at C speed: a body is parsed only when it holds an escape or a number
that could decode to something unstorable, and its depth is counted only when it opens more
arrays and objects than the limit allows in all.
"""

from __future__ import annotations

import json
import re
from typing import Final
from urllib.parse import parse_qsl

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowloom.api.errors import problem_json
from flowloom.api.limits import replay, send_problem
from flowloom.storable import Unstorable, find_unstorable_json, unstorable_reason

__all__ = ["MAX_JSON_DEPTH", "InputGuard", "json_too_deep", "unstorable_in_request"]

MAX_JSON_DEPTH: Final = 64
"""The deepest nesting of arrays and objects a JSON body may have (``[[1]]`` is 2 deep)."""

# A JSON string, escapes included; unrolled so that it matches in linear time.
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_NOT_STRUCTURE: Final = bytes(b for b in range(256) if b not in b'"[]{}')
_SQUARE: Final = bytes.maketrans(b"{}", b"[]")
_FORM: Final = b"application/x-www-form-urlencoded"
_MULTIPART: Final = b"multipart/form-data"
_NUL_REASON: Final = unstorable_reason("\x00") or "holds a NUL character"


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects more than ``limit`` deep.

    Counted without parsing and without recursion. A body that opens ``limit`` or fewer in all
    is not looked at further; otherwise brackets inside strings are dropped and the rest
    counted, all in C (translate, split, replace). A malformed body may be counted too deep;
    it is refused either way.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\x00" in body[:4]:
        # UTF-16 or UTF-32, which json.loads() reads too: count in UTF-8.
        try:
            body = body.decode(json.detect_encoding(body), "surrogatepass").encode(
                "utf-8", "surrogatepass"
            )
        except (UnicodeDecodeError, LookupError):
            return False  # not text json.loads() could read: it is refused as malformed
    if b'\\"' in body:
        # An escaped quote: only a real scan of the strings tells where each ends.
        brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    else:
        # Every quote opens or closes a string: the brackets outside are every other piece.
        brackets = b"".join(body.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    return _deeper_than(brackets.translate(_SQUARE), limit)


def _deeper_than(brackets: bytes, limit: int) -> bool:
    """Whether a sequence of ``[`` and ``]`` nests more than ``limit`` deep.

    Each round takes out every innermost pair (one C-speed ``replace``), so a balanced
    sequence is empty after as many rounds as it is deep: at most ``limit + 1`` rounds tell.
    An unbalanced one (malformed JSON) stops shrinking at ``]...][...[``; its unclosed
    openers are counted on top of the rounds done, which can only overstate the depth of a
    body that is refused as malformed anyway.
    """
    for rounds in range(limit + 1):
        if not brackets:
            return False
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            return rounds + inner.count(b"[") > limit
        brackets = inner
    return True


def _query_unstorable(query: bytes) -> Unstorable | None:
    """The first unstorable name or value in a query string or form body, or None.

    Percent-decoding goes through UTF-8 with replacement, as Starlette's does, so a surrogate
    cannot come out of it: only a NUL can, spelled ``%00`` or sent raw."""
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if (reason := unstorable_reason(name)) is not None:
            return Unstorable(repr(name)[1:-1], f"its name {reason}")
        if (reason := unstorable_reason(value)) is not None:
            return Unstorable(name, reason)
    return None


def _path_parameter(scope: Scope) -> str:
    """The name of the path parameter holding the unstorable text (``path`` when no route of
    the API matches): found with the path templates of the app's OpenAPI document, which only
    a refused request pays for (the document is made once and kept)."""
    path: str = scope.get("path", "")
    app = scope.get("app")
    openapi = getattr(app, "openapi", None)
    if not callable(openapi):
        return "path"
    for template in openapi().get("paths", {}):
        pattern, _, _ = compile_path(template)
        match = pattern.match(path)
        if match is None:
            continue
        for name, value in match.groupdict().items():
            if unstorable_reason(value) is not None:
                return name
    return "path"


def unstorable_in_request(scope: Scope) -> Unstorable | None:
    """What in the request line or headers cannot be stored: a header value, a path
    parameter, a query parameter, named; None when all of it can."""
    for name, value in scope["headers"]:
        if b"\x00" in value:
            return Unstorable(name.decode("latin-1"), _NUL_REASON)
    path: str = scope["path"]
    # An ASCII path without NUL (nearly all) needs no closer look.
    suspect = not path.isascii() or "\x00" in path
    if suspect and (reason := unstorable_reason(path)) is not None:
        return Unstorable(_path_parameter(scope), reason)
    query: bytes = scope.get("query_string", b"")
    return _query_unstorable(query) if query else None


class InputGuard:
    """ASGI middleware: 422 problem+json for unstorable input or a too-deep JSON body.

    Sits inside ``BodySizeLimit``, which has already refused a body over the size limit, so
    reading the whole body here is bounded. A request without a body (no ``Content-Length``,
    or 0, and no ``Transfer-Encoding``) is not read at all; a body is read whole, checked, and
    handed on unchanged, and what the client sends after it (a disconnect) still reaches the
    route.
    """

    def __init__(self, app: ASGIApp, *, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (found := unstorable_in_request(scope)) is not None:
            await _refuse(scope, send, found.field, found.reason)
            return
        content_type, has_body = _body_headers(scope)
        if not has_body or (content_type or b"").startswith(_MULTIPART):
            # Multipart bodies are files (uploads): bytes, not text; their route checks the
            # few text fields it reads.
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] != "http.request" or not first.get("more_body", False):
            messages = [first]
            body = first.get("body", b"") if first["type"] == "http.request" else b""
        else:
            messages, body = await _read_rest(first, receive)
        if body:
            if content_type is not None and content_type.startswith(_FORM):
                found = _query_unstorable(body)
            elif json_too_deep(body, self.max_depth):
                message = f"the JSON is nested more than {self.max_depth} levels deep"
                await _refuse(scope, send, "body", message)
                return
            else:
                found = find_unstorable_json(body)
            if found is not None:
                await _refuse(scope, send, found.field or "body", found.reason)
                return
        await self.app(scope, replay(messages, receive), send)


def _body_headers(scope: Scope) -> tuple[bytes | None, bool]:
    """The request's Content-Type (lower case), and whether it has a body to read."""
    content_type: bytes | None = None
    has_body = False
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value.lower()
        elif name == b"content-length":
            has_body = has_body or value.strip() not in (b"0", b"")
        elif name == b"transfer-encoding":
            has_body = True
    return content_type, has_body


async def _read_rest(first: Message, receive: Receive) -> tuple[list[Message], bytes]:
    """The body sent in several messages, joined into one (with what ended it early, if the
    client went away)."""
    chunks = [first.get("body", b"")]
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # The client went away: hand on what came, and the disconnect after it.
            partial: Message = {
                "type": "http.request",
                "body": b"".join(chunks),
                "more_body": True,
            }
            return [partial, message], b""
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            body = b"".join(chunks)
            return [{"type": "http.request", "body": body, "more_body": False}], body


async def _refuse(scope: Scope, send: Send, field: str, reason: str) -> None:
    detail = f"{field}: {reason}"
    body = problem_json(
        422, detail, errors=[{"field": field, "message": reason}], instance=scope.get("path", "")
    )
    await send_problem(send, body)
