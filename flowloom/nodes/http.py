"""The HTTP node: one request to a public service (private targets only when allowed)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, field_validator

from flowloom.nodes._net import Fetched, fetch
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, PortType, RunContext

__all__ = ["HttpRequest", "HttpRequestConfig"]

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TEXT_TYPES = frozenset(
    {"application/xml", "application/javascript", "application/x-www-form-urlencoded"}
)


class HttpRequestConfig(NodeConfig):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(min_length=1)
    """An http or https URL."""
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    """Sent as is when text, as JSON otherwise; the ``body`` input, when wired, replaces it."""
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    follow_redirects: bool = True
    """Follow up to 5 redirects, checking each new target like the first."""
    fail_on_status: bool = True
    """Fail the node on a 4xx answer (429 and 5xx are always retried)."""
    send_idempotency_key: bool = True
    """Send the attempt's ``Idempotency-Key`` with POST, PUT, PATCH and DELETE."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValueError("the URL must start with http:// or https:// and name a host")
        return url


class HttpRequest(Node[HttpRequestConfig]):
    """Send an HTTP request; output the status, the headers and the body.

    A JSON body is parsed, a text body decoded; any other body goes to the blob store and the
    output holds its reference (``sha256``, ``content_type``, ``size``). Private, loopback,
    link-local and unspecified addresses are refused before connecting, unless the instance
    settings allow private targets. Timeouts, connection errors, 429 and 5xx ask the engine to
    retry, honouring Retry-After.
    """

    type_name = "http.request"
    category = Category.EXTERNAL_ACTION
    deterministic = False
    Config = HttpRequestConfig

    def inputs(self, config: HttpRequestConfig) -> list[Port]:
        return [Port("body", PortType.ANY, required=False, default=None)]

    def concurrency_key(self, config: HttpRequestConfig) -> str | None:
        """``http:<host>``, so that a limit on ``http`` bounds the requests to each host."""
        from urllib.parse import urlsplit

        return f"http:{(urlsplit(config.url).hostname or '').lower()}"

    def outputs(self, config: HttpRequestConfig) -> list[Port]:
        return [
            Port("status", PortType.INTEGER),
            Port("headers", PortType.OBJECT),
            Port("body", PortType.ANY),
        ]

    async def run(
        self, ctx: RunContext, config: HttpRequestConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        headers = dict(config.headers)
        lower = {name.lower() for name in headers}
        if (
            config.send_idempotency_key
            and config.method in _UNSAFE_METHODS
            and "idempotency-key" not in lower
        ):
            headers["Idempotency-Key"] = ctx.idempotency_key
        body = inputs.get("body")
        if body is None:
            body = config.body
        fetched = await fetch(
            ctx,
            config.method,
            config.url,
            headers=headers,
            body=body,
            timeout_s=config.timeout_s,
            follow_redirects=config.follow_redirects,
        )
        if config.fail_on_status and 400 <= fetched.status < 500:
            excerpt = fetched.content[:200].decode("utf-8", "replace")
            raise ctx.fail(f"{fetched.url} answered {fetched.status}: {excerpt}")
        return NodeResult(
            {
                "status": fetched.status,
                "headers": fetched.headers,
                "body": await _body_value(ctx, fetched, config.method),
            }
        )


async def _body_value(ctx: RunContext, fetched: Fetched, method: str) -> Any:
    if method == "HEAD" or not fetched.content:
        return None
    kind = fetched.content_type
    is_json = kind == "application/json" or kind.endswith("+json")
    if is_json:
        try:
            return json.loads(fetched.content)
        except ValueError:
            pass  # mislabelled: read it as text
    textual = kind.startswith("text/") or kind in _TEXT_TYPES or is_json or not kind
    if textual or fetched.charset is not None:
        try:
            return fetched.content.decode(fetched.charset or "utf-8")
        except (LookupError, UnicodeDecodeError):
            pass  # not text after all: store it as bytes
    # Binary data never goes into JSON outputs: store it and output the reference.
    sha256 = await ctx.blobs.put(fetched.content)
    return {
        "sha256": sha256,
        "content_type": kind or "application/octet-stream",
        "size": len(fetched.content),
    }
