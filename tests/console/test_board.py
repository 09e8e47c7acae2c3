"""The console in a real browser against a real hub: an MQTT smoke event reaches the board
live; the closed loop taken in the browser reaches the gateway and takes the alarm off the
board; other regions see nothing of it; two operators see each other's steps live; a hub
restart shows "disconnected" and recovers with what was raised meanwhile."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import httpx
import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import select

import protocols as p
from hub.alarms.store.incidents import Incident
from hub.alarms.store.models import Alarm
from hub.audit.models import AuditEntry
from safehome.testing.console import log_in
from safehome.testing.poll import until
from tests.console.conftest import USER, District, page_until, step, watch
from tests.support.hub_gateway import ScriptedGateway

pytestmark = pytest.mark.slow

ROW = "li[data-alarm]"


def open_alarms(district: District) -> list[Alarm]:
    hub = district.hubs[0]
    with hub.session_factory() as s:
        return list(s.scalars(select(Alarm).where(Alarm.open_key.is_not(None))))


def resident_reads(district: District) -> int:
    with district.hubs[0].session_factory() as s:
        return len(s.scalars(select(AuditEntry).where(AuditEntry.action == "resident.read")).all())


async def board_ids(page: Page) -> list[str]:
    return [str(await li.get_attribute("data-alarm")) for li in await page.query_selector_all(ROW)]


async def test_smoke_event_to_board_then_closed_loop_in_the_browser(
    district: District, browser: Browser, console_errors: list[str]
) -> None:
    ws1 = watch(await browser.new_page(), console_errors)
    ws2 = watch(await browser.new_page(), console_errors)
    await log_in(ws1, district.url, district.tokens["ws1-a"])
    await log_in(ws2, district.url, district.tokens["ws2"])
    assert await board_ids(ws1) == [] and await board_ids(ws2) == []

    gw1 = ScriptedGateway(district.secured, "gw-1").connect()
    gw2 = ScriptedGateway(district.secured, "gw-2").connect()
    try:
        smoke = gw1.event(p.EventKind.SMOKE, sensor="smoke-1")
        gw1.send(smoke)
        await gw1.acked([smoke.id])
        (alarm,) = open_alarms(district)

        # on the board without a reload: highlighted, and it beeped
        row = ws1.locator(f"li[data-alarm='{alarm.id}']")
        await row.wait_for(timeout=10000)
        assert "urgent" in str(await row.get_attribute("class"))
        assert "cls-alarm" in str(await row.get_attribute("class"))
        assert await ws1.evaluate("document.body.dataset.alerts") == "1"
        assert "烟感" in await row.inner_text()

        # ws-0002's operator: their own gateway's alarm arrives, gw-1's never does
        panic = gw2.event(p.EventKind.PANIC, sensor="panic-1")
        gw2.send(panic)
        await gw2.acked([panic.id])
        await ws2.locator(ROW).first.wait_for(timeout=10000)
        ids2 = await board_ids(ws2)
        assert len(ids2) == 1 and alarm.id not in ids2
        assert await board_ids(ws1) == [alarm.id]

        # the board reads no resident card (each read is audited): only opening the case does
        assert resident_reads(district) == 0
        # the case: acknowledge → the home hears "help is on the way" on its ack topic
        await row.locator("a").click()
        await ws1.wait_for_selector("main.case[data-state]")
        # the resident card: who lives there, how to call them and their family
        card = ws1.locator("[data-testid=resident-card]")
        text = await card.inner_text()
        assert "路1号" in text and "resident" in text and "daughter" in text
        call = card.locator("a.tel", has_text="+86-fam1")  # the daughter: click to call
        assert await call.get_attribute("href") == "tel:+861"
        assert resident_reads(district) == 1
        await step(ws1, "acknowledge", "calling the resident")
        await ws1.wait_for_selector("main.case[data-state=acknowledged]", timeout=10000)
        await gw1.acked([smoke.id], times=2)
        assert [i.status for i in gw1.acks[smoke.id]] == [p.AckStatus.STORED, p.AckStatus.ACKNOWLEDGED]
        assert gw1.acks[smoke.id][1].alarm_id == alarm.id

        await step(ws1, "dispatch", "neighbour has a key", responder="volunteer Wang")
        await ws1.wait_for_selector("main.case[data-state=dispatched]", timeout=10000)
        await step(ws1, "arrive", "at the door")
        await ws1.wait_for_selector("main.case[data-state=on_site]", timeout=10000)
        await step(ws1, "resolve", "burnt pan, resident fine", outcome="cooking_smoke")
        await ws1.wait_for_selector("main.case[data-state=resolved]", timeout=10000)
        history = await ws1.locator(".history li").all_inner_texts()
        assert any("volunteer Wang" in line for line in history)
        assert any("burnt pan, resident fine" in line for line in history)
        assert [await li.get_attribute("data-action") for li in await ws1.query_selector_all(".history li")][-1] == "resolve"

        # back on the board: gone (closed), without a reload
        await ws1.click("a.back")
        await ws1.wait_for_selector("main.board")
        await page_until(ws1, "document.querySelectorAll('li[data-alarm]').length === 0")
        assert await ws1.evaluate("performance.getEntriesByType('navigation').length") == 1
    finally:
        gw1.close()
        gw2.close()




async def test_two_operators_on_one_case_see_each_others_step_live(
    district: District, browser: Browser, console_errors: list[str]
) -> None:
    a = watch(await browser.new_page(), console_errors)
    b = watch(await (await browser.new_context()).new_page(), console_errors)
    await log_in(a, district.url, district.tokens["ws1-a"])
    await log_in(b, district.url, district.tokens["ws1-b"])
    gw = ScriptedGateway(district.secured, "gw-1").connect()
    try:
        ev = gw.event(p.EventKind.PANIC, sensor="panic-1")
        gw.send(ev)
        await gw.acked([ev.id])
        (alarm,) = open_alarms(district)
        for page in (a, b):
            await page.locator(f"li[data-alarm='{alarm.id}'] a").click()
            await page.wait_for_selector("main.case[data-state=raised], main.case[data-state=notified]")
        await step(a, "acknowledge", "on my way")
        # b did nothing: its open case moves on by itself, naming who acknowledged
        await b.wait_for_selector("main.case[data-state=acknowledged]", timeout=10000)
        line = b.locator(".history li[data-action=acknowledge]")
        assert "ws1-a" in await line.inner_text() and "on my way" in await line.inner_text()
        assert await b.locator("form[data-step=acknowledge]").count() == 0
        assert await b.locator("form[data-step=dispatch]").count() == 1
    finally:
        gw.close()


async def test_hub_restart_shows_disconnected_then_recovers_with_alarms_raised_meanwhile(
    district: District, browser: Browser, console_errors: list[str]
) -> None:
    page = watch(await browser.new_page(), console_errors)
    await log_in(page, district.url, district.tokens["ws1-a"])
    (first,) = district.hubs
    other = await district.start_hub(port=0)  # a second worker keeps ingesting meanwhile
    await district.stop_hub(first)
    await page.wait_for_selector("[data-testid=disconnected]", timeout=15000)

    gw = ScriptedGateway(district.secured, "gw-1").connect()
    try:
        ev = gw.event(p.EventKind.SMOKE, sensor="smoke-1")
        gw.send(ev)
        await gw.acked([ev.id])  # stored and raised by the other worker while the page is cut off
        with other.session_factory() as s:
            (alarm_id,) = s.scalars(select(Alarm.id)).all()
        assert await page.locator("[data-testid=disconnected]").is_visible()
        assert await board_ids(page) == []

        await district.start_hub()  # the page's hub is back on its port
        await page.wait_for_selector("[data-testid=disconnected]", state="detached", timeout=20000)
        await page.locator(f"li[data-alarm='{alarm_id}']").wait_for(timeout=10000)
        assert "urgent" in str(await page.locator(f"li[data-alarm='{alarm_id}']").get_attribute("class"))
        assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
    finally:
        gw.close()


async def test_a_console_user_logs_in_with_name_and_password_and_out_again(
    district: District, browser: Browser, console_errors: list[str]
) -> None:
    # access tokens live 2 s here (15 min by default): the page must renew them by itself
    district.hubs[0].app.state.alarm_api.access_ttl = dt.timedelta(seconds=2)
    page = watch(await browser.new_page(), console_errors)
    await page.goto(district.url)
    user, password = USER
    await page.fill("#username", user)
    await page.fill("#password", "not-the-password")
    await page.click("button[type=submit]")
    error = page.locator(".login .error")
    await error.wait_for(timeout=10000)
    assert "不正确" in await error.inner_text()  # one generic answer, in the user's language

    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_selector("main.board[data-loaded=yes]", timeout=15000)
    await page.wait_for_selector("[data-testid=connection].up", timeout=15000)
    assert "王芳 (ws-0001)" in await page.locator("header .who").inner_text()
    first = await page.evaluate("sessionStorage.getItem('console.token')")
    assert first.startswith("shu_")
    api = httpx.AsyncClient(base_url=district.url.removesuffix("/console/"))

    async def works(token: str) -> bool:
        return (await api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200

    deadline = time.monotonic() + 15
    while await works(first):  # until the first access token has expired
        assert time.monotonic() < deadline, "the access token did not expire"
        await asyncio.sleep(0.2)

    # the session's alarms still arrive live: the page renewed its token and its stream
    gw = ScriptedGateway(district.secured, "gw-1").connect()
    try:
        ev = gw.event(p.EventKind.PANIC, sensor="panic-1")
        gw.send(ev)
        await gw.acked([ev.id])
        await page.locator(ROW).first.wait_for(timeout=10000)
    finally:
        gw.close()

    # logging out ends the session at the hub: the current access token stops working
    district.hubs[0].app.state.alarm_api.access_ttl = dt.timedelta(minutes=15)
    await page.reload()  # renews (the last token may have expired meanwhile) with a 15 min one
    await page.wait_for_selector("main.board[data-loaded=yes]", timeout=15000)
    access = await page.evaluate("sessionStorage.getItem('console.token')")
    assert access != first and await works(access)
    await page.click("header button.link")
    await page.wait_for_selector("form.login")
    deadline = time.monotonic() + 10
    while await works(access):  # the page's POST /auth/logout is on its way
        assert time.monotonic() < deadline, "the access token still works after logging out"
        await asyncio.sleep(0.1)
    await api.aclose()


async def test_a_mass_event_is_one_row_that_opens_to_its_members(
    district: District, browser: Browser, console_errors: list[str]
) -> None:
    """Two gateways of sd-01 go offline; the storm engine's incident is recorded on their
    alarms (as hub/alarms/engine/storms.py does; its own tests cover when it folds): the board
    shows one row for the mass event, which opens to its members."""
    page = watch(await browser.new_page(), console_errors)
    await log_in(page, district.url, district.tokens["sd1"])
    gateways = [ScriptedGateway(district.secured, gw, lwt=False).connect() for gw in ("gw-1", "gw-2")]
    hub = district.hubs[0]

    def offline_alarms() -> list[str]:
        with hub.session_factory() as s:
            return list(s.scalars(select(Alarm.id).where(Alarm.kind == "gateway_offline")))

    try:
        for gw in gateways:
            gw.send(gw.status())
        for gw in gateways:
            gw.send(gw.status(p.GatewayState.OFFLINE, reason="shutdown"))
        await until(lambda: len(offline_alarms()) == 2, 30, "both gateways' offline alarms")
        await page.locator("li[data-alarm]").nth(1).wait_for(timeout=10000)  # two rows, live
        now = dt.datetime.now(dt.UTC)
        with hub.session_factory() as s, s.begin():
            s.add(Incident(id=p.new_event_id(), area="subdistrict:sd-01", open_key="subdistrict:sd-01",
                           state="open", subdistrict_id="sd-01", district_id="pudong", opened_at=now,
                           last_member_at=now, members=2, pushed_members=2, pushed_at=now))  # fmt: skip
            s.flush()
            incident = s.scalars(select(Incident.id)).one()
            for alarm in s.scalars(select(Alarm).where(Alarm.kind == "gateway_offline")):
                alarm.incident_id = incident
                alarm.flags = [*(alarm.flags or []), "mass_event"]

        await page.reload()
        await page.wait_for_selector("main.board[data-loaded=yes]", timeout=15000)
        storm = page.locator("li.storm")
        await storm.wait_for(timeout=10000)
        assert await storm.count() == 1 and await storm.get_attribute("data-members") == "2"
        assert await page.locator("main.board > ul > li[data-alarm]").count() == 0
        assert "区域性事件" in await storm.inner_text()
        await storm.locator("button.storm-head").click()
        assert sorted(await storm.locator("li[data-alarm]").evaluate_all(
            "els => els.map(e => e.dataset.alarm)")) == sorted(offline_alarms())
    finally:
        for gw in gateways:
            gw.close()
