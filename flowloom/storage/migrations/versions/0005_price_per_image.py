"""AI models: a price per image made (image models that are not priced by their tokens).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from flowloom.storage.tables.base import Money

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_models") as batch:
        batch.add_column(sa.Column("price_per_image", Money(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ai_models") as batch:
        batch.drop_column("price_per_image")
