"""Indexes on the four foreign keys that had none, so that deleting the row they point to
(a user, an API key, a workflow) finds the rows that refer to it without a table scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES: tuple[tuple[str, str], ...] = (
    ("workflow_runs", "api_key_id"),
    ("ai_generation_history", "workflow_id"),
    ("workflow_versions", "created_by"),
    ("system_settings", "updated_by"),
)


def upgrade() -> None:
    for table, column in _INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade() -> None:
    for table, column in reversed(_INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
