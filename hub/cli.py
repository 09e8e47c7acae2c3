"""``safehome hub …`` commands. Each subcommand lives in the module of its feature and is
registered here with one line."""

from __future__ import annotations

import click

from hub.api.tokens_cli import key, token
from hub.api.users_cli import user
from hub.db.cli import db
from hub.registry.cli import export_cmd, import_cmd
from hub.runner import run_cmd
from hub.sealing_cli import secrets
from hub.webhooks_cli import webhook


@click.group(name="hub")
def hub() -> None:
    """Run the hub, import and export the registry, manage tokens, keys and users."""


# Registered subcommands (one line each, added by the feature that owns it):
# hub.add_command(run_cmd)       <- hub/runner.py         (ingest, supervision, alarms, API)
# hub.add_command(import_cmd)    <- hub/registry/cli.py   (YAML / CSV registers)
# hub.add_command(export_cmd)    <- hub/registry/cli.py
# hub.add_command(db)            <- hub/db/cli.py         (migrations)
# hub.add_command(token)         <- hub/api/tokens_cli.py (API tokens: role + region)
# hub.add_command(key)           <- hub/api/tokens_cli.py (API keys: scopes + region + expiry)
# hub.add_command(user)          <- hub/api/users_cli.py  (console users)
# hub.add_command(secrets)       <- hub/sealing_cli.py    (the key of sealed secrets)

hub.add_command(db)
hub.add_command(import_cmd)
hub.add_command(export_cmd)
hub.add_command(run_cmd)
hub.add_command(token)
hub.add_command(key)
hub.add_command(user)
hub.add_command(webhook)
hub.add_command(secrets)
