"""Integrations: a user's MCP servers (a stdio command or a streamable HTTP URL).

The row's ``config`` JSON holds what may be shown: transport, command, args, URL, timeout, and
the *names* of the environment variables and headers. Their values are secrets (tokens, keys)
and live in the credential vault, in one credential per integration named
``integration:<id>`` (so key rotation re-seals them with every other credential).
:class:`IntegrationInfo` has no secret field at all; only :meth:`IntegrationRepo.mcp_server`
(for the engine and for connecting from the API, never for an answer) opens them.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.enums import IntegrationKind
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.repos.credentials import CredentialKind, CredentialRepo
from flowloom.storage.tables import Integration
from flowloom.storage.tables.base import utcnow
from flowloom.storage.vault import Vault

__all__ = [
    "MCP_KINDS",
    "IntegrationInfo",
    "IntegrationRepo",
    "IntegrationSecrets",
    "McpServerConfig",
    "secret_credential_name",
]

_PREFIX = PREFIXES["integrations"]
_NAME_MAX: Final = 200
_MAX_ARGS: Final = 100
_MAX_SECRETS: Final = 50
MCP_KINDS: Final = frozenset({IntegrationKind.MCP_STDIO.value, IntegrationKind.MCP_HTTP.value})
"""The kinds that are MCP servers."""


@dataclass(frozen=True, slots=True)
class IntegrationSecrets:
    """The secret parts of an MCP server: environment values and header values."""

    env: dict[str, str] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"IntegrationSecrets(env={sorted(self.env)!r}, headers={sorted(self.headers)!r})"


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """An MCP server as stored, its secrets opened (never put this in an answer);
    :func:`flowloom.integrations.mcp_store.mcp_server` makes the client's spec of it."""

    name: str
    transport: Literal["stdio", "http"]
    config: dict[str, Any]
    """Transport settings: ``command``, ``args``, ``cwd``, ``url``, ``timeout_s``."""
    secrets: IntegrationSecrets


@dataclass(frozen=True, slots=True)
class IntegrationInfo:
    """What may be shown about an integration: everything but its secrets."""

    id: str
    kind: str
    name: str
    config: dict[str, Any]
    """Transport settings, with ``env_names`` and ``header_names`` in place of their values."""
    enabled: bool
    created_at: datetime
    updated_at: datetime


def secret_credential_name(integration_id: str) -> str:
    """The name of the credential holding an integration's secrets."""
    return f"integration:{integration_id}"


def _info(row: Integration) -> IntegrationInfo:
    return IntegrationInfo(
        row.id, row.kind, row.name, dict(row.config), row.enabled, row.created_at, row.updated_at
    )


class IntegrationRepo:
    """One owner's integrations. Methods flush, never commit."""

    def __init__(self, session: AsyncSession, *, owner_id: str, vault: Vault) -> None:
        self._session = session
        self._owner_id = owner_id
        self._credentials = CredentialRepo(session, owner_id=owner_id, vault=vault)

    def __repr__(self) -> str:
        return f"IntegrationRepo(owner_id={self._owner_id!r})"

    async def create(
        self,
        *,
        name: str,
        kind: IntegrationKind | str,
        config: Mapping[str, Any],
        secrets: IntegrationSecrets | None = None,
        enabled: bool = True,
    ) -> IntegrationInfo:
        """A new MCP integration; Conflict when the owner already has one called ``name``."""
        checked_kind = _check_kind(kind)
        secrets = secrets or IntegrationSecrets()
        row = Integration(
            id=new_id(_PREFIX),
            user_id=self._owner_id,
            kind=checked_kind,
            name=_check_name(name),
            config=_check_config(checked_kind, config, secrets),
            enabled=enabled,
        )
        try:
            async with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what=f"integration {row.name!r}") from None
        if secrets.env or secrets.headers:
            await self._credentials.create(
                name=secret_credential_name(row.id),
                value=_seal_text(secrets),
                kind=CredentialKind.SECRET,
                provider="mcp",
            )
        return _info(row)

    async def list(
        self, *, cursor: str | None = None, limit: int = 50, kind: str | None = None
    ) -> Page[IntegrationInfo]:
        """The owner's integrations, newest first."""
        check_limit(limit)
        query = self._owned()
        after = check_cursor(cursor, prefix=_PREFIX)
        if after is not None:
            query = query.where(Integration.id < after)
        if kind is not None:
            query = query.where(Integration.kind == _check_kind(kind))
        rows = (
            await self._session.scalars(query.order_by(Integration.id.desc()).limit(limit + 1))
        ).all()
        page = page_of(rows, limit=limit)
        return Page(items=[_info(row) for row in page.items], next_cursor=page.next_cursor)

    async def get(self, *, integration_id: str) -> IntegrationInfo:
        """NotFound for another user's, a deleted or an unknown integration."""
        return _info(await self._row(integration_id))

    async def update(
        self,
        *,
        integration_id: str,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        enabled: bool | None = None,
    ) -> IntegrationInfo:
        """Change what is given. ``config`` replaces the transport settings (its kind stays);
        ``env`` and ``headers``, when given, replace the stored values wholesale."""
        row = await self._row(integration_id)
        new_name = _check_name(name) if name is not None else None
        secrets = await self._secrets(row)
        if env is not None or headers is not None:
            secrets = IntegrationSecrets(
                dict(env) if env is not None else secrets.env,
                dict(headers) if headers is not None else secrets.headers,
            )
        base = dict(row.config) if config is None else dict(config)
        row.config = _check_config(row.kind, base, secrets)
        if new_name is not None:
            row.name = new_name
        if enabled is not None:
            row.enabled = enabled
        row.updated_at = utcnow()
        try:
            async with self._session.begin_nested():
                await self._session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what=f"integration {row.name!r}") from None
        if env is not None or headers is not None:
            await self._store_secrets(row, secrets)
        return _info(row)

    async def delete(self, *, integration_id: str) -> None:
        """Soft-delete the integration and forget its secrets for good.

        The row keeps its history but frees its name (the name is unique per owner, and a
        deleted server must not block registering it again).
        """
        row = await self._row(integration_id)
        row.deleted_at = utcnow()
        row.enabled = False
        row.name = f"{row.name[:150]} (deleted {row.id})"
        await self._session.flush()
        with contextlib.suppress(NotFound):
            await self._credentials.delete(name=secret_credential_name(row.id))

    async def mcp_server_config(self, *, integration_id: str) -> McpServerConfig:
        """How to connect to the integration, secrets included (never put this in an answer).

        InputError when it is disabled or not an MCP server.
        """
        row = await self._row(integration_id)
        if row.kind not in MCP_KINDS:
            raise InputError(f"integration {row.name!r} is not an MCP server", field="server")
        if not row.enabled:
            raise InputError(f"integration {row.name!r} is disabled", field="server")
        return McpServerConfig(
            name=row.name,
            transport="stdio" if row.kind == IntegrationKind.MCP_STDIO else "http",
            config=dict(row.config),
            secrets=await self._secrets(row),
        )

    # ---- inside

    def _owned(self) -> Select[Integration]:
        # OAuth connections are integrations too, with their own repository and routes.
        return select(Integration).where(
            Integration.user_id == self._owner_id,
            Integration.kind.in_(MCP_KINDS),
            Integration.deleted_at.is_(None),
        )

    async def _row(self, integration_id: str) -> Integration:
        row = await self._session.scalar(self._owned().where(Integration.id == integration_id))
        if row is None:
            raise NotFound("integration", integration_id)
        return row

    async def _secrets(self, row: Integration) -> IntegrationSecrets:
        names = row.config.get("env_names") or row.config.get("header_names")
        if not names:
            return IntegrationSecrets()
        try:
            _, secret = await self._credentials.get_secret(name=secret_credential_name(row.id))
        except NotFound:
            raise InputError(
                f"the stored secrets of integration {row.name!r} are gone; set its env and "
                "headers again",
                field="env",
            ) from None
        data = json.loads(secret.get_secret_value())
        return IntegrationSecrets(dict(data.get("env") or {}), dict(data.get("headers") or {}))

    async def _store_secrets(self, row: Integration, secrets: IntegrationSecrets) -> None:
        name = secret_credential_name(row.id)
        if not (secrets.env or secrets.headers):
            with contextlib.suppress(NotFound):
                await self._credentials.delete(name=name)
            return
        try:
            await self._credentials.update_value(name=name, value=_seal_text(secrets))
        except NotFound:
            await self._credentials.create(
                name=name, value=_seal_text(secrets), kind=CredentialKind.SECRET, provider="mcp"
            )


