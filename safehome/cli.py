"""``safehome`` console command.

Each subcommand group is defined in the package it belongs to and imported only when
used, so that ``safehome edge …`` on a Raspberry Pi never imports the hub's stack.
"""

from __future__ import annotations

import importlib

import click

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


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = GROUPS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd


@click.group(cls=LazyGroup)
@click.version_option(package_name="safehome")
def cli() -> None:
    """safehome: home-safety monitoring for old people who live alone."""


def main() -> None:
    cli()
