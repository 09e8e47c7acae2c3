"""``safehome hub secrets keygen``, and the ``--key-file`` option of the commands that read
or write sealed secrets (webhook add, db upgrade)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hub.sealing import KEY_ENV, KEY_FILE_ENV, SealingError, SecretBox, box_from_environment, generate_key

key_file_option = click.option(
    "--key-file",
    envvar=KEY_FILE_ENV,
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"The hub's [hub.secrets] key_file (env {KEY_FILE_ENV}; or the key itself in {KEY_ENV}).",
)


def box_from_cli(key_file: Path | None) -> SecretBox:
    """The secret box of a CLI command (see :func:`hub.sealing.box_from_environment`)."""
    try:
        return box_from_environment(key_file=key_file)
    except SealingError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(name="secrets")
def secrets() -> None:
    """The key that encrypts secrets stored in the hub database."""


@secrets.command(name="keygen")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write the key to this file (created 0600; refuses to overwrite)")
def keygen_cmd(out: Path | None) -> None:
    """Generate a key for [hub.secrets] key_file (a new key goes first; keep old ones below it)."""
    key = generate_key()
    if out is None:
        click.echo(key)
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{out} exists: not overwritten (a lost key loses every webhook secret)") from exc
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    click.echo(f"key written to {out}", err=True)
