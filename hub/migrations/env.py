"""Alembic environment: online migrations on the engine handed over by hub.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from hub.db.engine import make_engine
from hub.db.models import metadata

config = context.config
target_metadata = metadata()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    own = engine is None
    if own:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no engine given and no sqlalchemy.url configured")
        engine = make_engine(url)
    assert isinstance(engine, Engine)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        if own:
            engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run hub db upgrade")
run_migrations_online()
