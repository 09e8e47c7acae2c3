"""Fixtures of the console tests: a real hub (``build_hub``: broker, ingest, alarm engine,
HTTP API and the console) on a fixed loopback port, a real Mosquitto with the hub's ACL, and
Debian's headless Chromium driven by Playwright (its own browser download is not needed).

Chromium tests are few and each is bounded: one browser per test, pages closed with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from hub.alarms.settings import AlarmSettings
from hub.api.tokens import create_token
from hub.api.users import create_user
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.runner import Hub, build_hub
from hub.sealing import generate_key
from hub.settings import HubSettings, IngestSettings, MqttSettings, SecretsSettings
from safehome.testing.console import CHROMIUM, LAUNCH_ARGS
from safehome.testing.mosquitto import Mosquitto, free_port
from safehome.testing.poll import until
from safehome.testing.registry import seed_small_district
from tests.support.hub_mqtt import SecuredBroker, start_secured_broker

#: the hub's secrets key (webhook secrets are sealed with it; none are made here)
KEY = generate_key()


@pytest.fixture(scope="session")
def console_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-db") / "hub.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def secured(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "secured")


@dataclass
class District:
    """The test district's hub(s) and the tokens of its operators."""

    secured: SecuredBroker
    db_url: str
    port: int
    tokens: dict[str, str] = field(default_factory=dict)
    hubs: list[Hub] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/console/"

    def settings(self, port: int, **alarms: object) -> HubSettings:
        return HubSettings(
            env="test",
            secrets=SecretsSettings(key=KEY),
            worker_id=f"w-{uuid.uuid4().hex[:8]}",
            database={"url": self.db_url, "migrate": False},
            mqtt=MqttSettings(port=self.secured.broker.port, password=self.secured.hub_password),
            ingest=IngestSettings(retry_delay_s=0.2),
            http={"enabled": True, "port": port},
            alarms=AlarmSettings(timer_tick_s=0.1, outbox_idle_s=0.05, retry_base_s=0.05, retry_max_s=0.2),
        )

    async def start_hub(self, port: int | None = None, **alarms: object) -> Hub:
        """A hub worker: on the console's port unless another is given (0: any free one);
        ``alarms``: AlarmSettings fields to change."""
        hub = build_hub(self.settings(self.port if port is None else port, **alarms))
        await hub.start()
        self.hubs.append(hub)
        await until(lambda: hub.ingest is not None and hub.ingest.subscribed.is_set(), 10, "hub subscribed")
        return hub

    async def stop_hub(self, hub: Hub) -> None:
        self.hubs.remove(hub)
        await hub.stop()


#: a console user (name, password): workstation operator of ws-0001
USER = ("wang.fang", "night-shift-2026")
#: who logs in to the console in these tests: name -> (role, region)
OPERATORS = {
    "ws1-a": ("operator", "workstation:ws-0001"),
    "ws1-b": ("operator", "workstation:ws-0001"),
    "ws2": ("operator", "workstation:ws-0002"),
    "sd1": ("supervisor", "subdistrict:sd-01"),
}


@pytest.fixture
async def district(
    secured: SecuredBroker, tmp_path: Path, console_db_template: Path
) -> AsyncIterator[District]:
    db = tmp_path / "hub.db"
    shutil.copyfile(console_db_template, db)
    d = District(secured, f"sqlite:///{db}", free_port())
    engine = make_engine(d.db_url)
    try:
        sessions = make_session_factory(engine)
        seed_small_district(sessions)
        with sessions() as s, s.begin():
            for name, (role, region) in OPERATORS.items():
                d.tokens[name], _ = create_token(s, role, region, name, dt.datetime.now(dt.UTC))
            user, password = USER
            create_user(s, user, password, "workstation_operator", "workstation:ws-0001", dt.datetime.now(dt.UTC),
                        display_name="王芳 (ws-0001)")
    finally:
        engine.dispose()
    await d.start_hub()
    try:
        yield d
    finally:
        for hub in list(d.hubs):
            await d.stop_hub(hub)


def chromium_or_fail() -> str:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} not found: the console tests need Debian's chromium (`make apt` installs it)")
    return CHROMIUM


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=chromium_or_fail(),
            headless=True,
            args=LAUNCH_ARGS,
        )
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def console_errors() -> Iterator[list[str]]:
    """JavaScript errors of the pages a test opened (collected with ``watch``); none allowed."""
    errors: list[str] = []
    yield errors
    assert errors == [], errors


def watch(page: Page, errors: list[str]) -> Page:
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


async def page_until(page: Page, expression: str, within: float = 10.0) -> None:
    """Poll a JavaScript expression until it is truthy. (Playwright's wait_for_function
    evaluates a string inside the page, which the console's CSP rightly refuses.)"""
    deadline = time.monotonic() + within
    while not await page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {expression}")
        await asyncio.sleep(0.05)


async def step(page: Page, action: str, note: str, **fields: str) -> None:
    """Fill and submit the case view's form of one lifecycle step."""
    form = page.locator(f"form[data-step={action}]")
    for name, value in fields.items():
        if name == "outcome":
            await form.locator("select[name=outcome]").select_option(value)
        else:
            await form.locator(f"input[name={name}]").fill(value)
    await form.locator("input[name=note]").fill(note)
    await form.locator("button[type=submit]").click()
