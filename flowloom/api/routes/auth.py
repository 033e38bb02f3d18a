"""Accounts: register, sign in (password or external identity), sign out, who am I, change the
password, list and end sessions."""

import asyncio
import functools
from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.api.deps import AccountOwner, AppStateDep, CurrentUser, DatabaseDep, client_ip
from flowloom.api.errors import Unauthenticated
from flowloom.api.schemas.auth import (
    ExternalLogin,
    LoginRequest,
    PasswordChange,
    SessionPublic,
    SignInOptions,
    SignInProvider,
    TokenPublic,
    UserPublic,
    UserRegister,
    user_public,
)
from flowloom.api.schemas.common import Page
from flowloom.api.security import (
    clear_session_cookies,
    csrf_token_for,
    set_session_cookies,
)
from flowloom.api.state import AppState
from flowloom.exceptions import Conflict, InputError, NotFound, PermissionDenied
from flowloom.passwords import hash_password, needs_rehash, verify_password
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.sessions import SessionRepo
from flowloom.storage.repos.system_settings import SystemSettingsRepo
from flowloom.storage.repos.users import UserRepo, normalize_email
from flowloom.storage.tables import User

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth"])


# Verified against when the account does not exist, so a wrong email costs as long as a wrong
# password and the timing does not tell which accounts exist.
@functools.cache
def _dummy_hash() -> str:
    return hash_password("flowloom-no-such-account")


_NOT_REGISTERED: Final = (
    "this email or username cannot be registered; choose others, or sign in if you already "
    "have an account"
)


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register_user(body: UserRegister, request: Request, state: AppStateDep) -> UserPublic:
    """Create an account with an email and a password (argon2id).

    An email or username already in use answers 409 with one generic message, the same for
    either, and never the database's words. Why not the answer of a fresh registration: this
    flow has no mailbox proof, it creates the account and answers it at once, so an answer
    that looked the same would have to be a made-up account. The 409 does say "taken" (it
    cannot not); so each one counts as a failure against the client address in the sign-in
    limiter, which bounds how fast one address can probe emails this way, and the password is
    hashed before the database is asked, so the timing does not differ either.
    """
    if not state.settings.allow_registration:
        raise PermissionDenied("registration is closed on this server; ask an administrator")
    address = client_ip(request)
    state.limiter.check(account=None, address=address)
    email = normalize_email(body.email)
    password_hash = await asyncio.to_thread(hash_password, body.password)
    try:
        async with state.db.write() as session:
            if not (await SystemSettingsRepo(session).read()).registration_open:
                raise PermissionDenied(
                    "registration is closed on this server; ask an administrator"
                )
            user = await UserRepo(session).create(
                email=email, password_hash=password_hash, username=body.username
            )
            await AuditRepo(session).record(
                user_id=user.id,
                action="user.register",
                object_type="user",
                object_id=user.id,
                ip=address,
                user_agent=request.headers.get("user-agent"),
            )
    except Conflict:
        state.limiter.failed(account=None, address=address)
        raise Conflict(_NOT_REGISTERED) from None
    return user_public(user)


@router.post("/login")
async def log_in(
    body: LoginRequest, request: Request, response: Response, state: AppStateDep
) -> TokenPublic:
    """Sign in with email and password: a session token, and the same session as a cookie.

    Failed sign-ins slow down further attempts on the same account from the same client
    address (the first few are free, then the waits double), and too many from one address
    refuse it for a while; either way 429 with Retry-After, whatever the password. Failures
    from other addresses do not slow the owner down from an address the account signed in
    from before (see ``LoginLimiter``), so nobody can lock an account's owner out.
    """
    account = body.email.strip().lower()
    address = client_ip(request)
    trusted = False
    if state.limiter.account_slowed(account=account):
        # Only while many addresses fail on this account is the owner's usual address looked up.
        async with state.db.read() as session:
            trusted = await UserRepo(session).has_signed_in_from(email=account, ip=address)
    state.limiter.check(account=account, address=address, trusted=trusted)
    if state.first_password is not None:
        await state.first_password.stored()
    async with state.db.read() as session:
        try:
            user: User | None = await UserRepo(session).get_by_email(email=account)
        except NotFound:
            user = None
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    ok = await asyncio.to_thread(verify_password, stored, body.password)
    if user is None or not user.password_hash or not ok or not user.is_active:
        state.limiter.failed(account=account, address=address, trusted=trusted)
        if user is not None:
            async with state.db.write() as session:
                await AuditRepo(session).record(
                    user_id=user.id,
                    action="auth.login_failed",
                    object_type="user",
                    object_id=user.id,
                    ip=address,
                    user_agent=request.headers.get("user-agent"),
                )
        raise Unauthenticated("wrong email or password")
    state.limiter.succeeded(account=account, address=address)
    new_hash = None
    if needs_rehash(user.password_hash):
        new_hash = await asyncio.to_thread(hash_password, body.password)
    return await _open_session(
        state, request, response, user_id=user.id, method="password", new_hash=new_hash
    )


