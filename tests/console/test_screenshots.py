"""Screenshots of the console (zh-CN) for the README and docs/console.md: the board of a
subdistrict center with alarms of each class, a case part-way through the closed loop,
fleet health, performance, and the board at a phone's width.

``make screenshots`` runs this with ``CONSOLE_SCREENSHOTS=docs/img`` (the committed images);
otherwise they go to the test's temporary directory, and the test still checks that each
picture was taken at the size asked for."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from playwright.async_api import Browser

import protocols as p
from hub.db.engine import make_engine, make_session_factory
from hub.registry.models import Home, Workstation
from safehome.testing.console import log_in
from tests.console.conftest import District, step, watch
from tests.support.hub_gateway import ScriptedGateway, now_ms

pytestmark = pytest.mark.slow


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def dress(district: District) -> None:
    """The pictures show homes as the centers know them (the test registry's are bare)."""
    engine = make_engine(district.db_url)
    try:
        with make_session_factory(engine)() as s, s.begin():
            for ws_id, name in (("ws-0001", "金杨新村第一居委工作站"), ("ws-0002", "金杨新村第二居委工作站")):
                ws = s.get(Workstation, ws_id)
                assert ws is not None
                ws.name, ws.phone = name, "021-5000 1001"
            for home_id, address, person, born in (
                ("home-1", "浦东新区金杨路 123 弄 5 号", "张桂英", 1938),
                ("home-2", "浦东新区金杨路 88 弄 12 号", "李德明", 1941),
            ):
                home = s.get(Home, home_id)
                assert home is not None
                home.address, home.floor, home.door = address, "3", "302"
                home.residents = [{"name": person, "birth_year": born, "phone": "+86 139 0000 0001",
                                   "conditions": ["高血压", "行动不便"], "notes": "耳背 敲门要用力"}]
                home.emergency_contacts = [{"name": "王小红", "relation": "女儿", "phone": "+86 138 0000 0002"}]
                home.key_holder = {"name": "隔壁 陈阿姨", "phone": "+86 137 0000 0003"}
                home.care_notes = "独居 每周二、五社区助餐"
    finally:
        engine.dispose()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    path = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_board_and_case_screenshots(
    district: District, browser: Browser, console_errors: list[str], out: Path
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 640}, device_scale_factor=1)
    page = watch(await context.new_page(), console_errors)
    dress(district)
    await log_in(page, district.url, district.tokens["sd1"])
    gw1 = ScriptedGateway(district.secured, "gw-1").connect()
    gw2 = ScriptedGateway(district.secured, "gw-2").connect()
    try:
        sent = [
            (gw2, gw2.event(p.EventKind.BATTERY_LOW, sensor="smoke-1")),
            (gw1, gw1.event(p.EventKind.TAMPER, sensor="panic-1")),
            (gw2, gw2.event(p.EventKind.PANIC, sensor="panic-1")),
            (gw1, gw1.event(p.EventKind.SMOKE, sensor="smoke-1")),
        ]
        gw1.send(gw1.status(sensors=["smoke-1", "panic-1"]))
        # three hours of readings, every 10 minutes: the case view plots them
        start = now_ms() - 3 * 3600 * 1000
        for i in range(18):
            reading = gw1.telemetry(
                [("smoke-1", "gas_lel", 2.0 + (i % 5) * 0.8), ("smoke-1", "battery_v", 9.1 - i * 0.01),
                 ("panic-1", "battery_v", 3.0 - i * 0.005)],
                ts=start + i * 600_000,
            )  # fmt: skip
            gw1.send(reading)
            await gw1.acked([reading.id])
        for gw, ev in sent:
            gw.send(ev)
            await gw.acked([ev.id])
        await page.locator("li[data-alarm]").nth(len(sent) - 1).wait_for(timeout=10000)

        # one case taken part of the way, so the board shows states and the case a history
        await page.locator("li.cls-alarm a").nth(1).click()
        await page.wait_for_selector("main.case[data-state]")
        await step(page, "acknowledge", "已电话联系老人 无人接听")
        await page.wait_for_selector("main.case[data-state=acknowledged]")
        await step(page, "dispatch", "请志愿者带钥匙上门", responder="志愿者 王师傅")
        await page.wait_for_selector("main.case[data-state=dispatched]")
        plots = page.locator("section.readings .plot canvas")
        await plots.first.wait_for(timeout=10000)
        assert await page.locator("section.readings .plot").count() == 2  # gas level and battery
        await page.screenshot(path=out / "console-case.png", full_page=True)

        await page.click("a.back")
        await page.wait_for_selector("main.board[data-loaded=yes]")
        await page.screenshot(path=out / "console-board.png")

        await page.click("a.nav[href='#/fleet']")
        await page.wait_for_selector("main.fleet[data-loaded=yes]")
        await page.click("tr[data-gateway=gw-2] td:nth-child(2) button")
        await page.screenshot(path=out / "console-fleet.png")

        await page.click("a.nav[href='#/kpis']")
        await page.wait_for_selector("main.kpis[data-loaded=yes] .chart canvas")
        await page.screenshot(path=out / "console-kpis.png", full_page=True)

        phone = watch(await (await browser.new_context(viewport={"width": 390, "height": 700})).new_page(), console_errors)
        await log_in(phone, district.url, district.tokens["sd1"])
        await phone.locator("li[data-alarm]").nth(len(sent) - 1).wait_for(timeout=10000)
        await phone.screenshot(path=out / "console-phone.png")
    finally:
        gw1.close()
        gw2.close()
    assert png_size(out / "console-board.png") == (1200, 640)
    assert png_size(out / "console-fleet.png") == (1200, 640)
    assert png_size(out / "console-kpis.png")[0] == 1200
    assert png_size(out / "console-phone.png") == (390, 700)
    assert png_size(out / "console-case.png")[0] == 1200
