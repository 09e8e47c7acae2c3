"""The short fault matrix (``make faults`` runs the full one): real Mosquitto, two real hub
workers on PostgreSQL, simulated gateways; each fault must leave every alarm stored once,
alarmed once, delivered and escalated once. Counts only: no timing is asserted."""

from __future__ import annotations

import pytest

from bench.faults import matrix
from bench.faults.scenarios import SHORT

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow]


async def test_short_fault_matrix() -> None:
    outcomes = await matrix.run(list(SHORT), per=6, deadline_s=120.0)
    assert [o.name for o in outcomes if not o.ok] == [], matrix.table(outcomes)
