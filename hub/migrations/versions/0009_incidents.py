"""Mass-event incidents (storms of one area) and their member alarms.

Revision ID: 0009_incidents
Revises: 0008_sealed_secrets
Create Date: 2026-12-01 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_incidents"
down_revision: str | None = "0008_sealed_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("area", sa.String(length=120), nullable=False),
        sa.Column("open_key", sa.String(length=120), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("workstation_id", sa.String(length=64), nullable=True),
        sa.Column("subdistrict_id", sa.String(length=64), nullable=True),
        sa.Column("district_id", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_member_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("members", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pushed_members", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("open_key", name=op.f("uq_incidents_open_key")),
    )
    for col in ("state", "workstation_id", "subdistrict_id", "district_id"):
        op.create_index(op.f(f"ix_incidents_{col}"), "incidents", [col], unique=False)
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_alarms_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index("ix_alarms_subdistrict_id_raised_at", ["subdistrict_id", "raised_at"], unique=False)
        batch_op.create_index("ix_alarms_workstation_id_raised_at", ["workstation_id", "raised_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_workstation_id_raised_at")
        batch_op.drop_index("ix_alarms_subdistrict_id_raised_at")
        batch_op.drop_index(batch_op.f("ix_alarms_incident_id"))
        batch_op.drop_column("incident_id")
    for col in ("state", "workstation_id", "subdistrict_id", "district_id"):
        op.drop_index(op.f(f"ix_incidents_{col}"), table_name="incidents")
    op.drop_table("incidents")
