"""The dependencies routes ask for, as ``Annotated`` aliases: who is calling, and what they hold.

``CurrentUser`` is the caller: a browser session (cookie, CSRF-checked on unsafe methods), a
program with a session token, or a program with an API key (``flk_...``), each as
``Authorization: Bearer``. A session may do anything its account may; an API key only what
its scopes allow, so routes ask for the scope they need with one of the scoped aliases::

    async def read_run(run_id: str, caller: WorkflowReader, db: DatabaseDep) -> RunDetail:

``admin`` scope includes every other scope.

``RunStarter`` (the start of a run, and nothing else) may take an API key read valid in the
last few seconds unread (``api_keys.SeenKeys``): its caller carries a ``key_guard`` that the
run's start must pass to the engine, whose statement checks the key again; a start that is
refused, or fails, reads the key again before answering (``recheck_key``).

This module's annotations are evaluated as it is defined (no ``from __future__ import
annotations``): FastAPI reads each dependency's signature again for every route that uses it,
evaluating string annotations each time (``_state`` some 365 times as the app is built, 40-50 ms
of a server's start in all); objects need no evaluating.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from sqlalchemy import select

from flowloom.api.audit_trail import CALLER_STATE_KEY
from flowloom.api.errors import Unauthenticated
from flowloom.api.rate_limits import check_api_key_rate, meter_for
from flowloom.api.security import CSRF_HEADER, SESSION_COOKIE, UNSAFE_METHODS, csrf_matches
from flowloom.api.state import AppState
from flowloom.engine import Engine
from flowloom.exceptions import PermissionDenied
from flowloom.nodes.registry import NodeRegistry
from flowloom.services.actor import Actor
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import ApiScope, UserRole
from flowloom.storage.repos.api_keys import (
    KEY_MARKER,
    KeyGuard,
    KeyMatch,
    authenticate_api_key,
    seen_keys,
)
from flowloom.storage.repos.sessions import TOUCH_INTERVAL, SessionRepo, authenticate_session
from flowloom.storage.tables import User
from flowloom.storage.tables.base import utcnow

__all__ = [
    "AccountOwner",
    "AppStateDep",
    "Caller",
    "CurrentUser",
    "DatabaseDep",
    "EngineDep",
    "InstanceAdmin",
    "RegistryDep",
    "RunExecutor",
    "RunStarter",
    "SettingsDep",
    "WorkflowReader",
    "WorkflowWriter",
    "actor",
    "app_state",
    "client_ip",
    "recheck_key",
]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling and with what: the account, and the session or API key used."""

    user_id: str
    via: Literal["cookie", "session", "api_key"]
    session_id: str | None = None
    api_key_id: str | None = None
    scopes: frozenset[str] | None = None
    """An API key's scopes; None for sessions, which may do whatever the account may."""
    key_guard: KeyGuard | None = None
    """Set when the API key was not read by this request (``RunStarter`` only): the run's
    start must carry it (``Engine.start_run(guard=...)``)."""

    def allows(self, scope: ApiScope) -> bool:
        return self.scopes is None or scope.value in self.scopes or ApiScope.ADMIN in self.scopes


def app_state(request: Request) -> AppState:
    """The app's state, for a route that reads it without a dependency (the webhook's)."""
    state = request.app.state.flowloom
    assert isinstance(state, AppState)
    return state


async def _state(request: Request) -> AppState:
    return app_state(request)


AppStateDep = Annotated[AppState, Depends(_state)]


async def _db(state: AppStateDep) -> Database:
    return state.db


async def _settings(state: AppStateDep) -> Settings:
    return state.settings


async def _engine(state: AppStateDep) -> Engine:
    return state.require_engine()


async def _registry(state: AppStateDep) -> NodeRegistry:
    return state.registry