@router.get("/providers")
async def read_sign_in_options(state: AppStateDep) -> SignInOptions:
    """How one may sign in here (asked before signing in: no credentials needed)."""
    settings = state.settings
    async with state.db.read() as session:
        open_ = (await SystemSettingsRepo(session).read()).registration_open
    external = None
    if settings.external_auth_sign_in_url and state.verifier.enabled:
        external = SignInProvider(
            provider=settings.external_auth_provider,
            sign_in_url=settings.external_auth_sign_in_url,
        )
    return SignInOptions(
        password=True,
        registration_open=settings.allow_registration and open_,
        external=external,
    )


@router.post("/external")
async def log_in_with_external_identity(
    body: ExternalLogin, request: Request, response: Response, state: AppStateDep
) -> TokenPublic:
    """Sign in with a JWT from the configured identity provider.

    The account is found by (provider, subject), or created with the token's email the first
    time, unless registration is closed (403; accounts already linked still sign in). If that
    email already belongs to an account not linked to this identity: 409 saying so, unless the
    request also carries that account's ``password``, which links the two (401 if it is wrong).
    """
    identity = await state.verifier.verify(body.token)
    if state.first_password is not None and body.password is not None:
        await state.first_password.stored()
    async with state.db.write() as session:
        users = UserRepo(session)
        known = await users.find_by_identity(provider=identity.provider, subject=identity.subject)
        if known is None and not (
            state.settings.allow_registration
            and (await SystemSettingsRepo(session).read()).registration_open
        ):
            raise PermissionDenied("registration is closed on this server; ask an administrator")
        try:
            user = await users.find_or_create_by_identity(
                provider=identity.provider, subject=identity.subject, email=identity.email
            )
        except Conflict:
            if body.password is None:
                raise Conflict(
                    f"an account with the email {identity.email} already exists; to link this "
                    f"{identity.provider} sign-in to it, send that account's password with "
                    "the token (the account must prove it is yours)"
                ) from None
            user = await _link_with_password(
                session, identity.provider, identity.subject, identity.email, body.password
            )
            await AuditRepo(session).record(
                user_id=user.id,
                action="auth.identity_linked",
                object_type="user",
                object_id=user.id,
                ip=client_ip(request),
                user_agent=request.headers.get("user-agent"),
                details={"provider": identity.provider},
            )
        if not user.is_active:
            raise Unauthenticated("this account is disabled")
        user_id = user.id
    return await _open_session(
        state, request, response, user_id=user_id, method=f"external:{identity.provider}"
    )


