"""``safehome hub db …``: database maintenance (migrations)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hub.db.errors import MigrationError
from hub.sealing_cli import key_file_option

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

#: The hub settings' ``database.url`` (``SAFEHOME_HUB_DATABASE__URL``) and its default.
DB_URL_ENV = "SAFEHOME_HUB_DATABASE__URL"
DEFAULT_DB_URL = "sqlite:///hub.db"

db_url_option = click.option(
    "--db-url",
    envvar=DB_URL_ENV,
    default=DEFAULT_DB_URL,
    show_default=True,
    help=f"Database URL (sqlite:///FILE or postgresql://USER@HOST/DB); env {DB_URL_ENV}.",
)


@contextmanager
def migrated_sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a database migrated to the newest revision, for a CLI command: an
    unmigrated database is a clear click error (not a missing-table traceback), and the
    engine is disposed afterwards."""
    from hub.db.engine import make_engine, make_session_factory
    from hub.db.migrate import require_head

    engine = make_engine(db_url)
    try:
        try:
            require_head(engine)
        except MigrationError as exc:
            raise click.ClickException(str(exc)) from exc
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@click.group(name="db")
def db() -> None:
    """Create and migrate the hub database."""


@db.command(name="upgrade")
@db_url_option
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
@key_file_option
def upgrade_cmd(db_url: str, revision: str, key_file: Path | None) -> None:
    """Create the hub's tables or migrate them to the newest revision (idempotent). Stored
    secrets are sealed with the hub's secrets key (--key-file)."""
    from hub.db.engine import make_engine
    from hub.db.migrate import current_revision, upgrade
    from hub.sealing_cli import box_from_cli

    engine = make_engine(db_url)
    try:
        upgrade(engine, revision, box_from_cli(key_file) if key_file else None)
        click.echo(f"database at revision {current_revision(engine)}")
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()


@db.command(name="current")
@db_url_option
def current_cmd(db_url: str) -> None:
    """Show the database's schema revision and the newest one this hub knows."""
    from hub.db.engine import make_engine
    from hub.db.migrate import current_revision, head_revision

    engine = make_engine(db_url)
    try:
        click.echo(f"database: {current_revision(engine) or 'none (empty)'}; newest: {head_revision()}")
    finally:
        engine.dispose()
