"""A workstation may have no day staff: day_start and day_end both NULL (on call 24 h).

Revision ID: 0006_workstation_no_day_staff
Revises: 0005_provisioning
Create Date: 2026-12-01 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_workstation_no_day_staff"
down_revision: str | None = "0005_provisioning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workstations", schema=None) as batch_op:
        batch_op.alter_column("day_start", existing_type=sa.Time(), nullable=True)
        batch_op.alter_column("day_end", existing_type=sa.Time(), nullable=True)


def downgrade() -> None:
    # the old schema cannot say "no day staff": such rows make the downgrade fail (NOT NULL)
    with op.batch_alter_table("workstations", schema=None) as batch_op:
        batch_op.alter_column("day_start", existing_type=sa.Time(), nullable=False)
        batch_op.alter_column("day_end", existing_type=sa.Time(), nullable=False)
