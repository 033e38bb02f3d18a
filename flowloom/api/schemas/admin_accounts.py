"""Administration of accounts: deleting one, and usage per account and per day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flowloom.api.schemas.common import ApiModel


class UserDeleted(ApiModel):
    user_id: str
    email: str
    runs_cancelled: int
    """Runs still going when the account was deleted, cancelled first."""
    deleted: dict[str, int]
    """Rows deleted per table (the account's own row, with its small tables, as ``users``)."""


class UserUsage(ApiModel):
    user_id: str
    email: str | None
    """Null for an account since deleted."""
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal


class DayUsage(ApiModel):
    day: date
    """A UTC day."""
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal
