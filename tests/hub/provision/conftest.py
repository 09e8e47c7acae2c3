"""Provisioning fixtures: a migrated hub database with the alarm tests' registry, and a
broker directory (password file, hub password, broker settings) for the credentials."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.db.engine import make_engine, make_session_factory
from safehome.cli import cli
from safehome.testing.registry import seed_small_district


@dataclass
class Site:
    db_url: str
    broker_dir: Path
    broker_toml: Path
    tmp: Path

    def run(self, *args: str) -> Result:
        """``safehome provision ARGS`` against this site's database and broker."""
        extra = ["--db-url", self.db_url]
        if args[0] in ("gateway", "push"):
            extra += ["--broker-config", str(self.broker_toml)]
        return CliRunner().invoke(cli, ["provision", *args, *extra], catch_exceptions=False)


def write_broker_toml(directory: Path, plain_port: int = 1883) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "broker.toml"
    path.write_text(f'directory = "{directory}"\ntls = false\nplain_port = {plain_port}\nuser = "nobody"\n')
    return path


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Site:
    engine = make_engine(db_url)
    try:
        seed_small_district(make_session_factory(engine))
    finally:
        engine.dispose()
    broker_dir = tmp_path / "broker"
    return Site(db_url, broker_dir, write_broker_toml(broker_dir), tmp_path)
