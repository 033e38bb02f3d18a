"""Turn the database's refusals into flowloom's errors, naming what was refused."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError

from flowloom.exceptions import Conflict, InputError, NotFound

__all__ = ["translate_integrity_error"]

_UNIQUE = re.compile(r"unique|duplicate key", re.IGNORECASE)
_FOREIGN = re.compile(r"foreign key", re.IGNORECASE)
_CHECK = re.compile(r"check constraint", re.IGNORECASE)
_NOT_NULL = re.compile(r"not[ -]null", re.IGNORECASE)


def translate_integrity_error(exc: IntegrityError, *, what: str) -> Exception:
    """Conflict (duplicate), NotFound (missing referenced row) or InputError (bad value).

    ``what`` names the object being written, e.g. ``"workflow"``; the database's own message
    (which names the constraint or column) is kept after it.
    """
    detail = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
    if _UNIQUE.search(detail):
        return Conflict(f"{what} already exists: {detail}")
    if _FOREIGN.search(detail):
        return NotFound(f"{what}'s referenced object", detail)
    if _CHECK.search(detail) or _NOT_NULL.search(detail):
        return InputError(f"{what} has an invalid value: {detail}")
    return Conflict(f"{what} was refused by the database: {detail}")
