"""`safehome sim` commands: registry, fleet, scenario, home."""

from __future__ import annotations

import sys

import click


@click.group(name="sim")
def sim() -> None:
    """Simulated homes, fleets and scenarios."""


@sim.command(name="registry")
@click.option("--homes", type=click.IntRange(1, 1_000_000), default=300, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same district.")
@click.option("--district", default="pudong", show_default=True, help="District id.")
def registry_cmd(homes: int, seed: int, district: str) -> None:
    """Write a synthetic district registry (YAML) to stdout, for `safehome hub import`."""
    from firmware_sim.registry import generate, registry_to_yaml

    sys.stdout.write(registry_to_yaml(generate(homes, seed, district)))
