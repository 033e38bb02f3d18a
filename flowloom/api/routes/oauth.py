"""OAuth 2 connections: register a client, authorize it (authorization code with PKCE), and let
``http.request`` use it by id (``"auth": {"oauth": "intg_..."}``).

1. ``POST /oauth/connections`` registers the client: id, secret (sealed, never shown again),
   authorization and token endpoints (https unless the instance allows private targets),
   scopes and extra authorization parameters.
2. ``POST /oauth/connections/{id}/authorize`` answers the provider's ``authorization_url``
   with a fresh ``state`` and an S256 ``code_challenge``; the verifier stays here, for ten
   minutes and one use.
3. The provider sends the user's browser to ``GET /oauth/callback?code=&state=``, signed in
   as the user who started it (the session cookie is SameSite=Lax, so it comes along): the code
   is exchanged with the verifier, the tokens are sealed, and a browser is sent back to the
   Account page (``/account?oauth=connected&connection=ID``, or ``oauth=error&message=...``
   when it did not work); anything else gets the connection as JSON (or a problem).
4. ``DELETE /oauth/connections/{id}`` revokes the tokens at the provider (RFC 7009) when the
   connection names a ``revocation_url``, then forgets them; the answer says whether they were.

Answers never carry the client secret or a token; the callback's ``state`` finds only the
caller's own authorizations.
"""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.api.deps import (
    DatabaseDep,
    SettingsDep,
    WorkflowReader,
    WorkflowWriter,
    client_ip,
)
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.oauth import (
    AuthorizationStart,
    OAuthConnectionCreate,
    OAuthConnectionPublic,
    OAuthDisconnected,
    OAuthTokenPublic,
)
from flowloom.exceptions import InputError, NotFound
from flowloom.integrations.oauth import (
    OAuthClient,
    OAuthError,
    TokenSet,
    authorization_url,
    check_endpoint,
    exchange_code,
    new_pkce,
    new_state,
    revoke_token,
)
from flowloom.integrations.oauth_repo import OAuthConnectionInfo, OAuthRepo
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.tables.base import utcnow
from flowloom.storage.vault import Vault

__all__ = ["router"]

router = APIRouter(prefix="/oauth", tags=["oauth"])

UI_RETURN = "/account"
"""Where a browser goes once an authorization ends, with ``oauth=connected&connection=ID`` or
``oauth=error&message=...`` in the query."""


