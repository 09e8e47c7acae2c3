"""Resources API: a home's floor and door, and the commands sent to gateways with their
answers (``gateway_commands``).

Revision ID: 0013_resources
Revises: 0011_webhook_format
Create Date: 2026-12-01 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_resources"
down_revision: str | None = "0011_webhook_format"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("homes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("floor", sa.String(16), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("door", sa.String(32), nullable=False, server_default=""))
    op.create_table(
        "gateway_commands",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_commands")),
    )
    op.create_index(
        "ix_gateway_commands_gateway_id_issued_at",
        "gateway_commands",
        ["gateway_id", "issued_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_gateway_commands_gateway_id_issued_at", table_name="gateway_commands")
    op.drop_table("gateway_commands")
    with op.batch_alter_table("homes", schema=None) as batch_op:
        batch_op.drop_column("door")
        batch_op.drop_column("floor")
