"""`safehome bench` commands."""

from __future__ import annotations

import click


@click.group(name="bench")
def bench() -> None:
    """Benchmarks; figures go to docs/benchmarks.md."""


def _register() -> None:
    from bench.ingest import ingest_cmd

    bench.add_command(ingest_cmd)


_register()
