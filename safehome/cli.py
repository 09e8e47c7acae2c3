"""``safehome`` console command.

Each subcommand group is defined in the package it belongs to and imported only when
used, so that ``safehome edge …`` on a Raspberry Pi never imports the hub's stack.
"""

from __future__ import annotations

import click

from safehome.lazy import LazyGroup

#: group name -> "module:attribute" of a click command or group.
GROUPS: dict[str, str] = {
    "broker": "hub.broker.cli:broker",
    "hub": "hub.cli:hub",
    "edge": "edge.cli:edge",
    "sim": "firmware_sim.cli:sim",
    "provision": "safehome.provision:provision",
    "demo": "safehome.demo:demo",
    "bench": "bench.cli:bench",
}


@click.group(cls=LazyGroup, lazy=GROUPS)
@click.version_option(package_name="safehome")
def cli() -> None:
    """safehome: home-safety monitoring for old people who live alone."""


def main() -> None:
    cli()
