"""Migrations: a blank database upgrades to head, twice without harm, and the migrated
schema matches the models (so no feature forgot its migration)."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, SAWarning

from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import current_revision, head_revision, upgrade
from hub.db.models import metadata
from hub.db.state import Condition


def test_blank_database_upgrades_to_head_idempotently(blank_db_url: str) -> None:
    upgrade(blank_db_url)
    upgrade(blank_db_url)
    engine = make_engine(blank_db_url)
    try:
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"districts", "homes", "gateways", "sensors", "events", "readings", "conditions"} <= tables
    finally:
        engine.dispose()


def test_migrated_schema_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn, warnings.catch_warnings():
            # SQLite cannot reflect expression indexes; alembic warns and skips them.
            warnings.filterwarnings("ignore", message="autogenerate skipping", category=UserWarning)
            warnings.filterwarnings("ignore", message="Skipped unsupported reflection", category=SAWarning)
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata())
        assert diff == []
    finally:
        engine.dispose()


def test_sqlite_pragmas(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


def test_only_one_open_condition_per_subject(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    try:
        with factory() as s, s.begin():
            s.add(Condition(gateway_id="gw-1", sensor_id=None, kind="gateway_silent", opened_at=now))
            s.add(Condition(gateway_id="gw-1", sensor_id="smoke-1", kind="sensor_silent", opened_at=now))
            s.add(Condition(gateway_id=None, kind="broker_dropping", opened_at=now))
        with pytest.raises(IntegrityError), factory() as s, s.begin():
            s.add(Condition(gateway_id="gw-1", sensor_id=None, kind="gateway_silent", opened_at=now))
        with factory() as s, s.begin():  # once restored, a new one may open
            s.execute(text("UPDATE conditions SET state = 'restored' WHERE kind = 'gateway_silent'"))
            s.add(Condition(gateway_id="gw-1", sensor_id=None, kind="gateway_silent", opened_at=now))
        with pytest.raises(IntegrityError), factory() as s, s.begin():
            s.add(Condition(gateway_id=None, kind="broker_dropping", opened_at=now))
        with factory() as s:
            row = s.get(Condition, 1)
            assert row is not None and row.opened_at == now and row.state == "restored"
    finally:
        engine.dispose()


def test_naive_datetimes_are_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(Exception, match="naive datetime"), make_session_factory(engine)() as s, s.begin():
            s.add(Condition(gateway_id="gw-1", kind="gateway_silent", opened_at=dt.datetime(2026, 1, 1)))
    finally:
        engine.dispose()


def test_db_cli_upgrade_and_current(blank_db_url: str) -> None:
    from click.testing import CliRunner

    from hub.cli import hub

    runner = CliRunner()
    before = runner.invoke(hub, ["db", "current", "--db-url", blank_db_url])
    assert before.exit_code == 0 and "database: none (empty)" in before.output
    up = runner.invoke(hub, ["db", "upgrade", "--db-url", blank_db_url])
    assert up.exit_code == 0, up.output
    after = runner.invoke(hub, ["db", "current", "--db-url", blank_db_url])
    assert f"database: {head_revision()};" in after.output
