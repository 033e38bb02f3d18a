"""API keys: the previous secret kept through a rotation's grace period, a per-key rate limit,
and the table that counts requests per key across server processes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from flowloom.storage.tables.base import UTCDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_keys", sa.Column("previous_secret_sha256", sa.String(length=64), nullable=True)
    )
    op.add_column("api_keys", sa.Column("previous_valid_until", UTCDateTime(), nullable=True))
    op.add_column("api_keys", sa.Column("rate_limit", sa.String(length=32), nullable=True))
    op.create_table(
        "api_key_rate_counters",
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("tat_s", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_api_key_rate_counters_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", name=op.f("pk_api_key_rate_counters")),
    )


def downgrade() -> None:
    op.drop_table("api_key_rate_counters")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rate_limit")
        batch.drop_column("previous_valid_until")
        batch.drop_column("previous_secret_sha256")
