"""``safehome hub user …``: add, list and disable console users (audited, actor ``cli``)."""

from __future__ import annotations

import datetime as dt
import sys

import click

from hub.api.scopes import USER_REGION_KINDS, USER_ROLES
from hub.db.cli import db_url_option, migrated_sessions


@click.group(name="user")
def user() -> None:
    """Console users: a role bound to a region, an argon2id-hashed password."""


_ROLES_HELP = "; ".join(f"{r}: {'/'.join(k)}" for r, k in USER_REGION_KINDS.items())


@user.command(name="add")
@click.argument("username")
@click.option("--role", type=click.Choice(list(USER_ROLES)), required=True, help=f"Region kind per role: {_ROLES_HELP}.")
@click.option("--region", required=True, help="district:ID, subdistrict:ID or workstation:ID (the role's kind)")
@click.option("--name", "display_name", default="", help="How alarm histories name the user, e.g. 'Li Na'.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts).")
@db_url_option
def add_cmd(username: str, role: str, region: str, display_name: str, password_stdin: bool, db_url: str) -> None:
    """Add a user; the password is asked for twice (never an argument: it would end up in
    the shell history)."""
    from hub import audit
    from hub.api.errors import BadRegion
    from hub.api.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    now = dt.datetime.now(dt.UTC)
    try:
        with migrated_sessions(db_url) as sessions, sessions() as s, s.begin():
            u = create_user(s, username, password, role, region, now, display_name=display_name, created_by="cli")
            audit.record(s, actor="cli", action="user.create", target=f"user:{u.username}", source="cli",
                         detail={"role": role, "region": region})
    except BadRegion as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {username}: {role}, {region}")


@user.command(name="list")
@db_url_option
def list_cmd(db_url: str) -> None:
    """List users (name, role, region, state)."""
    from sqlalchemy import select

    from hub.api.models import User

    with migrated_sessions(db_url) as sessions, sessions() as s:
        for u in s.scalars(select(User).order_by(User.username)):
            state = f"disabled {u.disabled_at:%Y-%m-%d}" if u.disabled_at else "active"
            click.echo(f"{u.username}\t{u.role}\t{u.region_kind}:{u.region_id}\t{state}\t{u.display_name}")


@user.command(name="disable")
@click.argument("username")
@db_url_option
def disable_cmd(username: str, db_url: str) -> None:
    """Disable a user: every session of theirs ends at once."""
    from hub import audit
    from hub.api.users import disable_user

    with migrated_sessions(db_url) as sessions, sessions() as s, s.begin():
        if disable_user(s, username, dt.datetime.now(dt.UTC)) is None:
            raise click.ClickException(f"no active user {username!r}")
        audit.record(s, actor="cli", action="user.disable", target=f"user:{username}", source="cli")
    click.echo(f"disabled {username}")
