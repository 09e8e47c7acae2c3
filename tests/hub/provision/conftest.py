"""Provisioning fixtures: a migrated hub database with the alarm tests' registry, and a
broker directory (password file, hub password, broker settings) for the credentials; the
``hub`` of tests/hub/conftest.py with home-1 provisioned."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.alarms.clock import ManualClock
from hub.alarms.engine.decide import AlarmEngine
from hub.db.engine import make_engine, make_session_factory
from hub.provision import service
from safehome.cli import cli
from safehome.testing.registry import seed_small_district
from tests.hub.conftest import DAY, Hub


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


@pytest.fixture
def hub(db_url: str) -> Iterator[Hub]:
    """The alarm tests' hub (tests/hub/conftest.py) with home-1's gateway provisioned."""
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    seed_small_district(sessions)
    with sessions() as s, s.begin():
        service.provision(s, "home-1", None, DAY)
    clock = ManualClock(DAY)
    yield Hub(db_url, engine, sessions, clock, AlarmEngine(sessions, clock))
    engine.dispose()
