"""A webhook subscription chooses its format: ``json`` (the alarm event, as before) or
``cap`` (life-safety alarms as OASIS CAP 1.2 XML).

Revision ID: 0011_webhook_format
Revises: 0010_event_seq
Create Date: 2026-12-01 06:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_webhook_format"
down_revision: str | None = "0010_event_seq"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("format", sa.String(8), nullable=False, server_default="json"))


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("format")
