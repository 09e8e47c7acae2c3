"""Every history line of an alarm gets a per-alarm sequence number (``seq``), the alarm
keeps its latest (``event_seq``): webhooks and the live stream carry it. Existing lines are
numbered in the order they were written.

Revision ID: 0010_event_seq
Revises: 0009_incidents
Create Date: 2026-12-01 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_event_seq"
down_revision: str | None = "0009_incidents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: what the models' ``Mapped[int]`` is (hub/db/base.py): 64-bit, INTEGER on SQLite
_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_seq", _INT, nullable=False, server_default="0"))
    with op.batch_alter_table("alarm_transitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", _INT, nullable=True))
    op.execute(
        "UPDATE alarm_transitions SET seq = (SELECT count(*) FROM alarm_transitions t2 "
        "WHERE t2.alarm_id = alarm_transitions.alarm_id AND t2.id <= alarm_transitions.id)"
    )
    op.execute(
        "UPDATE alarms SET event_seq = (SELECT count(*) FROM alarm_transitions t "
        "WHERE t.alarm_id = alarms.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("alarm_transitions", schema=None) as batch_op:
        batch_op.drop_column("seq")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_column("event_seq")
