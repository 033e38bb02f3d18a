"""The database's own ``INSERT``, the one that has ``ON CONFLICT`` (``on_conflict_do_nothing``,
``on_conflict_do_update``): SQLite's or PostgreSQL's.

PostgreSQL's is imported when first asked for: SQLAlchemy's PostgreSQL dialect (some 40 ms and
2 MiB to import) stays out of a server on SQLite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import sqlite

__all__ = ["insert_for"]


def insert_for(dialect_name: str) -> Any:
    """``insert`` of the dialect named ``dialect_name`` (``sqlite`` or ``postgresql``)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    return sqlite.insert
