"""``safehome demo``: broker, hub and a simulated fleet on one machine."""

from __future__ import annotations

import click


@click.command(name="demo")
def demo() -> None:
    """Run the whole system on loopback (broker, hub, simulated homes)."""
    raise click.ClickException("the demo is not built yet (see issue: firmware_sim and demo)")