DatabaseDep = Annotated[Database, Depends(_db)]
SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
RegistryDep = Annotated[NodeRegistry, Depends(_registry)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def actor(caller: Caller, request: Request) -> Actor:
    """The caller as the author of a change: its audit entry records where it came from."""
    return Actor(caller.user_id, client_ip(request), request.headers.get("user-agent"))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


_KEY_REFUSED = "the API key is not valid (unknown, revoked or expired)"


async def _by_api_key(state: AppState, plaintext: str, *, seen: bool = False) -> Caller:
    """The caller of an API key (``seen``: or a key read valid lately, guarded)."""
    guard = None
    if seen:
        found = await seen_keys(state.db).authenticate(state.db, plaintext=plaintext)
        if isinstance(found, KeyGuard):
            guard, found = found, found.match
        key: KeyMatch | None = found
    else:
        key = await authenticate_api_key(state.db, plaintext=plaintext)
    if key is None:
        raise Unauthenticated(_KEY_REFUSED)
    await check_api_key_rate(
        meter_for(state.db, state.settings),
        key_id=key.id,
        key_rate=key.rate_limit,
        default_rate=state.settings.api_key_rate_limit,
    )
    return _key_caller(key, guard)


def _key_caller(key: KeyMatch, guard: KeyGuard | None = None) -> Caller:
    return Caller(
        user_id=key.user_id,
        via="api_key",
        api_key_id=key.id,
        scopes=frozenset(key.scopes),
        key_guard=guard,
    )


async def recheck_key(caller: Caller, scope: ApiScope) -> Caller:
    """The caller with its API key read now (a start its ``key_guard`` was refused, or that
    failed): Unauthenticated when the key is no longer valid, PermissionDenied when it lacks
    ``scope`` now. The key is read again by the next request that uses it, too."""
    guard = caller.key_guard
    if guard is None:
        return caller
    key = await guard.recheck()
    if key is None:
        raise Unauthenticated(_KEY_REFUSED)
    checked = _key_caller(key)
    _require(checked, scope)
    return checked


async def _by_session(db: Database, token: str, via: Literal["cookie", "session"]) -> Caller:
    now = utcnow()
    found = await authenticate_session(db, token=token, now=now)
    if found is None:
        raise Unauthenticated("the session is not valid (signed out or expired)")
    if found.last_seen_at <= now - TOUCH_INTERVAL:
        async with db.write() as session:
            await SessionRepo(session, owner_id=found.user_id).touch(session_id=found.id, now=now)
    return Caller(user_id=found.user_id, via=via, session_id=found.id)


async def current_caller(request: Request, state: AppStateDep) -> Caller:
    """The caller, or Unauthenticated; PermissionDenied for a cookie request without CSRF.
    Left in the request state for the audit trail."""
    caller = await _identify(request, state)
    setattr(request.state, CALLER_STATE_KEY, caller)
    return caller


async def _identify(request: Request, state: AppState, *, seen: bool = False) -> Caller:
    token = _bearer(request)
    if token is not None:
        if token.startswith(f"{KEY_MARKER}_"):
            return await _by_api_key(state, token, seen=seen)
        return await _by_session(state.db, token, "session")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated("sign in, or send 'Authorization: Bearer <session token or key>'")
    caller = await _by_session(state.db, cookie, "cookie")
    if request.method in UNSAFE_METHODS and not csrf_matches(
        state.secret_key, cookie, request.headers.get(CSRF_HEADER)
    ):
        raise PermissionDenied(
            f"missing or wrong {CSRF_HEADER} header: send the value of the flowloom_csrf cookie"
        )
    return caller


CurrentUser = Annotated[Caller, Depends(current_caller)]


def _require(caller: Caller, scope: ApiScope) -> None:
    if not caller.allows(scope):
        raise PermissionDenied(f"this API key lacks the {scope.value!r} scope")


def require_scope(scope: ApiScope) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets the caller through only if it holds ``scope``."""

    async def dependency(caller: CurrentUser) -> Caller:
        _require(caller, scope)
        return caller

    dependency.__name__ = f"require_{scope.name.lower()}"
    return dependency


WorkflowReader = Annotated[Caller, Depends(require_scope(ApiScope.WORKFLOWS_READ))]
"""May read workflows, versions, runs and node types."""
WorkflowWriter = Annotated[Caller, Depends(require_scope(ApiScope.WORKFLOWS_WRITE))]
"""May create, change, import and delete workflows."""
RunExecutor = Annotated[Caller, Depends(require_scope(ApiScope.RUNS_EXECUTE))]
"""May start, cancel and answer runs."""
AccountOwner = Annotated[Caller, Depends(require_scope(ApiScope.ADMIN))]
"""May manage the account itself: API keys, settings, the audit log (sessions always may)."""


async def run_starter(request: Request, state: AppStateDep) -> Caller:
    """``RunExecutor`` for the start of a run: an API key read valid lately comes unread, with
    the ``key_guard`` the start must carry (see the module)."""
    caller = await _identify(request, state, seen=True)
    setattr(request.state, CALLER_STATE_KEY, caller)
    _require(caller, ApiScope.RUNS_EXECUTE)
    return caller


RunStarter = Annotated[Caller, Depends(run_starter)]
"""May start runs; its ``key_guard``, when set, goes to ``Engine.start_run`` (``start_as``)."""


async def require_instance_admin(caller: AccountOwner, db: DatabaseDep) -> Caller:
    """The caller if its account has the admin role (an API key also needs the admin scope)."""
    async with db.read() as session:
        role = await session.scalar(
            select(User.role).where(User.id == caller.user_id, User.is_active.is_(True))
        )
    if role != UserRole.ADMIN:
        raise PermissionDenied("only an administrator of this instance may do this")
    return caller


InstanceAdmin = Annotated[Caller, Depends(require_instance_admin)]
"""An administrator of the instance (``users.role`` admin), not merely of their own account."""
