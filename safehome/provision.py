"""`safehome provision` commands."""

from __future__ import annotations

import click


@click.group(name="provision")
def provision() -> None:
    """Provision gateways for residents' homes (installer tool)."""
