"""Notifications carry the alarm class's priority; the outbox sends the most urgent first.

Revision ID: 0004_notification_priority
Revises: 0003_alarms
Create Date: 2026-11-28 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_notification_priority"
down_revision: str | None = "0003_alarms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="9"))
        batch_op.drop_index("ix_notifications_channel_status_next_attempt_at")
        batch_op.create_index(
            "ix_notifications_channel_status_priority_next_attempt_at",
            ["channel", "status", "priority", "next_attempt_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_channel_status_priority_next_attempt_at")
        batch_op.create_index(
            "ix_notifications_channel_status_next_attempt_at", ["channel", "status", "next_attempt_at"], unique=False
        )
        batch_op.drop_column("priority")
