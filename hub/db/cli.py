"""``safehome hub db …``: database maintenance (migrations)."""

from __future__ import annotations

import click

from hub.db.errors import MigrationError

#: Same variable as the hub's settings field ``db_url`` (prefix ``SAFEHOME_HUB_``).
DB_URL_ENV = "SAFEHOME_HUB_DB_URL"
DEFAULT_DB_URL = "sqlite:///safehome-hub.db"

db_url_option = click.option(
    "--db-url",
    envvar=DB_URL_ENV,
    default=DEFAULT_DB_URL,
    show_default=True,
    help=f"Database URL (sqlite:///FILE or postgresql://…); env {DB_URL_ENV}.",
)


@click.group(name="db")
def db() -> None:
    """Create and migrate the hub database."""


@db.command(name="upgrade")
@db_url_option
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def upgrade_cmd(db_url: str, revision: str) -> None:
    """Create the hub's tables or migrate them to the newest revision (idempotent)."""
    from hub.db.engine import make_engine
    from hub.db.migrate import current_revision, upgrade

    engine = make_engine(db_url)
    try:
        upgrade(engine, revision)
        click.echo(f"database at revision {current_revision(engine)}")
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
