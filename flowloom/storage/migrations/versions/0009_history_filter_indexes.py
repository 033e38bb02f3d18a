"""Indexes for a run history filtered by status or by trigger.

A history page walks an owner's (or a workflow's) runs newest first and stops after a page. With
a status or trigger filter, that walk stepped over every run that did not match: a status none
of an owner's 20,000 runs has took 52 ms on PostgreSQL. ``(owner or workflow, status or trigger,
id)`` lets the walk read only the runs that match.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES: tuple[tuple[str, str], ...] = (
    ("user_id", "status"),
    ("workflow_id", "status"),
    ("user_id", "trigger_kind"),
    ("workflow_id", "trigger_kind"),
)


def upgrade() -> None:
    for scope, column in _INDEXES:
        op.create_index(
            op.f(f"ix_workflow_runs_{scope}_{column}_id"),
            "workflow_runs",
            [scope, column, "id"],
            unique=False,
        )


def downgrade() -> None:
    for scope, column in reversed(_INDEXES):
        op.drop_index(op.f(f"ix_workflow_runs_{scope}_{column}_id"), table_name="workflow_runs")
