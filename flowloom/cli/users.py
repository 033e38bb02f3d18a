"""``flowloom users ...``: manage accounts from the shell."""

from __future__ import annotations

from flowloom.cli.common import open_database
from flowloom.exceptions import InputError
from flowloom.passwords import hash_password
from flowloom.settings import Settings
from flowloom.storage.enums import UserRole
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.tables import User

__all__ = ["MIN_PASSWORD_LENGTH", "create_user"]

MIN_PASSWORD_LENGTH = 8


async def create_user(settings: Settings, *, email: str, password: str, admin: bool) -> User:
    """Create an account with an argon2id password hash; Conflict if the email is taken."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    password_hash = hash_password(password)
    async with open_database(settings) as db, db.write() as session:
        role = UserRole.ADMIN if admin else UserRole.USER
        return await UserRepo(session).create(email=email, password_hash=password_hash, role=role)
