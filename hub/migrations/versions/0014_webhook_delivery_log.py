"""The delivery log of a webhook (``GET /api/v1/webhooks/{id}/deliveries``) reads the
notifications addressed to its URL, newest first: an index on (address, id) finds them
without scanning every notification of every channel.

Revision ID: 0014_webhook_delivery_log
Revises: 0012_auth_audit (the head when it landed; the chain, not the file name, orders migrations)
Create Date: 2026-12-01 08:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_webhook_delivery_log"
down_revision: str | None = "0012_auth_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_notifications_address_id", "notifications", ["address", "id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_address_id", table_name="notifications")