def _seal_text(secrets: IntegrationSecrets) -> SecretStr:
    return SecretStr(json.dumps({"env": secrets.env, "headers": secrets.headers}))


def _check_kind(kind: IntegrationKind | str) -> str:
    value = str(kind.value if isinstance(kind, IntegrationKind) else kind)
    if value not in MCP_KINDS:
        allowed = ", ".join(sorted(MCP_KINDS))
        raise InputError(
            f"kind {value!r} is not supported here; kinds are: {allowed}", field="kind"
        )
    return value


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _NAME_MAX:
        raise InputError(f"name must be 1-{_NAME_MAX} characters", field="name")
    return name


def _check_config(
    kind: str, config: Mapping[str, Any], secrets: IntegrationSecrets
) -> dict[str, Any]:
    """The stored (public) config: transport settings plus the names of the secrets."""
    timeout_s = config.get("timeout_s", 30.0)
    if (
        not isinstance(timeout_s, int | float)
        or isinstance(timeout_s, bool)
        or not (0 < timeout_s <= 600 and math.isfinite(timeout_s))
    ):
        raise InputError("timeout_s must be a number of seconds, at most 600", field="timeout_s")
    for label, values in (("env", secrets.env), ("headers", secrets.headers)):
        if len(values) > _MAX_SECRETS:
            raise InputError(f"at most {_MAX_SECRETS} {label} entries", field=label)
        for key, value in values.items():
            if not isinstance(key, str) or not key or not isinstance(value, str):
                raise InputError(f"{label} must map names to text values", field=label)
    out: dict[str, Any] = {"timeout_s": timeout_s}
    if kind == IntegrationKind.MCP_STDIO:
        command = config.get("command")
        if not isinstance(command, str) or not command.strip():
            raise InputError("a stdio MCP server needs a command", field="command")
        args = config.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise InputError("args must be a list of strings", field="args")
        if len(args) > _MAX_ARGS:
            raise InputError(f"at most {_MAX_ARGS} args", field="args")
        cwd = config.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise InputError("cwd must be a path", field="cwd")
        if secrets.headers:
            raise InputError("a stdio MCP server takes no headers", field="headers")
        out.update(command=command.strip(), args=list(args), cwd=cwd)
    else:
        url = config.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError("an http MCP server needs an http:// or https:// url", field="url")
        if parts.username or parts.password or parts.query or parts.fragment:
            # The URL is shown back to the user; secrets belong in headers, which are sealed.
            raise InputError(
                "the url may not carry credentials, a query or a fragment: put tokens in headers",
                field="url",
            )
        if secrets.env:
            raise InputError("an http MCP server takes no env", field="env")
        out.update(url=url)
    out["env_names"] = sorted(secrets.env)
    out["header_names"] = sorted(secrets.headers)
    return out