def _public(info: OAuthConnectionInfo) -> OAuthConnectionPublic:
    token = info.token
    return OAuthConnectionPublic(
        id=info.id,
        name=info.name,
        provider=info.provider,
        client_id=info.client_id,
        authorization_url=info.authorization_url,
        token_url=info.token_url,
        scopes=info.scopes,
        extra_params=info.extra_params,
        token_auth_method=info.token_auth_method,
        redirect_uri=info.redirect_uri,
        revocation_url=info.revocation_url,
        has_client_secret=info.has_client_secret,
        connected=token is not None,
        token=(
            OAuthTokenPublic(
                token_type=token.token_type,
                scopes=token.scopes,
                expires_at=token.expires_at,
                connected_at=token.connected_at,
            )
            if token is not None
            else None
        ),
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


def _repo(session: AsyncSession, caller_id: str, settings: Settings) -> OAuthRepo:
    return OAuthRepo(session, owner_id=caller_id, vault=Vault.from_settings(settings))


async def _audit(
    db: Database, request: Request, user_id: str, action: str, info: OAuthConnectionInfo
) -> None:
    async with db.write() as session:
        await AuditRepo(session).record(
            user_id=user_id,
            action=action,
            object_type="integration",
            object_id=info.id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": info.name, "kind": "oauth2", "provider": info.provider},
        )


@router.post("/connections", status_code=status.HTTP_201_CREATED)
async def create_oauth_connection(
    body: OAuthConnectionCreate,
    caller: WorkflowWriter,
    request: Request,
    response: Response,
    db: DatabaseDep,
    settings: SettingsDep,
) -> OAuthConnectionPublic:
    """Register an OAuth 2 client (422 for plain-http endpoints unless private targets are
    allowed; 409 when the name is taken by another integration)."""
    async with db.write() as session:
        info = await _repo(session, caller.user_id, settings).create(
            name=body.name,
            provider=body.provider,
            client_id=body.client_id,
            client_secret=body.client_secret,
            authorization_url=body.authorization_url,
            token_url=body.token_url,
            scopes=body.scopes,
            extra_params=body.extra_params,
            token_auth_method=body.token_auth_method,
            redirect_uri=body.redirect_uri,
            revocation_url=body.revocation_url,
            allow_plain_http=settings.allow_private_http,
        )
    await _audit(db, request, caller.user_id, "oauth.create", info)
    response.headers["Location"] = f"/api/v1/oauth/connections/{info.id}"
    return _public(info)


@router.get("/connections")
async def list_oauth_connections(
    caller: WorkflowReader,
    db: DatabaseDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[OAuthConnectionPublic]:
    """The caller's OAuth connections, newest first (secrets and tokens never included)."""
    async with db.read() as session:
        page = await _repo(session, caller.user_id, settings).list(cursor=cursor, limit=limit)
    return Page(items=[_public(info) for info in page.items], next_cursor=page.next_cursor)


@router.get("/connections/{connection_id}")
async def read_oauth_connection(
    connection_id: str, caller: WorkflowReader, db: DatabaseDep, settings: SettingsDep
) -> OAuthConnectionPublic:
    async with db.read() as session:
        info = await _repo(session, caller.user_id, settings).get(connection_id=connection_id)
    return _public(info)


@router.delete("/connections/{connection_id}")
async def delete_oauth_connection(
    connection_id: str,
    caller: WorkflowWriter,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
) -> OAuthDisconnected:
    """Disconnect: revoke the tokens at the provider where it supports revocation (the refresh
    token first, which ends the whole grant, then the access token), then delete the
    connection and forget its client secret and tokens (nodes naming it then fail saying so).
    """
    async with db.read() as session:
        repo = _repo(session, caller.user_id, settings)
        info = await repo.get(connection_id=connection_id)
        tokens = await repo.tokens(connection_id=connection_id)
        try:
            client: OAuthClient | None = await repo.client(connection_id=connection_id)
        except InputError:
            client = None  # its client secret is gone: it cannot authenticate to revoke
    outcome = await _revoke(client, tokens, settings)
    async with db.write() as session:
        await _repo(session, caller.user_id, settings).delete(connection_id=connection_id)
    await _audit(db, request, caller.user_id, f"oauth.delete.{outcome.revocation}"[:64], info)
    return outcome.model_copy(update={"id": info.id})


async def _revoke(
    client: OAuthClient | None, tokens: TokenSet | None, settings: Settings
) -> OAuthDisconnected:
    if tokens is None:
        return OAuthDisconnected(id="", revoked=False, revocation="no_tokens")
    if client is None:
        detail = "the client secret is gone, so the provider cannot be asked"
        return OAuthDisconnected(id="", revoked=False, revocation="failed", detail=detail)
    if client.revocation_url is None:
        return OAuthDisconnected(id="", revoked=False, revocation="not_supported")
    try:
        if tokens.refresh_token:
            await revoke_token(
                client,
                token=tokens.refresh_token,
                token_type_hint="refresh_token",
                allow_private_http=settings.allow_private_http,
            )
        await revoke_token(
            client,
            token=tokens.access_token,
            token_type_hint="access_token",
            allow_private_http=settings.allow_private_http,
        )
    except OAuthError as exc:
        return OAuthDisconnected(id="", revoked=False, revocation="failed", detail=str(exc))
    return OAuthDisconnected(id="", revoked=True, revocation="revoked")


@router.post("/connections/{connection_id}/authorize")
async def authorize_oauth_connection(
    connection_id: str,
    caller: WorkflowWriter,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
) -> AuthorizationStart:
    """Start the authorization: the provider's URL, with a fresh ``state`` and PKCE challenge.

    The state and verifier are kept here for ten minutes and one use.
    """
    state = new_state()
    verifier, challenge = new_pkce()
    async with db.write() as session:
        repo = _repo(session, caller.user_id, settings)
        info = await repo.get(connection_id=connection_id)
        client = await repo.client(connection_id=connection_id)
        check_endpoint(
            client.authorization_url,
            field_name="authorization_url",
            allow_plain_http=settings.allow_private_http,
        )
        redirect_uri = info.redirect_uri or str(request.url_for("oauth_callback"))
        expires_at = await repo.start_authorization(
            connection_id=connection_id,
            state=state,
            code_verifier=verifier,
            redirect_uri=redirect_uri,
        )
    url = authorization_url(
        client, redirect_uri=redirect_uri, state=state, code_challenge=challenge
    )
    return AuthorizationStart(authorization_url=url, expires_at=expires_at)


@router.get(
    "/callback",
    name="oauth_callback",
    response_model=OAuthConnectionPublic,
    responses={303: {"description": "a browser is sent back to the UI's Account page"}},
)
async def oauth_callback(
    caller: WorkflowWriter,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    state: Annotated[str, Query(min_length=1, max_length=2000)],
    code: Annotated[str | None, Query(min_length=1, max_length=4000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Where the provider sends the user back: exchange ``code`` for tokens and keep them.

    422 for an unknown, used or expired ``state`` (it is single use) or a missing ``code``;
    400 when the provider reports an error (the user declined); 502 when the token endpoint
    refuses the code or cannot be reached. A browser (``Accept: text/html``) is redirected to
    the UI; other callers get the connection.
    """
    browser = "text/html" in request.headers.get("accept", "")
    try:
        info = await _finish_authorization(
            db,
            settings,
            caller.user_id,
            state=state,
            code=code,
            error=error,
            error_description=error_description,
        )
    except (HTTPException, InputError, NotFound) as exc:
        if not browser:
            raise
        message = exc.detail if isinstance(exc, HTTPException) else str(exc)
        query = urlencode({"oauth": "error", "message": str(message)[:300]})
        return RedirectResponse(f"{UI_RETURN}?{query}", status.HTTP_303_SEE_OTHER)
    await _audit(db, request, caller.user_id, "oauth.connected", info)
    if browser:
        query = urlencode({"oauth": "connected", "connection": info.id})
        return RedirectResponse(f"{UI_RETURN}?{query}", status.HTTP_303_SEE_OTHER)
    return JSONResponse(jsonable_encoder(_public(info)))


async def _finish_authorization(
    db: Database,
    settings: Settings,
    user_id: str,
    *,
    state: str,
    code: str | None,
    error: str | None,
    error_description: str | None,
) -> OAuthConnectionInfo:
    async with db.write() as session:
        pending = await _repo(session, user_id, settings).consume_authorization(state=state)
    if error is not None:
        said = error + (f" ({error_description})" if error_description else "")
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=f"the provider did not authorize: {said}"
        )
    if code is None:
        raise InputError("the provider sent no code", field="code")
    async with db.write() as session:
        client = await _repo(session, user_id, settings).client(connection_id=pending.connection_id)
    try:
        tokens = await exchange_code(
            client,
            code=code,
            redirect_uri=pending.redirect_uri,
            code_verifier=pending.code_verifier,
            now=utcnow(),
            allow_private_http=settings.allow_private_http,
        )
    except OAuthError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from None
    async with db.write() as session:
        return await _repo(session, user_id, settings).store_tokens(
            connection_id=pending.connection_id, tokens=tokens
        )
