"""The engine's ``RunStore`` on SQLite and PostgreSQL (``SqlRunStore``), and its parts."""

from flowloom.engine.sql.run_store import RunQuota, SqlRunStore

__all__ = ["RunQuota", "SqlRunStore"]
