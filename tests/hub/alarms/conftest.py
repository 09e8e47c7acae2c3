"""Fixtures of the alarm tests: a small registry (one district, two subdistricts, three
workstations, one home/gateway each) in the ``db_url`` database, a manual clock, and a
webhook receiver subscribed to the district."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.clock import ManualClock
from hub.alarms.store.engine import AlarmEngine
from hub.alarms.store.models import WebhookSubscription
from hub.db.engine import make_engine, make_session_factory
from hub.sealing import dev_box
from safehome.testing.registry import seed_small_district
from tests.support.http import Receiver, http_receiver

#: 10:00 in Shanghai: day shift at every workstation.
DAY = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
#: 02:00 in Shanghai: night.
NIGHT = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)


@dataclass
class Hub:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    clock: ManualClock
    alarms: AlarmEngine


@pytest.fixture
def hub(db_url: str) -> Iterator[Hub]:
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    seed_small_district(sessions)
    clock = ManualClock(DAY)
    yield Hub(db_url, engine, sessions, clock, AlarmEngine(sessions, clock))
    engine.dispose()


#: The webhook secret of :func:`district_webhook` (what the tests verify signatures with).
WEBHOOK_SECRET = "k" * 40


@contextlib.contextmanager
def district_webhook(hub: Hub, **subscription: Any) -> Iterator[Receiver]:
    """A local HTTP receiver subscribed (``WEBHOOK_SECRET``) to every alarm of the district;
    ``subscription`` sets other columns (``format="cap"`` …)."""
    with http_receiver() as receiver:
        with hub.sessions() as s, s.begin():
            s.add(
                WebhookSubscription(
                    url=receiver.url, secret_sealed=dev_box().seal(WEBHOOK_SECRET), region_kind="district",
                    region_id="pudong", **subscription,
                )
            )
        yield receiver
