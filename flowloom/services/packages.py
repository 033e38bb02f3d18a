"""The instance's packages (plans) as administrators change them, and the default-package rule.

The instance setting ``default_package`` names the package of every account without a
subscription. So that it always names an active package, that package can be neither renamed,
deactivated nor deleted while it is the default (Conflict: set another default first), and the
setting may only name an active package (:mod:`flowloom.services.instance_settings`). Both
sides lock the package's row while they check, so a change of the setting and a change of the
package cannot both pass their checks at once. Each change writes its ``admin.package.*`` audit
entry in the same transaction.
"""

from __future__ import annotations

from typing import Any, Final

from flowloom.exceptions import Conflict, InputError
from flowloom.services.actor import Actor
from flowloom.storage.database import Database
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo
from flowloom.storage.repos.system_settings import SystemSettingsRepo
from flowloom.storage.tables import Package

__all__ = ["NULLABLE_PACKAGE_FIELDS", "PackageAdmin", "packages_with_subscribers"]

NULLABLE_PACKAGE_FIELDS: Final = frozenset(
    {"description", "max_runs_per_month", "max_tokens_per_month"}
)
"""The fields a change may set to null (a null limit: unlimited); null for any other is
refused."""


async def packages_with_subscribers(db: Database) -> list[tuple[Package, int]]:
    """Every package by name, inactive ones included, with its subscriptions in force."""
    async with db.read() as session:
        packages = await PackageRepo(session).list()
        counts = await SubscriptionRepo(session).counts_in_force()
    return [(package, counts.get(package.id, 0)) for package in packages]


class PackageAdmin:
    """Creates, changes and deletes packages, each change audited, as ``actor``."""

    def __init__(self, db: Database, actor: Actor) -> None:
        self._db = db
        self._actor = actor

    async def create(self, **values: Any) -> Package:
        """A new package; Conflict if the name is taken."""
        async with self._db.write() as session:
            package = await PackageRepo(session).create(**values)
            await self._actor.record(
                session, "admin.package.create", "package", package.id, _details(package)
            )
            return package

    async def update(self, *, package_id: str, changes: dict[str, Any]) -> tuple[Package, int]:
        """Set the fields in ``changes``; new limits apply to its subscribers from the next
        check on. InputError for null where a value is required; Conflict for renaming or
        deactivating the default package. The package and its subscriptions in force."""
        for field, value in changes.items():
            if value is None and field not in NULLABLE_PACKAGE_FIELDS:
                raise InputError(f"{field} cannot be null", field=field)
        async with self._db.write() as session:
            packages = PackageRepo(session)
            package = await packages.get(package_id=package_id, lock=True)
            default = (await SystemSettingsRepo(session).read()).default_package
            renamed = "name" in changes and changes["name"] != package.name
            if package.name == default and (renamed or changes.get("active") is False):
                raise Conflict(
                    f"package {package.name!r} is the instance's default_package; set another "
                    "default before renaming or deactivating it"
                )
            package = await packages.update(package_id=package_id, changes=changes)
            await self._actor.record(
                session,
                "admin.package.update",
                "package",
                package.id,
                {"changed": sorted(changes), **_details(package)},
            )
            counts = await SubscriptionRepo(session).counts_in_force(package_id=package.id)
            return package, counts.get(package.id, 0)

    async def delete(self, *, package_id: str) -> None:
        """Delete a package nobody ever subscribed to. Conflict if somebody did (deactivate it
        instead) or if it is the instance's default package."""
        async with self._db.write() as session:
            packages = PackageRepo(session)
            package = await packages.get(package_id=package_id, lock=True)
            if package.name == (await SystemSettingsRepo(session).read()).default_package:
                raise Conflict(f"package {package.name!r} is the instance's default_package")
            details = _details(package)
            await packages.delete(package_id=package_id)
            await self._actor.record(
                session, "admin.package.delete", "package", package_id, details
            )


def _details(package: Package) -> dict[str, Any]:
    # Plain names: the audit log drops keys that look like secrets ("token"), so the token
    # limit is recorded under a name of its own.
    return {
        "name": package.name,
        "price": str(package.price),
        "runs_per_month": package.max_runs_per_month,
        "tok_per_month": package.max_tokens_per_month,
        "active": package.active,
        "public": package.public,
    }
