"""`safehome edge` commands."""

from __future__ import annotations

import click


@click.group(name="edge")
def edge() -> None:
    """Run the gateway agent on a Raspberry Pi, show its status, run a self-test."""
