"""Usage: embeddings calls are of type ``embeddings`` (seed 004's word), not ``embedding``.

The rows already written are rewritten; the check on ``usage.type`` names the new value. The
downgrade turns them back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _check(embeddings: str) -> str:
    return f"type IN ('chat', 'image', '{embeddings}', 'agent', 'generation')"


def _retype(old: str, new: str) -> None:
    # The check must be gone while rows hold the new value, and back once none holds the old.
    with op.batch_alter_table("usage") as batch:
        batch.drop_constraint(op.f("ck_usage_type_valid"), type_="check")
    op.execute(
        sa.text("UPDATE usage SET type = :new WHERE type = :old").bindparams(old=old, new=new)
    )
    with op.batch_alter_table("usage") as batch:
        batch.create_check_constraint(op.f("ck_usage_type_valid"), _check(new))


def upgrade() -> None:
    _retype("embedding", "embeddings")


def downgrade() -> None:
    _retype("embeddings", "embedding")
