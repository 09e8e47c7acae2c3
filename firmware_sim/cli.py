"""`safehome sim` commands."""

from __future__ import annotations

import click


@click.group(name="sim")
def sim() -> None:
    """Simulated homes, fleets and scenarios."""
