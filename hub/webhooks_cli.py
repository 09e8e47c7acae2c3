"""``safehome hub webhook …``: subscribe third-party endpoints to the alarms of a region."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from hub.db.cli import db_url_option, migrated_sessions
from hub.sealing_cli import box_from_cli, key_file_option

#: A webhook secret is an HMAC-SHA256 key: at least this long (the generated one has 43
#: characters, 256 bits) and at most what its sealed form fits in the column.
MIN_SECRET_LENGTH = 32
MAX_SECRET_LENGTH = 200


@click.group(name="webhook")
def webhook() -> None:
    """Webhook subscriptions (signed POSTs of every alarm of a region)."""


@webhook.command(name="add")
@click.option("--url", required=True, help="http(s) endpoint that receives the POSTs")
@click.option("--region", required=True, help="workstation:ID, subdistrict:ID or district:ID")
@click.option("--name", default="")
@click.option(
    "--secret",
    default=None,
    help=f"HMAC secret, {MIN_SECRET_LENGTH}-{MAX_SECRET_LENGTH} characters (default: generated and printed once)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "cap"]),
    default="json",
    show_default=True,
    help="cap: life-safety alarm events as OASIS CAP 1.2 XML (the others stay JSON)",
)
@db_url_option
@key_file_option
def add_cmd(
    url: str, region: str, name: str, secret: str | None, fmt: str, db_url: str, key_file: Path | None
) -> None:
    from hub.alarms.store.models import WebhookSubscription
    from hub.api.errors import BadRegion
    from hub.api.tokens import REGION_KINDS, parse_region

    if not url.startswith(("http://", "https://")):
        raise click.ClickException(f"--url {url!r} is not an http(s) URL")
    try:
        kind, rid = parse_region(region)
    except BadRegion as exc:
        raise click.ClickException(str(exc)) from exc
    if secret is not None:
        from hub.settings import secret_weakness

        weak = secret_weakness(secret, MIN_SECRET_LENGTH) or (
            f"too long ({len(secret)} characters, at most {MAX_SECRET_LENGTH})"
            if len(secret) > MAX_SECRET_LENGTH
            else None
        )
        if weak is not None:
            raise click.ClickException(f"--secret is {weak}; leave it out to have one generated")
    from hub.notify.targets import TargetPolicy, TargetRefused

    try:  # the hub checks every delivery against [hub.alarms.webhooks]; this only warns
        TargetPolicy().check_url(url)
    except TargetRefused as exc:
        click.echo(f"warning: {exc}; until then its deliveries are refused (dead)", err=True)
    secret = secret or secrets.token_urlsafe(32)
    sealed = box_from_cli(key_file).seal(secret)
    with migrated_sessions(db_url) as sessions, sessions() as s, s.begin():
        if s.get(REGION_KINDS[kind], rid) is None:
            raise click.ClickException(f"no {kind} {rid!r} in the registry")
        from hub.api.webhooks_store import url_in_use

        if url_in_use(s, url):  # the hub signs by URL: a second secret would never be used
            raise click.ClickException(f"an active webhook already posts to {url}; disable it first")
        row = WebhookSubscription(
            url=url, secret_sealed=sealed, region_kind=kind, region_id=rid, name=name, format=fmt
        )
        s.add(row)
        s.flush()
        wid = row.id
        from hub import audit

        audit.record(s, actor="cli", action="webhook.create", target=f"webhook:{wid}", source="cli",
                     detail={"url": url, "region": f"{kind}:{rid}", "format": fmt})  # never the secret
    click.echo(f"webhook {wid}: {url} receives the alarms of {kind} {rid}; signing secret:", err=True)
    click.echo(secret)


@webhook.command(name="list")
@db_url_option
def list_cmd(db_url: str) -> None:
    from sqlalchemy import select

    from hub.alarms.store.models import WebhookSubscription

    with migrated_sessions(db_url) as sessions, sessions() as s:
        for w in s.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)):
            state = "active" if w.active else "disabled"
            click.echo(f"{w.id}\t{w.region_kind}:{w.region_id}\t{state}\t{w.url}\t{w.name}")


@webhook.command(name="disable")
@click.argument("webhook_id", type=int)
@db_url_option
def disable_cmd(webhook_id: int, db_url: str) -> None:
    from hub.alarms.store.models import WebhookSubscription

    with migrated_sessions(db_url) as sessions, sessions() as s, s.begin():
        w = s.get(WebhookSubscription, webhook_id)
        if w is None:
            raise click.ClickException(f"no webhook {webhook_id}")
        if w.active:
            from hub import audit

            audit.record(s, actor="cli", action="webhook.disable", target=f"webhook:{webhook_id}", source="cli")
        w.active = False
    click.echo(f"webhook {webhook_id} disabled")
