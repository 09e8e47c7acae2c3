"""0003_alarms and 0004_notification_priority go down to 0002_ingest and up again on both databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from hub.db.engine import make_engine
from hub.db.migrate import alembic_config, current_revision, head_revision

TABLES = {
    "alarms",
    "alarm_transitions",
    "alarm_timers",
    "alarm_signals",
    "home_overrides",
    "webhook_subscriptions",
    "notifications",
    "notification_attempts",
    "api_tokens",
    "idempotency_keys",
}


def test_0003_down_and_up(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert "priority" in {c["name"] for c in inspect(engine).get_columns("notifications")}
        command.downgrade(alembic_config(engine), "0003_alarms")
        assert "priority" not in {c["name"] for c in inspect(engine).get_columns("notifications")}
        command.downgrade(alembic_config(engine), "0002_ingest")
        assert current_revision(engine) == "0002_ingest"
        assert not TABLES & set(inspect(engine).get_table_names())
        command.upgrade(alembic_config(engine), "head")
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_0006_no_day_staff_down_and_up(db_url: str) -> None:
    """Workstation hours become nullable (no day staff) and back."""
    engine = make_engine(db_url)
    try:
        nullable = {c["name"]: c["nullable"] for c in inspect(engine).get_columns("workstations")}
        assert nullable["day_start"] and nullable["day_end"]
        command.downgrade(alembic_config(engine), "0005_provisioning")
        nullable = {c["name"]: c["nullable"] for c in inspect(engine).get_columns("workstations")}
        assert not nullable["day_start"] and not nullable["day_end"]
        command.upgrade(alembic_config(engine), "head")
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_0009_incidents_down_and_up(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert "incidents" in inspect(engine).get_table_names()
        assert "incident_id" in {c["name"] for c in inspect(engine).get_columns("alarms")}
        command.downgrade(alembic_config(engine), "0008_sealed_secrets")
        assert "incidents" not in inspect(engine).get_table_names()
        assert "incident_id" not in {c["name"] for c in inspect(engine).get_columns("alarms")}
        command.upgrade(alembic_config(engine), "head")
        assert "incident_id" in {c["name"] for c in inspect(engine).get_columns("alarms")}
    finally:
        engine.dispose()
