"""Run the Alembic migrations in ``hub/migrations`` from code (``hub db upgrade`` and tests).

The Alembic config is built here rather than read from an ``alembic.ini``, so that an
installed hub finds its migrations wherever the package lives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from hub.db.engine import make_engine
from hub.db.errors import MigrationError

if TYPE_CHECKING:
    from hub.sealing import SecretBox

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine, secret_box: SecretBox | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py takes the engine from here (no URL in a config file, no '%' escaping issues).
    cfg.attributes["engine"] = engine
    # Migrations that seal or open stored secrets use it (else they read the environment).
    cfg.attributes["secret_box"] = secret_box
    return cfg


def upgrade(url: str | URL | Engine, revision: str = "head", secret_box: SecretBox | None = None) -> None:
    """Upgrade the database at ``url`` (or behind an engine) to ``revision``."""
    from hub.sealing import SealingError

    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        command.upgrade(alembic_config(engine, secret_box), revision)
    except (SQLAlchemyError, SealingError) as exc:
        raise MigrationError(f"migrating {engine.url!r} to {revision} failed: {exc}") from exc
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config_for_scripts()).get_current_head()


def alembic_config_for_scripts() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def require_head(engine: Engine) -> None:
    """Raise :class:`MigrationError` unless the database is migrated to the newest revision."""
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        raise MigrationError(f"cannot read the schema revision of {engine.url!r}: {exc}") from exc
    head = head_revision()
    if current != head:
        raise MigrationError(
            f"database {engine.url!r} is at revision {current or 'none (empty)'}, this hub needs {head}:"
            " run `safehome hub db upgrade` first"
        )
