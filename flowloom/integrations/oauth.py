"""OAuth 2 clients: the authorization code grant with PKCE (RFC 7636, S256), and refresh.

The pieces are plain functions over an :class:`OAuthClient` (what a user registered: client id,
client secret, endpoints, scopes): :func:`new_pkce` and :func:`new_state` make the one-time
values, :func:`authorization_url` the address the user's browser goes to,
:func:`exchange_code` turns the code the provider sends back into a :class:`TokenSet`, and
:func:`refresh_tokens` renews it. Storing any of it is the repository's business
(:mod:`flowloom.integrations.oauth_repo`); the engine side is
:mod:`flowloom.integrations.oauth_store`.

The token endpoint is called by this server, so it obeys the same address policy as
``http.request``: https only, and no private, loopback or link-local address, unless the
instance allows private targets (``FLOWLOOM_ALLOW_PRIVATE_HTTP``). The connection goes to the
address that was checked, so a DNS answer that changes in between cannot redirect it.

Errors never carry a token or the client secret: a refusal shows the provider's ``error`` code
and (shortened) ``error_description`` only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flowloom.exceptions import ExecutionError, InputError
from flowloom.integrations.oauth_http import redact

if TYPE_CHECKING:
    from flowloom.integrations.http_client import HttpClientFactory

__all__ = [
    "RESERVED_PARAMS",
    "OAuthClient",
    "OAuthError",
    "OAuthRefused",
    "TokenAuthMethod",
    "TokenSet",
    "authorization_url",
    "check_endpoint",
    "exchange_code",
    "new_pkce",
    "new_state",
    "refresh_tokens",
]

TokenAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
"""How the client authenticates at the token endpoint (RFC 6749 section 2.3)."""

RESERVED_PARAMS: Final = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "scope",
    }
)
"""Authorization parameters flowloom sets itself; ``extra_params`` may not name them."""

_TIMEOUT_S: Final = 30.0
_MAX_RESPONSE_BYTES: Final = 256 * 1024
_DESCRIPTION_CHARS: Final = 200


class OAuthError(ExecutionError):
    """Talking to an OAuth provider failed: unreachable, refused, or an unreadable answer.

    ``connection`` names the connection (its name and id), never a secret. ``retryable`` when
    the provider could not be reached or failed (a timeout, a 5xx), not when it said no.
    """

    def __init__(self, message: str, *, connection: str, retryable: bool = False) -> None:
        self.connection = connection
        self.retryable = retryable
        super().__init__(f"OAuth connection {connection}: {message}")


class OAuthRefused(OAuthError):
    """The provider answered with an OAuth error (``invalid_grant``: the code or the refresh
    token is used, expired or revoked; ``invalid_client``: the client id or secret is wrong)."""

    def __init__(self, message: str, *, connection: str, error: str) -> None:
        self.error = error
        super().__init__(message, connection=connection)


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A registered OAuth client: what flowloom needs to run the flow against one provider."""

    client_id: str
    authorization_url: str
    token_url: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    extra_params: Mapping[str, str] = field(default_factory=dict)
    """Added to the authorization URL (``access_type=offline``, ``audience=...``)."""
    token_auth_method: TokenAuthMethod = "client_secret_basic"
    revocation_url: str | None = None
    """The provider's RFC 7009 revocation endpoint, if it has one."""
    label: str = ""
    """How errors name the connection (``'github' (intg_...)``)."""


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a token endpoint answered. Tokens never print."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    """None when the provider said nothing about expiry."""
    scopes: tuple[str, ...] = ()

    def expires_within(self, seconds: float, *, now: datetime) -> bool:
        """Whether the access token is expired or will be within ``seconds``."""
        return self.expires_at is not None and self.expires_at <= now + timedelta(seconds=seconds)

    def to_secret_json(self) -> str:
        """The tokens as stored (sealed): access and refresh token only."""
        return json.dumps({"access_token": self.access_token, "refresh_token": self.refresh_token})


def new_state() -> str:
    """A fresh ``state``: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_pkce() -> tuple[str, str]:
    """A fresh PKCE pair ``(code_verifier, code_challenge)``, the challenge by S256."""
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]: within 43-128
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_endpoint(url: str, *, field_name: str, allow_plain_http: bool) -> str:
    """``url`` if it may be an authorization or token endpoint; InputError naming
    ``field_name`` otherwise: https only unless plain HTTP is allowed, a host, and no
    credentials or fragment (endpoints are shown back to the user)."""
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_plain_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        wanted = "an http:// or https://" if allow_plain_http else "an https://"
        raise InputError(f"{field_name} must be {wanted} URL with a host", field=field_name)
    if parts.username or parts.password or parts.fragment:
        raise InputError(f"{field_name} may not carry credentials or a fragment", field=field_name)
    return url


