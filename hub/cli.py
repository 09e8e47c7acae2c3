"""`safehome hub` commands."""

from __future__ import annotations

import click


@click.group(name="hub")
def hub() -> None:
    """Run the hub, import and export the registry, manage tokens."""
