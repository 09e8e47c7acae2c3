"""Database fixtures of the hub tests: every test that takes ``db_url`` runs twice, on
SQLite and on PostgreSQL.

- ``db_url``: URL of a fresh, fully migrated (``head``) database of the test's own.
  SQLite: a copy of a session-wide migrated file in ``tmp_path``. PostgreSQL: ``CREATE
  DATABASE … TEMPLATE`` of a session-wide migrated database on the server found or started
  by :mod:`safehome.testing.postgres`, dropped after the test. Tests on PostgreSQL carry the
  ``postgres`` marker (deselect with ``-m "not postgres"``).
- ``blank_db_url``: the same, but empty (for migration tests).
- ``engine`` / ``session_factory``: on ``db_url``; disposed after the test.
- ``hub``: the alarm engine on ``db_url`` with a small registry (one district, two
  subdistricts, three workstations, one home/gateway each) and a manual clock at ``DAY``;
  used by the alarm, notification, API and provisioning tests.
- ``district_webhook(hub)``: a local HTTP receiver subscribed to the district's alarms;
  ``raise_alarm(hub, gw)``: an alarm event decided by the engine; ``act(hub, alarm, action)``:
  a lifecycle step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.clock import ManualClock
from hub.alarms.engine.actions import apply_action
from hub.alarms.engine.decide import AlarmEngine, event_signal
from hub.alarms.lifecycle import Action
from hub.alarms.settings import AlarmSettings
from hub.alarms.store.models import Alarm, WebhookSubscription
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.db.tx import in_transaction
from hub.sealing import SecretBox, dev_box, generate_key
from hub.settings import HubSettings, IngestSettings, MqttSettings, SecretsSettings
from protocols import EventKind
from safehome.testing.events import make_event
from safehome.testing.postgres import PostgresServer, postgres_server
from safehome.testing.registry import seed_small_district
from tests.support.http import LOOPBACK_WEBHOOKS, Receiver, http_receiver
from tests.support.hub_mqtt import SecuredBroker

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresServer) -> str:
    """Name of a migrated database that per-test databases are copied from."""
    url = pg_server.create_database("safehome_tmpl")
    upgrade(url)
    return url.rpartition("/")[2]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "hub.db"
    upgrade(f"sqlite:///{path}")
    return path


def _pg_copy(server: PostgresServer, template: str) -> str:
    name = f"safehome_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        )
    server.created.append(name)
    base = server.admin_url.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = _pg_copy(server, request.getfixturevalue("pg_template"))
    yield url
    server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def blank_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


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


def raise_alarm(hub: Hub, gw: str = "gw-1", kind: EventKind = EventKind.SMOKE, sensor: str = "smoke-1") -> str:
    """An alarm event of ``gw`` decided by the engine: the new (or repeated) alarm's id."""
    r = hub.alarms.handle(*event_signal(make_event(gw, kind=kind, sensor=sensor), hub.clock.now()))
    assert r.alarm_id
    return r.alarm_id


def act(hub: Hub, alarm_id: str, action: Action, actor: str = "op-1", **kw: Any) -> str:
    """Apply a lifecycle step to the alarm as ``actor`` of ws-0001: the state it leads to."""
    def work(s: Session) -> str:
        a = s.get(Alarm, alarm_id)
        assert a is not None
        return str(apply_action(s, a, action, actor, hub.clock.now(), by="workstation ws-0001", **kw).to_state.value)

    return in_transaction(hub.sessions, work)


#: The hub's secrets key: webhook secrets are stored sealed with it, and signed in clear.
SECRETS_KEY = generate_key()
SECRETS_BOX = SecretBox([SECRETS_KEY])


def alarm_settings(**fields: Any) -> AlarmSettings:
    """``[hub.alarms]`` of the tests: ``fields``, and webhooks may post to the loopback
    receivers (refused by default)."""
    return AlarmSettings(**{"webhooks": LOOPBACK_WEBHOOKS} | fields)


def worker_settings(secured: SecuredBroker, db_url: str, **alarms: object) -> HubSettings:
    """A whole hub worker's settings on the secured broker (fast timers and retries); ``alarms``
    override ``[hub.alarms]`` fields."""
    return HubSettings(
        env="test",
        secrets=SecretsSettings(key=SECRETS_KEY),
        worker_id=f"w-{uuid.uuid4().hex[:8]}",
        database={"url": db_url, "migrate": False},
        mqtt=MqttSettings(port=secured.broker.port, password=secured.hub_password),
        ingest=IngestSettings(retry_delay_s=0.2),
        http={"enabled": True, "port": 0},
        alarms=alarm_settings(
            timer_tick_s=0.1, outbox_idle_s=0.05, retry_base_s=0.05, retry_max_s=0.2, **alarms
        ),
    )
