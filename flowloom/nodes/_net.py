"""Outbound HTTP for nodes, refusing private, loopback and link-local targets.

The host is resolved and every address it resolves to is checked *before* any connection is
made; the request is then sent to the checked address itself (the Host header and TLS SNI
still name the host), so a DNS answer that changes between the check and the connection
cannot send it elsewhere. Redirects are followed here, hop by hop, each hop checked the same
way. Transient failures (timeouts, connection errors, 429, 5xx) raise RetryNode.

IPv6 addresses that carry an IPv4 address inside (IPv4-mapped, -translated and -compatible,
NAT64, 6to4, Teredo, ISATAP interface ids) are judged by that IPv4 address too: a translator or
tunnel on the path delivers them to it, so ``::7f00:1`` is as much loopback as ``127.0.0.1``.

Credentials never follow a redirect to another origin: the headers the caller names as private
and every header whose name looks like one (``Authorization``, ``Cookie``, ``X-Api-Key``,
anything naming a key, token, secret, auth, session, cookie, password or credential) are
dropped once a redirect leaves the first URL's origin, as browsers drop ``Authorization``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from flowloom.exceptions import RetryNode
from flowloom.integrations.addresses import blocked_reason, embedded_ipv4, resolve_checked
from flowloom.integrations.tls import ssl_context_ready
from flowloom.nodes.base import RunContext

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Fetched",
    "blocked_reason",
    "embedded_ipv4",
    "fetch",
    "is_credential_header",
    "resolve_checked",
    "retry_delay_s",
]

MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_MAX_RETRY_AFTER_S: Final = 3600.0


_CREDENTIAL_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"}
)
_CREDENTIAL_WORDS: Final = (
    "key",
    "token",
    "secret",
    "auth",
    "session",
    "cookie",
    "password",
    "passwd",
    "credential",
)
_NOT_CREDENTIALS: Final = frozenset({"idempotency-key"})
"""Named like a credential but not one: the redirected request should still carry it."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response read in full (within the size limit)."""

    status: int
    headers: dict[str, str]
    content: bytes
    url: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for param in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                return value.strip().strip('"')
        return None


def is_credential_header(name: str) -> bool:
    """Whether a request header named ``name`` may carry a credential (so it must not follow a
    redirect to another origin): the well-known ones, and any whose name contains a key,
    token, secret, auth, session, cookie, password or credential."""
    lowered = name.strip().lower()
    if lowered in _NOT_CREDENTIALS:
        return False
    return lowered in _CREDENTIAL_HEADERS or any(word in lowered for word in _CREDENTIAL_WORDS)


def retry_delay_s(headers: Mapping[str, str], attempt: int) -> float:
    """How long to wait before retrying: the server's Retry-After, else exponential backoff."""
    value = headers.get("retry-after", "").strip()
    if value:
        if value.isdigit():
            return min(float(value), _MAX_RETRY_AFTER_S)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            pass
        else:
            return min(max(when.timestamp() - time.time(), 0.0), _MAX_RETRY_AFTER_S)
    return float(min(2 ** max(attempt - 1, 0), 60))


async def fetch(
    ctx: RunContext,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    timeout_s: float = 30.0,
    follow_redirects: bool = True,
    private_headers: Collection[str] = (),
) -> Fetched:
    """Send one request (following redirects) within the context's address policy.

    ``body`` is sent as is when it is text or bytes, as JSON otherwise (None sends none).
    When a redirect leaves the first URL's origin (scheme, host and port), ``private_headers``
    (credentials the caller added) and every header that looks like a credential (see
    :func:`is_credential_header`) are dropped, for that hop and every later one.
    Raises ``ctx.fail`` for refused targets, malformed URLs and oversized responses, and
    RetryNode for timeouts, connection errors, 429 and 5xx. Other statuses are returned.
    """
    import httpx  # costs ~0.2 s; only nodes that fetch pay for it

    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ctx.fail(f"not a URL: {exc}") from None
    limit = ctx.settings.http_max_response_bytes
    await ssl_context_ready()
    async with ctx.http_client() as client:
        for _hop in range(MAX_REDIRECTS + 1):
            request = await _build_request(ctx, client, method, current, headers, body, timeout_s)
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise RetryNode(
                    after_s=retry_delay_s({}, ctx.attempt), reason=f"timed out: {exc!r}"
                ) from None
            except httpx.TransportError as exc:
                raise RetryNode(
                    after_s=retry_delay_s({}, ctx.attempt), reason=f"connection failed: {exc!r}"
                ) from None
            try:
                location = response.headers.get("location")
                if follow_redirects and response.status_code in _REDIRECTS and location:
                    following = current.join(location)
                    if _origin(following) != _origin(current):
                        headers = _without_credentials(headers, private_headers)
                    current = following
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        # What browsers do: the redirected request is a GET without a body.
                        method, body = "GET", None
                    continue
                fetched_headers = {key: response.headers[key] for key in response.headers}
                if response.status_code == 429 or response.status_code >= 500:
                    raise RetryNode(
                        after_s=retry_delay_s(fetched_headers, ctx.attempt),
                        reason=f"{current} answered {response.status_code}",
                    )
                content = await _read_limited(ctx, response, limit)
            finally:
                await response.aclose()
            return Fetched(response.status_code, fetched_headers, content, str(current))
    raise ctx.fail(f"more than {MAX_REDIRECTS} redirects, last to {current}")


def _without_credentials(
    headers: Mapping[str, str] | None, private_headers: Collection[str]
) -> dict[str, str]:
    private = {name.lower() for name in private_headers}
    return {
        name: value
        for name, value in (headers or {}).items()
        if name.lower() not in private and not is_credential_header(name)
    }


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


async def _build_request(
    ctx: RunContext,
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    headers: Mapping[str, str] | None,
    body: Any,
    timeout_s: float,
) -> httpx.Request:
    import httpx

    if url.scheme not in ("http", "https"):
        raise ctx.fail(f"only http and https URLs are allowed, not {url.scheme!r}")
    if not url.host:
        raise ctx.fail(f"URL {url} has no host")
    extensions: dict[str, Any] = {}
    all_headers = dict(headers or {})
    target = url
    if not ctx.settings.allow_private_http:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            address = await resolve_checked(url.host, port)
        except ValueError as exc:
            raise ctx.fail(str(exc)) from None
        if address != url.host:
            # Connect to the address that was checked; the server still sees its own name.
            target = url.copy_with(host=address)
            all_headers = {k: v for k, v in all_headers.items() if k.lower() != "host"}
            all_headers["Host"] = url.netloc.decode("ascii")
            if url.scheme == "https":
                extensions["sni_hostname"] = url.host
    kwargs: dict[str, Any] = {}
    if isinstance(body, str | bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    return client.build_request(
        method,
        target,
        headers=all_headers,
        timeout=httpx.Timeout(timeout_s),
        extensions=extensions,
        **kwargs,
    )


async def _read_limited(ctx: RunContext, response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ctx.fail(f"the response is {int(declared)} bytes; the limit is {limit}")
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ctx.fail(f"the response is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
