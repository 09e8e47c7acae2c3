"""Migration 0006 seals the webhook secrets already stored in clear, with the hub's key;
without a key it refuses (and changes nothing); downgrade opens them again."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from hub.db.engine import make_engine
from hub.db.errors import MigrationError
from hub.db.migrate import alembic_config, current_revision, upgrade
from hub.sealing import SecretBox, generate_key

BEFORE = "0007_gateway_status_order"


def _with_clear_secrets(url: str) -> None:
    upgrade(url, BEFORE)
    engine = make_engine(url)
    with engine.begin() as conn:
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO webhook_subscriptions (url, secret, region_kind, region_id, name, active) "
                    "VALUES (:u, :s, 'district', 'pudong', '', true)"
                ),
                {"u": f"http://hook/{n}", "s": f"clear-secret-{n}"},
            )
    engine.dispose()


def test_existing_secrets_are_sealed(blank_db_url: str) -> None:
    _with_clear_secrets(blank_db_url)
    box = SecretBox([generate_key()])
    upgrade(blank_db_url, secret_box=box)
    engine = make_engine(blank_db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT url, secret_sealed FROM webhook_subscriptions ORDER BY url")
            ).all()
            cols = conn.execute(text("SELECT * FROM webhook_subscriptions")).keys()
        assert "secret" not in cols
        assert [box.open(sealed) for _, sealed in rows] == ["clear-secret-1", "clear-secret-2"]
        assert not any("clear-secret" in sealed for _, sealed in rows)
        # and back: downgrade opens them with the same key
        command.downgrade(alembic_config(engine, box), BEFORE)
        with engine.connect() as conn:
            back = conn.execute(text("SELECT secret FROM webhook_subscriptions ORDER BY url")).scalars().all()
        assert back == ["clear-secret-1", "clear-secret-2"]
    finally:
        engine.dispose()


def test_without_a_key_the_migration_refuses_and_changes_nothing(
    blank_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("SAFEHOME_HUB_SECRETS__KEY", "SAFEHOME_HUB_SECRETS__KEY_FILE", "SAFEHOME_HUB_ENV"):
        monkeypatch.delenv(var, raising=False)
    _with_clear_secrets(blank_db_url)
    with pytest.raises(MigrationError, match="SAFEHOME_HUB_SECRETS__KEY_FILE"):
        upgrade(blank_db_url)
    engine = make_engine(blank_db_url)
    try:
        assert current_revision(engine) == BEFORE
        with engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT count(*) FROM webhook_subscriptions WHERE secret LIKE 'clear-%'")
                ).scalar()
                == 2
            )
    finally:
        engine.dispose()
    key = generate_key()
    monkeypatch.setenv("SAFEHOME_HUB_SECRETS__KEY", key)  # the environment names the key too
    upgrade(blank_db_url)
    engine = make_engine(blank_db_url)
    try:
        with engine.connect() as conn:
            sealed = conn.execute(text("SELECT secret_sealed FROM webhook_subscriptions")).scalars().all()
        assert sorted(SecretBox([key]).open(s) for s in sealed) == ["clear-secret-1", "clear-secret-2"]
    finally:
        engine.dispose()
