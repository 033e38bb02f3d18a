"""A local OAuth 2 provider with a protected resource, for the OAuth tests.

One FastAPI app on uvicorn, in its own thread, on a free 127.0.0.1 port:

- ``GET /authorize`` checks the request (client id, redirect URI, an S256 code challenge) and
  answers 302 to the redirect URI with a one-time ``code`` and the ``state`` (or with
  ``error=access_denied`` when ``deny`` is set), as a provider does once the user agrees;
- ``POST /token`` takes ``authorization_code`` (checking the PKCE verifier against the
  challenge, the redirect URI and the client's secret) and ``refresh_token`` grants, rotating
  refresh tokens; refusals are ``400 {"error": "invalid_grant"}`` or ``401 invalid_client``;
- ``GET /resource`` needs a live access token; its answer echoes the Authorization header it
  saw, and a 401 echoes the rejected token (as careless servers do), so tests can check both
  are redacted;
- ``/echo`` answers every request header it got; ``/hop?to=URL`` redirects (302) to ``URL``.

Tokens are random and end in ``SECRET`` so a leak is easy to find: every one ever issued is in
``issued``. ``access_lifetime_s`` sets the ``expires_in`` of the next tokens, ``revoke_access``
and ``revoke_refresh`` invalidate what was issued, ``refresh_delay_s`` slows refreshes down so
concurrent callers overlap, and ``refreshes`` counts the refresh grants that succeeded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from appthread import AppThread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

CLIENT_ID = "flowloom-test-client"
CLIENT_SECRET = "client-secret-7f3a9b2c-SECRET"


@dataclass
class _Code:
    redirect_uri: str
    challenge: str
    scopes: list[str]
    used: bool = False


@dataclass
class FakeOAuthProvider:
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    access_lifetime_s: int = 3600
    refresh_delay_s: float = 0.0
    rotate_refresh: bool = True
    deny: bool = False
    refreshes: int = 0
    issued: list[str] = field(default_factory=list)
    """Every access and refresh token and every code ever issued."""
    token_requests: list[dict[str, str]] = field(default_factory=list)
    resource_calls: list[str] = field(default_factory=list)
    """The Authorization header of every call to ``/resource``."""
    echoed: list[dict[str, str]] = field(default_factory=list)
    revocations: list[dict[str, str]] = field(default_factory=list)
    """Every form posted to ``/revoke`` (RFC 7009)."""
    port: int = 0
    _codes: dict[str, _Code] = field(default_factory=dict)
    _access: dict[str, float] = field(default_factory=dict)
    _refresh: set[str] = field(default_factory=set)
    _serving: AppThread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def revoke_access(self) -> None:
        """Every access token issued so far answers 401 from now on."""
        self._access.clear()

    def revoke_refresh(self) -> None:
        """Every refresh token issued so far is refused from now on."""
        self._refresh.clear()

    def live_access_tokens(self) -> list[str]:
        return [token for token, until in self._access.items() if until > time.time()]

    # ---- lifecycle

    def start(self) -> None:
        self._serving = AppThread(_app(self), what="the fake OAuth provider")
        self.port = self._serving.start()

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()

    # ---- behaviour

    def _new(self, prefix: str) -> str:
        value = f"{prefix}-{secrets.token_urlsafe(18)}-SECRET"
        self.issued.append(value)
        return value

    def _tokens(self, scopes: list[str]) -> dict[str, object]:
        access = self._new("at")
        self._access[access] = time.time() + self.access_lifetime_s
        refresh = self._new("rt")
        self._refresh.add(refresh)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime_s,
            "refresh_token": refresh,
            "scope": " ".join(scopes),
        }

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            pair = base64.b64decode(header[6:]).decode()
            client_id, _, secret = pair.partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secret == self.client_secret


@contextlib.contextmanager
def running_provider() -> Iterator[FakeOAuthProvider]:
    provider = FakeOAuthProvider()
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _invalid(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": f"{error} (fake)"}, status)


def _app(provider: FakeOAuthProvider) -> FastAPI:
    app = FastAPI()

    @app.get("/authorize")
    async def authorize(request: Request) -> Response:
        query = dict(request.query_params)
        if query.get("response_type") != "code" or query.get("client_id") != provider.client_id:
            return JSONResponse({"error": "invalid_request"}, 400)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE"}, 400)
        redirect_uri = query["redirect_uri"]
        answer = {"state": query.get("state", "")}
        if provider.deny:
            answer["error"] = "access_denied"
        else:
            code = provider._new("code")
            provider._codes[code] = _Code(
                redirect_uri, query["code_challenge"], query.get("scope", "").split()
            )
            answer["code"] = code
        return RedirectResponse(f"{redirect_uri}?{urlencode(answer)}", 302)

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        provider.token_requests.append(form)
        if not provider._client_ok(request, form):
            return _invalid("invalid_client", 401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            found = provider._codes.get(form.get("code", ""))
            if found is None or found.used:
                return _invalid("invalid_grant")
            found.used = True  # single use, even when the rest is wrong
            if found.redirect_uri != form.get("redirect_uri"):
                return _invalid("invalid_grant")
            if challenge_of(form.get("code_verifier", "")) != found.challenge:
                return _invalid("invalid_grant")
            return JSONResponse(provider._tokens(found.scopes))
        if grant == "refresh_token":
            if provider.refresh_delay_s:
                await asyncio.sleep(provider.refresh_delay_s)
            refresh = form.get("refresh_token", "")
            if refresh not in provider._refresh:
                return _invalid("invalid_grant")
            if provider.rotate_refresh:
                provider._refresh.discard(refresh)
            provider.refreshes += 1
            return JSONResponse(provider._tokens(form.get("scope", "").split()))
        return _invalid("unsupported_grant_type")

    @app.post("/revoke")
    async def revoke(request: Request) -> Response:
        # RFC 7009: 200 for any token, known or not, once the client is authenticated.
        form = dict(parse_qsl((await request.body()).decode()))
        if not provider._client_ok(request, form):
            return _invalid("invalid_client", 401)
        provider.revocations.append(form)
        token = form.get("token", "")
        provider._access.pop(token, None)
        if token in provider._refresh:
            # Revoking the refresh token ends the grant: its access tokens go too.
            provider._refresh.discard(token)
            provider._access.clear()
        return Response(status_code=200)

    @app.get("/resource")
    async def resource(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        provider.resource_calls.append(header)
        token = header.removeprefix("Bearer ")
        if provider._access.get(token, 0) <= time.time():
            return JSONResponse({"error": f"invalid token {token}"}, 401)
        return JSONResponse({"ok": True, "seen_authorization": header})

    @app.api_route("/echo", methods=["GET", "POST"])
    async def echo(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        provider.echoed.append(headers)
        return JSONResponse(
            {"headers": headers}, headers={"x-echo-auth": headers.get("authorization", "")}
        )

    @app.get("/hop")
    async def hop(to: str) -> Response:
        return RedirectResponse(to, 302)

    return app
