"""``safehome hub token …``: create, list and revoke API tokens."""

from __future__ import annotations

import datetime as dt

import click

from hub.db.cli import db_url_option


@click.group(name="token")
def token() -> None:
    """API bearer tokens (role + region)."""


@token.command(name="create")
@click.option("--role", type=click.Choice(["viewer", "operator", "supervisor"]), required=True)
@click.option("--region", required=True, help="workstation:ID, subdistrict:ID or district:ID")
@click.option("--name", default="", help="Who uses it (shown in alarm histories), e.g. 'ws-0001 duty desk'.")
@db_url_option
def create_cmd(role: str, region: str, name: str, db_url: str) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from hub.api.errors import BadRegion
    from hub.api.tokens import create_token
    from hub.db.engine import make_engine, make_session_factory

    engine = make_engine(db_url)
    try:
        _require_head(engine)
        with make_session_factory(engine)() as s, s.begin():
            tok, p = create_token(s, role, region, name, dt.datetime.now(dt.UTC))
    except BadRegion as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(f"token id {p.token_id}: role {p.role}, region {p.region}", err=True)
    click.echo(tok)


@token.command(name="list")
@db_url_option
def list_cmd(db_url: str) -> None:
    """List tokens (ids, roles, regions; never the tokens)."""
    from hub.api.tokens import list_tokens
    from hub.db.engine import make_engine, make_session_factory

    engine = make_engine(db_url)
    try:
        _require_head(engine)
        with make_session_factory(engine)() as s:
            for t in list_tokens(s):
                state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
                click.echo(f"{t.id}\t{t.role}\t{t.region_kind}:{t.region_id}\t{state}\t{t.name}")
    finally:
        engine.dispose()


@token.command(name="revoke")
@click.argument("token_id")
@db_url_option
def revoke_cmd(token_id: str, db_url: str) -> None:
    """Revoke a token by its id (takes effect on the next request)."""
    from hub.api.tokens import revoke_token
    from hub.db.engine import make_engine, make_session_factory

    engine = make_engine(db_url)
    try:
        _require_head(engine)
        with make_session_factory(engine)() as s, s.begin():
            if not revoke_token(s, token_id, dt.datetime.now(dt.UTC)):
                raise click.ClickException(f"no active token {token_id!r}")
    finally:
        engine.dispose()
    click.echo(f"revoked {token_id}")


def _require_head(engine: object) -> None:
    """Refuse a database that is not migrated (instead of failing on a missing table)."""
    from hub.db.errors import MigrationError
    from hub.db.migrate import require_head

    try:
        require_head(engine)  # type: ignore[arg-type]
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from exc
