"""Provisioning record of each gateway: config revision, wiring, test mode, walk test, sign-off.

Revision ID: 0005_provisioning
Revises: 0004_notification_priority
Create Date: 2026-12-01 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_provisioning"
down_revision: str | None = "0004_notification_priority"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "provisioned_gateways",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("revision", _INT, nullable=False),
        sa.Column("credential", sa.String(length=16), nullable=False),
        sa.Column("wiring", sa.JSON(), nullable=False),
        sa.Column("provisioned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provisioned_by", sa.String(length=200), nullable=False),
        sa.Column("test_mode_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("walktest_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("walktest_ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("walktest_passed", sa.Boolean(), nullable=True),
        sa.Column("walktest_result", sa.JSON(), nullable=True),
        sa.Column("signed_off_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_off_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["gateway_id"],
            ["gateways.id"],
            name=op.f("fk_provisioned_gateways_gateway_id_gateways"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("gateway_id", name=op.f("pk_provisioned_gateways")),
    )
    with op.batch_alter_table("provisioned_gateways", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provisioned_gateways_home_id"), ["home_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("provisioned_gateways", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provisioned_gateways_home_id"))
    op.drop_table("provisioned_gateways")
