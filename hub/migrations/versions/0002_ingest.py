"""Ingest: no tables of its own yet.

The ingest writes the tables of 0001_registry (events, gateway_state, sensor_state,
conditions, readings). This revision keeps the agreed linear chain
0001_registry -> 0002_ingest -> 0003_alarms, and is where ingest-owned schema goes.

Revision ID: 0002_ingest
Revises: 0001_registry
Create Date: 2026-11-28 16:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002_ingest"
down_revision: str | None = "0001_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
