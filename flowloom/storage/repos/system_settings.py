"""Instance-wide settings: a few known, typed keys, one ``system_settings`` row each.

A key without a row has its default; writing ``None`` deletes the row, which restores the
default. Unknown keys and wrongly typed values are refused with InputError naming the key, so
the table never holds a value the code would not understand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from sqlalchemy import Connection, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.tables import Package, SystemSetting
from flowloom.storage.tables.base import utcnow

__all__ = [
    "KNOWN_SETTINGS",
    "RETENTION_SETTINGS",
    "InstanceSettings",
    "SystemSettingsRepo",
    "setting_value",
    "settings_generation",
]


@dataclass(frozen=True, slots=True)
class InstanceSettings:
    """Every instance setting, each at its stored value or its default."""

    registration_open: bool = True
    """Whether people may sign up with an email and a password. ``FLOWLOOM_ALLOW_REGISTRATION``
    set to false closes sign-up whatever this says."""
    default_package: str | None = None
    """The name of the package every user without a subscription of their own is on; None: such
    users have no limits."""
    retain_runs_days: int | None = None
    """Finished runs (with their node executions and artifacts) older than this many days are
    deleted by the daily maintenance pass; None keeps them. Unfinished runs always stay."""
    retain_node_outputs_days: int | None = None
    """The inputs and outputs of node executions of finished runs older than this are cleared
    (the rows, statuses and timings stay); None keeps them."""
    retain_usage_days: int | None = None
    """Usage rows older than this are deleted; at least 32, so this month's plan limits still
    count every call. None keeps them."""
    retain_audit_days: int | None = None
    """Audit entries older than this are deleted; None keeps them."""
    retain_generations_days: int | None = None
    """Workflow-generation history older than this is deleted; None keeps it."""
    retain_validation_days: int | None = None
    """Validation logs older than this are deleted; None keeps them."""


KNOWN_SETTINGS: Final = tuple(f.name for f in fields(InstanceSettings))
RETENTION_SETTINGS: Final = tuple(name for name in KNOWN_SETTINGS if name.startswith("retain_"))
_RETENTION_MAX_DAYS: Final = 36_500
_RETENTION_MIN_DAYS: Final = {"retain_usage_days": 32}


_generation = 0
"""Bumped whenever this process changes a setting, and again when that change commits: what
caches of a setting (``flowloom.billing.plans.DefaultPackageName``) check to drop at once."""


def settings_generation() -> int:
    """The count of setting changes made by this process so far (see ``_generation``)."""
    return _generation


def _bump(*_: Any) -> None:
    global _generation
    _generation += 1


class SystemSettingsRepo:
    """Read and change the instance settings. Methods flush, never commit."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def read(self) -> InstanceSettings:
        """The settings: stored values over the defaults (a stored value of an unknown key is
        ignored; one of the wrong type falls back to the default)."""
        rows = await self._session.execute(
            select(SystemSetting.key, SystemSetting.value).where(
                SystemSetting.key.in_(KNOWN_SETTINGS)
            )
        )
        settings = InstanceSettings()
        for key, value in rows:
            try:
                settings = replace(settings, **{key: _checked(key, value)})
            except InputError:
                continue
        return settings

    async def value(self, key: str) -> Any:
        """One setting (``read`` gives them all): its stored value, or its default when none is
        stored or the stored one is not valid. For hot paths (every run start reads the
        default package)."""
        return await self._session.run_sync(
            lambda session: setting_value(session.connection(), key)
        )

    async def update(
        self, *, changes: Mapping[str, Any], updated_by: str | None = None
    ) -> InstanceSettings:
        """Store ``changes`` (``None`` restores a key's default) and return the new settings.

        InputError naming the key for an unknown key, a value of the wrong type, or a
        ``default_package`` that names no active package.
        """
        for key, value in changes.items():
            if key not in KNOWN_SETTINGS:
                raise InputError(
                    f"unknown setting {key!r}; known: {', '.join(KNOWN_SETTINGS)}", field=key
                )
            if value is not None:
                _checked(key, value)
        if changes.get("default_package") is not None:
            # Locked, so the package cannot be renamed or deactivated until this commits.
            active = await self._session.scalar(
                select(Package.active)
                .where(Package.name == changes["default_package"])
                .with_for_update()
            )
            if not active:
                raise InputError(
                    f"default_package {changes['default_package']!r} names no active package",
                    field="default_package",
                )
        _bump()
        # Again once it commits: a cache filled meanwhile from the old value drops it then.
        event.listen(self._session.sync_session, "after_commit", _bump, once=True)
        for key, value in changes.items():
            row = await self._session.get(SystemSetting, key)
            if value is None:
                if row is not None:
                    await self._session.delete(row)
            elif row is None:
                self._session.add(SystemSetting(key=key, value=value, updated_by=updated_by))
            else:
                row.value = value
                row.updated_by = updated_by
                row.updated_at = utcnow()
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what="setting") from None
        return await self.read()


def setting_value(conn: Connection, key: str) -> Any:
    """``SystemSettingsRepo.value`` on a connection, in its transaction (a run's start)."""
    if key not in KNOWN_SETTINGS:
        raise InputError(f"unknown setting {key!r}", field=key)
    stored = conn.execute(select(SystemSetting.value).where(SystemSetting.key == key)).first()
    if stored is not None:
        try:
            return _checked(key, stored[0])
        except InputError:
            pass
    return getattr(InstanceSettings(), key)


def _checked(key: str, value: Any) -> Any:
    if key == "registration_open":
        if not isinstance(value, bool):
            raise InputError(f"registration_open must be true or false, not {value!r}", field=key)
        return value
    if key == "default_package":
        if not isinstance(value, str) or not 1 <= len(value) <= 100:
            raise InputError("default_package must be a package name (1-100 characters)", field=key)
        return value
    if key in RETENTION_SETTINGS:
        lowest = _RETENTION_MIN_DAYS.get(key, 1)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not lowest <= value <= _RETENTION_MAX_DAYS
        ):
            why = " (this month's plan limits count its usage)" if lowest > 1 else ""
            raise InputError(
                f"{key} must be a whole number of days from {lowest} to {_RETENTION_MAX_DAYS}"
                f"{why}, or null to keep everything",
                field=key,
            )
        return value
    raise InputError(f"unknown setting {key!r}", field=key)
