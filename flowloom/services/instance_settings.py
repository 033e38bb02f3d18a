"""The instance settings as administrators change them, with the audit entry of each change.

``default_package`` may only name an active package; that package's row is locked while it is
checked (see :mod:`flowloom.services.packages` for the other half of the rule).
"""

from __future__ import annotations

from typing import Any

from flowloom.services.actor import Actor
from flowloom.storage.database import Database
from flowloom.storage.repos.system_settings import InstanceSettings, SystemSettingsRepo

__all__ = ["read_instance_settings", "update_instance_settings"]


async def read_instance_settings(db: Database) -> InstanceSettings:
    async with db.read() as session:
        return await SystemSettingsRepo(session).read()


async def update_instance_settings(
    db: Database, actor: Actor, changes: dict[str, Any]
) -> InstanceSettings:
    """Store ``changes`` (``None`` restores a setting's default) and audit them together;
    InputError naming the setting for a bad value."""
    async with db.write() as session:
        current = await SystemSettingsRepo(session).update(
            changes=changes, updated_by=actor.user_id
        )
        await actor.record(
            session,
            "admin.settings.update",
            "system_settings",
            None,
            {"changed": sorted(changes), "values": changes},
        )
    return current
