"""``safehome hub token …`` (role tokens) and ``safehome hub key …`` (scoped API keys):
create, list and revoke. Every creation and revocation is audited (actor ``cli``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from hub.api.tokens import ROLES
from hub.db.cli import db_url_option, migrated_sessions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _audited(s: Session, action: str, key_id: str, detail: dict[str, Any] | None = None) -> None:
    from hub import audit

    audit.record(s, actor="cli", action=action, target=f"key:{key_id}", source="cli", detail=detail)


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
            _audited(s, "token.create", p.token_id, {"role": role, "region": p.region, "name": name})
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
            used = f"used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
            click.echo(f"{t.id}\t{t.role}\t{t.region_kind}:{t.region_id}\t{state}\t{used}\t{t.scopes}\t{t.name}")


@token.command(name="revoke")
@click.argument("token_id")
@db_url_option
def revoke_cmd(token_id: str, db_url: str) -> None:
    """Revoke a token by its id (takes effect on the next request)."""
    from hub.api.tokens import revoke_token

    with migrated_sessions(db_url) as sessions, sessions() as s, s.begin():
        if not revoke_token(s, token_id, dt.datetime.now(dt.UTC)):
            raise click.ClickException(f"no active token {token_id!r}")
        _audited(s, "key.revoke", token_id)
    click.echo(f"revoked {token_id}")


@click.group(name="key")
def key() -> None:
    """API keys for third parties: scopes, a region (down to one home), an expiry."""


@key.command(name="create")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="Repeat for each scope: alarms:read, readings:read, residents:read … (docs/api.md).")
@click.option("--region", required=True, help="district:ID, subdistrict:ID, workstation:ID or home:ID")
@click.option("--name", required=True, help="Who uses it, e.g. 'family app, home-1'.")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True, max=731), default=365,
              show_default=True, help="The key stops working after this many days.")
@db_url_option
def key_create_cmd(scopes: tuple[str, ...], region: str, name: str, expires_in_days: float, db_url: str) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from hub.api.errors import BadRegion
    from hub.api.tokens import create_key

    now = dt.datetime.now(dt.UTC)
    try:
        with migrated_sessions(db_url) as sessions, sessions() as s, s.begin():
            tok, p = create_key(s, list(scopes), region, name, now, now + dt.timedelta(days=expires_in_days), "cli")
            _audited(s, "key.create", p.token_id,
                     {"scopes": sorted(p.scopes), "region": p.region, "name": name,
                      "expires_at": p.expires_at.isoformat() if p.expires_at else None})
    except BadRegion as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"key id {p.token_id}: scopes {' '.join(sorted(p.scopes))}, region {p.region}, "
               f"expires {p.expires_at:%Y-%m-%d %H:%M} UTC", err=True)
    click.echo(tok)


key.add_command(list_cmd, name="list")
key.add_command(revoke_cmd, name="revoke")