def authorization_url(
    client: OAuthClient, *, redirect_uri: str, state: str, code_challenge: str
) -> str:
    """Where to send the user's browser: the endpoint with the code request appended to any
    query it already has."""
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    if client.scopes:
        params["scope"] = " ".join(client.scopes)
    for key, value in client.extra_params.items():
        params.setdefault(key, value)
    parts = urlsplit(client.authorization_url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def exchange_code(
    client: OAuthClient,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    now: datetime,
    allow_private_http: bool = False,
    http_client: HttpClientFactory | None = None,
) -> TokenSet:
    """The tokens for an authorization ``code`` (sent with the PKCE verifier).

    OAuthRefused when the provider refuses the code (a wrong verifier is ``invalid_grant``),
    OAuthError when it cannot be reached or answers something unreadable.
    """
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    answer = await _token_request(
        client, form, allow_private_http, http_client, hide=(code, code_verifier)
    )
    return _token_set(client, answer, now=now, previous_refresh=None)


async def refresh_tokens(
    client: OAuthClient,
    *,
    refresh_token: str,
    now: datetime,
    allow_private_http: bool = False,
    http_client: HttpClientFactory | None = None,
) -> TokenSet:
    """New tokens for ``refresh_token``. A provider that sends no new refresh token leaves
    the old one in use. OAuthRefused for a revoked or expired refresh token."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if client.scopes:
        form["scope"] = " ".join(client.scopes)
    answer = await _token_request(
        client, form, allow_private_http, http_client, hide=(refresh_token,)
    )
    return _token_set(client, answer, now=now, previous_refresh=refresh_token)


async def revoke_token(
    client: OAuthClient,
    *,
    token: str,
    token_type_hint: str,
    allow_private_http: bool = False,
    http_client: HttpClientFactory | None = None,
) -> None:
    """Revoke ``token`` at the provider's revocation endpoint (RFC 7009), authenticated as at
    the token endpoint. OAuthRefused when the provider refuses (for instance the client),
    OAuthError when it cannot be reached; ValueError for a client without the endpoint."""
    if client.revocation_url is None:
        raise ValueError("the client has no revocation_url")
    form = {"token": token, "token_type_hint": token_type_hint}
    await _token_request(
        client,
        form,
        allow_private_http,
        http_client,
        hide=(token,),
        url_field=("revocation_url", client.revocation_url),
    )


# ---- inside


async def _token_request(
    client: OAuthClient,
    form: dict[str, str],
    allow_private_http: bool,
    http_client: HttpClientFactory | None,
    *,
    hide: Sequence[str],
    url_field: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """POST ``form`` to the token endpoint (or ``url_field``: its name and URL), the client
    authenticated; the answer's fields ({} for an empty answer)."""
    import httpx

    from flowloom.integrations.addresses import resolve_checked
    from flowloom.integrations.http_client import default_http_client
    from flowloom.integrations.tls import ssl_context_ready

    label = client.label or repr(client.client_id)
    hidden = [s for s in (*hide, client.client_secret or "") if s]
    field_name, endpoint = url_field or ("token_url", client.token_url)
    what = "token endpoint" if field_name == "token_url" else "revocation endpoint"
    url = httpx.URL(
        check_endpoint(endpoint, field_name=field_name, allow_plain_http=allow_private_http)
    )
    headers = {"Accept": "application/json"}
    body = dict(form)
    if client.token_auth_method == "client_secret_basic" and client.client_secret is not None:
        pair = f"{_form_quote(client.client_id)}:{_form_quote(client.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    else:
        body["client_id"] = client.client_id
        if client.token_auth_method == "client_secret_post" and client.client_secret is not None:
            body["client_secret"] = client.client_secret
    target = url
    extensions: dict[str, Any] = {}
    if not allow_private_http:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            address = await resolve_checked(url.host, port)
        except ValueError as exc:
            raise OAuthError(f"{field_name}: {exc}", connection=label) from None
        if address != url.host:
            # Connect to the checked address; Host and TLS SNI still name the provider.
            target = url.copy_with(host=address)
            headers["Host"] = url.netloc.decode("ascii")
            extensions["sni_hostname"] = url.host
    factory = http_client or default_http_client
    await ssl_context_ready()
    try:
        async with factory() as http:
            request = http.build_request(
                "POST",
                target,
                data=body,
                headers=headers,
                timeout=httpx.Timeout(_TIMEOUT_S),
                extensions=extensions,
            )
            response = await http.send(request, stream=True)
            try:
                content = await _read_limited(response)
            finally:
                await response.aclose()
    except httpx.HTTPError as exc:
        reason = redact(f"{type(exc).__name__}: {exc}", hidden)
        raise OAuthError(
            f"the {what} cannot be reached ({reason})", connection=label, retryable=True
        ) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise OAuthError(
            f"the {what} answered {response.status_code}", connection=label, retryable=True
        )
    answer = _parse(response.headers.get("content-type", ""), content)
    if response.status_code >= 400 or "error" in answer:
        error = str(answer.get("error") or f"HTTP {response.status_code}")[:100]
        description = str(answer.get("error_description") or "")[:_DESCRIPTION_CHARS]
        message = f"the provider refused: {error}" + (f" ({description})" if description else "")
        raise OAuthRefused(redact(message, hidden), connection=label, error=redact(error, hidden))
    return answer


async def _read_limited(response: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > _MAX_RESPONSE_BYTES:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(content_type: str, content: bytes) -> dict[str, Any]:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(content.decode("utf-8", "replace")))
    try:
        data = json.loads(content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _token_set(
    client: OAuthClient, answer: Mapping[str, Any], *, now: datetime, previous_refresh: str | None
) -> TokenSet:
    label = client.label or repr(client.client_id)
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError("the token endpoint answered without an access_token", connection=label)
    token_type = str(answer.get("token_type") or "Bearer")
    if token_type.lower() != "bearer":
        raise OAuthError(
            f"the token endpoint issued a {token_type[:40]!r} token; only Bearer tokens are "
            "supported",
            connection=label,
        )
    refresh = answer.get("refresh_token")
    expires_in = answer.get("expires_in")
    expires_at = None
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        expires_at = now + timedelta(seconds=min(float(expires_in), 10 * 365 * 86400.0))
    scope = answer.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) else client.scopes
    return TokenSet(
        access_token=access,
        token_type="Bearer",
        refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
        expires_at=expires_at,
        scopes=scopes,
    )


def _form_quote(value: str) -> str:
    # RFC 6749 section 2.3.1: the client id and secret are form-encoded before Basic.
    from urllib.parse import quote_plus

    return quote_plus(value)
