"""`safehome broker` commands."""

from __future__ import annotations

import click


@click.group(name="broker")
def broker() -> None:
    """Write the Mosquitto config for a deployment, run it, manage gateway credentials."""
