"""The HTTP node: one request to a public service (private targets only when allowed)."""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flowloom.exceptions import RetryNode
from flowloom.field_docs import describe_fields
from flowloom.integrations.oauth_http import (
    HttpAuthError,
    HttpAuthHeader,
    HttpAuthRef,
    check_header_name,
    redact,
)
from flowloom.nodes._net import Fetched, fetch, retry_delay_s
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, PortType, RunContext

__all__ = ["HttpAuthConfig", "HttpRequest", "HttpRequestConfig"]

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TEXT_TYPES = frozenset(
    {"application/xml", "application/javascript", "application/x-www-form-urlencoded"}
)


class HttpAuthConfig(BaseModel):
    """A stored secret to authenticate with, by reference: exactly one of ``credential`` and
    ``oauth``. The secret never appears in the node's outputs or errors."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=describe_fields)

    credential: str | None = Field(default=None, min_length=1, max_length=200)
    """A stored credential's name: a bearer_token is sent as ``Authorization: Bearer``, a
    basic_auth (``user:password``) as ``Authorization: Basic``, a header or api_key credential
    in the header named by ``header``."""
    oauth: str | None = Field(default=None, min_length=1, max_length=64)
    """An OAuth connection's id: its access token is sent as ``Authorization: Bearer``,
    refreshed when it expires within a minute and once more on a 401 answer."""
    header: str | None = Field(default=None, min_length=1, max_length=100)
    """The header a header or api_key credential goes in (``X-Api-Key``)."""

    @model_validator(mode="after")
    def _check(self) -> HttpAuthConfig:
        if (self.credential is None) == (self.oauth is None):
            raise ValueError("give exactly one of credential and oauth")
        if self.header is not None:
            if self.oauth is not None:
                raise ValueError("header applies to credentials, not to OAuth connections")
            check_header_name(self.header)
        return self

    def ref(self) -> HttpAuthRef:
        return HttpAuthRef(credential=self.credential, oauth=self.oauth, header=self.header)


class HttpRequestConfig(NodeConfig):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(min_length=1)
    """An http or https URL."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with the request. Those that look like credentials (``Authorization``, ``Cookie``,
    ``X-Api-Key``, any name with key, token, secret, auth, session, cookie, password or
    credential in it) are not sent on when a redirect leads to another origin."""
    body: Any = None
    """Sent as is when text, as JSON otherwise; the ``body`` input, when wired, replaces it."""
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    follow_redirects: bool = True
    """Follow up to 5 redirects, checking each new target like the first."""
    fail_on_status: bool = True
    """Fail the node on a 4xx answer (429 and 5xx are always retried)."""
    send_idempotency_key: bool = True
    """Send the attempt's ``Idempotency-Key`` with POST, PUT, PATCH and DELETE."""
    auth: HttpAuthConfig | None = None
    """Authenticate with a stored credential or OAuth connection (by name or id, never the
    secret itself); its header replaces a header of the same name in ``headers``."""

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

    ``auth`` names a stored credential or OAuth connection to authenticate with; the secret is
    fetched when the request is sent, is not sent on to another origin by a redirect, and is
    replaced by ``********`` wherever the answer (headers, body) or an error would show it.
    Credential-like headers typed into ``headers`` are not sent on to another origin either.
    """

    type_name = "http.request"
    display_name = "HTTP request"
    icon = "globe"
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
        auth: HttpAuthHeader | None = None
        hidden: tuple[str, ...] = ()
        if config.auth is not None:
            auth = await _auth_header(ctx, config.auth, rejected=None)
            hidden = auth.redacted
        fetched = await self._send(ctx, config, headers, body, auth)
        if fetched.status == 401 and auth is not None and config.auth and config.auth.oauth:
            # The token may have been revoked or expired early: refresh it once and retry.
            auth = await _auth_header(ctx, config.auth, rejected=auth)
            hidden = tuple(sorted({*hidden, *auth.redacted}, key=len, reverse=True))
            fetched = await self._send(ctx, config, headers, body, auth)
        if config.fail_on_status and 400 <= fetched.status < 500:
            excerpt = fetched.content[:200].decode("utf-8", "replace")
            raise ctx.fail(redact(f"{fetched.url} answered {fetched.status}: {excerpt}", hidden))
        return NodeResult(
            {
                "status": fetched.status,
                "headers": redact(fetched.headers, hidden),
                "body": redact(await _body_value(ctx, fetched, config.method), hidden),
            }
        )

    async def _send(
        self,
        ctx: RunContext,
        config: HttpRequestConfig,
        headers: dict[str, str],
        body: Any,
        auth: HttpAuthHeader | None,
    ) -> Fetched:
        sent = dict(headers)
        if auth is not None:
            sent = {k: v for k, v in sent.items() if k.lower() != auth.name.lower()}
            sent[auth.name] = auth.value
        return await fetch(
            ctx,
            config.method,
            config.url,
            headers=sent,
            body=body,
            timeout_s=config.timeout_s,
            follow_redirects=config.follow_redirects,
            private_headers=(auth.name,) if auth is not None else (),
        )


async def _auth_header(
    ctx: RunContext, auth: HttpAuthConfig, *, rejected: HttpAuthHeader | None
) -> HttpAuthHeader:
    ref = auth.ref()
    if ctx.secrets is None:
        raise ctx.fail(f"{ref.describe()}: stored credentials are not available here")
    try:
        return await ctx.secrets.http_auth(ref, owner_id=ctx.owner_id, rejected=rejected)
    except HttpAuthError as exc:
        if exc.retryable:
            raise RetryNode(after_s=retry_delay_s({}, ctx.attempt), reason=str(exc)) from None
        raise ctx.fail(str(exc)) from None


_JSON_INLINE_MAX_BYTES: Final = 64 * 1024
"""Bodies up to this size are parsed on the event loop (well under a millisecond); bigger ones
(up to ``http_max_response_bytes``, tens of milliseconds) in the compute pool."""


async def _parse_json(content: bytes) -> Any:
    if len(content) <= _JSON_INLINE_MAX_BYTES:
        return json.loads(content)
    from flowloom.nodes._compute import run_off_loop

    return await run_off_loop(json.loads, content)


async def _body_value(ctx: RunContext, fetched: Fetched, method: str) -> Any:
    if method == "HEAD" or not fetched.content:
        return None
    kind = fetched.content_type
    is_json = kind == "application/json" or kind.endswith("+json")
    if is_json:
        try:
            return await _parse_json(fetched.content)
        except (ValueError, RecursionError):
            pass  # mislabelled, or nested past what the parser allows: read it as text
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
