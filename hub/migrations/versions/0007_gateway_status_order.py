"""Gateway status is ordered by hub receipt (``status_at``, also where a Last-Will's grace
starts), the gateway's measured clock offset is kept, and events carry ``clock_suspect``.

Revision ID: 0007_gateway_status_order
Revises: 0006_workstation_no_day_staff
Create Date: 2026-12-01 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0007_gateway_status_order"
down_revision: str | None = "0006_workstation_no_day_staff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("clock_offset_s", sa.Double(), nullable=True))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_suspect", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("clock_suspect")
    with op.batch_alter_table("gateway_state", schema=None) as batch_op:
        batch_op.drop_column("clock_offset_s")
        batch_op.drop_column("status_at")
