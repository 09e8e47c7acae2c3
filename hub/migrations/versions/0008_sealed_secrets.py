"""Webhook secrets are stored sealed (encrypted with the hub's secrets key); API tokens may expire.

The rows already there are encrypted here, with the secret box handed over by
``hub.db.migrate.upgrade`` (the hub's ``[hub.secrets]``), else the one named by the
environment (``SAFEHOME_HUB_SECRETS__KEY_FILE`` / ``SAFEHOME_HUB_SECRETS__KEY``). Without a
key, a database with webhook rows is refused (nothing is changed); an empty one needs none.

Revision ID: 0008_sealed_secrets
Revises: 0007_gateway_status_order
Create Date: 2026-12-01 06:00:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from hub.sealing import SecretBox, box_from_environment

revision: str = "0008_sealed_secrets"
down_revision: str | None = "0007_gateway_status_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_T = sa.table(
    "webhook_subscriptions",
    sa.column("id", sa.Integer),
    sa.column("secret", sa.String),
    sa.column("secret_sealed", sa.String),
)


def _box() -> SecretBox:
    box = context.config.attributes.get("secret_box")
    return box if isinstance(box, SecretBox) else box_from_environment("webhook secrets")


def _convert(src: str, dst: str, how: Callable[[SecretBox, str], str]) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_T.c.id, _T.c[src])).all()
    if not rows:
        return
    box = _box()
    for row_id, value in rows:
        conn.execute(sa.update(_T).where(_T.c.id == row_id).values({dst: how(box, value)}))


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as b:
        b.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("webhook_subscriptions") as b:
        b.add_column(sa.Column("secret_sealed", sa.String(length=512), nullable=True))
    _convert("secret", "secret_sealed", SecretBox.seal)
    with op.batch_alter_table("webhook_subscriptions") as b:
        b.alter_column("secret_sealed", existing_type=sa.String(length=512), nullable=False)
        b.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as b:
        b.add_column(sa.Column("secret", sa.String(length=200), nullable=True))
    _convert("secret_sealed", "secret", SecretBox.open)
    with op.batch_alter_table("webhook_subscriptions") as b:
        b.alter_column("secret", existing_type=sa.String(length=200), nullable=False)
        b.drop_column("secret_sealed")
    with op.batch_alter_table("api_tokens") as b:
        b.drop_column("expires_at")
