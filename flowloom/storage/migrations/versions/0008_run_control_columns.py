"""Runs: the engine's control fields as columns of their own, out of ``trigger_data``.

``use_cache`` (whether deterministic nodes may take earlier results), ``use_pinned`` (pinned
outputs stand in for their nodes), ``depth`` (how deep a sub-run nests) and ``parent_attempt``
(the parent node's attempt that started a sub-run) were
keys inside ``trigger_data``, which also holds what the trigger said. They become columns; the
rows already written are moved over in batches and the keys taken out of ``trigger_data``. The
downgrade puts them back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from flowloom.storage.tables.base import JSONType

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = ("use_cache", "use_pinned", "depth", "parent_attempt")
_BATCH = 1000

_runs = sa.table(
    "workflow_runs",
    sa.column("id", sa.String),
    sa.column("trigger_data", JSONType),
    sa.column("use_cache", sa.Boolean),
    sa.column("use_pinned", sa.Boolean),
    sa.column("depth", sa.Integer),
    sa.column("parent_attempt", sa.Integer),
)


def _batches(query: sa.Select[Any]) -> Any:
    """Rows of ``query`` (ordered by id) a batch at a time, resuming after the last id."""
    connection = op.get_bind()
    after = ""
    while True:
        rows = connection.execute(query.where(_runs.c.id > after).limit(_BATCH)).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.add_column(
            sa.Column("use_cache", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("use_pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("depth", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("parent_attempt", sa.Integer(), nullable=True))
    connection = op.get_bind()
    query = (
        sa.select(_runs.c.id, _runs.c.trigger_data)
        .where(_runs.c.trigger_data.is_not(None))
        .order_by(_runs.c.id)
    )
    for rows in _batches(query):
        for row in rows:
            data = dict(row.trigger_data or {})
            if not any(key in data for key in _KEYS):
                continue
            moved = {key: data.pop(key, None) for key in _KEYS}
            connection.execute(
                _runs.update()
                .where(_runs.c.id == row.id)
                .values(
                    trigger_data=data or None,
                    use_cache=moved["use_cache"] is not False,
                    use_pinned=moved["use_pinned"] is True,
                    depth=int(moved["depth"] or 0),
                    parent_attempt=moved["parent_attempt"],
                )
            )


def downgrade() -> None:
    connection = op.get_bind()
    query = (
        sa.select(_runs.c.id, _runs.c.trigger_data, _runs.c.use_cache, _runs.c.depth)
        .add_columns(_runs.c.parent_attempt, _runs.c.use_pinned)
        .where(
            sa.or_(
                _runs.c.use_cache.is_(sa.false()),
                _runs.c.use_pinned.is_(sa.true()),
                _runs.c.depth > 0,
                _runs.c.parent_attempt.is_not(None),
            )
        )
        .order_by(_runs.c.id)
    )
    for rows in _batches(query):
        for row in rows:
            data = dict(row.trigger_data or {})
            if not row.use_cache:
                data["use_cache"] = False
            if row.use_pinned:
                data["use_pinned"] = True
            if row.depth:
                data["depth"] = row.depth
            if row.parent_attempt is not None:
                data["parent_attempt"] = row.parent_attempt
            connection.execute(_runs.update().where(_runs.c.id == row.id).values(trigger_data=data))
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_column("parent_attempt")
        batch.drop_column("depth")
        batch.drop_column("use_pinned")
        batch.drop_column("use_cache")
