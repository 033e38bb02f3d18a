"""Password hashing with argon2id (argon2-cffi's defaults, which follow RFC 9106).

Hashing is deliberately slow (tens of milliseconds of CPU). Async callers on a hot path should run
these functions in a thread (``await asyncio.to_thread(verify_password, stored, given)``) so the
event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "needs_rehash", "verify_password"]

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` in PHC string form, with its own random salt.

    Hashing the same password twice gives two different strings; both verify.
    """
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches ``password_hash``.

    False on a wrong password and also on a stored value that is not an argon2 hash at all, so a
    corrupt or foreign row can never let anybody in and never raises at sign-in.
    """
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True if ``password_hash`` was made with weaker parameters than the current defaults.

    Call after a successful ``verify_password`` and, if True, store ``hash_password(password)``
    so accounts move to stronger settings as their owners sign in.
    """
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