async def _link_with_password(
    session: AsyncSession, provider: str, subject: str, email: str, password: str
) -> User:
    """The account holding ``email``, linked to the identity, if ``password`` is its password;
    Unauthenticated otherwise (no hint which of the two was wrong)."""
    try:
        user: User | None = await UserRepo(session).get_by_email(email=email)
    except NotFound:
        user = None
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    ok = await asyncio.to_thread(verify_password, stored, password)
    if user is None or not user.password_hash or not ok:
        raise Unauthenticated("the password does not match the account with this email")
    await UserRepo(session).link_identity(
        user_id=user.id, provider=provider, subject=subject, email=email
    )
    return user


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def log_out(
    caller: CurrentUser, request: Request, response: Response, db: DatabaseDep
) -> None:
    """End the session this request was made with (API keys are revoked, not signed out)."""
    if caller.session_id is not None:
        async with db.write() as session:
            await SessionRepo(session, owner_id=caller.user_id).revoke(session_id=caller.session_id)
            await AuditRepo(session).record(
                user_id=caller.user_id,
                action="auth.logout",
                object_type="session",
                object_id=caller.session_id,
                ip=client_ip(request),
                user_agent=request.headers.get("user-agent"),
            )
    clear_session_cookies(response)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChange, caller: CurrentUser, request: Request, state: AppStateDep
) -> None:
    """Change the password, proving the current one; every other session is signed out.

    A wrong current password counts as a failed sign-in (and is rate-limited like one). An
    account that signs in only through an identity provider has no password to change (403).
    """
    if caller.api_key_id is not None:
        raise PermissionDenied("change the password from a signed-in session, not an API key")
    address = client_ip(request)
    async with state.db.read() as session:
        user = await UserRepo(session).get(user_id=caller.user_id)
    account = user.email
    # The caller holds a session of the account: the owner, as far as the limiter is concerned.
    state.limiter.check(account=account, address=address, trusted=True)
    if not user.password_hash:
        raise PermissionDenied("this account signs in through an identity provider only")
    if not await asyncio.to_thread(verify_password, user.password_hash, body.current_password):
        state.limiter.failed(account=account, address=address, trusted=True)
        raise Unauthenticated("the current password is wrong")
    if body.new_password == body.current_password:
        raise InputError("the new password is the current one", field="new_password")
    new_hash = await asyncio.to_thread(hash_password, body.new_password)
    async with state.db.write() as session:
        await UserRepo(session).set_password_hash(user_id=caller.user_id, password_hash=new_hash)
        ended = await SessionRepo(session, owner_id=caller.user_id).revoke_all(
            except_id=caller.session_id
        )
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="auth.password_changed",
            object_type="user",
            object_id=caller.user_id,
            ip=address,
            user_agent=request.headers.get("user-agent"),
            details={"sessions_ended": ended},
        )


@router.get("/sessions")
async def list_sessions(
    caller: AccountOwner,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[SessionPublic]:
    """The caller's live sessions (browsers and programs signed in), newest first."""
    async with db.read() as session:
        page = await SessionRepo(session, owner_id=caller.user_id).list(cursor=cursor, limit=limit)
        items = [
            SessionPublic(
                id=row.id,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                expires_at=row.expires_at,
                ip=row.ip,
                user_agent=row.user_agent,
                method=row.method,
                current=row.id == caller.session_id,
            )
            for row in page.items
        ]
    return Page(items=items, next_cursor=page.next_cursor)


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def end_session(
    session_id: str, caller: AccountOwner, request: Request, db: DatabaseDep
) -> None:
    """Sign one of the caller's sessions out (a lost laptop, say)."""
    async with db.write() as session:
        await SessionRepo(session, owner_id=caller.user_id).revoke(session_id=session_id)
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="auth.session_ended",
            object_type="session",
            object_id=session_id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )


@router.get("/me")
async def read_signed_in_user(caller: CurrentUser, db: DatabaseDep) -> UserPublic:
    """The account this request is made as."""
    async with db.read() as session:
        user = await UserRepo(session).get(user_id=caller.user_id)
    return user_public(user)


async def _open_session(
    state: AppState,
    request: Request,
    response: Response,
    *,
    user_id: str,
    method: str,
    new_hash: str | None = None,
) -> TokenPublic:
    ttl = timedelta(seconds=state.settings.session_ttl_s)
    address = client_ip(request)
    agent = request.headers.get("user-agent")
    async with state.db.write() as session:
        users = UserRepo(session)
        if new_hash is not None:
            await users.set_password_hash(user_id=user_id, password_hash=new_hash)
        user = await users.touch_login(user_id=user_id)
        row, token = await SessionRepo(session, owner_id=user_id).open(
            ttl=ttl, user_agent=agent, ip=address, method=method
        )
        await AuditRepo(session).record(
            user_id=user_id,
            action="auth.login",
            object_type="session",
            object_id=row.id,
            ip=address,
            user_agent=agent,
            details={"method": method},
        )
    csrf = csrf_token_for(state.secret_key, token)
    set_session_cookies(
        response,
        request,
        token=token,
        csrf_token=csrf,
        max_age_s=state.settings.session_ttl_s,
        secure=state.settings.cookie_secure,
    )
    return TokenPublic(
        access_token=token, expires_at=row.expires_at, csrf_token=csrf, user=user_public(user)
    )
