"""``safehome hub token …``: create, list and revoke API tokens."""

from __future__ import annotations

import datetime as dt

import click

from hub.api.tokens import ROLES
from hub.db.cli import db_url_option, migrated_sessions


@click.group(name="token")
def token() -> None:
    """API bearer tokens (role + region)."""


@token.command(name="create")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--region", required=True, help="workstation:ID, subdistrict:ID or district:ID")
@click.option("--name", default="", help="Who uses it (shown in alarm histories), e.g. 'ws-0001 duty desk'.")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The token stops working after this many days (default: when revoked).")
@db_url_option
def create_cmd(role: str, region: str, name: str, expires_in_days: float | None, db_url: str) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from hub.api.errors import BadRegion
    from hub.api.tokens import create_token

    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(days=expires_in_days) if expires_in_days else None
    try:
        with migrated_sessions(db_url) as sessions, sessions() as s, s.begin():
            tok, p = create_token(s, role, region, name, now, expires)
    except BadRegion as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"token id {p.token_id}: role {p.role}, region {p.region}", err=True)
    click.echo(tok)


@token.command(name="list")
@db_url_option
def list_cmd(db_url: str) -> None:
    """List tokens (ids, roles, regions; never the tokens)."""
    from hub.api.tokens import list_tokens

    with migrated_sessions(db_url) as sessions, sessions() as s:
        for t in list_tokens(s):
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            if t.expires_at and not t.revoked_at:
                state += f" until {t.expires_at:%Y-%m-%d %H:%M}"
            click.echo(f"{t.id}\t{t.role}\t{t.region_kind}:{t.region_id}\t{state}\t{t.name}")


@token.command(name="revoke")
@click.argument("token_id")
@db_url_option
def revoke_cmd(token_id: str, db_url: str) -> None:
    """Revoke a token by its id (takes effect on the next request)."""
    from hub.api.tokens import revoke_token

    with migrated_sessions(db_url) as sessions, sessions() as s, s.begin():
        if not revoke_token(s, token_id, dt.datetime.now(dt.UTC)):
            raise click.ClickException(f"no active token {token_id!r}")
    click.echo(f"revoked {token_id}")
