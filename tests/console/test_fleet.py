"""Fleet health in the browser: the region's gateways (and no others), worst first, a
gateway's commands from its row reach that gateway's command topic, its home's page shows
the resident card; the performance page draws its chart; a revoked token ends the session."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.async_api import Browser

import protocols as p
from hub.api.tokens import revoke_token
from hub.db.state import GatewayState
from safehome.testing.console import log_in
from safehome.testing.poll import until
from tests.console.conftest import District, page_until, watch
from tests.support.hub_gateway import ScriptedGateway

pytestmark = pytest.mark.slow


async def test_fleet_health_a_gateway_command_the_home_and_performance(
    district: District, browser: Browser, console_errors: list[str]
) -> None:
    gw1 = ScriptedGateway(district.secured, "gw-1").connect()
    try:
        status = gw1.status(sensors=["smoke-1", "panic-1"])
        gw1.send(status)
        hub = district.hubs[0]

        def heard() -> bool:
            with hub.session_factory() as s:
                return s.get(GatewayState, "gw-1") is not None

        await until(heard, 15, "gw-1's status stored by the hub")
        page = watch(await browser.new_page(), console_errors)
        await log_in(page, district.url, district.tokens["sd1"])  # sd-01: ws-0001 and ws-0002

        await page.click("a.nav[href='#/fleet']")
        await page.wait_for_selector("main.fleet[data-loaded=yes]", timeout=10000)
        rows = [str(await r.get_attribute("data-gateway")) for r in await page.query_selector_all("tr[data-gateway]")]
        assert sorted(rows) == ["gw-1", "gw-2"]  # gw-3 is sd-02's
        # worst first: gw-2 was never heard from, gw-1 is online
        await page_until(page, "document.querySelector('tr[data-gateway=gw-1]').className === 'conn-online'")
        rows = [str(await r.get_attribute("data-gateway")) for r in await page.query_selector_all("tr[data-gateway]")]
        assert rows == ["gw-2", "gw-1"]
        await page.click("button[data-sort=id]")
        rows = [str(await r.get_attribute("data-gateway")) for r in await page.query_selector_all("tr[data-gateway]")]
        assert rows == ["gw-1", "gw-2"]

        # a self-test from the gateway's row reaches that gateway's command topic
        assert gw1.client.subscribe(str(p.Topic.of("gw-1", p.Channel.COMMAND))) == [1]
        await page.click("tr[data-gateway=gw-1] td:nth-child(2) button")
        await page.click("button[data-command=selftest]")
        await page.wait_for_selector("li[data-command-state=sent]", timeout=10000)
        got: list[p.Command] = []

        def commanded() -> bool:
            for m in gw1.client.drain():
                if m.topic.endswith("/cmd"):
                    got.append(p.decode(p.Channel.COMMAND, bytes(m.payload), p.Command))
            return bool(got)

        await until(commanded, 10, "the self-test on gw-1's command topic")
        assert got[0].name == p.CommandName.SELFTEST

        # the home's page: the resident card
        await page.click("tr[data-gateway=gw-1] .home a")
        await page.wait_for_selector("main.home [data-testid=resident-card]", timeout=10000)
        assert "路1号" in await page.locator("[data-testid=resident-card]").inner_text()

        # performance: the chart is drawn (uPlot's canvas), the table has its rows
        await page.click("a.nav[href='#/kpis']")
        await page.wait_for_selector("main.kpis[data-loaded=yes] .chart canvas", timeout=15000)
        assert await page.locator("table.durations tbody tr").count() == 3
        # sd-01's workstations side by side (GET /kpis?workstation_id=), none of sd-02's
        await page.locator("[data-testid=compare]").wait_for(timeout=10000)
        compared = await page.locator("table.compare tbody tr").evaluate_all("els => els.map(e => e.dataset.workstation)")
        assert sorted(compared) == ["ws-0001", "ws-0002"]
        assert "⟦" not in await page.evaluate("document.body.innerText")

        # the token is revoked while the page is open: its live stream ends and the page
        # goes back to the login form by itself
        with hub.session_factory() as s, s.begin():
            assert revoke_token(s, district.tokens["sd1"].split("_")[1], dt.datetime.now(dt.UTC))
        await page.wait_for_selector("form.login", timeout=20000)
        assert await page.evaluate("sessionStorage.getItem('console.token')") is None
    finally:
        gw1.close()
